//! `webscaler simulate` and `webscaler plot` from the command line: the metrics (text and
//! JSON), the CSV, the lab report's needed column end to end, the figure, and bad input.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use webscaler::controller::{HEADER, record::read_csv};
use webscaler::policy::{self, DefaultPolicy};
use webscaler::simulation::run::{SimulateConfig, simulate};
use webscaler::simulation::trace::Trace;

/// The variables the policy flags read: a test must not see the caller's.
const VARS: [&str; 12] = [
    "WEBSCALER_INTERVAL",
    "WEBSCALER_POLICY",
    "WEBSCALER_THRESHOLD",
    "WEBSCALER_MIN",
    "WEBSCALER_MAX",
    "WEBSCALER_TOLERANCE",
    "WEBSCALER_SCALE_DOWN_WINDOW",
    "WEBSCALER_MAX_REMOVE_PER_TICK",
    "WEBSCALER_HOLD_DOWN_WHILE_PENDING",
    "WEBSCALER_PREDICTIVE",
    "WEBSCALER_WARM_POOL",
    "WEBSCALER_CONFIG",
];

fn bin() -> Command {
    let mut c = Command::cargo_bin("webscaler").unwrap();
    for v in VARS {
        c.env_remove(v);
    }
    c
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches-data")
        .join(name)
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = bin()
        .arg("simulate")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether two metric objects have the same keys and the same values (to 10^-12: JSON text
/// does not carry every bit of a float).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    a.len() == b.len()
        && a.iter().all(|(k, x)| {
            let (x, y) = (x.as_f64().unwrap(), b[k].as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(1.0)
        })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn json_has_exactly_the_keys_and_the_librarys_numbers() {
    let trace = data("trace-step.csv");
    let v = json(&["--trace", path(&trace)]);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accuracy_over",
            "accuracy_under",
            "actions",
            "jitter",
            "server_seconds",
            "timeshare_over",
            "timeshare_under",
            "underprovisioned_seconds"
        ]
    );
    let lib = simulate(
        &Trace::load(&trace).unwrap(),
        DefaultPolicy::new(policy::Config::default()),
        &SimulateConfig::default(),
    )
    .metrics;
    assert!(
        same(&v, &serde_json::to_value(lib).unwrap()),
        "{v} vs {lib:?}"
    );
    // The text form: one `name value` line per metric, in the same order.
    let out = bin()
        .args(["simulate", "--trace", path(&trace)])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "accuracy_under",
            "accuracy_over",
            "timeshare_under",
            "timeshare_over",
            "jitter",
            "server_seconds",
            "actions",
            "underprovisioned_seconds"
        ]
    );
    assert!(text.contains(&format!(
        "server_seconds            {:.0}",
        lib.server_seconds
    )));
}

#[test]
fn a_constant_k_times_the_threshold_gives_exactly_k_backends_and_no_jitter() {
    let dir = tempfile::tempdir().unwrap();
    // Rates whose requests per 5-s tick are whole numbers, as the balancer's counter counts
    // them (87.5 req/s would read 437 and 438 requests, 87.4 and 87.6 req/s, by turns).
    for (k, threshold) in [(3u32, "10"), (8, "12.5"), (13, "0.2")] {
        let rate = f64::from(k) * threshold.parse::<f64>().unwrap();
        let trace = dir.path().join(format!("k{k}.csv"));
        std::fs::write(&trace, format!("seconds,rate\n0,{rate}\n3600,{rate}\n")).unwrap();
        let csv = dir.path().join(format!("k{k}-run.csv"));
        let v = json(&[
            "--trace",
            path(&trace),
            "--threshold",
            threshold,
            "-o",
            path(&csv),
        ]);
        assert_eq!(v["accuracy_under"], 0.0, "k = {k}");
        assert_eq!(v["accuracy_over"], 0.0, "k = {k}");
        assert_eq!(v["jitter"], 0.0, "k = {k}");
        assert_eq!(v["actions"], 0, "k = {k}");
        assert_eq!(v["server_seconds"], f64::from(k) * 3600.0, "k = {k}");
        let rows = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
        assert_eq!(rows.len(), 721, "a tick every 5 s from 0 to 3600");
        for r in &rows {
            assert_eq!((r.haactive, r.active, r.pending), (k, k, 0), "{r:?}");
        }
        assert!(rows[1..].iter().all(|r| r.needed == Some(k)));
    }
}

