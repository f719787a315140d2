//! Time as the core sees it: an explicit instant handed in by the driver.
//!
//! The core never reads a clock. Every event carries a [`Time`], the number
//! of nanoseconds since the Unix epoch as the driver's clock says (the
//! native driver anchors a monotonic clock to the wall clock once at start;
//! the browser driver uses `performance.timeOrigin + performance.now()`; the
//! simulator uses virtual time). The `time` node request answers with it.

use std::ops::{Add, Sub};
use std::time::Duration;

/// An instant: nanoseconds since the Unix epoch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The epoch itself (useful as a start for simulations).
    pub const ZERO: Time = Time(0);

    /// An instant from nanoseconds since the epoch.
    pub const fn from_nanos(n: u64) -> Time {
        Time(n)
    }

    /// An instant from (fractional) seconds since the epoch.
    ///
    /// ```
    /// use aemp_core::Time;
    /// assert_eq!(Time::from_secs_f64(1.5).as_nanos(), 1_500_000_000);
    /// ```
    pub fn from_secs_f64(s: f64) -> Time {
        Time((s.max(0.0) * 1e9) as u64)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as Perl's `AE::now` reports them.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The time elapsed since `earlier` (zero if `earlier` is later).
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

/// Converts (possibly fractional, possibly negative) seconds to a duration,
/// clamping negatives and NaN to zero.
pub fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e12))
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let t = Time::from_nanos(10);
        assert_eq!((t + Duration::from_nanos(5)).as_nanos(), 15);
        assert_eq!(Time::from_nanos(15) - t, Duration::from_nanos(5));
        assert_eq!(t - Time::from_nanos(15), Duration::ZERO);
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
    }
}
