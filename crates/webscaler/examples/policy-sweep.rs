//! Runs `webscaler simulate`'s code (the controller on the simulated world) over the seed trace
//! and the synthetic traces of `benches-data/`, with the seed policy and with the default
//! policy under several stabilization windows, with and without the predictive mode, and
//! prints the elasticity metrics as Markdown tables: the numbers behind the defaults in
//! docs/webscaler-policy.md. Every run uses 5-s ticks, 80-s boots and the seed's quota of 13
//! (the simulated world's defaults).
//!
//! `cargo run --release -p webscaler --example policy-sweep [-- BENCHES_DATA_DIR]`

use std::path::PathBuf;
use std::time::Duration;

use webscaler::policy::{Config, DefaultPolicy, Predictive, SeedConfig, SeedPolicy};
use webscaler::simulation::elasticity::Metrics;
use webscaler::simulation::run::{SimulateConfig, simulate};
use webscaler::simulation::trace::Trace;

const TRACES: [&str; 7] = ["seed", "step", "spike", "ramp", "noisy", "dips", "day"];
const WINDOWS: [u64; 10] = [0, 30, 45, 60, 75, 90, 120, 180, 240, 300];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn default_with(window: u64, predictive: Option<Predictive>) -> Config {
    Config {
        scale_down_window: secs(window),
        predictive,
        ..Config::default()
    }
}

fn run(trace: &Trace, config: Config) -> Metrics {
    simulate(
        trace,
        DefaultPolicy::new(config),
        &SimulateConfig::default(),
    )
    .metrics
}

fn run_seed(trace: &Trace) -> Metrics {
    simulate(
        trace,
        SeedPolicy::new(SeedConfig::default()),
        &SimulateConfig::default(),
    )
    .metrics
}

fn pct(x: f64, base: f64) -> String {
    if base == 0.0 {
        if x == 0.0 {
            "±0%".into()
        } else {
            "n/a".into()
        }
    } else {
        format!("{:+.0}%", 100.0 * (x / base - 1.0))
    }
}

fn row(label: &str, m: &Metrics, seed: &Metrics) {
    println!(
        "| {label} | {:.3} ({}) | {:.3} | {:.3} | {:.3} | {:+.3} | {:.0} ({}) | {} |",
        m.accuracy_under,
        pct(m.accuracy_under, seed.accuracy_under),
        m.accuracy_over,
        m.timeshare_under,
        m.timeshare_over,
        m.jitter,
        m.server_seconds,
        pct(m.server_seconds, seed.server_seconds),
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
    let seeds: Vec<Metrics> = traces.iter().map(|(_, t)| run_seed(t)).collect();
    let defaults = Config::default();
    let window = defaults.scale_down_window.as_secs();

    println!(
        "## Every trace: the seed policy, the default policy, and the default without prediction\n"
    );
    println!(
        "| trace, policy | accuracy_U | accuracy_O | timeshare_U | timeshare_O | jitter/min | server-s | actions |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, trace), seed) in traces.iter().zip(&seeds) {
        row(&format!("{name}, seed"), seed, seed);
        row(&format!("{name}, default"), &run(trace, defaults), seed);
        row(
            &format!("{name}, default, reactive"),
            &run(
                trace,
                Config {
                    predictive: None,
                    ..defaults
                },
            ),
            seed,
        );
    }

    for predictive in [defaults.predictive, None] {
        println!(
            "\n## Stabilization windows, {} (accuracy_U and server-seconds against the seed policy)\n",
            if predictive.is_some() {
                "predictive (the default)"
            } else {
                "reactive"
            }
        );
        print!("| window |");
        for name in TRACES {
            print!(" {name} |");
        }
        println!(" paid | under | actions | paid + 3 × under | paid + 10 × under |");
        println!("|---|{}---|---|---|---|---|", "---|".repeat(TRACES.len()));
        for w in WINDOWS {
            let mark = if w == window && predictive.is_some() {
                "**"
            } else {
                ""
            };
            print!("| {mark}{w} s{mark} |");
            let (mut paid, mut under, mut actions) = (0.0, 0.0, 0);
            for ((_, trace), seed) in traces.iter().zip(&seeds) {
                let m = run(trace, default_with(w, predictive));
                print!(
                    " {} / {} / {} |",
                    pct(m.accuracy_under, seed.accuracy_under),
                    pct(m.server_seconds, seed.server_seconds),
                    m.actions
                );
                paid += m.server_seconds;
                under += m.accuracy_under * trace.end().as_secs_f64();
                actions += m.actions;
            }
            println!(
                " {paid:.0} | {under:.0} | {actions} | {:.0} | {:.0} |",
                paid + 3.0 * under,
                paid + 10.0 * under
            );
        }
    }

    println!(
        "\n## The predictive mode's lead and history (window {window} s; seed, ramp and day traces)\n"
    );
    println!("| history | lead | seed U / server-s / actions | ramp | day |");
    println!("|---|---|---|---|---|");
    let pick = [0usize, 3, 6];
    for history in [90u64, 120, 180] {
        for lead in [80u64, 100, 120, 150] {
            let p = Predictive {
                history: secs(history),
                lead: secs(lead),
                ..Predictive::default()
            };
            print!("| {history} s | {lead} s |");
            for &i in &pick {
                let m = run(&traces[i].1, default_with(window, Some(p)));
                print!(
                    " {} / {} / {} |",
                    pct(m.accuracy_under, seeds[i].accuracy_under),
                    pct(m.server_seconds, seeds[i].server_seconds),
                    m.actions
                );
            }
            println!();
        }
    }
    println!("\n## The sustained-rise tests off (window {window} s)\n");
    println!("| predictor | seed | step | spike | ramp | noisy | dips | day |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, p) in [
        ("default", Predictive::default()),
        (
            "no jump test",
            Predictive {
                max_jump: 1.0,
                ..Predictive::default()
            },
        ),
        (
            "no jump test, no minimum rise",
            Predictive {
                max_jump: 1.0,
                min_rise: 0.0,
                ..Predictive::default()
            },
        ),
    ] {
        print!("| {label} |");
        for ((_, trace), seed) in traces.iter().zip(&seeds) {
            let m = run(trace, default_with(window, Some(p)));
            print!(
                " {} / {} / {} |",
                pct(m.accuracy_under, seed.accuracy_under),
                pct(m.server_seconds, seed.server_seconds),
                m.actions
            );
        }
        println!();
    }
    Ok(())
}
