//! AWS EC2 Auto Scaling's target tracking on requests per server (as
//! `ALBRequestCountPerTarget`), a reference to compare the default policy with
//! (docs/webscaler-policy.md, "Reference policies", cites the AWS documentation).
//!
//! - **One datapoint per period** (60 s, CloudWatch's): the requests of the period over its
//!   length, per server that counts. A server counts once it has served for the
//!   **instance warm-up** (300 s, the default cooldown AWS uses when no warm-up is set):
//!   warming servers neither feed the metric nor, on the way up, the capacity the step is
//!   computed from; the servers at the start count as warm.
//! - **Scale out** when the last `scale_out_periods` (3) datapoints are all above the target
//!   (the alarm AWS creates: 3 datapoints within 3 minutes), to the capacity that brings the
//!   metric back to the target: `ceil(warm × metric / target)`, which is
//!   `ceil(rate / target)`, if that is more than the capacity asked for (serving, warming and
//!   pending servers: a second alarm does not launch the same servers again).
//! - **Scale in** when the last `scale_in_periods` (15) datapoints are all below the target
//!   by the margin (10 %: AWS scales in only when the metric is "typically more than 10 %"
//!   under the target) and no server is pending or warming (AWS blocks scale-in until new
//!   instances finish warming up), to `ceil(rate / target)`, so that the metric stays at or
//!   below the target.
//! - Capacity stays within `[min, max]` (and the quota).
//!
//! Periods are evaluated on the first tick at or after each minute mark; the alarm's
//! datapoints are the policy's own, without CloudWatch's publishing delay (in AWS's favour).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::time::Duration;

use super::rounds::Rounds;
use super::{Decision, NoRate, Observation, Policy, Reason, bound};
use crate::rate::meter::RateMeters;
use crate::rate::{Threshold, Tolerance};

/// Target tracking's settings, with AWS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetTrackingConfig {
    /// The target value: requests per second per server.
    pub threshold: Threshold,
    /// The group's minimum size.
    pub min: u32,
    /// The group's maximum size, besides the cloud's quota (`None`: the quota alone).
    pub max: Option<u32>,
    /// The metric's period (60 s).
    pub period: Duration,
    /// Periods above the target before scaling out (3).
    pub scale_out_periods: u32,
    /// Periods below the target (by the margin) before scaling in (15).
    pub scale_in_periods: u32,
    /// How far below the target the metric must be to scale in (0.1).
    pub scale_in_margin: Tolerance,
    /// Instance warm-up (300 s).
    pub warmup: Duration,
}

impl Default for TargetTrackingConfig {
    /// AWS's defaults, with the threshold and minimum of the default policy.
    fn default() -> TargetTrackingConfig {
        TargetTrackingConfig {
            threshold: Threshold::SEED,
            min: 2,
            max: None,
            period: Duration::from_secs(60),
            scale_out_periods: 3,
            scale_in_periods: 15,
            scale_in_margin: Tolerance::HPA,
            warmup: Duration::from_secs(300),
        }
    }
}

impl TargetTrackingConfig {
    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.period.is_zero() {
            return Err("target_tracking.period must be longer than 0".into());
        }
        if self.scale_out_periods == 0 || self.scale_in_periods == 0 {
            return Err(
                "target_tracking.scale_out_periods and scale_in_periods must be at least 1".into(),
            );
        }
        Ok(())
    }
}

/// AWS target tracking as a [`Policy`] (see the module documentation).
#[derive(Debug, Clone)]
pub struct TargetTrackingPolicy {
    config: TargetTrackingConfig,
    meter: RateMeters<u32>,
    periods: Rounds,
    /// The latest datapoints, newest last: `Some(above, below)` for a datapoint, `None` for a
    /// period without one (no warm server).
    datapoints: VecDeque<Option<(bool, bool)>>,
    /// Servers warming up: (serving since, how many), oldest first.
    warming: VecDeque<(Duration, u32)>,
    /// Servers serving at the previous tick (`None` before the first).
    last_serving: Option<u32>,
}

impl TargetTrackingPolicy {
    /// A policy that has not seen a period yet.
    pub fn new(config: TargetTrackingConfig) -> TargetTrackingPolicy {
        TargetTrackingPolicy {
            config,
            meter: RateMeters::new(),
            periods: Rounds::every(config.period),
            datapoints: VecDeque::new(),
            warming: VecDeque::new(),
            last_serving: None,
        }
    }

