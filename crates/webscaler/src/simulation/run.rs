//! `webscaler simulate`: the controller of `webscaler run` ([`Controller`], the same code)
//! against the simulated cloud, balancer and clock of [`crate::simulation::world`], over a request-rate
//! [`Trace`], scored with the SPEC RG elasticity metrics ([`crate::simulation::elasticity`]).
//!
//! - The simulated world starts with `initial` backends running and ready (by default the
//!   demand at time 0: a steady start) and a balancer whose counter is the trace's requests
//!   so far.
//! - The controller ticks at `0, interval, 2·interval, …` up to the end of the trace; between
//!   two ticks the clock jumps from one change of the world to the next (a boot, a stop, a
//!   check completing), so the series below are exact and nothing sleeps: a day of 5-s ticks
//!   takes milliseconds.
//! - **Demand** is `clamp(ceil(rate / threshold), min, max)` of the trace (the same for every
//!   policy: the ideal a policy aims at), **supply** the servers taking traffic in the
//!   balancer, **cost** the backends paid for (every one but the stopped ones: booting,
//!   joining, serving, draining and stopping backends all cost).
//! - **Actions** are the ticks whose decision added or removed capacity (the CSV `action` is
//!   `up…` or `down…`; a creation the quota refused entirely is `hold:quota` and does not
//!   count).

use std::time::Duration;

use crate::controller::{self, Controller, Record, TickReport};
use crate::policy::{self, Policy};
use crate::simulation::elasticity::{Metrics, StepSeries};
use crate::simulation::trace::Trace;
use crate::simulation::world::{Sim, SimConfig};

/// The settings of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateConfig {
    /// Time between ticks.
    pub interval: Duration,
    /// The simulated world (boot and start delays, quota, …). Its `initial` is replaced by
    /// [`SimulateConfig::initial`].
    pub world: SimConfig,
    /// Backends running and ready at time 0 (`None`: the demand at time 0).
    pub initial: Option<u32>,
    /// The controller's settings.
    pub controller: controller::Config,
    /// The threshold, minimum and maximum the demand is computed with: at each moment
    /// [`policy::Config::needed`] of the trace's rate with the world's quota.
    pub demand: policy::Config,
}

impl Default for SimulateConfig {
    /// 5-s ticks, the simulated world's defaults (80-s boots, the lab report's quota of 13), a
    /// steady start, the controller's defaults, the demand of the default policy's settings
    /// (threshold 10, minimum 2; with the quota, at most 13).
    fn default() -> SimulateConfig {
        SimulateConfig {
            interval: Duration::from_secs(5),
            world: SimConfig::default(),
            initial: None,
            controller: controller::Config::default(),
            demand: policy::Config::default(),
        }
    }
}

impl SimulateConfig {
    /// How long a server asked for at a tick takes to serve in this world: its boot (or
    /// start), to the next tick, where it joins the balancer, then its check, to the next
    /// tick, where it is made ready. The oracle's lead ([`crate::policy::OraclePolicy`]).
    pub fn serving_lead(&self) -> Duration {
        let i = if self.interval.is_zero() {
            Duration::from_secs(1)
        } else {
            self.interval
        };
        let up = |d: Duration| {
            let n = d.as_nanos().div_ceil(i.as_nanos());
            i.checked_mul(u32::try_from(n).unwrap_or(u32::MAX))
                .unwrap_or(Duration::MAX)
        };
        let boot = self.world.boot_delay.max(self.world.start_delay);
        up(boot).saturating_add(up(self.world.check_delay).max(i))
    }
}

/// The outcome of a simulation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every tick, in order (its `record` is the CSV row `run` would write).
    pub ticks: Vec<TickReport>,
    /// Servers needed over time.
    pub demand: StepSeries,
    /// Servers taking traffic over time.
    pub supply: StepSeries,
    /// Backends paid for over time.
    pub cost: StepSeries,
    /// The scores.
    pub metrics: Metrics,
}

impl Outcome {
    /// The CSV rows, one per tick.
    pub fn records(&self) -> Vec<Record> {
        self.ticks.iter().map(|t| t.record.clone()).collect()
    }
}

