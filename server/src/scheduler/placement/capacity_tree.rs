//! An ordered index of nodes that also knows the free capacity below each branch.
//!
//! Placement asks one question over and over: "in this order, which is the first node that
//! has at least X cpu and Y memory free?". A plain sorted set answers it by walking past
//! every node that is early in the order but too small, which on a bin-packed cluster is
//! most of them. Here every branch also carries the largest free cpu and the largest free
//! memory found below it, so whole branches that cannot fit are skipped.
//!
//! It is a treap: a binary search tree on the keys, and a heap on a per-entry priority that
//! the caller derives from the node id. The shape is therefore a function of the set of
//! entries alone, not of the order they arrived in. Insert, remove and [`first_fit`] are
//! O(log n) expected.
//!
//! [`first_fit`] is exact in O(log n) when the key order already guarantees one of the
//! two dimensions (the by-free-cpu index searched from `cpu >= X`: every entry past the
//! start has the cpu, and the branch maximum of memory says for sure whether a fit is
//! below). When neither dimension follows the key (the by-load index of `spread`), the two
//! maxima can come from different entries, the pruning is only a hint, and the worst case
//! is O(n).
//!
//! [`first_fit`]: CapacityTree::first_fit

use std::cmp::Ordering;
use std::ops::Bound;

/// Free cpu (millis) and memory (MB) of a node, or what an ask needs of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Free {
    pub cpu: u64,
    pub mem: u64,
}

impl Free {
    pub fn covers(&self, need: Free) -> bool {
        self.cpu >= need.cpu && self.mem >= need.mem
    }

