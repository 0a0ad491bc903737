//! The clairvoyant policy: it knows the whole demand of a trace and how long a server takes
//! from being asked for to serving, and asks for each server exactly that long before it is
//! needed and releases it as soon as it is no longer needed. No policy of this controller
//! can under-provision less, nor meet the demand with fewer server-seconds: every table of
//! docs/benchmarks.md measures the other policies' distance to it. It needs the future, so
//! only `webscaler simulate` can run it.
//!
//! At each tick `now`, a server asked for now serves from `now + lead`, and one asked for at
//! the next tick from `now + interval + lead`; so the servers needed at any moment of
//! `[now + lead, now + interval + lead)` must be asked for now, and those of `[now, now +
//! lead)` were asked for earlier and must be kept. The target is the highest demand over
//! `[now, now + lead + interval)`: it rises exactly one lead before a need (to the tick) and
//! falls at the first tick after the need ends, unless the demand comes back sooner than a
//! server could be had again.

use std::time::Duration;

use super::{Decision, Observation, Policy, Reason};
use crate::rate::meter::RateMeters;

/// The oracle (see the module documentation).
#[derive(Debug, Clone)]
pub struct OraclePolicy {
    /// The demand: each value from its time until the next point's, the first at 0.
    demand: Vec<(Duration, u32)>,
    /// How far ahead to provision: the lead plus the tick interval.
    horizon: Duration,
    meter: RateMeters<u32>,
}

impl OraclePolicy {
    /// An oracle for `demand` (change points in time order, as
    /// [`crate::simulation::trace::Trace::demand`] gives them), where a server asked for at a
    /// tick serves `lead` later and ticks come every `interval`.
    pub fn new(demand: Vec<(Duration, u32)>, lead: Duration, interval: Duration) -> OraclePolicy {
        OraclePolicy {
            demand,
            horizon: lead + interval,
            meter: RateMeters::new(),
        }
    }

    /// The demand at `t`.
    fn at(&self, t: Duration) -> u32 {
        let i = self.demand.partition_point(|p| p.0 <= t);
        i.checked_sub(1).map_or(0, |i| self.demand[i].1)
    }

    /// The highest demand over `[from, to)`.
    fn peak(&self, from: Duration, to: Duration) -> u32 {
        let first = self.demand.partition_point(|p| p.0 <= from);
        let later = self.demand[first..]
            .iter()
            .take_while(|p| p.0 < to)
            .map(|p| p.1)
            .max()
            .unwrap_or(0);
        self.at(from).max(later)
    }
}

impl Policy for OraclePolicy {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let current = obs.serving.saturating_add(obs.pending);
        let max = super::cap(None, obs.quota);
        let target = self.peak(now, now + self.horizon).min(max);
        let reading = obs.reading(&mut self.meter, now).ok();
        let reason = match target.cmp(&current) {
            std::cmp::Ordering::Greater => Reason::Foresight,
            std::cmp::Ordering::Less => Reason::ScaleDown { allowed: target },
            std::cmp::Ordering::Equal => Reason::Steady,
        };
        Decision {
            rate: reading.map(|r| r.rate),
            diff: reading.map(|r| u64::try_from(r.rate.ceil()).unwrap_or(u64::MAX)),
            diffpt: reading.map(|r| r.increase),
            needed: Some(self.at(now)),
            target,
            add: target.saturating_sub(current),
            remove: current.saturating_sub(target),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn obs(serving: u32, pending: u32) -> Observation {
        Observation {
            serving,
            pending,
            quota: Some(13),
            ..Observation::default()
        }
    }

    #[test]
    fn it_asks_one_lead_ahead_and_releases_at_once() {
        // Demand 2, 8 from 600 s, 2 from 1800 s; a server serves 85 s after it is asked for;
        // ticks every 5 s. The 8 are needed at 600: they must be asked for at the last tick
        // t with t + 85 ≤ 600, t = 515 (at 510 the window [510, 600) does not reach 600 yet).
        let demand = vec![(s(0), 2), (s(600), 8), (s(1800), 2)];
        let mut o = OraclePolicy::new(demand, s(85), s(5));
        let mut first_up = None;
        let mut first_down = None;
        let mut serving = 2;
        for k in 0..=400u64 {
            let d = o.decide(s(5 * k), &obs(serving, 0));
            if d.add > 0 {
                first_up.get_or_insert(5 * k);
                assert_eq!(d.target, 8);
            }
            if d.remove > 0 {
                first_down.get_or_insert(5 * k);
                assert_eq!(d.target, 2);
            }
            serving = d.target;
        }
        assert_eq!(first_up, Some(515));
        assert_eq!(first_down, Some(1800));
    }

    #[test]
    fn a_dip_shorter_than_the_lead_keeps_its_servers() {
        // 8 until 600, 3 for 60 s, 8 again: a released server could not come back in 85 s,
        // so the oracle keeps all 8; a dip of 120 s lets it release 5 at 600 and ask again
        // at 635 (720 − 85).
        let mut o = OraclePolicy::new(vec![(s(0), 8), (s(600), 3), (s(660), 8)], s(85), s(5));
        assert!((110..150).all(|k| o.decide(s(5 * k), &obs(8, 0)).target == 8));
        let mut o = OraclePolicy::new(vec![(s(0), 8), (s(600), 3), (s(720), 8)], s(85), s(5));
        assert_eq!(o.decide(s(595), &obs(8, 0)).target, 8);
        assert_eq!(o.decide(s(600), &obs(8, 0)).target, 3);
        assert_eq!(o.decide(s(630), &obs(3, 0)).target, 3);
        assert_eq!(o.decide(s(635), &obs(3, 0)).target, 8);
        // Capped by the quota.
        let mut o = OraclePolicy::new(vec![(s(0), 20)], s(85), s(5));
        assert_eq!(o.decide(s(0), &obs(2, 0)).target, 13);
    }
}
