//! The controller's sense of time: the [`Clock`] trait, so that the same controller runs on
//! the monotonic clock (`webscaler run`, [`SystemClock`]) and on a simulated one
//! ([`crate::simulation::world::SimClock`]) where a day-long trace takes well under a second.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A source of time. Methods take `&self`: a clock is a handle.
pub trait Clock {
    /// Monotonic time since the clock's origin (the controller's start); it never goes
    /// back. Rates, windows and timeouts are measured on it.
    fn now(&self) -> Duration;

    /// The wall-clock time, for the CSV `date` column and logs only.
    fn wall(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn wall(&self) -> DateTime<Utc> {
        (**self).wall()
    }
}

/// The system's monotonic clock from the moment it was made, and the system's wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }

    /// A clock whose origin is `origin` (e.g. the ticker's start).
    pub fn starting_at(origin: Instant) -> SystemClock {
        SystemClock { origin }
    }

    /// The origin.
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_counts_from_its_origin_and_never_goes_back() {
        let origin = Instant::now() - Duration::from_secs(5);
        let c = SystemClock::starting_at(origin);
        let a = c.now();
        let b = c.now();
        assert!(a >= Duration::from_secs(5) && b >= a);
        assert!((Utc::now() - c.wall()).num_seconds().abs() < 5);
    }
}
