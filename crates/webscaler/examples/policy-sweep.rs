//! Replays the seed trace and the synthetic traces of `benches-data/` with the seed policy
//! and with the default policy under several stabilization windows, per-tick removal limits
//! and the predictive mode, and prints the elasticity metrics as Markdown tables: the numbers
//! behind the defaults in docs/webscaler-policy.md. All replays use 80-s boots and the
//! seed's quota of 13.
//!
//! `cargo run --release -p webscaler --example policy-sweep [-- BENCHES_DATA_DIR]`

use std::path::PathBuf;
use std::time::Duration;

use webscaler::elasticity::Metrics;
use webscaler::policy::{Config, DefaultPolicy, Policy, Predictive, SeedConfig, SeedPolicy};
use webscaler::replay::{ReplayConfig, replay};
use webscaler::trace::Trace;

const TRACES: [&str; 6] = ["seed", "step", "spike", "ramp", "noisy", "dips"];
const WINDOWS: [u64; 9] = [0, 30, 60, 90, 120, 150, 180, 240, 300];

fn run(trace: &Trace, policy: &mut dyn Policy, interval: u64) -> Metrics {
    let cfg = ReplayConfig {
        interval: Duration::from_secs(interval),
        ..ReplayConfig::default()
    };
    replay(trace, policy, &cfg).metrics
}

fn policy(window: u64, limit: Option<u32>, predictive: bool) -> DefaultPolicy {
    DefaultPolicy::new(Config {
        scale_down_window: Duration::from_secs(window),
        max_remove_per_tick: limit,
        predictive: predictive.then(Predictive::default),
        ..Config::default()
    })
}

fn row(label: &str, m: &Metrics, seed: &Metrics) {
    println!(
        "| {label} | {:.3} ({:+.0}%) | {:.3} | {:.3} | {:.3} | {:+.3} | {:.0} ({:+.0}%) | {} |",
        m.accuracy_under,
        100.0 * (m.accuracy_under / seed.accuracy_under - 1.0),
        m.accuracy_over,
        m.timeshare_under,
        m.timeshare_over,
        m.jitter,
        m.server_seconds,
        100.0 * (m.server_seconds / seed.server_seconds - 1.0),
        m.actions
    );
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches-data"));
    let mut traces = Vec::new();
    for name in TRACES {
        let file = if name == "seed" {
            "seed-trace.csv".to_string()
        } else {
            format!("trace-{name}.csv")
        };
        traces.push((name, Trace::load(dir.join(file))?));
    }

    println!("## Window totals over all six traces (reactive default policy)\n");
    println!(
        "Server-seconds paid, under-provisioned server-seconds (accuracy_U × T), actions, and\n\
         the cost `server-seconds + λ × under-provisioned server-seconds` for λ = 1, 3, 10.\n"
    );
    for interval in [5u64, 60] {
        println!("\n### {interval}-s ticks\n");
        println!("| window | server-s | under server-s | actions | λ=1 | λ=3 | λ=10 |");
        println!("|---|---|---|---|---|---|---|");
        for w in WINDOWS {
            let (mut paid, mut under, mut actions) = (0.0, 0.0, 0);
            for (_, trace) in &traces {
                let m = run(trace, &mut policy(w, None, false), interval);
                paid += m.server_seconds;
                under += m.accuracy_under * trace.end().as_secs_f64();
                actions += m.actions;
            }
            println!(
                "| {w} s | {paid:.0} | {under:.0} | {actions} | {:.0} | {:.0} | {:.0} |",
                paid + under,
                paid + 3.0 * under,
                paid + 10.0 * under
            );
        }
    }

    println!("\n## Per trace (percentages against the seed policy at 60-s ticks)");
    for (name, trace) in &traces {
        let seed = run(trace, &mut SeedPolicy::new(SeedConfig::default()), 60);
        for interval in [60u64, 5] {
            println!("\n### {name} trace, {interval}-s ticks\n");
            println!(
                "| policy | accuracy_U | accuracy_O | timeshare_U | timeshare_O | jitter/min | server-s | actions |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            if interval == 60 {
                row("seed", &seed, &seed);
            }
            for w in [0u64, 60, 120, 180, 300] {
                let m = run(trace, &mut policy(w, None, false), interval);
                row(&format!("default, window {w} s"), &m, &seed);
            }
            let m = run(trace, &mut policy(120, Some(1), false), interval);
            row("default, window 120 s, ≤ 1 removal/tick", &m, &seed);
            for w in [60u64, 120] {
                let m = run(trace, &mut policy(w, None, true), interval);
                row(&format!("default + predictive, window {w} s"), &m, &seed);
            }
        }
    }
    Ok(())
}