#[test]
fn the_lab_report_policy_gives_listing_1_7s_needed_column_end_to_end() {
    // The lab report's logged run (its listing 1.7), lines 2 to 26: the `needed` column.
    let listing: [Option<u32>; 25] = [
        None,
        Some(0),
        Some(1),
        Some(1),
        Some(1),
        Some(2),
        Some(3),
        Some(5),
        Some(8),
        Some(14),
        Some(10),
        Some(7),
        Some(3),
        Some(3),
        Some(3),
        Some(2),
        Some(1),
        Some(1),
        Some(1),
        Some(1),
        Some(1),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
    ];
    let dir = tempfile::tempdir().unwrap();
    for interval in ["5s", "60s"] {
        let csv = dir.path().join(format!("seed-{interval}.csv"));
        bin()
            .args(["simulate", "--policy", "seed", "--interval", interval])
            .args(["--trace", path(&data("seed-trace.csv")), "-o", path(&csv)])
            .assert()
            .success();
        let rows = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
        // One round a minute (the ticks between hold for the next round).
        let rounds: Vec<_> = rows.iter().filter(|r| r.action != "hold:round").collect();
        assert_eq!(rounds.len(), 25, "{interval}");
        for (j, (r, want)) in rounds.iter().zip(listing).enumerate() {
            assert_eq!(r.epoch, 60 * j as u64, "{interval}");
            assert_eq!(r.needed, want, "line {} of the listing ({interval})", j + 2);
        }
        assert_eq!(rounds[0].action, "hold:baseline");
        assert_eq!(rounds[1].action, "hold:baseline");
    }
}

#[test]
fn the_csv_has_runs_header_and_replaces_an_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    std::fs::write(&csv, "not a CSV of ours\n").unwrap();
    let spike = data("trace-spike.csv");
    let args = [
        "simulate",
        "--trace",
        path(&spike),
        "-o",
        path(&csv),
        "--utc",
    ];
    bin().args(args).assert().success();
    bin().args(args).assert().success();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
    let rows = read_csv(&text).unwrap();
    assert_eq!(rows.len(), 2400 / 5 + 1, "replaced, not appended");
    // The simulated clock starts at the lab report's first timestamp (listing 1.7).
    assert_eq!(rows[0].date, "2014-09-28T15:49:58.000000Z");
    assert_eq!(rows[1].date, "2014-09-28T15:50:03.000000Z");
    assert_eq!((rows[1].epoch, rows[480].epoch), (5, 2400));
    // No temporary file is left.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_profile_is_simulated_as_the_rate_its_stages_add_up_to() {
    let profile = data("seed-profile.toml");
    let v = json(&["--profile", path(&profile)]);
    let lib = simulate(
        &Trace::load_profile(&profile).unwrap(),
        DefaultPolicy::new(policy::Config::default()),
        &SimulateConfig::default(),
    )
    .metrics;
    assert!(
        same(&v, &serde_json::to_value(lib).unwrap()),
        "{v} vs {lib:?}"
    );
}

#[test]
fn the_policy_flags_and_the_configuration_file_are_runs() {
    let trace = data("trace-dips.csv");
    let t = Trace::load(&trace).unwrap();
    let lib = |config: policy::Config| {
        serde_json::to_value(
            simulate(&t, DefaultPolicy::new(config), &SimulateConfig::default()).metrics,
        )
        .unwrap()
    };
    let window = |s: u64| policy::Config {
        scale_down_window: Duration::from_secs(s),
        ..policy::Config::default()
    };
    // 10 minutes hold every dip (a window longer than the default maximum raises the
    // maximum with it); 60 s, the default, releases in two.
    assert!(
        !same(&lib(window(600)), &lib(window(60))),
        "the window matters here"
    );
    assert!(same(
        &json(&["--trace", path(&trace), "--scale-down-window", "10m"]),
        &lib(window(600))
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("webscaler.toml");
    std::fs::write(
        &cfg,
        "scale_down_window = \"10m\"\n[haproxy]\nfrontend = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    assert!(same(
        &json(&["--trace", path(&trace), "--config", path(&cfg)]),
        &lib(window(600))
    ));
    // A flag wins over the file.
    assert!(same(
        &json(&[
            "--trace",
            path(&trace),
            "--config",
            path(&cfg),
            "--scale-down-window",
            "60s"
        ]),
        &lib(window(60))
    ));
    // --predictive false: the reactive policy.
    let ramp = data("trace-ramp.csv");
    let reactive = simulate(
        &Trace::load(&ramp).unwrap(),
        DefaultPolicy::new(policy::Config {
            predictive: None,
            ..policy::Config::default()
        }),
        &SimulateConfig::default(),
    )
    .metrics;
    let off = json(&["--trace", path(&ramp), "--predictive", "false"]);
    assert!(same(&off, &serde_json::to_value(reactive).unwrap()));
    assert!(!same(&off, &json(&["--trace", path(&ramp)])));
    // The adaptive window: a maximum as long as the window fixes it (the dips trace regrets
    // its first release, so the adaptation matters there), from a flag or the file.
    let with = |max: u64, regret: u64| policy::Config {
        scale_down_window_max: Duration::from_secs(max),
        scale_down_regret: Duration::from_secs(regret),
        ..policy::Config::default()
    };
    let fixed = json(&["--trace", path(&trace), "--scale-down-window-max", "1m"]);
    assert!(same(&fixed, &lib(with(60, 120))));
    assert!(!same(&fixed, &lib(policy::Config::default())));
    assert!(same(
        &json(&["--trace", path(&trace), "--scale-down-regret", "0s"]),
        &lib(with(300, 0))
    ));
    std::fs::write(
        &cfg,
        "scale_down_window_max = \"1m\"\n[haproxy]\nfrontend = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    assert!(same(
        &json(&["--trace", path(&trace), "--config", path(&cfg)]),
        &fixed
    ));
}

