//! A policy-level replay: a trace, a policy, a boot delay and an interval in; the servers over
//! time and the elasticity metrics out. It runs on a simulated clock and takes microseconds
//! per simulated hour.
//!
//! **This is a model**, small on purpose, for comparing policies and choosing defaults; it is
//! not the controller. `webscaler simulate` runs the real controller against a simulated
//! cloud and balancer. What the model assumes:
//!
//! - Ticks at `0, interval, 2·interval, …` up to the end of the trace. At each tick the
//!   policy sees the balancer's counter (the trace's requests so far, rounded down) and the
//!   serving, pending and stopped counts. A decision taken at the very end is recorded but not
//!   applied.
//! - Adding starts stopped backends first (serving after `start_delay`), then creates the rest
//!   (serving after `boot_delay`), never beyond the quota (which counts stopped backends, as
//!   Nova's does). Actions take no time to issue and never fail.
//! - Removing takes serving backends out at once (draining is instantaneous), then cancels
//!   booting ones if asked for more; removed backends are stopped, and stopped ones beyond
//!   `warm_pool` are deleted.
//! - Demand is `clamp(ceil(rate / threshold), min, max)` of the trace (the same for every
//!   policy); supply is the serving count; cost (server-seconds) counts serving and booting
//!   backends.
//! - It starts in a steady state: `initial` serving backends (by default the demand at 0).

use std::time::Duration;

use crate::elasticity::{Metrics, StepSeries};
use crate::policy::{Decision, Observation, Policy};
use crate::rate::Threshold;
use crate::trace::Trace;

/// What the demand is: servers needed for the trace's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// Requests per second per server.
    pub threshold: Threshold,
    /// Servers at least.
    pub min: u32,
    /// Servers at most (the quota).
    pub max: u32,
}

impl Default for Demand {
    /// The seed's: threshold 10, minimum 2, quota 13.
    fn default() -> Demand {
        Demand {
            threshold: Threshold::SEED,
            min: 2,
            max: 13,
        }
    }
}

/// The settings of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Time between ticks.
    pub interval: Duration,
    /// From create to serving.
    pub boot_delay: Duration,
    /// From start (of a stopped backend) to serving.
    pub start_delay: Duration,
    /// Backends the cloud allows in all, stopped ones included.
    pub quota: Option<u32>,
    /// Stopped backends kept; more are deleted.
    pub warm_pool: u32,
    /// Serving backends at 0 (`None`: the demand at 0).
    pub initial: Option<u32>,
    /// How demand is scored.
    pub demand: Demand,
}

impl Default for ReplayConfig {
    /// 60 s ticks, 80 s boots (starts too), the seed's quota of 13, one stopped backend kept.
    fn default() -> ReplayConfig {
        ReplayConfig {
            interval: Duration::from_secs(60),
            boot_delay: Duration::from_secs(80),
            start_delay: Duration::from_secs(80),
            quota: Some(13),
            warm_pool: 1,
            initial: None,
            demand: Demand::default(),
        }
    }
}

/// One tick of a replay: what the policy saw and decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// When.
    pub at: Duration,
    /// The balancer's counter.
    pub requests_total: u64,
    /// Serving backends seen.
    pub serving: u32,
    /// Booting backends seen.
    pub pending: u32,
    /// Stopped backends seen.
    pub stopped: u32,
    /// The decision.
    pub decision: Decision,
}

/// The outcome of a replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Every tick.
    pub ticks: Vec<Tick>,
    /// Servers needed over time.
    pub demand: StepSeries,
    /// Servers serving over time.
    pub supply: StepSeries,
    /// Servers paid for (serving + booting) over time.
    pub cost: StepSeries,
    /// The scores.
    pub metrics: Metrics,
    /// Backends created.
    pub created: u32,
    /// Stopped backends started.
    pub started: u32,
    /// Backends removed.
    pub removed: u32,
}

