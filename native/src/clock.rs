//! The driver's clock: the wall clock read once at start, advanced by a
//! monotonic clock, as the core's [`Time`] wants it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aemp_core::Time;

/// A monotonic clock anchored to the wall clock at creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall0: u64,
    mono0: Instant,
}

impl Clock {
    /// Anchors a new clock to the current wall-clock time.
    pub fn new() -> Clock {
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
            .unwrap_or(0);
        Clock {
            wall0,
            mono0: Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        let e = self.mono0.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        Time::from_nanos(self.wall0.saturating_add(e))
    }

    /// The monotonic instant corresponding to `t` (times before the anchor
    /// map to the anchor).
    pub fn instant(&self, t: Time) -> Instant {
        self.mono0 + Duration::from_nanos(t.as_nanos().saturating_sub(self.wall0))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_monotonic_and_maps_back() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let i = c.instant(a);
        assert!(i >= c.mono0);
        assert!(c.instant(Time::ZERO) == c.mono0);
    }
}
