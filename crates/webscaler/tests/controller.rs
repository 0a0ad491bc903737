//! The controller against the simulated cloud, balancer and clock (`webscaler::simulation::world`): step,
//! spike, ramp and noisy traces, the warm pool, failures, quota errors and reloads. No
//! sleeping: simulated hours take milliseconds.

use std::time::Duration;

use webscaler::cloud::{Cloud, Status};
use webscaler::controller::{self, Change, Controller, Level, Side, TickReport};
use webscaler::policy::{self, DefaultPolicy};
use webscaler::simulation::trace::{Trace, synthetic};
use webscaler::simulation::world::{CloudCall, Sim, SimBalancer, SimClock, SimCloud, SimConfig};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

type Ctl = Controller<SimCloud, SimBalancer, SimClock, DefaultPolicy>;

struct Run {
    sim: Sim,
    c: Ctl,
    interval: Duration,
    reports: Vec<TickReport>,
    quota: Option<u32>,
    min: u32,
}

impl Run {
    fn new(sim_cfg: SimConfig, trace: Trace, p: policy::Config, cfg: controller::Config) -> Run {
        let quota = sim_cfg.quota;
        let sim = Sim::new(sim_cfg, trace);
        let c = Controller::new(
            sim.cloud(),
            sim.balancer(),
            sim.clock(),
            DefaultPolicy::new(p),
            cfg,
        );
        Run {
            sim,
            c,
            interval: secs(5),
            reports: Vec::new(),
            quota,
            min: p.min,
        }
    }

    /// The lab report's settings (threshold 10, min 2), 5-s ticks, fast boots.
    fn default_with(trace: Trace, sim_cfg: SimConfig) -> Run {
        Run::new(
            sim_cfg,
            trace,
            policy::Config::default(),
            controller::Config::default(),
        )
    }

    /// Ticks (then advances one interval) until the simulated time reaches `t` seconds,
    /// checking the invariants at every tick.
    fn until(&mut self, t: u64) -> &mut Run {
        while self.sim.now() < secs(t) {
            let r = self.c.tick();
            self.check(&r);
            self.reports.push(r);
            self.sim.advance(self.interval);
        }
        self
    }

    fn check(&self, r: &TickReport) {
        let c = r.counts;
        if let Some(q) = self.quota {
            assert!(
                c.instances <= q,
                "at {:?}: {} instances over the quota {q}",
                r.at,
                c.instances
            );
            assert!(c.serving + c.pending <= q, "capacity over the quota: {c:?}");
        }
        // Once the first backends could be up, capacity never falls below the minimum.
        if r.at > secs(5) {
            assert!(
                c.serving + c.pending >= self.min.min(self.quota.unwrap_or(u32::MAX)),
                "at {:?}: capacity under the minimum: {c:?}",
                r.at
            );
        }
        for e in &r.events {
            assert_ne!(e.level, Level::Error, "at {:?}: {e}", r.at);
        }
    }

    fn last(&self) -> &TickReport {
        self.reports.last().expect("ticked")
    }

    /// The changes of kind `c` the ticks' tallies counted.
    fn tallied(&self, c: Change) -> u64 {
        self.reports.iter().map(|r| r.tally.count(c)).sum()
    }

    /// The failed calls the ticks' tallies counted, as (side, call, kind).
    fn failures(&self) -> Vec<(Side, &'static str, &'static str)> {
        self.reports
            .iter()
            .flat_map(|r| &r.tally.failures)
            .map(|f| (f.side, f.call, f.kind))
            .collect()
    }

    fn calls(&self, prefix: &str) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// Ticks whose decision changed the capacity, from `from` seconds on.
    fn actions_after(&self, from: u64) -> usize {
        self.reports
            .iter()
            .filter(|r| r.at >= secs(from))
            .filter(|r| r.decision.as_ref().is_some_and(|d| d.is_action()))
            .count()
    }
}

/// A trace from (second, req/s) steps.
fn steps(points: &[(u64, u64)], end: u64) -> Trace {
    Trace::new(
        points
            .iter()
            .map(|&(t, r)| (secs(t), r * 1_000_000_000))
            .collect(),
        secs(end),
    )
    .unwrap()
}

fn fast() -> SimConfig {
    SimConfig {
        boot_delay: secs(20),
        start_delay: secs(10),
        stop_delay: secs(5),
        check_delay: secs(2),
        ..SimConfig::default()
    }
}

