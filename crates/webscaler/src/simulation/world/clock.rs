//! The simulated clock: the world's time, moved only by [`Sim::advance`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Sim;
use crate::clock::Clock;

/// The default start of the simulated wall clock: the lab report's first timestamp
/// (its logged run, listing 1.7: 2014-09-28 15:49:58 UTC).
pub const SEED_START: DateTime<Utc> = match DateTime::from_timestamp(1_411_919_398, 0) {
    Some(t) => t,
    None => DateTime::<Utc>::MIN_UTC,
};

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
        self.sim.wall()
    }
}
