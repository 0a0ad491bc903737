//! Crash and restart: the controller is killed right after each change it makes in turn (a
//! create, a start, an add, a ready, a drain, a stop, a delete, a removal), and a new
//! controller (fresh policy, empty memory) takes over. Whatever the moment, the new one
//! repairs the state from what the cloud and the balancer report, and ends where an
//! uninterrupted run ends.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::Duration;

use webscaler::balancer::Admin;
use webscaler::cloud::Status;
use webscaler::controller::{self, Controller};
use webscaler::policy::{self, DefaultPolicy};
use webscaler::simulation::trace::Trace;
use webscaler::simulation::world::{Sim, SimConfig, SimCrash};

const INTERVAL: Duration = Duration::from_secs(5);
const END: u64 = 1500;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Simulated crashes are expected: keep them out of the test output.
fn quiet_crashes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<SimCrash>().is_none() {
                previous(info);
            }
        }));
    });
}

/// 15 req/s (2 servers), 75 (8) from 100 s, 35 (4) from 400 s, 15 from 700 s; a stopped
/// backend is started for the step at 900 s to 45 req/s (5), and 15 again from 1000 s.
fn trace() -> Trace {
    let pts: [(u64, u64); 6] = [
        (0, 15),
        (100, 75),
        (400, 35),
        (700, 15),
        (900, 45),
        (1000, 15),
    ];
    Trace::new(
        pts.iter()
            .map(|&(t, r)| (secs(t), r * 1_000_000_000))
            .collect(),
        secs(END + 600),
    )
    .unwrap()
}

fn sim_config() -> SimConfig {
    SimConfig {
        boot_delay: secs(20),
        start_delay: secs(10),
        stop_delay: secs(5),
        check_delay: secs(2),
        drain_time: secs(3),
        ..SimConfig::default()
    }
}

fn controller(
    sim: &Sim,
) -> Controller<
    webscaler::simulation::world::SimCloud,
    webscaler::simulation::world::SimBalancer,
    webscaler::simulation::world::SimClock,
    DefaultPolicy,
> {
    Controller::new(
        sim.cloud(),
        sim.balancer(),
        sim.clock(),
        DefaultPolicy::new(policy::Config {
            scale_down_window: secs(60),
            ..policy::Config::default()
        }),
        controller::Config::default(),
    )
}

/// Runs to `END + 300` s; with `crash_after`, the controller dies after that many changes
/// and a new one takes over at the next tick. Returns the sim and whether it crashed.
fn run(crash_after: Option<u64>) -> (Sim, bool) {
    quiet_crashes();
    let sim = Sim::new(sim_config(), trace());
    if let Some(k) = crash_after {
        sim.crash_after(k);
    }
    let mut c = controller(&sim);
    let mut crashed = false;
    while sim.now() < secs(END + 300) {
        let r = catch_unwind(AssertUnwindSafe(|| c.tick()));
        if let Err(payload) = r {
            assert!(
                payload.downcast_ref::<SimCrash>().is_some(),
                "a real panic, not the simulated crash"
            );
            crashed = true;
            // The next run starts from scratch: a new policy, nothing remembered.
            c = controller(&sim);
        }
        sim.advance(INTERVAL);
    }
    (sim, crashed)
}

/// The state an uninterrupted run ends in: 2 serving and ready, one stopped backend kept,
/// nothing else in the cloud or the balancer.
fn assert_converged(sim: &Sim, what: &str) {
    let backends = sim.backends();
    let servers = sim.servers();
    let active: Vec<&str> = backends
        .iter()
        .filter(|b| b.status == Status::Active && b.task.is_none())
        .map(|b| b.name.as_str())
        .collect();
    let stopped = backends
        .iter()
        .filter(|b| b.status == Status::Shutoff && b.task.is_none())
        .count();
    assert_eq!(active.len(), 2, "{what}: {backends:?}");
    assert_eq!(stopped, 1, "{what}: the warm pool: {backends:?}");
    assert_eq!(backends.len(), 3, "{what}: nothing else: {backends:?}");
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names, active,
        "{what}: the balancer has exactly the running backends"
    );
    assert!(
        servers
            .iter()
            .all(|s| s.admin == Admin::Ready && s.takes_traffic),
        "{what}: {servers:?}"
    );
}