#[test]
fn a_step_is_met_within_a_boot_and_released_after_the_window() {
    // 15 req/s (2 servers), 75 req/s (8) from 300 s to 900 s, then 15 again.
    let mut run = Run::default_with(synthetic::step(15.0, 75.0, 300, 900, 2000), fast());
    run.until(290);
    assert_eq!(run.last().counts.serving, 2, "the minimum, from nothing");
    assert_eq!(run.calls("create"), 2);

    // The step: the first tick after 300 s measures it and asks for 6 more at once.
    run.until(306);
    let r = run.last();
    assert_eq!(
        r.decision.as_ref().unwrap().needed,
        Some(8),
        "{}",
        r.log_line()
    );
    assert_eq!(r.record.action, "up");
    assert_eq!(run.calls("create"), 8);
    // Pending capacity counts: no second wave while they boot.
    run.until(360);
    assert_eq!(run.calls("create"), 8, "no second wave");
    assert_eq!(run.last().counts.serving, 8);
    assert_eq!(run.last().record.haactive, 8);

    // The drop at 900 s: held for the 60-s window, then down to 2 in one go.
    run.until(955);
    assert_eq!(run.last().counts.serving, 8, "held by the window");
    assert_eq!(run.last().record.action, "hold:window");
    run.until(970);
    let first_down = run
        .reports
        .iter()
        .find(|r| r.record.action == "down")
        .expect("scaled down")
        .at;
    // The last recommendation of 8 was at 900 s; the first tick with only lower ones
    // inside (t − 60, t] is 960 s.
    assert_eq!(first_down, secs(960));
    run.until(1040);
    let r = run.last();
    assert_eq!(
        (r.counts.serving, r.counts.draining),
        (2, 0),
        "{}",
        r.log_line()
    );
    // The warm pool keeps one stopped backend; the other five are deleted.
    assert_eq!(r.counts.stopped, 1);
    assert_eq!(r.counts.instances, 3);
    assert_eq!(run.calls("drain"), 6);
    assert_eq!(run.calls("stop"), 1);
    assert_eq!(run.calls("delete"), 5);
    assert_eq!(run.sim.servers().len(), 2, "drained servers were removed");
    // The tallies (the metrics' counters) count exactly the calls the world saw.
    for c in Change::ALL {
        assert_eq!(
            run.tallied(c) as usize,
            run.calls(c.as_str()),
            "{c}: {:?}",
            run.sim.calls()
        );
    }
    assert_eq!(run.tallied(Change::Add), 8);
    assert_eq!(run.tallied(Change::Remove), 6);
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    assert!(run.reports.iter().all(|r| r.balancers_answering == 1));
}

#[test]
fn a_spike_starts_the_warm_backend_first_and_is_not_chased_down_early() {
    // Two spikes to 45 req/s (5 servers): the second one finds a stopped backend.
    let trace = steps(&[(0, 15), (100, 45), (160, 15), (600, 45), (660, 15)], 1200);
    let mut run = Run::default_with(trace, fast());
    run.until(170);
    assert_eq!(run.last().counts.serving, 5);
    // The spike ended at 160 s: the window holds the 5 until 220 s.
    run.until(215);
    assert_eq!(run.last().counts.serving, 5);
    run.until(400);
    assert_eq!(run.last().counts.serving, 2);
    assert_eq!(run.last().counts.stopped, 1);
    let creates_before = run.calls("create");
    run.until(606);
    let r = run.last();
    assert_eq!(r.record.action, "up", "{}", r.log_line());
    assert_eq!(
        run.calls("start"),
        1,
        "the stopped backend is started: {:?}",
        run.sim.calls()
    );
    assert_eq!(
        run.calls("create"),
        creates_before + 2,
        "and only the rest created"
    );
    let started = run.sim.calls().iter().position(|c| c.starts_with("start"));
    let created = run
        .sim
        .calls()
        .iter()
        .rposition(|c| c.starts_with("create"));
    assert!(started < created, "start before create");
    run.until(640);
    assert_eq!(run.last().counts.serving, 5);
}