/// Whether a tick's recorded action added or removed capacity.
pub fn is_scaling(action: &str) -> bool {
    action.starts_with("up") || action.starts_with("down")
}

/// Runs the controller with `policy` over `trace` in a simulated world (see the module
/// documentation), keeping every tick.
pub fn simulate<P: Policy>(trace: &Trace, policy: P, cfg: &SimulateConfig) -> Outcome {
    let mut ticks = Vec::new();
    let scores = simulate_each(trace, policy, cfg, |t| ticks.push(t));
    Outcome {
        ticks,
        demand: scores.demand,
        supply: scores.supply,
        cost: scores.cost,
        metrics: scores.metrics,
    }
}

/// The series and the scores of a simulation.
#[derive(Debug, Clone)]
pub struct Scores {
    /// Servers needed over time.
    pub demand: StepSeries,
    /// Servers taking traffic over time.
    pub supply: StepSeries,
    /// Backends paid for over time.
    pub cost: StepSeries,
    /// The scores.
    pub metrics: Metrics,
}

/// [`simulate`], handing each tick to `on_tick` as it happens instead of keeping them all
/// (a day of 5-s ticks is 17,281 reports).
pub fn simulate_each<P: Policy>(
    trace: &Trace,
    policy: P,
    cfg: &SimulateConfig,
    mut on_tick: impl FnMut(TickReport),
) -> Scores {
    let end = trace.end();
    let demand_points = trace.demand(|rate| cfg.demand.needed(rate, cfg.world.quota));
    let initial = cfg.initial.unwrap_or(demand_points[0].1);
    let sim = Sim::new(
        SimConfig {
            initial,
            ..cfg.world.clone()
        },
        trace.clone(),
    );
    let interval = if cfg.interval.is_zero() {
        Duration::from_secs(1)
    } else {
        cfg.interval
    };
    let mut c = Controller::new(
        sim.cloud(),
        sim.balancer(),
        sim.clock(),
        policy,
        cfg.controller.clone(),
    );

    let mut supply = Vec::new();
    let mut cost = Vec::new();
    let sample = |supply: &mut Vec<(Duration, u32)>, cost: &mut Vec<(Duration, u32)>| {
        let now = sim.now();
        supply.push((now, sim.serving()));
        cost.push((now, sim.paid()));
    };
    // Moves the world to `until`, sampling at every change on the way.
    let run_to = |until: Duration, supply: &mut Vec<_>, cost: &mut Vec<_>| {
        while let Some(t) = sim.next_transition().filter(|&t| t < until) {
            sim.advance(t - sim.now());
            sample(supply, cost);
        }
        if until > sim.now() {
            sim.advance(until - sim.now());
        }
    };

    let mut actions = 0u64;
    let mut k: u32 = 0;
    while let Some(t) = interval.checked_mul(k).filter(|&t| t <= end) {
        k += 1;
        run_to(t, &mut supply, &mut cost);
        let tick = c.tick();
        sample(&mut supply, &mut cost);
        actions += u64::from(is_scaling(&tick.record.action));
        on_tick(tick);
    }
    run_to(end, &mut supply, &mut cost);

    // Points are in time order and not after the end by construction.
    let series = |points: Vec<(Duration, u32)>| {
        StepSeries::new(points, end).unwrap_or_else(|e| panic!("simulate series: {e}"))
    };
    let demand = series(demand_points);
    let supply = series(supply);
    let cost = series(cost);
    let metrics = Metrics::compute(&demand, &supply, &cost, actions)
        .unwrap_or_else(|e| panic!("simulate metrics: {e}"));
    Scores {
        demand,
        supply,
        cost,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Level;
    use crate::policy::{DefaultPolicy, Predictive, Reason, SeedConfig, SeedPolicy};
    use crate::rate::Tolerance;
    use crate::simulation::trace::synthetic;
    use proptest::prelude::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn every(interval: u64) -> SimulateConfig {
        SimulateConfig {
            interval: s(interval),
            ..SimulateConfig::default()
        }
    }

    fn default_policy() -> DefaultPolicy {
        DefaultPolicy::new(policy::Config::default())
    }

    fn reactive(config: policy::Config) -> DefaultPolicy {
        DefaultPolicy::new(policy::Config {
            predictive: None,
            ..config
        })
    }

    fn benches(name: &str) -> Trace {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches-data");
        Trace::load(dir.join(name)).unwrap()
    }

    #[test]
    fn exactly_k_times_threshold_gives_exactly_k_and_zero_jitter() {
        for k in 2..=13u32 {
            for interval in [5, 60] {
                let trace = synthetic::constant(f64::from(k) * 10.0, 3600);
                let o = simulate(&trace, default_policy(), &every(interval));
                let m = o.metrics;
                assert!(
                    o.ticks.iter().all(|t| t.counts.serving == k
                        && t.counts.pending == 0
                        && t.record.haactive == k
                        && t.record.active == k),
                    "k = {k}"
                );
                assert!(
                    o.ticks.iter().skip(1).all(|t| t.record.needed == Some(k)),
                    "k = {k}"
                );
                assert_eq!(o.supply.points(), &[(s(0), k)]);
                assert_eq!(
                    (m.jitter, m.actions, m.accuracy_under, m.accuracy_over),
                    (0.0, 0, 0.0, 0.0),
                    "k = {k}, every {interval} s"
                );
                assert_eq!(m.server_seconds, f64::from(k) * 3600.0);
            }
        }
        // From a cold start at the minimum: one action, to exactly k, serving a boot (80 s),
        // a tick to join and a tick to pass the check after it was asked for.
        let trace = synthetic::constant(70.0, 3600);
        let o = simulate(
            &trace,
            default_policy(),
            &SimulateConfig {
                initial: Some(2),
                ..every(5)
            },
        );
        assert_eq!(o.metrics.actions, 1);
        assert_eq!(o.supply.points(), &[(s(0), 2), (s(90), 7)]);
        assert_eq!(o.metrics.accuracy_under, 5.0 * 90.0 / 3600.0);
        assert_eq!(o.metrics.underprovisioned_seconds, 90.0);
        assert_eq!(o.metrics.server_seconds, 2.0 * 5.0 + 7.0 * 3595.0);
    }

    #[test]
    fn supply_and_cost_follow_every_change_exactly() {
        // 45 req/s (5 servers) for 300 s, then 15 (2) until 600 s; a 60-s window.
        let trace = Trace::parse_csv("0,45\n300,15\n600,15\n", "t").unwrap();
        let o = simulate(&trace, default_policy(), &every(5));
        // The tick at 300 s still measures 45; the recommendation of 5 made then leaves the
        // window at 360 s: drained then, stopped (one, the warm pool) or deleted (two) at the
        // next tick; the stop takes 10 s.
        assert_eq!(o.supply.points(), &[(s(0), 5), (s(360), 2)]);
        assert_eq!(o.cost.points(), &[(s(0), 5), (s(365), 3), (s(375), 2)]);
        let m = o.metrics;
        assert_eq!(m.server_seconds, 5.0 * 365.0 + 3.0 * 10.0 + 2.0 * 225.0);
        assert_eq!(m.accuracy_over, 3.0 * 60.0 / 600.0);
        assert_eq!((m.accuracy_under, m.jitter, m.actions), (0.0, 0.0, 1));
        let last = o.ticks.last().unwrap();
        assert_eq!((last.counts.serving, last.counts.stopped), (2, 1));
    }

    #[test]
    fn noise_makes_at_most_one_change_with_the_window_or_the_band_alone() {
        for seed in 1..=5 {
            let trace = synthetic::noisy(50.0, 0.05, 5, 3600, seed);
            // The demand itself flaps between 5 and 6 …
            let defaults = policy::Config::default(); // threshold 10, min 2
            assert!(trace.demand(|r| defaults.needed(r, Some(13))).len() > 10);
            let from5 = SimulateConfig {
                initial: Some(5),
                ..every(5)
            };
            let band_alone = policy::Config {
                tolerance: Tolerance::HPA,
                scale_down_window: Duration::ZERO,
                scale_down_window_max: Duration::ZERO,
                ..defaults
            };
            for (label, config) in [("the default window", defaults), ("the band", band_alone)] {
                // … the supply goes to 6 the first time the rate exceeds 50 and stays.
                let o = simulate(&trace, DefaultPolicy::new(config), &from5);
                assert_eq!(o.metrics.actions, 1, "seed {seed}, {label}");
                assert_eq!(o.supply.points().last().unwrap().1, 6);
                // Short only while the sixth boots (a boot, a tick to join, a tick to ready).
                assert!(
                    o.metrics.underprovisioned_seconds <= 90.0,
                    "{:?}",
                    o.metrics
                );
                assert!(o.metrics.jitter < 0.0, "supply more inert than demand");
            }
            // Without the band and the window it flaps: the test can fail.
            let o = simulate(
                &trace,
                reactive(policy::Config {
                    scale_down_window: Duration::ZERO,
                    scale_down_window_max: Duration::ZERO,
                    tolerance: Tolerance::NONE,
                    ..policy::Config::default()
                }),
                &from5,
            );
            assert!(o.metrics.actions > 20, "seed {seed}: {}", o.metrics.actions);
        }
    }

    #[test]
    fn pending_capacity_prevents_a_second_wave() {
        // 15 → 75 req/s at 600 s: 2 → 8 servers, with 80-s boots and 5-s ticks.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        let o = simulate(&trace, default_policy(), &every(5));
        let ups: Vec<_> = o.ticks.iter().filter(|t| t.record.action == "up").collect();
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].at, s(605));
        assert_eq!(ups[0].plan.adding(), 6);
        assert!(
            o.ticks
                .iter()
                .any(|t| t.counts.pending == 6 && t.record.action == "hold")
        );
        assert_eq!(o.supply.max(), 8);
        // The lab-report policy does not count booting backends: a second wave, to the quota.
        let o = simulate(&trace, SeedPolicy::new(SeedConfig::default()), &every(5));
        let created: u32 = o.ticks.iter().map(|t| t.plan.adding()).sum();
        assert!(created > 6, "seed created {created}");
        assert_eq!(o.supply.max(), 13);
    }

    #[test]
    fn the_stabilization_window_is_honoured() {
        // 75 → 15 req/s at 1800 s: 8 → 2 servers.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        for window in [0u64, 60, 120, 180, 300] {
            let p = DefaultPolicy::new(policy::Config {
                scale_down_window: s(window),
                ..policy::Config::default()
            });
            let o = simulate(&trace, p, &every(5));
            let downs: Vec<_> = o
                .ticks
                .iter()
                .filter(|t| t.record.action == "down")
                .collect();
            assert_eq!(downs.len(), 1, "window {window}");
            // The tick at 1800 still measures (1795, 1800] at 75 req/s; the recommendation
            // of 8 made then leaves the window (t − w, t] at t = 1800 + w.
            assert_eq!(downs[0].at, s((1800 + window).max(1805)), "window {window}");
            assert_eq!(downs[0].decision.as_ref().unwrap().remove, 6);
            assert!(
                o.ticks
                    .iter()
                    .filter(|t| t.at > s(1800) && t.at < downs[0].at)
                    .all(|t| t.record.action == "hold:window"),
                "window {window}"
            );
        }
    }

    #[test]
    fn the_seed_policy_on_the_seed_trace_gives_listing_1_7s_needed_column() {
        let trace = benches("seed-trace.csv");
        let rows = crate::policy::seed::tests::listing();
        // 5-s ticks (a round every 60 s) and 60-s ticks (every tick a round) alike.
        for interval in [5, 60] {
            let o = simulate(
                &trace,
                SeedPolicy::new(SeedConfig::default()),
                &every(interval),
            );
            let rounds: Vec<_> = o
                .ticks
                .iter()
                .filter(|t| {
                    t.decision
                        .as_ref()
                        .is_some_and(|d| d.reason != Reason::BetweenRounds)
                })
                .collect();
            // Round j at 60·j is line j + 2 of the listing, for all 25 lines.
            assert_eq!(rounds.len(), rows.len());
            for (j, (tick, row)) in rounds.iter().zip(&rows).enumerate() {
                assert_eq!(tick.at, s(60 * j as u64));
                assert_eq!(tick.record.needed, row.needed, "line {}", j + 2);
                if j >= 2 {
                    // Line 3 is the second baseline round, whose diff truncates.
                    assert_eq!(tick.record.diff, Some(row.diff), "line {}", j + 2);
                }
            }
        }
    }

    #[test]
    fn prediction_scales_up_ahead_of_a_ramp_and_leaves_steps_alone() {
        let ramp = benches("trace-ramp.csv");
        let r = simulate(&ramp, reactive(policy::Config::default()), &every(5)).metrics;
        let o = simulate(&ramp, default_policy(), &every(5));
        assert!(
            o.metrics.accuracy_under < r.accuracy_under * 0.5,
            "predictive {} vs reactive {}",
            o.metrics.accuracy_under,
            r.accuracy_under
        );
        assert!(o.ticks.iter().any(|t| t.record.action == "up:predicted"));
        // A step, a spike and dips are single jumps: the predictive mode changes nothing.
        for name in ["trace-step.csv", "trace-spike.csv", "trace-dips.csv"] {
            let trace = benches(name);
            let with = simulate(&trace, default_policy(), &every(5));
            let without = simulate(&trace, reactive(policy::Config::default()), &every(5));
            assert_eq!(with.records(), without.records(), "{name}");
        }
        // Prediction is no use without a history of several ticks: none at 60-s ticks.
        let o = simulate(&ramp, default_policy(), &every(60));
        assert!(o.ticks.iter().all(|t| t.record.action != "up:predicted"));
    }

    #[test]
    fn the_default_policy_meets_the_target_on_the_lab_reports_trace() {
        // At least 50 % less under-provisioning than the lab report's policy, at most 10 % more
        // server-seconds, no jitter (docs/webscaler-policy.md).
        let trace = benches("seed-trace.csv");
        let seed = simulate(&trace, SeedPolicy::new(SeedConfig::default()), &every(5)).metrics;
        let ours = simulate(&trace, default_policy(), &every(5)).metrics;
        assert!(
            ours.accuracy_under <= 0.5 * seed.accuracy_under,
            "{ours:?} vs {seed:?}"
        );
        assert!(
            ours.server_seconds <= 1.1 * seed.server_seconds,
            "{ours:?} vs {seed:?}"
        );
        assert_eq!(ours.jitter, 0.0);
    }

    /// The ticks whose decision added or removed capacity: (time in s, +added or −removed).
    fn changes(o: &Outcome) -> Vec<(u64, i64)> {
        o.ticks
            .iter()
            .filter_map(|t| {
                let d = t.decision.as_ref()?;
                let n = i64::from(d.add) - i64::from(d.remove);
                (n != 0).then_some((t.at.as_secs(), n))
            })
            .collect()
    }

    #[test]
    fn the_window_learns_the_dips_of_the_dips_trace() {
        // 75 req/s (8 servers) with dips to 25 (3) of 30, 60, 90, 120, 180 and 300 s at
        // 600, 1200, … 3600 s. The 60-s window holds the 30-s dip and releases 5 servers at
        // the last tick of the 60-s one (t = 1260: the rates of (1200, 1260] were all low).
        // The load is back at the next tick: regretted, the window becomes 300 s (the 5 are
        // still draining and take traffic again at once). It holds the dips of 90 to 180 s
        // and releases at the last tick of the 300-s one, regretted again.
        let trace = benches("trace-dips.csv");
        let o = simulate(&trace, default_policy(), &every(5));
        assert_eq!(
            changes(&o),
            vec![(1260, -5), (1265, 5), (3900, -5), (3905, 5)]
        );
        // A fixed 60-s window releases in every dip from 60 s on, and is short each time the
        // load comes back after the released servers stopped.
        let fixed = simulate(
            &trace,
            DefaultPolicy::new(policy::Config {
                scale_down_window_max: policy::Config::DEFAULT_WINDOW,
                ..policy::Config::default()
            }),
            &every(5),
        );
        assert_eq!(fixed.metrics.actions, 10);
        assert!(
            o.metrics.accuracy_under * 10.0 < fixed.metrics.accuracy_under,
            "{:?} vs {:?}",
            o.metrics,
            fixed.metrics
        );
    }

    #[test]
    fn hpa_on_the_step_trace_hand_computed() {
        // 15 → 75 req/s at 600 s, back to 15 at 1800 s. Syncs every 15 s. At 615 the HPA
        // measures 75 req/s on 2 servers: 8 needed, limited to max(2 + 4, 2 × 2) = 6. At 630
        // the 4 new servers still boot (not ready: they count as serving nothing): 75 req/s
        // over 6 servers is 1.25 of the target, 8 needed, and the period that began at 615
        // excludes its own start: up to 8. Down: the sync at 1800 still measures 75 (8); 300 s
        // later it leaves the window (1800, 2100]: down to 2 at 2100.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        let o = simulate(
            &trace,
            crate::policy::HpaPolicy::new(crate::policy::HpaConfig::default()),
            &every(5),
        );
        assert_eq!(changes(&o), vec![(615, 4), (630, 2), (2100, -6)]);
        assert!(
            o.ticks
                .iter()
                .filter(|t| t.at > s(1800) && t.at < s(2100))
                .filter(|t| t.record.action != "hold:round")
                .all(|t| t.record.action == "hold:window"),
        );
        assert_eq!(o.supply.max(), 8);
    }

    #[test]
    fn target_tracking_on_the_step_trace_hand_computed() {
        // Minute datapoints at 660, 720 and 780 are above the target (75 req/s on 2 warm
        // servers): out at 780 to ceil(75 / 10) = 8. From 1800 the datapoints are below 90 %
        // of it; the fifteenth is at 2700 (1860 … 2700), the new servers are long warm: in to
        // 2.
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        let o = simulate(
            &trace,
            crate::policy::TargetTrackingPolicy::new(crate::policy::TargetTrackingConfig::default()),
            &every(5),
        );
        assert_eq!(changes(&o), vec![(780, 6), (2700, -6)]);
        // A spike shorter than three periods never scales out.
        let spike = synthetic::spike(20.0, 120.0, 900, 120, 2400);
        let o = simulate(
            &spike,
            crate::policy::TargetTrackingPolicy::new(crate::policy::TargetTrackingConfig::default()),
            &every(5),
        );
        assert_eq!(o.metrics.actions, 0);
    }

    #[test]
    fn the_oracle_is_never_short_and_asks_exactly_one_lead_ahead() {
        let cfg = every(5);
        // 80-s boot + the join tick + the check's tick.
        assert_eq!(cfg.serving_lead(), s(85));
        let trace = synthetic::step(15.0, 75.0, 600, 1800, 3000);
        let demand = trace.demand(|r| cfg.demand.needed(r, cfg.world.quota));
        let o = simulate(
            &trace,
            crate::policy::OraclePolicy::new(demand, cfg.serving_lead(), cfg.interval),
            &cfg,
        );
        assert_eq!(o.metrics.accuracy_under, 0.0);
        assert_eq!(changes(&o), vec![(515, 6), (1800, -6)]);
        // The 6 serve from exactly 600, and leave at exactly 1800.
        assert_eq!(o.supply.points(), &[(s(0), 2), (s(600), 8), (s(1800), 2)]);
        // Never short on any shipped trace that starts steady, and never dearer than the
        // default policy where the default is never short either.
        for name in [
            "trace-ramp.csv",
            "trace-dips.csv",
            "trace-noisy.csv",
            "trace-day.csv",
        ] {
            let trace = benches(name);
            let demand = trace.demand(|r| cfg.demand.needed(r, cfg.world.quota));
            let oracle = crate::policy::OraclePolicy::new(demand, cfg.serving_lead(), cfg.interval);
            let m = simulate_each(&trace, oracle, &cfg, |_| ()).metrics;
            assert_eq!(m.accuracy_under, 0.0, "{name}");
            let d = simulate_each(&trace, default_policy(), &cfg, |_| ()).metrics;
            assert!(
                d.accuracy_under > 0.0 || m.server_seconds <= d.server_seconds,
                "{name}: {m:?} vs {d:?}"
            );
        }
        // Other boot delays and ticks: still exactly on time.
        for (boot, tick) in [(40, 5), (83, 5), (80, 60), (30, 7)] {
            let cfg = SimulateConfig {
                interval: s(tick),
                world: SimConfig {
                    boot_delay: s(boot),
                    start_delay: s(boot),
                    ..SimConfig::default()
                },
                ..SimulateConfig::default()
            };
            let demand = trace.demand(|r| cfg.demand.needed(r, cfg.world.quota));
            let o = simulate(
                &trace,
                crate::policy::OraclePolicy::new(demand, cfg.serving_lead(), cfg.interval),
                &cfg,
            );
            assert_eq!(o.metrics.accuracy_under, 0.0, "boot {boot}, tick {tick}");
        }
    }

    #[test]
    fn the_history_floor_on_the_multi_day_trace() {
        // Learn on days 0–3, score day 4: the floor removes the shortfall of the day.
        use crate::history::{TRACE_EPOCH, trace_segments};
        use crate::policy::{Baseline, Floor, Zone};
        let days = benches("trace-days.csv");
        let from = s(4 * 86_400);
        let day = days.after(from).unwrap();
        let cfg = SimulateConfig {
            world: SimConfig {
                wall_origin: TRACE_EPOCH.and_utc() + chrono::Duration::days(4),
                ..SimConfig::default()
            },
            ..every(5)
        };
        let floor = |learn: Duration| {
            Baseline::learn(trace_segments(&days.before(learn).unwrap(), TRACE_EPOCH)).map(
                |baseline| Floor {
                    baseline,
                    lead: Floor::DEFAULT_LEAD,
                    zone: Zone::Utc,
                },
            )
        };
        let without = simulate(&day, default_policy(), &cfg);
        let with = simulate(
            &day,
            default_policy().with_floor(floor(from).unwrap()),
            &cfg,
        );
        let (w, o) = (with.metrics, without.metrics);
        assert!(o.accuracy_under > 0.0);
        assert!(w.accuracy_under <= 0.3 * o.accuracy_under, "{w:?} vs {o:?}");
        assert!(w.server_seconds <= 1.1 * o.server_seconds, "{w:?} vs {o:?}");
        assert!(with.ticks.iter().any(|t| t.record.action == "up:history"));
        // Less than a day of history learns nothing.
        assert!(floor(s(86_300)).is_err());
        assert!(floor(s(86_400)).is_ok());
        // Never down because of the floor: every removal is a reactive decision.
        assert!(with.ticks.iter().all(|t| {
            t.decision
                .as_ref()
                .is_none_or(|d| d.remove == 0 || !matches!(d.reason, Reason::History { .. }))
        }));
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
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the load and the settings, the capacity stays within [min, quota] and
        /// the servers taking traffic never exceed the quota nor fall below the minimum.
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
            let config = policy::Config {
                min,
                scale_down_window: s(window),
                max_remove_per_tick: remove,
                predictive: predictive.then(Predictive::default),
                ..policy::Config::default()
            };
            let cfg = SimulateConfig {
                interval: s(interval),
                world: SimConfig {
                    boot_delay: s(boot),
                    start_delay: s(boot / 2),
                    quota: Some(quota),
                    ..SimConfig::default()
                },
                demand: policy::Config { min, ..policy::Config::default() },
                ..SimulateConfig::default()
            };
            let o = simulate(&trace, DefaultPolicy::new(config), &cfg);
            for t in &o.ticks {
                let c = t.counts;
                prop_assert!(c.serving + c.pending >= min && c.serving + c.pending <= quota, "{c:?}");
                prop_assert!(c.instances <= quota, "{c:?}");
                // The events allowed: the quota's hold, only when this tick's creations fill
                // the quota (a backend that is leaving still counts as an instance), and its
                // release. The simulated cloud never refuses what its quota report allows.
                for e in &t.events {
                    let hold = e.level == Level::Warning && e.message.starts_with("the quota");
                    let release = e.level == Level::Info
                        && (e.message.starts_with("the quota changed")
                            || e.message.starts_with("no quota change"));
                    prop_assert!(hold || release, "{e} {c:?}");
                    prop_assert!(
                        !hold || c.instances + t.plan.creating() == quota,
                        "{e} {c:?} {:?}",
                        t.plan
                    );
                }
            }
            for &(_, v) in o.supply.points() {
                prop_assert!(v >= min && v <= quota);
            }
        }
    }
}