    /// Follows the servers that started serving, and those whose warm-up ended; returns how
    /// many are warming now.
    fn track_warmup(&mut self, now: Duration, serving: u32) -> u32 {
        let warmup = self.config.warmup;
        while self
            .warming
            .front()
            .is_some_and(|&(since, _)| since + warmup <= now)
        {
            self.warming.pop_front();
        }
        if let Some(last) = self.last_serving
            && serving > last
            && !warmup.is_zero()
        {
            self.warming.push_back((now, serving - last));
        }
        self.last_serving = Some(serving);
        // Servers that left were warm ones first (scale-in waits for the warm-up); more than
        // that, and warming ones left too.
        let mut excess = self
            .warming
            .iter()
            .map(|w| w.1)
            .sum::<u32>()
            .saturating_sub(serving);
        while excess > 0 {
            let Some(newest) = self.warming.back_mut() else {
                break;
            };
            let cut = newest.1.min(excess);
            newest.1 -= cut;
            excess -= cut;
            if newest.1 == 0 {
                self.warming.pop_back();
            }
        }
        self.warming.iter().map(|w| w.1).sum()
    }

    /// Whether the last `n` datapoints all satisfy `pick`.
    fn last_all(&self, n: u32, pick: impl Fn((bool, bool)) -> bool) -> bool {
        let n = n as usize;
        self.datapoints.len() >= n
            && self
                .datapoints
                .iter()
                .rev()
                .take(n)
                .all(|d| d.is_some_and(&pick))
    }
}

impl Policy for TargetTrackingPolicy {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let c = self.config;
        let current = obs.serving.saturating_add(obs.pending);
        let max = super::cap(c.max, obs.quota);
        let min = c.min.min(max);
        let warming = self.track_warmup(now, obs.serving);
        let warm = obs.serving - warming.min(obs.serving);
        let decision = |target: u32, reason| Decision {
            rate: None,
            diff: None,
            diffpt: None,
            needed: None,
            target,
            add: target.saturating_sub(current),
            remove: current.saturating_sub(target),
            reason,
        };
        let bounded = bound(current, min, max);
        let out_of_bounds = |reason| {
            let r = match bounded.cmp(&current) {
                Ordering::Greater => Reason::Minimum,
                Ordering::Less => Reason::Maximum,
                Ordering::Equal => reason,
            };
            decision(bounded, r)
        };
        if !obs.has_counter() {
            return out_of_bounds(Reason::NoRate(NoRate::NoCounter));
        }
        if !self.periods.due(now) {
            return out_of_bounds(Reason::BetweenRounds);
        }
        let reading = match obs.reading(&mut self.meter, now) {
            Ok(r) => r,
            Err(why) => return out_of_bounds(Reason::NoRate(why)),
        };
        let rate = reading.rate;
        let t = c.threshold;
        // The datapoint: rate / warm against the target, i.e. rate against warm × target.
        let point = (warm > 0).then(|| {
            let (ln, ld) = c.scale_in_margin.below_one();
            (
                rate.cmp_capacity(t, warm, 1, 1) == Ordering::Greater,
                rate.cmp_capacity(t, warm, ln, ld) == Ordering::Less,
            )
        });
        self.datapoints.push_back(point);
        let keep = c.scale_out_periods.max(c.scale_in_periods) as usize;
        while self.datapoints.len() > keep {
            self.datapoints.pop_front();
        }
        let ceil = u32::try_from(rate.servers_needed(t)).unwrap_or(u32::MAX);
        let step = bound(ceil, min, max);
        let (target, reason) = if current > max {
            (max, Reason::Maximum)
        } else if current < min {
            (min, Reason::Minimum)
        } else if self.last_all(c.scale_out_periods, |p| p.0) {
            if step > current {
                (step, Reason::Demand)
            } else {
                (current, Reason::Steady)
            }
        } else if self.last_all(c.scale_in_periods, |p| p.1) && step < current {
            if warming > 0 || obs.pending > 0 {
                (current, Reason::Pending)
            } else {
                (step, Reason::ScaleDown { allowed: step })
            }
        } else if point.is_some_and(|p| p.0 || p.1) {
            (current, Reason::Alarm)
        } else {
            (current, Reason::Steady)
        };
        let mut d = decision(target, reason);
        d.rate = Some(rate);
        d.diff = Some(u64::try_from(rate.ceil()).unwrap_or(u64::MAX));
        d.diffpt = Some(reading.increase);
        d.needed = Some(step);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::meter::Counter;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn obs(total: u64, serving: u32, pending: u32) -> Observation {
        Observation {
            counters: vec![Counter::new(total)],
            serving,
            pending,
            quota: Some(50),
            ..Observation::default()
        }
    }

    /// Runs minute by minute at the given rates (req/s); added servers serve at once.
    fn minutes(config: TargetTrackingConfig, serving: u32, rates: &[u64]) -> Vec<Decision> {
        let mut p = TargetTrackingPolicy::new(config);
        let mut serving = serving;
        let mut total = 0;
        let mut out = vec![p.decide(s(0), &obs(0, serving, 0))];
        for (i, &r) in rates.iter().enumerate() {
            total += r * 60;
            let d = p.decide(s(60 * (i as u64 + 1)), &obs(total, serving, 0));
            serving = serving + d.add - d.remove;
            out.push(d);
        }
        out
    }