    fn max(self, other: Free) -> Free {
        Free {
            cpu: self.cpu.max(other.cpu),
            mem: self.mem.max(other.mem),
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Entry<K> {
    key: K,
    /// What the caller stores with the key (a node's slot).
    value: u32,
    priority: u64,
    free: Free,
    /// The largest free cpu and the largest free memory in this subtree (this entry included).
    max: Free,
    left: u32,
    right: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct CapacityTree<K> {
    entries: Vec<Entry<K>>,
    vacant: Vec<u32>,
    root: u32,
    len: usize,
}

impl<K: Ord + Clone> Default for CapacityTree<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone> CapacityTree<K> {
    pub fn new() -> Self {
        CapacityTree {
            entries: Vec::new(),
            vacant: Vec::new(),
            root: NIL,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The most free cpu and the most free memory of any entry (not necessarily the same one):
    /// if this does not cover an ask, nothing here does.
    pub fn max_free(&self) -> Free {
        if self.root == NIL {
            Free::default()
        } else {
            self.entries[self.root as usize].max
        }
    }

    /// Adds `key` with `value`. Keys must be unique; `priority` should look random (a hash
    /// of the node id).
    pub fn insert(&mut self, key: K, value: u32, priority: u64, free: Free) {
        let entry = Entry {
            key,
            value,
            priority,
            free,
            max: free,
            left: NIL,
            right: NIL,
        };
        let at = match self.vacant.pop() {
            Some(at) => {
                self.entries[at as usize] = entry;
                at
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let key = self.entries[at as usize].key.clone();
        let (below, above) = self.split(self.root, &key, false);
        debug_assert!(
            above == NIL || self.first_key(above).cmp(&key) != Ordering::Equal,
            "duplicate key in capacity tree"
        );
        let below = self.merge(below, at);
        self.root = self.merge(below, above);
        self.len += 1;
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &K) -> bool {
        let (below, rest) = self.split(self.root, key, false);
        let (equal, above) = self.split(rest, key, true);
        let found = equal != NIL;
        if found {
            debug_assert!(self.entries[equal as usize].left == NIL);
            debug_assert!(self.entries[equal as usize].right == NIL);
            self.vacant.push(equal);
            self.len -= 1;
        }
        self.root = self.merge(below, above);
        found
    }

    /// The smallest key after `from` whose entry has at least `need` free, and its value.
    pub fn first_fit(&self, from: Bound<&K>, need: Free) -> Option<(&K, u32)> {
        let at = self.first_fit_in(self.root, from, need);
        (at != NIL).then(|| {
            let entry = &self.entries[at as usize];
            (&entry.key, entry.value)
        })
    }

    fn first_fit_in(&self, at: u32, from: Bound<&K>, need: Free) -> u32 {
        if at == NIL {
            return NIL;
        }
        let entry = &self.entries[at as usize];
        if !entry.max.covers(need) {
            return NIL;
        }
        let past_start = match from {
            Bound::Unbounded => true,
            Bound::Included(start) => entry.key >= *start,
            Bound::Excluded(start) => entry.key > *start,
        };
        if !past_start {
            return self.first_fit_in(entry.right, from, need);
        }
        let found = self.first_fit_in(entry.left, from, need);
        if found != NIL {
            return found;
        }
        if entry.free.covers(need) {
            return at;
        }
        // Everything on the right is past the start already.
        self.first_fit_in(entry.right, Bound::Unbounded, need)
    }

    /// Every entry in key order (tests and invariant checks).
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(K, Free)> {
        let mut out = Vec::with_capacity(self.len);
        self.collect(self.root, &mut out);
        out
    }

    #[cfg(test)]
    fn collect(&self, at: u32, out: &mut Vec<(K, Free)>) {
        if at != NIL {
            let entry = &self.entries[at as usize];
            self.collect(entry.left, out);
            out.push((entry.key.clone(), entry.free));
            self.collect(entry.right, out);
        }
    }

    /// Checks the search-tree order, the heap order and the branch maxima.
    #[cfg(test)]
    pub fn check(&self) {
        fn walk<K: Ord + Clone>(tree: &CapacityTree<K>, at: u32) -> (usize, Free) {
            if at == NIL {
                return (0, Free::default());
            }
            let entry = &tree.entries[at as usize];
            let mut max = entry.free;
            let mut count = 1;
            for child in [entry.left, entry.right] {
                if child != NIL {
                    assert!(tree.entries[child as usize].priority <= entry.priority);
                    let (n, m) = walk(tree, child);
                    count += n;
                    max = max.max(m);
                }
            }
            assert_eq!(entry.max, max, "stale branch maximum");
            (count, max)
        }
        let (count, _) = walk(self, self.root);
        assert_eq!(count, self.len);
        let keys = self.entries();
        assert!(
            keys.windows(2).all(|w| w[0].0 < w[1].0),
            "keys out of order"
        );
    }

    fn first_key(&self, mut at: u32) -> &K {
        while self.entries[at as usize].left != NIL {
            at = self.entries[at as usize].left;
        }
        &self.entries[at as usize].key
    }

    fn update(&mut self, at: u32) {
        let entry = &self.entries[at as usize];
        let mut max = entry.free;
        if entry.left != NIL {
            max = max.max(self.entries[entry.left as usize].max);
        }
        if entry.right != NIL {
            max = max.max(self.entries[entry.right as usize].max);
        }
        self.entries[at as usize].max = max;
    }

    /// Splits the subtree at `at` into the keys below `key` (also equal to it when
    /// `equal_goes_left`) and the rest.
    fn split(&mut self, at: u32, key: &K, equal_goes_left: bool) -> (u32, u32) {
        if at == NIL {
            return (NIL, NIL);
        }
        let goes_left = match self.entries[at as usize].key.cmp(key) {
            Ordering::Less => true,
            Ordering::Equal => equal_goes_left,
            Ordering::Greater => false,
        };
        if goes_left {
            let (mid, right) = self.split(self.entries[at as usize].right, key, equal_goes_left);
            self.entries[at as usize].right = mid;
            self.update(at);
            (at, right)
        } else {
            let (left, mid) = self.split(self.entries[at as usize].left, key, equal_goes_left);
            self.entries[at as usize].left = mid;
            self.update(at);
            (left, at)
        }
    }

    /// Joins two subtrees whose keys are all below / all above each other.
    fn merge(&mut self, low: u32, high: u32) -> u32 {
        if low == NIL {
            return high;
        }
        if high == NIL {
            return low;
        }
        if self.entries[low as usize].priority >= self.entries[high as usize].priority {
            let right = self.merge(self.entries[low as usize].right, high);
            self.entries[low as usize].right = right;
            self.update(low);
            low
        } else {
            let left = self.merge(low, self.entries[high as usize].left);
            self.entries[high as usize].left = left;
            self.update(high);
            high
        }
    }
}

/// A well-mixed 64-bit hash (FNV-1a, then a splitmix finaliser) for treap priorities.
pub(crate) fn priority_of(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(cpu: u64, mem: u64) -> Free {
        Free { cpu, mem }
    }

    /// Keyed by (free cpu, id), as the by-cpu index is.
    fn tree(nodes: &[(u64, u64, u32)]) -> CapacityTree<(u64, u32)> {
        let mut t = CapacityTree::new();
        for &(cpu, mem, id) in nodes {
            t.insert((cpu, id), id, priority_of(&id.to_string()), free(cpu, mem));
        }
        t.check();
        t
    }

    #[test]
    fn finds_the_first_key_that_fits_both_dimensions() {
        let t = tree(&[(100, 50, 1), (200, 10, 2), (300, 500, 3), (400, 40, 4)]);
        let hit = |from: u64, need: Free| {
            t.first_fit(Bound::Included(&(from, 0)), need)
                .map(|(k, value)| {
                    assert_eq!(k.1, value);
                    value
                })
        };
        assert_eq!(hit(0, free(0, 0)), Some(1));
        assert_eq!(hit(150, free(150, 0)), Some(2));
        // Node 2 has the cpu but not the memory; node 3 is next.
        assert_eq!(hit(150, free(150, 20)), Some(3));
        assert_eq!(hit(350, free(350, 20)), Some(4));
        assert_eq!(hit(350, free(350, 41)), None);
        assert_eq!(t.max_free(), free(400, 500));
    }

    #[test]
    fn excluded_start_continues_after_a_rejected_candidate() {
        let t = tree(&[(100, 100, 1), (100, 100, 2), (100, 100, 3)]);
        let (first, _) = t.first_fit(Bound::Unbounded, free(1, 1)).unwrap();
        assert_eq!(first.1, 1);
        let (second, _) = t.first_fit(Bound::Excluded(first), free(1, 1)).unwrap();
        assert_eq!(second.1, 2);
    }

    #[test]
    fn remove_and_reinsert_keep_the_invariants() {
        let mut t = tree(&[]);
        for id in 0..200u32 {
            let cpu = u64::from(id * 37 % 101);
            t.insert(
                (cpu, id),
                id,
                priority_of(&id.to_string()),
                free(cpu, u64::from(id)),
            );
        }
        t.check();
        for id in (0..200u32).step_by(3) {
            let cpu = u64::from(id * 37 % 101);
            assert!(t.remove(&(cpu, id)));
            assert!(!t.remove(&(cpu, id)));
        }
        t.check();
        assert_eq!(t.len(), 200 - 67);
        // The vacant slots are reused.
        for id in (0..200u32).step_by(3) {
            t.insert((5, id), id, priority_of(&id.to_string()), free(5, 5));
        }
        t.check();
        assert_eq!(t.len(), 200);
        assert_eq!(t.entries.len(), 200);
    }

    #[test]
    fn the_shape_does_not_depend_on_insertion_order() {
        let keys: Vec<u32> = (0..50).collect();
        let mut a = CapacityTree::new();
        let mut b = CapacityTree::new();
        for &k in &keys {
            a.insert(k, k, priority_of(&k.to_string()), free(1, 1));
        }
        for &k in keys.iter().rev() {
            b.insert(k, k, priority_of(&k.to_string()), free(1, 1));
        }
        let root = |t: &CapacityTree<u32>| t.entries[t.root as usize].key;
        assert_eq!(root(&a), root(&b));
    }
}
