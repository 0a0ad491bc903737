//! The simulated clock: the world's time, moved only by [`Sim::advance`].

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::Sim;
use crate::clock::Clock;

/// The wall-clock time `t` after the start: the lab report's first timestamp.
pub(super) fn wall(t: Duration) -> DateTime<Utc> {
    // The seed's first line (listing 1.7): 2014-09-28 15:49:58.
    let origin = Utc
        .with_ymd_and_hms(2014, 9, 28, 15, 49, 58)
        .single()
        .unwrap_or_default();
    origin + chrono::Duration::from_std(t).unwrap_or(chrono::Duration::MAX)
}

/// The simulated clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    pub(super) sim: Sim,
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.sim.now()
    }
    fn wall(&self) -> DateTime<Utc> {
        wall(self.sim.now())
    }
}