    #[test]
    fn scale_out_after_three_periods_above_the_target() {
        // 4 servers (40 req/s at the target); 45 req/s from the first minute: above at
        // minutes 1, 2, 3 → out at minute 3 to ceil(45 / 10) = 5.
        let d = minutes(TargetTrackingConfig::default(), 4, &[45, 45, 45, 45]);
        let targets: Vec<u32> = d.iter().map(|d| d.target).collect();
        assert_eq!(targets, vec![4, 4, 4, 5, 5]);
        assert_eq!(d[2].action(), "hold:alarm");
        assert_eq!(d[3].action(), "up");
        // Exactly at the target is not above it; one period below breaks the streak.
        let d = minutes(TargetTrackingConfig::default(), 4, &[40, 40, 40, 40]);
        assert!(d.iter().all(|d| d.target == 4));
        let d = minutes(
            TargetTrackingConfig::default(),
            4,
            &[45, 45, 39, 45, 45, 45],
        );
        let first_up = d.iter().position(|d| d.add > 0);
        assert_eq!(first_up, Some(6));
    }

    #[test]
    fn scale_in_after_fifteen_periods_below_the_target_by_the_margin() {
        // 8 servers at 20 req/s (0.25 of the target): in at minute 15 to ceil(20/10) = 2,
        // with a warm-up of 0 (nothing warming).
        let cfg = TargetTrackingConfig {
            warmup: Duration::ZERO,
            ..TargetTrackingConfig::default()
        };
        let d = minutes(cfg, 8, &[20; 16]);
        let first_down = d.iter().position(|d| d.remove > 0);
        assert_eq!(first_down, Some(15));
        assert_eq!(d[15].target, 2);
        // 72 req/s on 8 servers is 9 per server: exactly 10 % under the target, not below
        // the margin: no scale-in; 71 is.
        let d = minutes(cfg, 8, &[72; 16]);
        assert!(d.iter().all(|d| d.remove == 0));
        let d = minutes(cfg, 8, &[71; 16]);
        assert_eq!(d[15].target, 8, "ceil(71 / 10) = 8: nothing to remove");
        let d = minutes(cfg, 9, &[71; 16]);
        assert_eq!((d[15].target, d[15].remove), (8, 1));
    }

    #[test]
    fn warming_servers_do_not_count_and_block_scale_in() {
        // 4 warm servers at 60 req/s: out at minute 3 to 6. The 2 new servers, seen serving
        // at minute 4, warm until minute 9: the metric stays 60 / 4 = 15 above the target,
        // but 6 servers are already asked for, so nothing more is launched.
        let d = minutes(TargetTrackingConfig::default(), 4, &[60; 8]);
        let targets: Vec<u32> = d.iter().map(|d| d.target).collect();
        assert_eq!(targets, vec![4, 4, 4, 6, 6, 6, 6, 6, 6]);
        assert!(d[4..].iter().all(|d| d.add == 0));
        // Scale-in waits for the warm-up (here 20 minutes): 2 servers serve from minute 3 at
        // 10 req/s; 15 periods below the margin are seen at minute 15, but the scale-in
        // waits until the two are warm.
        let mut p = TargetTrackingPolicy::new(TargetTrackingConfig {
            warmup: s(1200),
            ..TargetTrackingConfig::default()
        });
        let mut total = 0;
        p.decide(s(0), &obs(0, 4, 0));
        let mut downs = Vec::new();
        for m in 1..=25u64 {
            total += 10 * 60;
            let serving = if m >= 3 { 6 } else { 4 };
            let d = p.decide(s(60 * m), &obs(total, serving, 0));
            if d.remove > 0 {
                downs.push(m);
            }
            if (15..23).contains(&m) {
                assert_eq!(d.action(), "hold:pending", "minute {m}: {d}");
            }
        }
        // The two servers that came at minute 3 are warm at minute 23 (1200 s later).
        assert_eq!(downs.first(), Some(&23));
    }

    #[test]
    fn between_periods_it_holds_and_bounds_still_apply() {
        let mut p = TargetTrackingPolicy::new(TargetTrackingConfig::default());
        assert_eq!(p.decide(s(0), &obs(0, 4, 0)).action(), "hold:no-rate");
        assert_eq!(p.decide(s(5), &obs(50, 4, 0)).action(), "hold:round");
        assert_eq!(p.decide(s(10), &obs(100, 1, 0)).action(), "up:min");
        assert!(TargetTrackingConfig::default().validate().is_ok());
    }
}