#[test]
fn a_ramp_is_followed_up_and_down_within_min_and_quota() {
    // 10 → 150 req/s (15 servers, over the quota of 13) and back.
    let trace = synthetic::ramp(10.0, 150.0, 100, 700, 30, 1800);
    let mut run = Run::default_with(trace, fast());
    run.until(1800);
    let serving: Vec<u32> = run.reports.iter().map(|r| r.counts.serving).collect();
    let peak = *serving.iter().max().unwrap();
    assert_eq!(peak, 13, "capped by the quota");
    // While the load rises, capacity never goes down.
    let rising: Vec<u32> = run
        .reports
        .iter()
        .filter(|r| r.at <= secs(700))
        .map(|r| r.counts.serving + r.counts.pending)
        .collect();
    assert!(rising.windows(2).all(|w| w[1] >= w[0]), "{rising:?}");
    assert_eq!(run.last().counts.serving, 2, "back to the minimum");
    let needed: Vec<u32> = run.reports.iter().filter_map(|r| r.record.needed).collect();
    assert!(
        needed.contains(&13) && needed.iter().all(|&n| n <= 13),
        "needed is clamped to the quota: {needed:?}"
    );
}

#[test]
fn five_percent_noise_makes_no_changes() {
    // 50 req/s ± 5%, a new value every 5 s: ceil(rate / 10) flips between 5 and 6.
    let trace = synthetic::noisy(50.0, 0.05, 5, 3600, 7);
    let flips = {
        let mut last = 0;
        let mut n = 0;
        let mut t = 0;
        while t < 3600 {
            let needed = trace.rate_at(secs(t)).servers_needed(Default::default());
            if needed != last {
                n += 1;
                last = needed;
            }
            t += 5;
        }
        n
    };
    assert!(flips > 20, "the trace itself flips {flips} times");
    let mut run = Run::default_with(trace, fast());
    run.until(3600);
    // Up to 5 or 6 at the start, then not a single change for an hour.
    assert_eq!(run.actions_after(60), 0, "{:?}", run.sim.calls());
    let s = run.last().counts.serving;
    assert!(s == 5 || s == 6, "{s}");
    assert_eq!(run.calls("drain"), 0);
    assert_eq!(run.calls("stop"), 0);
}

#[test]
fn booting_capacity_counts_so_a_slow_boot_does_not_launch_a_second_wave() {
    // 80-s boots and a step to 8 servers: one wave of 6, then nothing while they boot.
    let mut run = Run::default_with(
        steps(&[(0, 15), (200, 75)], 5000),
        SimConfig {
            boot_delay: secs(80),
            ..SimConfig::default()
        },
    );
    run.until(200);
    let before = run.calls("create");
    run.until(290);
    assert_eq!(run.calls("create") - before, 6, "{:?}", run.sim.calls());
    let booting: Vec<u32> = run
        .reports
        .iter()
        .filter(|r| r.at > secs(205) && r.at < secs(280))
        .map(|r| r.counts.pending)
        .collect();
    assert!(booting.iter().all(|&p| p == 6), "{booting:?}");
    assert!(
        run.reports
            .iter()
            .filter(|r| r.at > secs(205) && r.at < secs(280))
            .all(|r| r.record.action == "hold" && r.record.pending == 6)
    );
    run.until(400);
    assert_eq!(run.last().counts.serving, 8);
    assert_eq!(run.calls("create") - before, 6);
}

#[test]
fn a_quota_error_holds_creations_and_logs_once() {
    let mut run = Run::default_with(synthetic::constant(45.0, 2000), fast());
    run.until(100);
    assert_eq!(run.last().counts.serving, 5);
    // The cloud now refuses creations its quota report still allows (another project
    // took the room), and a backend fails: it is deleted, its replacement refused.
    run.sim.reject_creates(true);
    run.sim.fail_backend("node-5");
    run.until(200);
    let warnings: Vec<String> = run
        .reports
        .iter()
        .flat_map(|r| &r.events)
        .filter(|e| e.message.contains("quota exceeded"))
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        run.calls("refused create"),
        1,
        "one attempt, not one per tick: {:?}",
        run.sim.calls()
    );
    assert_eq!(
        run.failures(),
        [(Side::Cloud, "create", "quota_exceeded")],
        "counted once, by kind"
    );
    assert!(run.reports.iter().any(|r| r.record.action == "hold:quota"));
    assert_eq!(run.last().counts.serving, 4);
    // Nothing changes in the quota report: one more attempt after 5 minutes, which now
    // succeeds.
    run.sim.reject_creates(false);
    run.until(395);
    assert_eq!(run.calls("create node-5"), 1, "only the first one");
    run.until(440);
    assert_eq!(run.calls("create node-5"), 2, "{:?}", run.sim.calls());
    assert_eq!(run.last().counts.serving, 5, "{}", run.last().log_line());
    assert_eq!(
        run.reports
            .iter()
            .flat_map(|r| &r.events)
            .filter(|e| e.level == Level::Warning)
            .count(),
        1
    );
}

