//! Kubernetes' Horizontal Pod Autoscaler (`autoscaling/v2`), as its controller computes it
//! (kubernetes/kubernetes `pkg/controller/podautoscaler`: `horizontal.go`,
//! `replica_calculator.go`; defaults in `pkg/apis/autoscaling/v2/defaults.go` and
//! `config/v1alpha1/defaults.go`), on a per-server request-rate metric with an average-value
//! target of `threshold` req/s: a reference to compare the default policy with
//! (docs/webscaler-policy.md, "Reference policies").
//!
//! Every `sync_period` (15 s) the controller reconciles once:
//!
//! 1. **Bounds**: with more servers than `max`, `max`; with fewer than `min`, `min` (no
//!    stabilization, no rate limit).
//! 2. **The metric's proposal** (`calcPlainMetricReplicas`): the rate since the previous
//!    sync, shared by the `serving` servers (the ready pods); booting and joining backends are
//!    HPA's not-ready pods. `ratio = rate / (serving × threshold)`. Without not-ready pods, or
//!    when `ratio ≤ 1`, the not-ready ones are left out: within the tolerance
//!    (`1 − tol ≤ ratio ≤ 1 + tol`) the proposal is the current count, else
//!    `ceil(ratio × serving)` = `ceil(rate / threshold)`. When scaling up with not-ready pods,
//!    they count as serving nothing: `ratio' = rate / ((serving + pending) × threshold)`;
//!    within the tolerance, or below 1 (the assumption would reverse the direction), the
//!    proposal is the current count, else `ceil(ratio' × (serving + pending))`. With no
//!    server ready there is no metric, and nothing changes.
//! 3. **Stabilization** (`stabilizeRecommendationWithBehaviors`): every proposal is kept with
//!    its time (the first sync records the current count); the result is the current count
//!    raised to the lowest proposal of the scale-up window (0 s: the new one) and capped at
//!    the highest of the scale-down window (300 s), windows being `(now − w, now]`.
//! 4. **Rate limits** (`convertDesiredReplicasWithBehaviorRate`): up to at most the larger of
//!    `start + 4` and `ceil(start × 2)` (`scaleUp` policies Pods 4 and Percent 100 per 15 s,
//!    `selectPolicy: Max`), where `start` is the count at the start of the period (the current
//!    count less what was added and plus what was removed in `(now − period, now]`), and never
//!    above `max`; down to at least `int(start × (1 − 100 %))` = 0 and `min`.
//!
//! "Current" is the capacity asked for, serving plus pending (HPA's `spec.replicas`).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::time::Duration;

use super::rounds::Rounds;
use super::{Decision, NoRate, Observation, Policy, Reason, bound};
use crate::rate::meter::RateMeters;
use crate::rate::{Rate, Threshold, Tolerance};

