//! The host ports of one node: which are taken, and picking free ones.
//!
//! Static ports are whatever the job asks for; dynamic ones come from the node's range,
//! the first free ones after the last port handed out (wrapping around), so a port just
//! given back is not handed out again at once: a replaced instance may still hold it for
//! its shutdown delay while its replacement starts on the same node. The same history
//! always yields the same ports. Used ports are kept in a sorted set (a node holds at most
//! a few hundred), plus a count of those inside the dynamic range so "are there enough
//! free?" is O(1).

use std::collections::BTreeSet;

use gantry_api::PortRange;

#[derive(Clone, Debug)]
pub(crate) struct PortBook {
    range: PortRange,
    used: BTreeSet<u16>,
    used_in_range: usize,
    /// Where the next pick starts: just after the last port of the range taken.
    cursor: u16,
}

/// Why an ask's ports do not fit on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PortShortage {
    /// A static port is already taken.
    Taken(u16),
    /// Not enough free ports in the dynamic range.
    RangeExhausted { needed: usize, free: usize },
}

impl PortBook {
    pub fn new(range: PortRange) -> Self {
        PortBook {
            range,
            used: BTreeSet::new(),
            used_in_range: 0,
            cursor: range.start,
        }
    }

    pub fn range_len(&self) -> usize {
        if self.range.end < self.range.start {
            0
        } else {
            usize::from(self.range.end - self.range.start) + 1
        }
    }

    pub fn in_range(&self, port: u16) -> bool {
        self.range.contains(port)
    }

    pub fn is_free(&self, port: u16) -> bool {
        !self.used.contains(&port)
    }

    pub fn free_in_range(&self) -> usize {
        self.range_len() - self.used_in_range
    }

    /// Can `static_ports` (distinct) be taken and `dynamic` more picked from the range?
    pub fn check(&self, static_ports: &[u16], dynamic: usize) -> Result<(), PortShortage> {
        let mut statics_in_range = 0;
        for &port in static_ports {
            if !self.is_free(port) {
                return Err(PortShortage::Taken(port));
            }
            if self.in_range(port) {
                statics_in_range += 1;
            }
        }
        let free = self.free_in_range() - statics_in_range;
        if free < dynamic {
            return Err(PortShortage::RangeExhausted {
                needed: dynamic,
                free,
            });
        }
        Ok(())
    }

    /// The static ports, then `dynamic` ports picked from the range starting at the
    /// cursor and wrapping around (skipping the static ones). Call after
    /// [`check`](Self::check) succeeded.
    pub fn pick(&self, static_ports: &[u16], dynamic: usize) -> Vec<u16> {
        let mut ports = static_ports.to_vec();
        if dynamic == 0 || self.range_len() == 0 {
            return ports;
        }
        let (start, end) = (self.range.start, self.range.end);
        let cursor = self.cursor.clamp(start, end);
        let candidates = (cursor..=end).chain(start..cursor);
        for candidate in candidates {
            if ports.len() == static_ports.len() + dynamic {
                break;
            }
            if self.is_free(candidate) && !static_ports.contains(&candidate) {
                ports.push(candidate);
            }
        }
        debug_assert_eq!(
            ports.len(),
            static_ports.len() + dynamic,
            "pick without check"
        );
        ports
    }

    /// Marks `ports` taken. They must be free (checked by the caller).
    pub fn take(&mut self, ports: &[u16]) {
        for &port in ports {
            let fresh = self.used.insert(port);
            debug_assert!(fresh, "port {port} taken twice");
            if fresh && self.in_range(port) {
                self.used_in_range += 1;
                self.cursor = if port >= self.range.end {
                    self.range.start
                } else {
                    port + 1
                };
            }
        }
    }

    pub fn give_back(&mut self, ports: &[u16]) {
        for &port in ports {
            if self.used.remove(&port) && self.in_range(port) {
                self.used_in_range -= 1;
            }
        }
    }

    #[cfg(test)]
    pub fn used(&self) -> &BTreeSet<u16> {
        &self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(start: u16, end: u16) -> PortBook {
        PortBook::new(PortRange { start, end })
    }

    #[test]
    fn picks_free_ports_after_the_last_taken_after_the_static_ones() {
        let mut b = book(100, 110);
        b.take(&[100, 101, 103]);
        assert_eq!(b.free_in_range(), 8);
        assert_eq!(b.pick(&[80], 3), vec![80, 104, 105, 106]);
        // A static port inside the range is not picked again as a dynamic one.
        assert_eq!(b.pick(&[104], 2), vec![104, 105, 106]);
    }

    #[test]
    fn a_port_given_back_comes_round_again_only_after_the_others() {
        let mut b = book(100, 103);
        b.take(&[100, 101]);
        b.give_back(&[100]);
        assert_eq!(b.pick(&[], 1), vec![102], "not 100, just given back");
        b.take(&[102, 103]);
        assert_eq!(b.pick(&[], 1), vec![100], "wrapped around");
    }

    #[test]
    fn checks_static_ports_and_the_range() {
        let mut b = book(100, 102);
        b.take(&[80, 100]);
        assert_eq!(b.check(&[80], 0), Err(PortShortage::Taken(80)));
        assert_eq!(b.check(&[81], 2), Ok(()));
        assert_eq!(
            b.check(&[101], 2),
            Err(PortShortage::RangeExhausted { needed: 2, free: 1 })
        );
        b.give_back(&[100, 80]);
        assert_eq!(b.free_in_range(), 3);
        assert_eq!(b.check(&[80], 3), Ok(()));
    }

    #[test]
    fn the_top_of_the_port_space_and_empty_ranges() {
        let mut b = book(65_534, 65_535);
        assert_eq!(b.pick(&[], 2), vec![65_534, 65_535]);
        b.take(&[65_534, 65_535]);
        assert_eq!(b.free_in_range(), 0);
        let empty = book(10, 9);
        assert_eq!(empty.range_len(), 0);
        assert!(empty.check(&[], 1).is_err());
        assert!(empty.check(&[], 0).is_ok());
    }
}