#[test]
fn a_quota_that_is_used_up_holds_and_retries_when_it_changes() {
    let mut run = Run::default_with(
        synthetic::constant(85.0, 2000),
        SimConfig {
            quota: Some(4),
            ..fast()
        },
    );
    run.until(100);
    let r = run.last();
    assert_eq!(r.counts.serving, 4, "{}", r.log_line());
    assert_eq!(
        r.decision.as_ref().unwrap().needed,
        Some(4),
        "needed is clamped"
    );
    assert_eq!(run.calls("create"), 4);
    // The quota grows: the controller sees it in the next report.
    run.sim.set_quota(Some(6));
    run.quota = Some(6);
    run.until(160);
    assert_eq!(run.last().counts.serving, 6);
}

#[test]
fn a_failed_backend_is_deleted_and_replaced() {
    let mut run = Run::default_with(synthetic::constant(35.0, 2000), fast());
    run.until(100);
    assert_eq!(run.last().counts.serving, 4);
    run.sim.fail_backend("node-2");
    run.until(105);
    let r = run.last();
    assert!(
        r.done.iter().any(|d| d.starts_with("deleted node-2")),
        "{}",
        r.log_line()
    );
    assert!(r.done.iter().any(|d| d.contains("removed node-2")));
    run.until(160);
    let r = run.last();
    assert_eq!(r.counts.serving, 4);
    assert_eq!(r.counts.failed, 0);
    assert!(run.sim.backends().iter().all(|b| b.status != Status::Error));
}

#[test]
fn busy_backends_are_retried_next_tick() {
    let mut run = Run::default_with(steps(&[(0, 45), (200, 15)], 2000), fast());
    run.until(60);
    run.sim.busy_next(CloudCall::Stop);
    run.sim.busy_next(CloudCall::Delete);
    run.until(500);
    let warnings = run
        .reports
        .iter()
        .flat_map(|r| &r.events)
        .filter(|e| e.level == Level::Warning && e.message.contains("retried next tick"))
        .count();
    assert_eq!(warnings, 2);
    assert_eq!(
        run.failures(),
        [
            (Side::Cloud, "stop", "transitional"),
            (Side::Cloud, "delete", "transitional")
        ]
    );
    let r = run.last();
    assert_eq!(
        (r.counts.serving, r.counts.stopped, r.counts.draining),
        (2, 1, 0)
    );
}

#[test]
fn drains_wait_for_sessions_or_the_drain_timeout() {
    // Sessions last 20 s after a drain, the timeout is 10 s: stopped at the timeout.
    let mut run = Run::new(
        SimConfig {
            drain_time: secs(20),
            ..fast()
        },
        steps(&[(0, 45), (100, 15)], 2000),
        policy::Config {
            scale_down_window: Duration::ZERO,
            ..policy::Config::default()
        },
        controller::Config {
            drain_timeout: secs(10),
            ..controller::Config::default()
        },
    );
    run.until(100);
    assert_eq!(run.last().counts.serving, 5);
    run.until(106);
    assert_eq!(run.last().record.action, "down");
    let drained_at = run.last().at;
    run.until(140);
    let stopped_at = run
        .reports
        .iter()
        .find(|r| {
            r.done
                .iter()
                .any(|d| d.starts_with("stopped") || d.starts_with("deleted"))
        })
        .unwrap()
        .at;
    assert_eq!(stopped_at - drained_at, secs(10), "after the drain timeout");
    // With the default timeout (60 s) it waits for the sessions to end (20 s).
    let mut run = Run::new(
        SimConfig {
            drain_time: secs(20),
            ..fast()
        },
        steps(&[(0, 45), (100, 15)], 2000),
        policy::Config {
            scale_down_window: Duration::ZERO,
            ..policy::Config::default()
        },
        controller::Config::default(),
    );
    run.until(140);
    let drained_at = run
        .reports
        .iter()
        .find(|r| r.record.action == "down")
        .unwrap()
        .at;
    let stopped_at = run
        .reports
        .iter()
        .find(|r| r.done.iter().any(|d| d.starts_with("stopped")))
        .unwrap()
        .at;
    assert_eq!(stopped_at - drained_at, secs(20));
}

