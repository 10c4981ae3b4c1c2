//! The bounded buffer of recent changes, and where each reader stands in it.
//!
//! Changes are held in log order, oldest first; past the capacity the oldest are dropped.
//! `floor` is the promise made to readers: every change with an index above it is held
//! (or not yet committed). Dropping a change raises the floor to its index, and so does a
//! wholesale replacement of the state (a snapshot installed, a restore, a restart), which
//! also drops everything held and starts a new epoch.
//!
//! A reader's [`Cursor`] names the next change it has not seen by sequence number, not by
//! index: one index can carry many changes, and a reader must be able to stop in the
//! middle of them. A cursor whose change was dropped, or that belongs to an older epoch,
//! is truncated: the reader must start over from the floor.

use gantry_api::events::Topic;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// One change as a reader receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Position in the buffer's history; consecutive, never reused.
    pub seq: u64,
    pub index: u64,
    pub topic: Topic,
    /// The whole event as JSON: the SSE message's `data`.
    pub data: Arc<str>,
}

/// Where a reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    epoch: u64,
    /// The next change to look at.
    seq: u64,
    /// Only changes with an index above this are for the reader.
    after: u64,
}

/// The reader must start over: the changes it needed are gone. Carries the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone(pub u64);

#[derive(Debug)]
pub struct Ring {
    held: VecDeque<Held>,
    capacity: usize,
    floor: u64,
    epoch: u64,
    next_seq: u64,
    /// The newest index recorded, or the floor after a reset.
    last_index: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Ring {
            held: VecDeque::new(),
            capacity: capacity.max(1),
            floor: 0,
            epoch: 0,
            next_seq: 0,
            last_index: 0,
        }
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Adds one change at `index` (not below the last one), dropping the oldest past the
    /// capacity.
    pub fn push(&mut self, index: u64, topic: Topic, data: Arc<str>) {
        debug_assert!(index >= self.last_index, "changes arrive in log order");
        self.held.push_back(Held {
            seq: self.next_seq,
            index,
            topic,
            data,
        });
        self.next_seq += 1;
        self.last_index = self.last_index.max(index);
        while self.held.len() > self.capacity {
            if let Some(dropped) = self.held.pop_front() {
                self.floor = self.floor.max(dropped.index);
            }
        }
    }

    /// The state was replaced as of `index`: nothing held applies any more.
    pub fn reset(&mut self, index: u64) {
        self.held.clear();
        self.epoch += 1;
        self.floor = index;
        self.last_index = index;
    }

    /// A reader of the changes after `after`; `None`: from now on.
    pub fn cursor(&self, after: Option<u64>) -> Result<Cursor, Gone> {
        let Some(after) = after else {
            return Ok(Cursor {
                epoch: self.epoch,
                seq: self.next_seq,
                after: self.last_index,
            });
        };
        if after < self.floor {
            return Err(Gone(self.floor));
        }
        let first = self.held.partition_point(|h| h.index <= after);
        let seq = self.held.get(first).map_or(self.next_seq, |h| h.seq);
        Ok(Cursor {
            epoch: self.epoch,
            seq,
            after,
        })
    }