/// The HPA's settings: the controller's flags and the `behavior` of an HPA object, with
/// Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaConfig {
    /// The target: requests per second per server (an `AverageValue` target).
    pub threshold: Threshold,
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`, besides the cloud's quota (`None`: the quota alone).
    pub max: Option<u32>,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1), both directions.
    pub tolerance: Tolerance,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: Duration,
    /// `behavior.scaleUp.stabilizationWindowSeconds` (0).
    pub upscale_window: Duration,
    /// `behavior.scaleDown.stabilizationWindowSeconds`, from
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (300 s).
    pub downscale_window: Duration,
    /// The scale-up `Pods` policy's value (4).
    pub scale_up_pods: u32,
    /// The scale-up `Percent` policy's value (100).
    pub scale_up_percent: u32,
    /// The scale-up policies' `periodSeconds` (15 s).
    pub scale_up_period: Duration,
    /// The scale-down `Percent` policy's value (100).
    pub scale_down_percent: u32,
    /// The scale-down policy's `periodSeconds` (15 s).
    pub scale_down_period: Duration,
}

impl Default for HpaConfig {
    /// Kubernetes' defaults, with the threshold and minimum of the default policy.
    fn default() -> HpaConfig {
        HpaConfig {
            threshold: Threshold::SEED,
            min: 2,
            max: None,
            tolerance: Tolerance::HPA,
            sync_period: Duration::from_secs(15),
            upscale_window: Duration::ZERO,
            downscale_window: Duration::from_secs(300),
            scale_up_pods: 4,
            scale_up_percent: 100,
            scale_up_period: Duration::from_secs(15),
            scale_down_percent: 100,
            scale_down_period: Duration::from_secs(15),
        }
    }
}

impl HpaConfig {
    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.sync_period.is_zero() {
            return Err("hpa.sync_period must be longer than 0".into());
        }
        if self.scale_down_percent > 100 {
            return Err(format!(
                "hpa.scale_down_percent must be at most 100, got {}",
                self.scale_down_percent
            ));
        }
        if self.scale_up_pods == 0 && self.scale_up_percent == 0 {
            return Err(
                "hpa.scale_up_pods and hpa.scale_up_percent cannot both be 0 (no scale-up)".into(),
            );
        }
        Ok(())
    }
}

/// The HPA as a [`Policy`] (see the module documentation).
#[derive(Debug, Clone)]
pub struct HpaPolicy {
    config: HpaConfig,
    meter: RateMeters<u32>,
    syncs: Rounds,
    /// Proposals with their times, newest last (`recommendations` in horizontal.go).
    recommendations: VecDeque<(Duration, u32)>,
    /// Scale events (time, replicas added), and (time, replicas removed).
    ups: VecDeque<(Duration, u32)>,
    downs: VecDeque<(Duration, u32)>,
}

impl HpaPolicy {
    /// An HPA that has not synced yet.
    pub fn new(config: HpaConfig) -> HpaPolicy {
        HpaPolicy {
            config,
            meter: RateMeters::new(),
            syncs: Rounds::every(config.sync_period),
            recommendations: VecDeque::new(),
            ups: VecDeque::new(),
            downs: VecDeque::new(),
        }
    }

    /// `within(ratio)` for `ratio = rate / (servers × threshold)`, exactly.
    fn within(&self, rate: Rate, servers: u32) -> bool {
        let t = self.config.threshold;
        let (ln, ld) = self.config.tolerance.below_one();
        let (hn, hd) = self.config.tolerance.above_one();
        rate.cmp_capacity(t, servers, ln, ld) != Ordering::Less
            && rate.cmp_capacity(t, servers, hn, hd) != Ordering::Greater
    }

    /// The metric's proposal (`calcPlainMetricReplicas`); `None` without a ready server.
    fn proposal(&self, rate: Rate, ready: u32, unready: u32, current: u32) -> Option<u32> {
        if ready == 0 {
            return None;
        }
        let t = self.config.threshold;
        let ceil = u32::try_from(rate.servers_needed(t)).unwrap_or(u32::MAX);
        let above = rate.cmp_capacity(t, ready, 1, 1) == Ordering::Greater;
        if unready == 0 || !above {
            return Some(if self.within(rate, ready) {
                current
            } else {
                ceil
            });
        }
        // Scaling up with not-ready pods: they serve nothing.
        let all = ready.saturating_add(unready);
        if self.within(rate, all) || rate.cmp_capacity(t, all, 1, 1) == Ordering::Less {
            return Some(current);
        }
        Some(if ceil < current { current } else { ceil })
    }

    /// Stabilizes `desired` against the windows and records it.
    fn stabilize(&mut self, now: Duration, desired: u32, current: u32) -> u32 {
        let after = |w: Duration| move |t: Duration| t + w > now;
        let (up_in, down_in) = (
            after(self.config.upscale_window),
            after(self.config.downscale_window),
        );
        let mut up = desired;
        let mut down = desired;
        for &(t, r) in &self.recommendations {
            if up_in(t) {
                up = up.min(r);
            }
            if down_in(t) {
                down = down.max(r);
            }
        }
        self.recommendations.push_back((now, desired));
        let keep = self.config.upscale_window.max(self.config.downscale_window);
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| t + keep <= now)
        {
            self.recommendations.pop_front();
        }
        current.max(up).min(down)
    }

    /// Replicas changed within `(now − period, now]`.
    fn changed(events: &VecDeque<(Duration, u32)>, now: Duration, period: Duration) -> u32 {
        events
            .iter()
            .filter(|&&(t, _)| t + period > now)
            .map(|e| e.1)
            .sum()
    }

    fn period_start(&self, now: Duration, current: u32, period: Duration) -> u32 {
        (current + Self::changed(&self.downs, now, period))
            .saturating_sub(Self::changed(&self.ups, now, period))
    }

    /// The highest count the scale-up policies allow now (at least `current`).
    fn scale_up_limit(&self, now: Duration, current: u32) -> u32 {
        let c = self.config;
        let start = self.period_start(now, current, c.scale_up_period);
        let by_pods = start.saturating_add(c.scale_up_pods);
        let by_percent = (u64::from(start) * u64::from(100 + c.scale_up_percent)).div_ceil(100);
        let by_percent = u32::try_from(by_percent).unwrap_or(u32::MAX);
        by_pods.max(by_percent).max(current)
    }

    /// The lowest count the scale-down policy allows now (at most `current`).
    fn scale_down_limit(&self, now: Duration, current: u32) -> u32 {
        let c = self.config;
        let start = self.period_start(now, current, c.scale_down_period);
        let limit = u64::from(start) * u64::from(100 - c.scale_down_percent.min(100)) / 100;
        u32::try_from(limit).unwrap_or(u32::MAX).min(current)
    }

    fn record_event(&mut self, now: Duration, from: u32, to: u32) {
        let longest = self
            .config
            .scale_up_period
            .max(self.config.scale_down_period);
        for events in [&mut self.ups, &mut self.downs] {
            while events.front().is_some_and(|&(t, _)| t + longest <= now) {
                events.pop_front();
            }
        }
        match to.cmp(&from) {
            Ordering::Greater => self.ups.push_back((now, to - from)),
            Ordering::Less => self.downs.push_back((now, from - to)),
            Ordering::Equal => {}
        }
    }
}

impl Policy for HpaPolicy {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let c = self.config;
        let current = obs.serving.saturating_add(obs.pending);
        let max = super::cap(c.max, obs.quota);
        let min = c.min.min(max);
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
        if !obs.has_counter() {
            return decision(current, Reason::NoRate(NoRate::NoCounter));
        }
        if !self.syncs.due(now) {
            return decision(current, Reason::BetweenRounds);
        }
        if self.recommendations.is_empty() {
            // recordInitialRecommendation: the count found at the first sync.
            self.recommendations.push_back((now, current));
        }
        let reading = obs.reading(&mut self.meter, now);
        let (target, reason) = if current > max {
            (max, Reason::Maximum)
        } else if current < min {
            (min, Reason::Minimum)
        } else {
            match reading {
                Err(why) => (current, Reason::NoRate(why)),
                Ok(r) => match self.proposal(r.rate, obs.serving, obs.pending, current) {
                    None => (current, Reason::Unready),
                    Some(proposal) => {
                        let stabilized = self.stabilize(now, proposal, current);
                        self.limit(now, proposal, stabilized, current, min, max)
                    }
                },
            }
        };
        self.record_event(now, current, target);
        let mut d = decision(target, reason);
        if let Ok(r) = reading {
            d.rate = Some(r.rate);
            d.diff = Some(u64::try_from(r.rate.ceil()).unwrap_or(u64::MAX));
            d.diffpt = Some(r.increase);
            let ceil = u32::try_from(r.rate.servers_needed(c.threshold)).unwrap_or(u32::MAX);
            d.needed = Some(bound(ceil, min, max));
        }
        d
    }
}

impl HpaPolicy {
    /// The rate limits and the bounds on the stabilized count, with the reason.
    fn limit(
        &self,
        now: Duration,
        proposal: u32,
        stabilized: u32,
        current: u32,
        min: u32,
        max: u32,
    ) -> (u32, Reason) {
        match stabilized.cmp(&current) {
            Ordering::Greater => {
                let allowed = max.min(self.scale_up_limit(now, current));
                if stabilized > allowed {
                    (allowed, Reason::ScaleUpLimit { wanted: stabilized })
                } else {
                    (stabilized, Reason::Demand)
                }
            }
            Ordering::Less => {
                let allowed = min.max(self.scale_down_limit(now, current));
                let target = stabilized.max(allowed);
                (target, Reason::ScaleDown { allowed: target })
            }
            Ordering::Equal if proposal < current => (current, Reason::Window { held: current }),
            Ordering::Equal => (current, Reason::Steady),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::meter::Counter;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    /// Drives an HPA every 15 s at the given rates, applying each decision at once (or
    /// leaving new servers pending, with `boot`).
    struct Drive {
        hpa: HpaPolicy,
        now: u64,
        total: u64,
        serving: u32,
        pending: u32,
    }

    impl Drive {
        fn new(config: HpaConfig, serving: u32) -> Drive {
            let mut hpa = HpaPolicy::new(config);
            let first = hpa.decide(s(0), &obs(0, serving, 0));
            assert_eq!(first.reason, Reason::NoRate(NoRate::FirstReading));
            Drive {
                hpa,
                now: 0,
                total: 0,
                serving,
                pending: 0,
            }
        }

        /// One sync `dt` seconds later at `rate` req/s; added servers are ready at once
        /// unless `boot`, when they stay pending.
        fn sync(&mut self, dt: u64, rate: u64, boot: bool) -> Decision {
            self.now += dt;
            self.total += rate * dt;
            let d = self
                .hpa
                .decide(s(self.now), &obs(self.total, self.serving, self.pending));
            if boot {
                self.pending += d.add;
            } else {
                self.serving += d.add;
            }
            self.serving -= d.remove.min(self.serving);
            d
        }
    }

    fn obs(total: u64, serving: u32, pending: u32) -> Observation {
        Observation {
            counters: vec![Counter::new(total)],
            serving,
            pending,
            quota: Some(100),
            ..Observation::default()
        }
    }

    #[test]
    fn the_tolerance_boundary_is_inclusive_on_both_sides() {
        // 10 servers at a target of 10 req/s: 100 req/s is a ratio of 1; 110 is exactly 1.1
        // (no change), 111 just over it (ceil(11.1) = 12); 90 is exactly 0.9 (no change),
        // 89 just under it (9, once the window allows).
        for (rate, want) in [(110, 10), (111, 12), (90, 10), (100, 10)] {
            let mut d = Drive::new(HpaConfig::default(), 10);
            let dec = d.sync(15, rate, false);
            assert_eq!(dec.target, want, "{rate} req/s: {dec}");
        }
        let mut d = Drive::new(
            HpaConfig {
                downscale_window: Duration::ZERO,
                ..HpaConfig::default()
            },
            10,
        );
        let dec = d.sync(15, 89, false);
        assert_eq!((dec.target, dec.remove), (9, 1), "{dec}");
        // A tolerance of 0 reacts to 101 req/s.
        let mut d = Drive::new(
            HpaConfig {
                tolerance: Tolerance::NONE,
                ..HpaConfig::default()
            },
            10,
        );
        assert_eq!(d.sync(15, 101, false).target, 11);
    }

    #[test]
    fn the_stabilization_window_keeps_the_highest_recommendation() {
        // 10 servers; proposals 10 (t=15), 6 (t=30), 4 (t=45), then 3 from t=60 on. With a
        // 300-s window the target stays 10 until the proposal of 10 leaves (15, 315], i.e. at
        // t = 315, then drops to the highest left in the window: 6 until 330, 4 until 345, 3.
        let mut d = Drive::new(HpaConfig::default(), 10);
        assert_eq!(d.sync(15, 100, false).target, 10);
        assert_eq!(d.sync(15, 60, false).action(), "hold:window");
        assert_eq!(d.sync(15, 40, false).target, 10);
        let mut targets = Vec::new();
        while d.now < 360 {
            let dec = d.sync(15, 30, false);
            targets.push((d.now, dec.target));
        }
        let at = |t: u64| targets.iter().find(|x| x.0 == t).unwrap().1;
        assert_eq!(at(300), 10);
        assert_eq!(at(315), 6);
        assert_eq!(at(330), 4);
        assert_eq!(at(345), 3);
        // The initial recommendation (the count at the first sync, t = 0) also holds: a
        // restarted HPA does not drop servers before a full window.
        let mut d = Drive::new(HpaConfig::default(), 8);
        let first_down = (0..30)
            .map(|_| d.sync(15, 20, false))
            .position(|dec| dec.remove > 0)
            .map(|i| 15 * (i as u64 + 1));
        assert_eq!(first_down, Some(300));
    }

    #[test]
    fn scale_up_is_limited_to_double_or_plus_four_per_period() {
        // From 2 servers at 1000 req/s (100 needed): 2 → 6 (max(2 + 4, 4)), → 12 (double),
        // → 24 → 48 → 96, one step per 15-s sync; then 96 servers take 1000 req/s at 1.04
        // of the target, within the tolerance: HPA stays at 96.
        let mut d = Drive::new(HpaConfig::default(), 2);
        let steps: Vec<u32> = (0..7).map(|_| d.sync(15, 1000, false).target).collect();
        assert_eq!(steps, vec![6, 12, 24, 48, 96, 96, 96]);
        // Events inside the period count: syncs 5 s apart (the events at exactly
        // now − 15 s are outside the period, as `After(cutoff)` in horizontal.go).
        let mut d = Drive::new(
            HpaConfig {
                sync_period: s(5),
                ..HpaConfig::default()
            },
            2,
        );
        let steps: Vec<u32> = (0..4).map(|_| d.sync(5, 1000, false).target).collect();
        // t = 5: 2 → 6; t = 10 and 15: the 4 added at t = 5 are inside the period, which
        // started at 2: still at most 6; t = 20: the event left (5, 20]: 6 → 12.
        assert_eq!(steps, vec![6, 6, 6, 12]);
        let dec = HpaPolicy::new(HpaConfig::default()).scale_up_limit(s(0), 10);
        assert_eq!(dec, 20);
    }

    #[test]
    fn booting_servers_count_as_serving_nothing_on_the_way_up() {
        // 4 ready + 4 booting, 50 req/s: ratio over the ready ones 1.25, over all 8 servers
        // 0.625 < 1: the assumption reverses the direction, so no change.
        let mut hpa = HpaPolicy::new(HpaConfig::default());
        hpa.decide(s(0), &obs(0, 4, 4));
        let d = hpa.decide(s(15), &obs(750, 4, 4));
        assert_eq!((d.target, d.action()), (8, "hold"), "{d}");
        // 4 ready + 2 booting at 80 req/s: ratio' = 80 / 60 = 1.33 → ceil(8) = 8.
        let mut hpa = HpaPolicy::new(HpaConfig::default());
        hpa.decide(s(0), &obs(0, 4, 2));
        let d = hpa.decide(s(15), &obs(1200, 4, 2));
        assert_eq!((d.target, d.add), (8, 2), "{d}");
        // 4 ready + 2 booting at 65 req/s: ratio' = 65 / 60 = 1.083, within the tolerance.
        let mut hpa = HpaPolicy::new(HpaConfig::default());
        hpa.decide(s(0), &obs(0, 4, 2));
        let d = hpa.decide(s(15), &obs(975, 4, 2));
        assert_eq!(d.target, 6, "{d}");
        // Scaling down, booting servers are left out: 4 ready + 4 booting at 20 req/s
        // proposes ceil(20 / 10) = 2 (held by the window first).
        let mut hpa = HpaPolicy::new(HpaConfig {
            downscale_window: Duration::ZERO,
            ..HpaConfig::default()
        });
        hpa.decide(s(0), &obs(0, 4, 4));
        let d = hpa.decide(s(15), &obs(300, 4, 4));
        assert_eq!((d.target, d.remove), (2, 6), "{d}");
        // No server ready: no metric, no change.
        let mut hpa = HpaPolicy::new(HpaConfig::default());
        hpa.decide(s(0), &obs(0, 0, 3));
        let d = hpa.decide(s(15), &obs(1500, 0, 3));
        assert_eq!((d.target, d.action()), (3, "hold:unready"), "{d}");
    }

    #[test]
    fn it_syncs_every_15_s_and_holds_between() {
        let mut hpa = HpaPolicy::new(HpaConfig::default());
        let mut actions = Vec::new();
        for k in 0..7u64 {
            let d = hpa.decide(s(5 * k), &obs(5 * k * 50, 2, 0));
            actions.push(d.action());
        }
        // t = 0 first reading; 5, 10 between syncs; 15 measures 50 req/s (2 → 5 capped by
        // max(2 + 4, 4) = 6: 5); 20, 25 between; 30 next sync.
        assert_eq!(
            actions,
            vec![
                "hold:no-rate",
                "hold:round",
                "hold:round",
                "up",
                "hold:round",
                "hold:round",
                "up"
            ]
        );
    }

    #[test]
    fn bounds_come_first() {
        let mut hpa = HpaPolicy::new(HpaConfig {
            max: Some(5),
            ..HpaConfig::default()
        });
        let d = hpa.decide(s(0), &obs(0, 7, 0));
        assert_eq!((d.target, d.action()), (5, "down:max"));
        let d = hpa.decide(s(15), &obs(0, 1, 0));
        assert_eq!((d.target, d.action()), (2, "up:min"));
        assert!(HpaConfig::default().validate().is_ok());
        assert!(
            HpaConfig {
                scale_down_percent: 101,
                ..HpaConfig::default()
            }
            .validate()
            .unwrap_err()
            .contains("scale_down_percent")
        );
    }
}