/// Replays `trace` against `policy` (see the module documentation for the model).
pub fn replay(trace: &Trace, policy: &mut dyn Policy, cfg: &ReplayConfig) -> Replay {
    let end = trace.end();
    let d = cfg.demand;
    let demand_points = trace.demand(d.threshold, d.min, d.max);
    let initial = cfg.initial.unwrap_or(demand_points[0].1);
    let interval = if cfg.interval.is_zero() {
        Duration::from_secs(1)
    } else {
        cfg.interval
    };

    let mut serving = initial;
    let mut pending: Vec<Duration> = Vec::new(); // ready times
    let mut stopped = 0u32;
    let mut supply = vec![(Duration::ZERO, serving)];
    let mut cost = vec![(Duration::ZERO, serving)];
    let mut ticks = Vec::new();
    let (mut created, mut started, mut removed, mut actions) = (0u32, 0u32, 0u32, 0u64);

    // Boots that complete by `t`, in time order.
    let complete = |t: Duration,
                    serving: &mut u32,
                    pending: &mut Vec<Duration>,
                    supply: &mut Vec<(Duration, u32)>| {
        pending.sort();
        let done = pending.partition_point(|&r| r <= t);
        for ready in pending.drain(..done) {
            *serving += 1;
            supply.push((ready, *serving));
        }
    };

    let mut k: u32 = 0;
    while let Some(t) = interval.checked_mul(k).filter(|&t| t <= end) {
        k += 1;
        complete(t, &mut serving, &mut pending, &mut supply);
        let obs = Observation {
            requests_total: Some(trace.requests_until(t)),
            serving,
            pending: pending.len() as u32,
            stopped,
            quota: cfg.quota,
            ..Observation::default()
        };
        let decision = policy.decide(t, &obs);
        ticks.push(Tick {
            at: t,
            requests_total: obs.requests_total.unwrap_or(0),
            serving,
            pending: obs.pending,
            stopped,
            decision: decision.clone(),
        });
        if t == end || !decision.is_action() {
            continue;
        }
        actions += 1;

        // Remove: serving first, then cancel the latest boots.
        let from_serving = decision.remove.min(serving);
        serving -= from_serving;
        stopped += from_serving;
        let cancel = (decision.remove - from_serving).min(pending.len() as u32);
        pending.sort();
        pending.truncate(pending.len() - cancel as usize);
        removed += from_serving + cancel;
        stopped = stopped.min(cfg.warm_pool);

        // Add: start stopped ones, then create within the quota.
        let start = decision.add.min(stopped);
        stopped -= start;
        started += start;
        pending.extend(std::iter::repeat_n(t + cfg.start_delay, start as usize));
        let used = serving + pending.len() as u32 + stopped;
        let room = cfg.quota.map_or(u32::MAX, |q| q.saturating_sub(used));
        let create = (decision.add - start).min(room);
        created += create;
        pending.extend(std::iter::repeat_n(t + cfg.boot_delay, create as usize));

        supply.push((t, serving));
        cost.push((t, serving + pending.len() as u32));
    }
    complete(end, &mut serving, &mut pending, &mut supply);

    let series = |points: Vec<(Duration, u32)>| {
        // Points are in time order and before the end by construction.
        StepSeries::new(points, end).unwrap_or_else(|e| panic!("replay series: {e}"))
    };
    let demand = series(demand_points);
    let supply = series(supply);
    let cost = series(cost);
    let metrics = Metrics::compute(&demand, &supply, &cost, actions)
        .unwrap_or_else(|e| panic!("replay metrics: {e}"));
    Replay {
        ticks,
        demand,
        supply,
        cost,
        metrics,
        created,
        started,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Config, DefaultPolicy, Predictive, SeedConfig, SeedPolicy};
    use crate::rate::Tolerance;
    use crate::trace::synthetic;
    use proptest::prelude::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn default_policy() -> DefaultPolicy {
        DefaultPolicy::new(Config::default())
    }

    fn cfg(interval: u64, boot: u64) -> ReplayConfig {
        ReplayConfig {
            interval: s(interval),
            boot_delay: s(boot),
            start_delay: s(boot),
            ..ReplayConfig::default()
        }
    }

    #[test]
    fn exactly_k_times_threshold_gives_exactly_k_and_zero_jitter() {
        for k in 2..=13u32 {
            for interval in [5, 60] {
                let trace = synthetic::constant(f64::from(k) * 10.0, 3600);
                let r = replay(&trace, &mut default_policy(), &cfg(interval, 80));
                assert!(
                    r.ticks.iter().all(|t| t.serving == k && t.pending == 0),
                    "k = {k}"
                );
                assert!(
                    r.ticks.iter().skip(1).all(|t| t.decision.needed == Some(k)),
                    "k = {k}"
                );
                assert_eq!(r.metrics.jitter, 0.0);
                assert_eq!(r.metrics.actions, 0);
                assert_eq!(r.metrics.accuracy_under, 0.0);
                assert_eq!(r.metrics.accuracy_over, 0.0);
                assert_eq!(r.metrics.server_seconds, f64::from(k) * 3600.0);
            }
        }
        // From a cold start at the minimum: one action, to exactly k.
        let trace = synthetic::constant(70.0, 3600);
        let r = replay(
            &trace,
            &mut default_policy(),
            &ReplayConfig {
                initial: Some(2),
                ..cfg(5, 80)
            },
        );
        assert_eq!((r.metrics.actions, r.created), (1, 5));
        assert_eq!(r.supply.points(), &[(s(0), 2), (s(85), 7)]);
    }

    #[test]
    fn five_percent_noise_causes_no_changes_under_the_default_tolerance() {
        for seed in 1..=5 {
            let trace = synthetic::noisy(50.0, 0.05, 5, 3600, seed);
            // The demand itself flaps between 5 and 6 …
            assert!(trace.demand(Threshold::SEED, 2, 13).len() > 10);
            // … the supply does not move.
            let r = replay(
                &trace,
                &mut default_policy(),
                &ReplayConfig {
                    initial: Some(5),
                    ..cfg(5, 80)
                },
            );
            assert_eq!(r.metrics.actions, 0, "seed {seed}");
            assert!(r.metrics.jitter < 0.0); // supply more inert than demand
            // Even with no stabilization window the band holds.
            let mut p = DefaultPolicy::new(Config {
                scale_down_window: Duration::ZERO,
                ..Config::default()
            });
            let r = replay(
                &trace,
                &mut p,
                &ReplayConfig {
                    initial: Some(5),
                    ..cfg(5, 80)
                },
            );
            assert_eq!(r.metrics.actions, 0, "seed {seed}, window 0");
            // Without the band and the window it flaps: the test can fail.
            let mut p = DefaultPolicy::new(Config {
                scale_down_window: Duration::ZERO,
                tolerance: Tolerance::NONE,
                ..Config::default()
            });
            let r = replay(
                &trace,
                &mut p,
                &ReplayConfig {
                    initial: Some(5),
                    ..cfg(5, 80)
                },
            );
            assert!(r.metrics.actions > 20, "seed {seed}: {}", r.metrics.actions);
        }
    }

    #[test]
    fn pending_capacity_prevents_a_second_wave() {
        // 15 → 75 req/s at 600 s: 2 → 8 servers, with 80-s boots and 5-s ticks.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        let r = replay(&trace, &mut default_policy(), &cfg(5, 80));
        assert_eq!(r.created, 6);
        let ups: Vec<_> = r.ticks.iter().filter(|t| t.decision.add > 0).collect();
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].at, s(605));
        assert!(
            r.ticks
                .iter()
                .any(|t| t.pending == 6 && t.decision.add == 0)
        );
        // The seed policy does not count booting backends: a second wave, to the quota.
        let mut seed = SeedPolicy::new(SeedConfig::default());
        let r = replay(&trace, &mut seed, &cfg(60, 80));
        assert!(r.created > 6, "seed created {}", r.created);
        assert_eq!(r.supply.max(), 13);
    }

    #[test]
    fn the_stabilization_window_is_honoured() {
        // 75 → 15 req/s at 1800 s: 8 → 2 servers.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        for window in [0u64, 60, 120, 180, 300] {
            let mut p = DefaultPolicy::new(Config {
                scale_down_window: s(window),
                ..Config::default()
            });
            let r = replay(&trace, &mut p, &cfg(5, 80));
            let downs: Vec<_> = r.ticks.iter().filter(|t| t.decision.remove > 0).collect();
            assert_eq!(downs.len(), 1, "window {window}");
            // The tick at 1800 still measures (1795, 1800] at 75 req/s; the recommendation
            // of 8 made then leaves the window (t − w, t] at t = 1800 + w.
            let first_low = 1805;
            assert_eq!(
                downs[0].at,
                s((1800 + window).max(first_low)),
                "window {window}"
            );
            assert_eq!(downs[0].decision.remove, 6);
            assert!(
                r.ticks
                    .iter()
                    .filter(|t| t.at > s(1800) && t.at < downs[0].at)
                    .all(|t| t.decision.action() == "hold:window"),
                "window {window}"
            );
        }
    }

    #[test]
    fn the_seed_policy_on_the_seed_trace_gives_listing_1_7s_needed_column() {
        let text = include_str!("../../../benches-data/seed-trace.csv");
        let trace = Trace::parse_csv(text, "seed-trace.csv").unwrap();
        let rows = crate::policy::seed::tests::listing();
        let mut seed = SeedPolicy::new(SeedConfig::default());
        let r = replay(&trace, &mut seed, &cfg(60, 80));
        // Tick j at 60·j is line j + 2 of the listing, for all 25 lines.
        assert_eq!(r.ticks.len(), rows.len());
        for (j, (tick, row)) in r.ticks.iter().zip(&rows).enumerate() {
            assert_eq!(tick.decision.needed, row.needed, "line {}", j + 2);
        }
        // The rates of the trace are the ones the seed measured: their ceilings are its diff.
        // (Line 3 is the second baseline round, whose diff truncates.)
        for (j, row) in rows.iter().enumerate().skip(2) {
            let rate = trace.rate_at(s(60 * (j as u64 - 1)));
            assert_eq!(rate.ceil(), u128::from(row.diff), "line {}", j + 2);
        }
    }

    #[test]
    fn the_seed_profile_is_the_seed_trace_earlier() {
        // The profile (listing 1.2) and the measured trace (listing 1.7) describe the same
        // load: the same peak of about 131 req/s.
        let text = include_str!("../../../benches-data/seed-profile.toml");
        let p = common::profile::Profile::parse(text, "seed-profile.toml").unwrap();
        let from_profile = Trace::from_profile(&p, "seed-profile.toml").unwrap();
        let measured = Trace::parse_csv(
            include_str!("../../../benches-data/seed-trace.csv"),
            "seed-trace.csv",
        )
        .unwrap();
        assert_eq!(from_profile.peak().ceil(), 131);
        assert_eq!(measured.peak().ceil(), 132);
        assert_eq!(from_profile.end(), s(1200));
    }

    #[test]
    fn prediction_scales_up_ahead_of_a_ramp() {
        let trace = synthetic::ramp(5.0, 120.0, 300, 1500, 30, 3300);
        let reactive = replay(&trace, &mut default_policy(), &cfg(15, 80)).metrics;
        let mut p = DefaultPolicy::new(Config {
            predictive: Some(Predictive::default()),
            ..Config::default()
        });
        let r = replay(&trace, &mut p, &cfg(15, 80));
        assert!(
            r.metrics.accuracy_under < reactive.accuracy_under * 0.5,
            "predictive {} vs reactive {}",
            r.metrics.accuracy_under,
            reactive.accuracy_under
        );
        assert!(
            r.ticks
                .iter()
                .any(|t| t.decision.action() == "up:predicted")
        );
    }

    #[test]
    fn the_warm_pool_is_started_before_creating() {
        // Up, down, up again: the second rise starts the stopped backend first.
        let trace = Trace::parse_csv("0,20\n300,60\n900,20\n1500,60\n2100,60\n", "t").unwrap();
        let mut p = DefaultPolicy::new(Config {
            scale_down_window: s(60),
            ..Config::default()
        });
        let r = replay(
            &trace,
            &mut p,
            &ReplayConfig {
                start_delay: s(20),
                ..cfg(10, 80)
            },
        );
        assert_eq!(r.started, 1);
        assert_eq!(r.created, 4 + 3);
        assert_eq!(r.removed, 4);
    }

    fn arb_trace() -> impl Strategy<Value = Trace> {
        prop::collection::vec((1u64..600, 0u64..300), 1..8).prop_map(|steps| {
            let mut t = 0;
            let mut points = Vec::new();
            for (len, rate) in steps {
                points.push((s(t), rate * 1_000_000_000));
                t += len;
            }
            Trace::new(points, s(t)).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the load, the capacity stays within [min, quota] and the serving count
        /// never drops below min.
        #[test]
        fn min_and_max_are_never_crossed(
            trace in arb_trace(),
            interval in 1u64..90,
            boot in 0u64..200,
            window in 0u64..400,
            min in 1u32..4,
            quota in 4u32..20,
            remove in prop::option::of(1u32..4),
            predictive in any::<bool>(),
        ) {
            let config = Config {
                min,
                scale_down_window: s(window),
                max_remove_per_tick: remove,
                predictive: predictive.then(Predictive::default),
                ..Config::default()
            };
            let rc = ReplayConfig {
                interval: s(interval),
                boot_delay: s(boot),
                start_delay: s(boot / 2),
                quota: Some(quota),
                demand: Demand { threshold: Threshold::SEED, min, max: quota },
                ..ReplayConfig::default()
            };
            let r = replay(&trace, &mut DefaultPolicy::new(config), &rc);
            for t in &r.ticks {
                let capacity = t.serving + t.pending;
                prop_assert!(capacity >= min && capacity <= quota, "{t:?}");
                prop_assert!(t.serving + t.pending + t.stopped <= quota, "{t:?}");
                prop_assert!(t.decision.target >= min && t.decision.target <= quota);
            }
            for &(_, v) in r.supply.points() {
                prop_assert!(v >= min && v <= quota);
            }
        }
    }
}