    /// Up to `max` changes for the reader (of `topics`, when given), moving its cursor
    /// past what it was handed and what it skipped.
    pub fn read(
        &self,
        cursor: &mut Cursor,
        topics: Option<&BTreeSet<Topic>>,
        max: usize,
    ) -> Result<Vec<Held>, Gone> {
        let oldest = self.held.front().map_or(self.next_seq, |h| h.seq);
        if cursor.epoch != self.epoch || cursor.seq < oldest {
            return Err(Gone(self.floor));
        }
        let start = (cursor.seq - oldest) as usize;
        let mut out = Vec::new();
        for held in self.held.range(start..) {
            if out.len() == max {
                break;
            }
            cursor.seq = held.seq + 1;
            let wanted =
                held.index > cursor.after && topics.is_none_or(|t| t.contains(&held.topic));
            if wanted {
                out.push(held.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    fn ring_with(capacity: usize, changes: &[(u64, Topic)]) -> Ring {
        let mut ring = Ring::new(capacity);
        for (i, (index, topic)) in changes.iter().enumerate() {
            ring.push(*index, *topic, data(&format!("c{i}")));
        }
        ring
    }

    fn indexes(held: &[Held]) -> Vec<u64> {
        held.iter().map(|h| h.index).collect()
    }

    #[test]
    fn a_reader_gets_exactly_the_changes_after_its_index() {
        let ring = ring_with(
            10,
            &[
                (1, Topic::Job),
                (2, Topic::Job),
                (2, Topic::Node),
                (3, Topic::Allocation),
            ],
        );
        for (after, expected) in [
            (0, vec![1, 2, 2, 3]),
            (1, vec![2, 2, 3]),
            (2, vec![3]),
            (3, vec![]),
            (9, vec![]),
        ] {
            let mut cursor = ring.cursor(Some(after)).unwrap();
            let got = ring.read(&mut cursor, None, 100).unwrap();
            assert_eq!(indexes(&got), expected, "after {after}");
        }
    }

    #[test]
    fn a_batch_limit_may_stop_inside_an_index_without_losing_the_rest() {
        let mut ring = ring_with(10, &[(5, Topic::Job), (5, Topic::Node), (5, Topic::Job)]);
        let mut cursor = ring.cursor(Some(4)).unwrap();
        let first = ring.read(&mut cursor, None, 2).unwrap();
        let second = ring.read(&mut cursor, None, 2).unwrap();
        assert_eq!(first.len() + second.len(), 3);
        assert_eq!(&*second[0].data, "c2");
        ring.push(6, Topic::Job, data("later"));
        assert_eq!(indexes(&ring.read(&mut cursor, None, 2).unwrap()), vec![6]);
    }

    #[test]
    fn topics_filter_what_is_handed_but_the_cursor_moves_past_the_rest() {
        let ring = ring_with(10, &[(1, Topic::Job), (2, Topic::Node), (3, Topic::Job)]);
        let only_nodes = BTreeSet::from([Topic::Node]);
        let mut cursor = ring.cursor(Some(0)).unwrap();
        assert_eq!(
            indexes(&ring.read(&mut cursor, Some(&only_nodes), 10).unwrap()),
            vec![2]
        );
        assert!(ring.read(&mut cursor, None, 10).unwrap().is_empty());
    }

    #[test]
    fn dropping_the_oldest_raises_the_floor_and_truncates_older_readers() {
        let mut ring = ring_with(3, &[(1, Topic::Job), (2, Topic::Job), (2, Topic::Node)]);
        let mut slow = ring.cursor(Some(0)).unwrap();
        assert_eq!(ring.floor(), 0);
        ring.push(3, Topic::Job, data("x"));
        // Index 1 is gone: the floor is 1, and asking for anything after 0 is refused.
        assert_eq!(ring.floor(), 1);
        assert_eq!(ring.cursor(Some(0)), Err(Gone(1)));
        assert_eq!(ring.read(&mut slow, None, 10), Err(Gone(1)));
        let mut ok = ring.cursor(Some(1)).unwrap();
        assert_eq!(
            indexes(&ring.read(&mut ok, None, 10).unwrap()),
            vec![2, 2, 3]
        );
        // Half of index 2 is dropped: only readers past 2 can be served.
        ring.push(4, Topic::Job, data("y"));
        assert_eq!(ring.floor(), 2);
        assert_eq!(ring.cursor(Some(1)), Err(Gone(2)));
        let mut from_2 = ring.cursor(Some(2)).unwrap();
        assert_eq!(
            indexes(&ring.read(&mut from_2, None, 10).unwrap()),
            vec![3, 4]
        );
    }

    #[test]
    fn a_reset_truncates_every_reader_and_starts_at_its_index() {
        let mut ring = ring_with(10, &[(1, Topic::Job), (2, Topic::Job)]);
        let mut caught_up = ring.cursor(Some(2)).unwrap();
        let mut live = ring.cursor(None).unwrap();
        ring.reset(50);
        assert_eq!(ring.read(&mut caught_up, None, 10), Err(Gone(50)));
        assert_eq!(ring.read(&mut live, None, 10), Err(Gone(50)));
        assert_eq!(ring.cursor(Some(49)), Err(Gone(50)));
        let mut after = ring.cursor(Some(50)).unwrap();
        ring.push(51, Topic::Node, data("n"));
        assert_eq!(indexes(&ring.read(&mut after, None, 10).unwrap()), vec![51]);
    }

    #[test]
    fn a_live_reader_sees_only_what_comes_next_and_a_future_index_waits() {
        let mut ring = ring_with(10, &[(1, Topic::Job)]);
        let mut live = ring.cursor(None).unwrap();
        let mut future = ring.cursor(Some(3)).unwrap();
        for index in 2..=4 {
            ring.push(index, Topic::Job, data("z"));
        }
        assert_eq!(
            indexes(&ring.read(&mut live, None, 10).unwrap()),
            vec![2, 3, 4]
        );
        assert_eq!(indexes(&ring.read(&mut future, None, 10).unwrap()), vec![4]);
    }
}