#[test]
fn plot_draws_the_four_series_as_svg() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("seed.csv");
    bin()
        .args([
            "simulate",
            "--trace",
            path(&data("seed-trace.csv")),
            "-o",
            path(&csv),
        ])
        .assert()
        .success();
    let svg = dir.path().join("fig.svg");
    bin()
        .args(["plot", path(&csv), "-o", path(&svg)])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "289 ticks, peak 131.2 req/s, at most 13 active servers",
        ));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for want in [
        "Scaling of servers: seed.csv",
        "request rate",
        "active servers",
        "pending servers",
        "needed servers",
        "requests per second",
        "servers",
    ] {
        assert!(texts.contains(&want), "no {want:?} in {texts:?}");
    }
    // One polyline per series (and the axes' own lines are not polylines).
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 4, "{lines} polylines");
    // Without -o: next to the CSV, with the extension .svg.
    bin().args(["plot", path(&csv)]).assert().success();
    assert!(dir.path().join("seed.svg").exists());
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_line_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.csv");
    std::fs::write(&garbage, "seconds,rate\n0,10\n60,lots\n120,0\n").unwrap();
    let missing = dir.path().join("missing.csv");
    let bad_profile = dir.path().join("bad.toml");
    std::fs::write(&bad_profile, "[[stage]]\nstart = 0\nrate = \"x\"\n").unwrap();
    let one_line = |args: &[&str], want: &str| {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    };
    one_line(
        &["simulate", "--trace", path(&garbage)],
        &format!("{}:3: rate: `lots`", garbage.display()),
    );
    one_line(
        &["simulate", "--trace", path(&missing)],
        &format!("{}: No such file", missing.display()),
    );
    one_line(
        &["simulate", "--profile", path(&bad_profile)],
        &format!("{}:3", bad_profile.display()),
    );
    one_line(
        &[
            "simulate",
            "--trace",
            path(&data("trace-step.csv")),
            "--quota",
            "0",
        ],
        "--quota must be at least 1",
    );
    one_line(
        &[
            "simulate",
            "--trace",
            path(&data("trace-step.csv")),
            "--min",
            "5",
            "--max",
            "3",
        ],
        "min (5) is above max (3)",
    );
    one_line(
        &[
            "simulate",
            "--trace",
            path(&data("trace-step.csv")),
            "--scale-down-window-max",
            "30s",
        ],
        "scale_down_window_max (30s) is shorter than scale_down_window (1m0s)",
    );
    one_line(
        &["plot", path(&garbage)],
        &format!("{}:1: the header is", garbage.display()),
    );
    one_line(
        &["plot", path(&missing)],
        &format!("{}: No such file", missing.display()),
    );
    let torn = dir.path().join("torn.csv");
    std::fs::write(
        &torn,
        format!(
            "{}\n,2,2,0,0,2014-09-28T15:49:58.000000,,,0,0,hold,\n5,2,x,5\n",
            HEADER.join(",")
        ),
    )
    .unwrap();
    one_line(&["plot", path(&torn)], &format!("{}:3:", torn.display()));
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, format!("{}\n", HEADER.join(","))).unwrap();
    one_line(&["plot", path(&empty)], "no rows after the header");
    // Both inputs, or none: clap's usage errors.
    bin()
        .args(["simulate", "--trace", "a", "--profile", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    bin().arg("simulate").assert().code(2);
}

#[test]
fn the_reference_policies_and_the_oracle_run_in_simulate_and_only_the_oracle_is_refused_by_run() {
    let step = data("trace-step.csv");
    let m = |policy: &str, more: &[&str]| {
        let mut args = vec!["--trace", path(&step), "--policy", policy];
        args.extend_from_slice(more);
        json(&args)
    };
    // The hand-computed decisions of the library tests, end to end: HPA 2 → 6 → 8 → 2,
    // target tracking 2 → 8 → 2, the oracle 2 → 8 → 2 and never short.
    assert_eq!(m("hpa", &[])["actions"], 3);
    assert_eq!(m("target-tracking", &[])["actions"], 2);
    let oracle = m("oracle", &[]);
    assert_eq!(oracle["accuracy_under"], 0.0);
    assert_eq!(oracle["actions"], 2);
    // The flags mirror HPA's and AWS's settings: a shorter downscale window releases the
    // servers sooner; one period above the target scales out sooner.
    let hpa = m("hpa", &[]);
    let hpa_short = m("hpa", &["--hpa-downscale-window", "30s"]);
    assert!(hpa_short["server_seconds"].as_f64() < hpa["server_seconds"].as_f64());
    let tt = m("target-tracking", &[]);
    let tt_fast = m("target-tracking", &["--tt-scale-out-periods", "1"]);
    assert!(tt_fast["accuracy_under"].as_f64() < tt["accuracy_under"].as_f64());
    // `run` takes hpa and target-tracking, and refuses the oracle before starting anything.
    let home = tempfile::tempdir().unwrap();
    for p in ["hpa", "target-tracking"] {
        bin()
            .env("HOME", home.path())
            .current_dir(home.path())
            .args(["run", "--check-config", "--policy", p])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("policy = \"{p}\"")));
    }
    let out = bin()
        .env("HOME", home.path())
        .current_dir(home.path())
        .args(["run", "--policy", "oracle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("only `webscaler simulate` can run it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "nothing started"
    );
}