#[test]
fn an_uninterrupted_run_ends_converged() {
    let (sim, crashed) = run(None);
    assert!(!crashed);
    assert_converged(&sim, "no crash");
    let calls = sim.calls();
    for kind in [
        "create", "start", "add", "ready", "drain", "stop", "delete", "remove",
    ] {
        assert!(
            calls.iter().any(|c| c.starts_with(kind)),
            "the scenario exercises {kind}: {calls:?}"
        );
    }
}

#[test]
fn a_crash_after_any_change_is_repaired_by_the_next_run() {
    let (reference, _) = run(None);
    let n = reference.calls().len() as u64;
    assert!(n > 30, "{n} changes");
    for k in 1..=n {
        let (sim, crashed) = run(Some(k));
        let what = format!(
            "crash after change {k} ({})",
            reference.calls()[k as usize - 1]
        );
        assert!(crashed, "{what}: no crash happened");
        assert_converged(&sim, &what);
    }
}

#[test]
fn killed_between_create_and_add_the_backend_is_added_not_created_again() {
    let (reference, _) = run(None);
    let calls = reference.calls();
    // The first creation of the step at 100 s (after the two of the start).
    let k = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("create"))
        .nth(2)
        .map(|(i, _)| i as u64 + 1)
        .unwrap();
    quiet_crashes();
    let sim = Sim::new(sim_config(), trace());
    sim.crash_after(k);
    let mut c = controller(&sim);
    while catch_unwind(AssertUnwindSafe(|| c.tick())).is_ok() {
        sim.advance(INTERVAL);
    }
    // Killed right after `create node-3`: it is BUILD in the cloud, unknown to HAProxy.
    let created = sim.backends();
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(sim.servers().iter().all(|s| s.name != "node-3"));
    let mut c = controller(&sim);
    while sim.now() < secs(200) {
        sim.advance(INTERVAL);
        c.tick();
    }
    let servers = sim.servers();
    assert!(
        servers
            .iter()
            .any(|s| s.name == "node-3" && s.takes_traffic),
        "{servers:?}"
    );
    // The new run created the rest of the step, not node-3 again.
    let creates: Vec<String> = sim
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("create"))
        .collect();
    let mut unique = creates.clone();
    unique.dedup();
    assert_eq!(creates, unique);
    assert_eq!(creates.len(), 8, "{creates:?}");
}

#[test]
fn killed_between_drain_and_stop_the_next_run_finishes_the_drain() {
    let (reference, _) = run(None);
    let k = reference
        .calls()
        .iter()
        .position(|c| c.starts_with("drain"))
        .unwrap() as u64
        + 1;
    quiet_crashes();
    let sim = Sim::new(sim_config(), trace());
    sim.crash_after(k);
    let mut c = controller(&sim);
    while catch_unwind(AssertUnwindSafe(|| c.tick())).is_ok() {
        sim.advance(INTERVAL);
    }
    let draining: Vec<String> = sim
        .servers()
        .into_iter()
        .filter(|s| s.admin == Admin::Drain)
        .map(|s| s.name)
        .collect();
    assert_eq!(draining.len(), 1, "killed right after the first drain");
    let name = &draining[0];
    let mut c = controller(&sim);
    sim.advance(INTERVAL);
    let r = c.tick();
    // The drain ended (3 s): the new run stops it at once, without a policy decision
    // (a fresh policy holds any scale-down for a whole window).
    assert!(
        r.done.iter().any(|d| d == &format!("stopped {name}")),
        "{}",
        r.log_line()
    );
    assert!(
        r.done
            .iter()
            .any(|d| d.contains(&format!("removed {name}")))
    );
    assert_eq!(
        sim.calls()
            .iter()
            .filter(|c| c.starts_with("drain"))
            .count(),
        1,
        "not drained twice"
    );
}
