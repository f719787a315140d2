//! Timers: a min-heap of deadlines with lazy cancellation.
//!
//! The kernel never sleeps; it reports its next deadline through
//! `Node::poll_timeout` and fires whatever is due when the driver calls
//! `Node::poll` with a later `now`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::time::Time;

/// A min-heap of `(deadline, id)` plus the payload of each live timer.
pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    live: FxHashMap<u64, T>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            live: FxHashMap::default(),
        }
    }
}

impl<T> Timers<T> {
    /// Arms timer `id` (ids are unique, chosen by the caller) for `at`.
    pub fn insert(&mut self, id: u64, at: Time, payload: T) {
        self.heap.push(Reverse((at, id)));
        self.live.insert(id, payload);
    }

    /// Cancels a timer; returns its payload if it was still armed.
    pub fn cancel(&mut self, id: u64) -> Option<T> {
        self.live.remove(&id)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Time> {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one timer due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<(u64, T)> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(p) = self.live.remove(&id) {
                return Some((id, p));
            }
        }
        None
    }

    /// Number of live timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_and_skips_cancelled() {
        let mut t = Timers::default();
        t.insert(1, Time::from_nanos(30), "c");
        t.insert(2, Time::from_nanos(10), "a");
        t.insert(3, Time::from_nanos(20), "b");
        assert_eq!(t.cancel(3), Some("b"));
        assert_eq!(t.next_deadline(), Some(Time::from_nanos(10)));
        assert_eq!(t.pop_due(Time::from_nanos(5)), None);
        assert_eq!(t.pop_due(Time::from_nanos(100)), Some((2, "a")));
        assert_eq!(t.pop_due(Time::from_nanos(100)), Some((1, "c")));
        assert_eq!(t.pop_due(Time::from_nanos(100)), None);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }
}