#[test]
fn history_is_learnt_from_earlier_days_as_traces_or_runs_csv() {
    // Minute ticks keep the day-long runs of this debug binary short; the bars at 5-s ticks
    // are the library's test and scripts/bench-scaler.sh.
    let dir = tempfile::tempdir().unwrap();
    let days = data("trace-days.csv");
    let scored = |more: &[&str]| {
        let mut args = vec!["--trace", path(&days), "--from", "4d", "--interval", "60s"];
        args.extend_from_slice(more);
        json(&args)
    };
    let under = |m: &serde_json::Value| m["accuracy_under"].as_f64().unwrap();
    let without = scored(&[]);
    let with = scored(&["--learn"]);
    assert!(under(&with) < 0.5 * under(&without), "{with} vs {without}");
    // The same four days as a history file are the same history.
    let trace = Trace::load(&days).unwrap();
    let cut = |secs: u64, name: &str| {
        let p = dir.path().join(name);
        let part = trace.before(Duration::from_secs(secs)).unwrap();
        std::fs::write(&p, part.to_csv()).unwrap();
        p
    };
    let first4 = cut(4 * 86_400, "first4.csv");
    assert!(same(&scored(&["--history", path(&first4)]), &with));
    // A run's CSV is history too: day 0 simulated with minute ticks (rates exact on the
    // trace's minutes) teaches what day 0 as a trace teaches.
    let day0 = cut(86_400, "day0.csv");
    let run = dir.path().join("run.csv");
    bin()
        .args([
            "simulate",
            "--trace",
            path(&day0),
            "--from",
            "0s",
            "--interval",
            "60s",
        ])
        .args(["--utc", "-o", path(&run)])
        .assert()
        .success();
    let from_trace = scored(&["--history", path(&day0)]);
    let from_run = scored(&["--history", path(&run)]);
    assert!(same(&from_trace, &from_run), "{from_trace} vs {from_run}");
    assert!(!same(&from_trace, &without));
    // Less than a day does nothing, and says so.
    let half = cut(43_200, "half.csv");
    let out = bin()
        .args([
            "simulate",
            "--trace",
            path(&days),
            "--from",
            "4d",
            "--interval",
            "60s",
        ])
        .args(["--json", "--history", path(&half)])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("history not used"));
    assert!(same(
        &serde_json::from_slice(&out.stdout).unwrap(),
        &without
    ));
}

#[test]
fn bad_history_and_policy_combinations_exit_2() {
    let step = data("trace-step.csv");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "date,rate\n2024-01-01T00:00:00Z,1\nyesterday,2\n").unwrap();
    let fails = |args: &[&str], want: &str| {
        let out = bin().arg("simulate").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fails(
        &["--trace", path(&step), "--history", "/nonexistent/h.csv"],
        "cannot read history /nonexistent/h.csv",
    );
    fails(
        &["--trace", path(&step), "--history", path(&bad)],
        &format!("{}:3: date: cannot read `yesterday`", bad.display()),
    );
    fails(
        &[
            "--trace",
            path(&step),
            "--policy",
            "hpa",
            "--history",
            path(&step),
        ],
        "history is used by the default policy only",
    );
    fails(&["--trace", path(&step), "--learn"], "--from");
    fails(
        &[
            "--trace",
            path(&step),
            "--from",
            "1h",
            "--learn",
            "--policy",
            "seed",
        ],
        "--learn is for the default policy",
    );
    fails(
        &["--trace", path(&step), "--from", "2h"],
        "is not before the end",
    );
    fails(
        &["--trace", path(&step), "--policy", "hpa2"],
        "unknown policy `hpa2`",
    );
}
