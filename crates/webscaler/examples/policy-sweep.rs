//! Runs `webscaler simulate`'s code (the controller on the simulated world) over the lab report's
//! trace and the synthetic traces of `benches-data/`, with the lab-report policy, the reference
//! policies and the default policy under other settings, and prints the elasticity metrics as
//! Markdown tables: the numbers behind the defaults in docs/webscaler-policy.md. Every run uses 5-s
//! ticks, 80-s boots and the lab report's quota of 13 (the simulated world's defaults) unless a
//! table says otherwise; `trace-days` is scored on its last day, as `simulate --from 4d`.
//!
//! `cargo run --release -p webscaler --example policy-sweep [-- BENCHES_DATA_DIR]`

use std::path::PathBuf;
use std::time::Duration;

use webscaler::policy::{
    Config, DefaultPolicy, HpaConfig, HpaPolicy, Policy, Predictive, SeedConfig, SeedPolicy,
    TargetTrackingConfig, TargetTrackingPolicy,
};
use webscaler::rate::Tolerance;
use webscaler::simulation::elasticity::Metrics;
use webscaler::simulation::run::{SimulateConfig, simulate};
use webscaler::simulation::trace::{Trace, synthetic};
use webscaler::simulation::world::SimConfig;

/// The seven traces of the window and predictor tables.
const TRACES: [&str; 7] = ["seed", "step", "spike", "ramp", "noisy", "dips", "day"];
/// The eight of the comparisons with the reference policies (`days`: its last day).
const ALL: [&str; 8] = [
    "seed", "step", "spike", "noisy", "ramp", "dips", "day", "days",
];
const WINDOWS: [u64; 10] = [0, 30, 45, 60, 75, 90, 120, 180, 240, 300];
const DAY: u64 = 86_400;

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

/// The default policy before the adaptive window and the track record: a band of 0.1, a
/// fixed 60-s window, every sustained rise acted on.
fn previous() -> Config {
    Config {
        tolerance: Tolerance::HPA,
        scale_down_window_max: Config::DEFAULT_WINDOW,
        predictive: Some(Predictive {
            track_record: false,
            ..Predictive::default()
        }),
        ..Config::default()
    }
}

fn run_with(trace: &Trace, policy: impl Policy, sim: &SimulateConfig) -> Metrics {
    simulate(trace, policy, sim).metrics
}

fn run(trace: &Trace, config: Config) -> Metrics {
    run_with(
        trace,
        DefaultPolicy::new(config),
        &SimulateConfig::default(),
    )
}