#[test]
fn a_balancer_reload_does_not_disturb_the_rate() {
    let mut run = Run::default_with(synthetic::constant(45.0, 2000), fast());
    run.until(100);
    // A reload between two ticks: the counter restarts from 0 with a new pid.
    run.sim.reload_balancer();
    run.sim.advance(secs(2));
    run.until(200);
    let rates: Vec<f64> = run
        .reports
        .iter()
        .filter(|r| r.at > secs(10))
        .filter_map(|r| r.record.rate)
        .collect();
    assert!(rates.iter().all(|&r| (r - 45.0).abs() < 10.0), "{rates:?}");
    assert_eq!(run.actions_after(60), 0);
}

#[test]
fn the_csv_columns_are_the_lab_reports_then_ours() {
    let mut run = Run::default_with(synthetic::constant(45.0, 2000), fast());
    run.until(60);
    let first = &run.reports[0].record;
    assert_eq!(
        (first.rate, first.needed, first.diff, first.action.as_str()),
        (None, None, None, "up:min"),
        "no rate before the second tick; the minimum at once"
    );
    let second = &run.reports[1].record;
    assert_eq!(second.rate, Some(45.0), "the first rate after one interval");
    assert_eq!(
        (second.diff, second.diffpt, second.needed),
        (Some(45), Some(225), Some(5))
    );
    assert_eq!(second.epoch, 5);
    assert_eq!(second.date, "2014-09-28T15:50:03.000000");
    let last = &run.last().record;
    assert_eq!((last.haactive, last.active, last.pending), (5, 5, 0));
    assert_eq!(
        controller::HEADER.join(","),
        "diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate"
    );
}

#[test]
fn min_and_max_are_never_crossed() {
    let mut run = Run::new(
        fast(),
        synthetic::step(0.0, 500.0, 100, 300, 1000),
        policy::Config {
            min: 3,
            max: Some(7),
            scale_down_window: secs(30),
            ..policy::Config::default()
        },
        controller::Config::default(),
    );
    run.min = 3;
    run.until(1000);
    let caps: Vec<u32> = run
        .reports
        .iter()
        .filter(|r| r.at > secs(5))
        .map(|r| r.counts.serving + r.counts.pending)
        .collect();
    assert!(caps.iter().all(|&c| (3..=7).contains(&c)), "{caps:?}");
    assert_eq!(*caps.iter().max().unwrap(), 7);
    assert_eq!(run.last().counts.serving, 3);
    assert!(run.sim.cloud().list().unwrap().len() <= 8);
}

#[test]
fn a_quota_that_leaves_room_for_part_creates_that_part_and_holds_the_rest() {
    // Quota 5: 4 servers, then 3 while the fourth is deleted (its instance counts for 60 s
    // more), then 5 wanted while it still counts: room for one of the two.
    let mut run = Run::new(
        SimConfig {
            quota: Some(5),
            delete_delay: secs(60),
            ..fast()
        },
        steps(&[(0, 35), (150, 25), (250, 45)], 600),
        policy::Config {
            min: 1,
            ..policy::Config::default()
        },
        controller::Config {
            warm_pool: 0,
            ..controller::Config::default()
        },
    );
    run.until(600);
    let events: Vec<(u64, String)> = run
        .reports
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .map(move |e| (r.at.as_secs(), e.to_string()))
        })
        .collect();
    let hold = run
        .reports
        .iter()
        .find(|r| !r.events.is_empty())
        .expect("a hold");
    assert_eq!(
        (
            hold.counts.instances,
            hold.counts.leaving,
            hold.plan.creating()
        ),
        (4, 1, 1),
        "{events:?}"
    );
    // What the warning says is true at that tick, and the hold lasts until the leaving
    // instance is gone, not until the controller's own creation changes the quota.
    assert_eq!(
        events,
        [
            (
                255,
                "warning: the quota has room for 1 of the 2 backend(s) wanted (4 of 5 instances \
                 in use): creating 1, holding 1 until the quota changes"
                    .to_owned()
            ),
            (275, "note: the quota changed: creating again".to_owned()),
        ]
    );
    assert_eq!(run.last().counts.serving, 5, "{}", run.last().log_line());
}