fn run_seed(trace: &Trace) -> Metrics {
    run_with(
        trace,
        SeedPolicy::new(SeedConfig::default()),
        &SimulateConfig::default(),
    )
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

/// As `scripts/bench-scaler.sh`: lower accuracy_U and at most +5 % server-seconds, or fewer
/// server-seconds at equal accuracy_U.
fn dominates(d: &Metrics, r: &Metrics) -> bool {
    let cost = d.server_seconds / r.server_seconds;
    (d.accuracy_under < r.accuracy_under && cost <= 1.05)
        || (d.accuracy_under == r.accuracy_under && cost < 1.0)
}

/// `accuracy_U / server-seconds against the reference`, and ✓ where it dominates.
fn against(d: &Metrics, r: &Metrics) -> String {
    format!(
        "{:.3} / {:+.1}%{}",
        d.accuracy_under,
        100.0 * (d.server_seconds / r.server_seconds - 1.0),
        if dominates(d, r) { " ✓" } else { "" }
    )
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

/// The eight traces of the comparisons.
fn all_traces(dir: &std::path::Path) -> anyhow::Result<Vec<(&'static str, Trace)>> {
    let mut traces = Vec::new();
    for name in ALL {
        let file = if name == "seed" {
            "seed-trace.csv".to_string()
        } else {
            format!("trace-{name}.csv")
        };
        let trace = Trace::load(dir.join(file))?;
        let trace = if name == "days" {
            last_day(&trace)?
        } else {
            trace
        };
        traces.push((name, trace));
    }
    Ok(traces)
}

/// The fifth day of a multi-day trace (`simulate --from 4d`).
fn last_day(trace: &Trace) -> anyhow::Result<Trace> {
    trace
        .after(secs(4 * DAY))
        .ok_or_else(|| anyhow::anyhow!("a trace of fewer than five days"))
}

/// How many of `traces` the default policy with `config` dominates HPA and target tracking
/// on, in the world `sim`.
fn dominated(traces: &[(&str, Trace)], config: Config, sim: &SimulateConfig) -> (usize, usize) {
    let (mut hpa, mut tt) = (0, 0);
    for (_, trace) in traces {
        let d = run_with(trace, DefaultPolicy::new(config), sim);
        let h = run_with(trace, HpaPolicy::new(HpaConfig::default()), sim);
        let t = run_with(
            trace,
            TargetTrackingPolicy::new(TargetTrackingConfig::default()),
            sim,
        );
        hpa += usize::from(dominates(&d, &h));
        tt += usize::from(dominates(&d, &t));
    }
    (hpa, tt)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches-data"));
    let all = all_traces(&dir)?;
    let traces: Vec<(&str, Trace)> = TRACES
        .iter()
        .map(|name| {
            let (_, t) = all.iter().find(|(n, _)| n == name).expect("every trace");
            (*name, t.clone())
        })
        .collect();
    let seeds: Vec<Metrics> = traces.iter().map(|(_, t)| run_seed(t)).collect();
    let defaults = Config::default();
    let window = defaults.scale_down_window.as_secs();
    let sim = SimulateConfig::default();
    let hpa: Vec<Metrics> = all
        .iter()
        .map(|(_, t)| run_with(t, HpaPolicy::new(HpaConfig::default()), &sim))
        .collect();
    let tt: Vec<Metrics> = all
        .iter()
        .map(|(_, t)| {
            run_with(
                t,
                TargetTrackingPolicy::new(TargetTrackingConfig::default()),
                &sim,
            )
        })
        .collect();

    println!(
        "## The default policy, step by step, against HPA (accuracy_U / server-seconds against HPA's; ✓: dominates)\n"
    );
    print!("| default policy |");
    for name in ALL {
        print!(" {name} |");
    }
    println!(" dominates hpa | dominates target-tracking |");
    println!("|---|{}---|---|", "---|".repeat(ALL.len()));
    let no_track = |c: Config| Config {
        predictive: c.predictive.map(|p| Predictive {
            track_record: false,
            ..p
        }),
        ..c
    };
    let fixed = |c: Config| Config {
        scale_down_window_max: c.scale_down_window,
        ..c
    };
    let steps: [(&str, Config); 6] = [
        (
            "previous: band 0.1, fixed 60-s window, every prediction",
            previous(),
        ),
        (
            "band 0.1, adaptive window",
            Config {
                scale_down_window_max: Config::DEFAULT_WINDOW_MAX,
                ..previous()
            },
        ),
        ("no band, fixed window", fixed(no_track(defaults))),
        ("no band, adaptive window", no_track(defaults)),
        (
            "band 0.1, adaptive window, track record",
            Config {
                tolerance: Tolerance::HPA,
                ..defaults
            },
        ),
        (
            "**no band, adaptive window, track record (the default)**",
            defaults,
        ),
    ];
    for (label, config) in steps {
        print!("| {label} |");
        let (mut h, mut t) = (0, 0);
        for (i, (_, trace)) in all.iter().enumerate() {
            let m = run(trace, config);
            print!(" {} |", against(&m, &hpa[i]));
            h += usize::from(dominates(&m, &hpa[i]));
            t += usize::from(dominates(&m, &tt[i]));
        }
        println!(" {h} of 8 | {t} of 8 |");
    }
    print!("| hpa (accuracy_U, server-s) |");
    for m in &hpa {
        print!(" {:.3}, {:.0} |", m.accuracy_under, m.server_seconds);
    }
    println!(" | |");

    println!(
        "\n## The adaptive window's settings (accuracy_U / server-seconds against HPA; ✓: dominates; seed: against the lab report's policy)\n"
    );
    println!("| maximum | regret | seed | dips | day | days | dominates hpa |");
    println!("|---|---|---|---|---|---|---|");
    let seed_trace = &all[0].1;
    let seed_policy = run_seed(seed_trace);
    for (max, regret) in [
        (120, 120),
        (180, 120),
        (300, 60),
        (300, 120),
        (300, 180),
        (600, 120),
    ] {
        let config = Config {
            scale_down_window_max: secs(max),
            scale_down_regret: secs(regret),
            ..defaults
        };
        let mark = if config == defaults { "**" } else { "" };
        print!("| {mark}{max} s{mark} | {mark}{regret} s{mark} |");
        let s = run(seed_trace, config);
        print!(
            " {} / {} |",
            pct(s.accuracy_under, seed_policy.accuracy_under),
            pct(s.server_seconds, seed_policy.server_seconds)
        );
        for name in ["dips", "day", "days"] {
            let i = ALL.iter().position(|n| *n == name).expect("a trace");
            print!(" {} |", against(&run(&all[i].1, config), &hpa[i]));
        }
        let h = all
            .iter()
            .enumerate()
            .filter(|(i, (_, t))| dominates(&run(t, config), &hpa[*i]))
            .count();
        println!(" {h} of 8 |");
    }

    println!(
        "\n## Other ticks and boots: traces (of 8) on which the default dominates hpa / target-tracking\n"
    );
    println!("| world | previous default | the default |");
    println!("|---|---|---|");
    let worlds: [(&str, SimulateConfig); 5] = [
        ("5-s ticks, 80-s boots (the benchmark)", sim.clone()),
        (
            "15-s ticks",
            SimulateConfig {
                interval: secs(15),
                ..sim.clone()
            },
        ),
        (
            "30-s ticks",
            SimulateConfig {
                interval: secs(30),
                ..sim.clone()
            },
        ),
        ("40-s boots", with_boot(&sim, 40)),
        ("160-s boots", with_boot(&sim, 160)),
    ];
    for (label, world) in worlds {
        let (ph, pt) = dominated(&all, previous(), &world);
        let (dh, dt) = dominated(&all, defaults, &world);
        println!("| {label} | {ph} / {pt} | {dh} / {dt} |");
    }

    println!(
        "\n## Other noise: the day and the days traces from other seeds of their generators (accuracy_U / server-seconds against HPA; ✓: dominates)\n"
    );
    println!("| trace | seed | hpa accuracy_U | previous default | the default |");
    println!("|---|---|---|---|---|");
    for seed in 1..=7u64 {
        for (name, trace) in [
            ("day", synthetic::diurnal(10.0, 120.0, 0.05, 60, DAY, seed)),
            ("days", last_day(&synthetic::days(5, 0.05, 0.08, 2, seed))?),
        ] {
            let h = run_with(&trace, HpaPolicy::new(HpaConfig::default()), &sim);
            println!(
                "| {name} | {seed}{} | {:.3} | {} | {} |",
                if seed == 1 { " (shipped)" } else { "" },
                h.accuracy_under,
                against(&run(&trace, previous()), &h),
                against(&run(&trace, defaults), &h)
            );
        }
    }

    println!(
        "\n## Every trace: the lab-report policy, the default policy, and the default without prediction\n"
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

    for (adaptive, predictive) in [
        (true, defaults.predictive),
        (false, defaults.predictive),
        (true, None),
    ] {
        println!(
            "\n## Base windows, {}, {} (accuracy_U and server-seconds against the lab-report policy)\n",
            if adaptive {
                "adaptive (up to 300 s after a regret)"
            } else {
                "fixed"
            },
            if predictive.is_some() {
                "predictive"
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
            let mark = if w == window && predictive.is_some() && adaptive {
                "**"
            } else {
                ""
            };
            print!("| {mark}{w} s{mark} |");
            let (mut paid, mut under, mut actions) = (0.0, 0.0, 0);
            for ((_, trace), seed) in traces.iter().zip(&seeds) {
                let config = default_with(w, predictive);
                let config = if adaptive { config } else { fixed(config) };
                let m = run(trace, config);
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
    println!("\n## The sustained-rise tests and the track record off (window {window} s)\n");
    print!("| predictor |");
    for name in ALL {
        print!(" {name} |");
    }
    println!("\n|---|{}", "---|".repeat(ALL.len()));
    let all_seeds: Vec<Metrics> = all.iter().map(|(_, t)| run_seed(t)).collect();
    for (label, p) in [
        ("default", Predictive::default()),
        (
            "no track record",
            Predictive {
                track_record: false,
                ..Predictive::default()
            },
        ),
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
        for ((_, trace), seed) in all.iter().zip(&all_seeds) {
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

fn with_boot(sim: &SimulateConfig, boot: u64) -> SimulateConfig {
    SimulateConfig {
        world: SimConfig {
            boot_delay: secs(boot),
            start_delay: secs(boot),
            ..sim.world.clone()
        },
        ..sim.clone()
    }
}
