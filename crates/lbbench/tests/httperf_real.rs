//! `lbbench run` and `lbbench sweep` with the real httperf against the real benchmark backend
//! (`lbbench backend`, the lab report's perf.php) on 127.0.0.1, with small numbers (20–50
//! connections/s, runs of at most 3 s).

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use common::process::Supervised;
use common::wait::poll_until;
use lbbench::cpu::ProcessSelector;
use lbbench::httperf::{Httperf, HttperfArgs, HttperfError, Report, Validity};
use lbbench::sweep::{
    CpuObserver, ObserverError, PlannedRun, ProgressMode, RunResult, SweepConfig, SweepObserver,
    run_sweep,
};
use support::{Backend, DEADLINE, POLL, line_count, processes_with, read_rows};

fn lbbench() -> Command {
    Command::cargo_bin("lbbench").expect("the lbbench binary")
}

fn httperf() -> Httperf {
    Httperf::locate(None).expect("httperf must be installed (scripts/setup.sh)")
}

#[test]
fn run_prints_the_parsed_report_as_csv_json_and_a_table() {
    let server = Backend::start();
    let port = server.port().to_string();
    let base = [
        "run",
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--rate",
        "25",
        "--num-conns",
        "25",
        "--uri",
        "/perf.php?sleep=0.01",
    ];
    let out = lbbench().args(base).arg("--csv").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    let expected: Vec<&str> = Report::COLUMNS
        .iter()
        .chain(Validity::COLUMNS)
        .copied()
        .collect();
    assert_eq!(header, expected);
    let row: Vec<String> = rdr
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let report = Report::from_cells(&row[..Report::COLUMNS.len()]).unwrap();
    assert_eq!(report.total_connections, 25);
    assert_eq!(report.total_replies, 25);
    assert_eq!(report.reply_status_2xx, 25);
    assert_eq!(report.errors_total, 0);
    // perf.php without `rounds` answers "Rounds 0", 8 bytes, as in the lab report's sample httperf
    // output (its listing 2.1).
    assert_eq!(report.reply_size_content, 8.0);
    assert!(report.command.contains(&format!("--port={port}")));
    assert_eq!(report.command_option("rate"), Some("25"));

    // --duration: rate × seconds connections; --json.
    let out = lbbench()
        .args(["run", "--server", "127.0.0.1", "--port", &port])
        .args([
            "--rate",
            "20",
            "--duration",
            "1.5",
            "--json",
            "--",
            "--verbose",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"]["total_connections"], 30);
    assert!(v["report"]["max_open_descriptors"].is_u64());
    assert_eq!(v["validity"]["target_request_rate"], 20.0);
    assert!(
        v["report"]["command"]
            .as_str()
            .unwrap()
            .contains("--verbose")
    );
    assert_eq!(server.requests(), 25 + 30);
}

#[test]
fn run_shows_a_table_and_warns_about_a_refused_port() {
    // A port nobody listens on: httperf exits 0 with every connection refused.
    let closed = common::net::free_port().unwrap().to_string();
    let out = lbbench()
        .args(["run", "--server", "127.0.0.1", "--port", &closed])
        .args(["--rate", "20", "--num-conns", "10"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("errors_conn_refused"), "10");
    assert_eq!(line("total_replies"), "0");
    assert_eq!(line("flag_rate_off_target"), "true");
    assert_eq!(line("valid"), "false");
    assert!(
        !table.contains("session_rate_min"),
        "absent optional fields are left out"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("warning: achieved 0.0 req/s, 100.0% below the target 20 req/s"),
        "{stderr}"
    );
}

#[test]
fn concurrent_runs_through_the_library() {
    let server = Backend::start();
    let h = httperf();
    let mut a = HttperfArgs::new("127.0.0.1", 20.0, 20);
    a.port = server.port();
    let mut b = a.clone();
    b.num_calls = 2;
    // Start both, then wait for both: the profile command's pattern.
    let ra = h.start(&a).unwrap();
    let rb = h.start(&b).unwrap();
    assert_ne!(ra.pid(), rb.pid());
    let oa = ra.wait(None).unwrap();
    let ob = rb.wait(None).unwrap();
    assert_eq!(oa.report.total_requests, 20);
    assert_eq!(ob.report.total_requests, 40, "2 calls per connection");
    assert_eq!(ob.report.connection_length, 2.0);
    assert!(oa.finished_at >= oa.started_at);
    assert!(oa.wall >= Duration::from_millis(500));
    assert!(oa.raw.stdout.contains("Total: connections 20"));
    assert_eq!(server.requests(), 60);
}

#[test]
fn a_run_past_its_deadline_is_stopped_with_its_partial_report_kept() {
    let server = Backend::start();
    let mut a = HttperfArgs::new("127.0.0.1", 20.0, 10_000); // 500 s
    a.port = server.port();
    let err = httperf()
        .start_with_deadline(&a, Duration::from_millis(1500))
        .unwrap()
        .wait(None)
        .unwrap_err();
    match &err {
        HttperfError::TimedOut {
            expected, output, ..
        } => {
            assert_eq!(*expected, Duration::from_secs(500));
            // SIGINT made httperf print the report of what it did.
            assert!(
                output.stdout.contains("Total: connections"),
                "{}",
                output.stdout
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("still running after 1s"), "{err}");
    assert!(processes_with(&format!("--port={}", server.port())).is_empty());
}

#[test]
fn httperf_errors_carry_its_stderr() {
    let server = Backend::start();
    let mut a = HttperfArgs::new("127.0.0.1", 20.0, 5);
    a.port = server.port();
    a.extra = vec!["--no-such-httperf-option".into()];
    let err = httperf().run(&a, None).unwrap_err();
    assert!(matches!(err, HttperfError::Failed { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("exit status: 1"), "{msg}");
    assert!(msg.contains("no-such-httperf-option"), "{msg}");
    assert!(
        !msg.contains("FD_SETSIZE"),
        "the constant warning is left out: {msg}"
    );
}

fn sweep_cmd(port: u16, out: &std::path::Path) -> Command {
    let mut c = lbbench();
    c.args([
        "sweep",
        "--server",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ])
    .args([
        "--uri",
        "/perf.php?sleep=0.01",
        "--from",
        "20",
        "--to",
        "40",
    ])
    .args(["--step", "20"])
    .args(["--repeat", "2", "--duration", "1", "--pause", "0", "--utc"])
    .arg("-o")
    .arg(out);
    c
}

fn keys(rows: &[std::collections::HashMap<String, String>]) -> BTreeSet<(String, String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["server"].clone(),
                r["target_rate"].clone(),
                r["run"].clone(),
            )
        })
        .collect()
}

#[test]
fn sweep_two_rates_twice_then_nothing_left_to_do() {
    let server = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let raw = dir.path().join("raw");
    let res = sweep_cmd(server.port(), &out)
        .arg("--save-raw")
        .arg(&raw)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    // Not a terminal: one progress line per run, with an ETA.
    assert!(
        stderr.contains("[1/4] 127.0.0.1 rate 20/s run 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[4/4] 127.0.0.1 rate 40/s run 2"),
        "{stderr}"
    );
    assert!(stderr.contains("ETA"), "{stderr}");
    assert!(stderr.contains("4 runs in"), "{stderr}");

    let (header, rows) = read_rows(&out);
    assert_eq!(header, lbbench::sweep::header(&[]));
    assert_eq!(rows.len(), 4);
    let order: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["target_rate"].as_str(), r["run"].as_str()))
        .collect();
    assert_eq!(order, [("20", "1"), ("20", "2"), ("40", "1"), ("40", "2")]);
    for r in &rows {
        assert_eq!(r["server"], "127.0.0.1");
        let conns: u64 = r["total_connections"].parse().unwrap();
        assert_eq!(
            conns,
            r["target_rate"].parse::<u64>().unwrap(),
            "rate × 1 s"
        );
        assert_eq!(r["reply_status_2xx"], conns.to_string());
        assert_eq!(r["errors_total"], "0");
        assert_eq!(r["flag_resource_errors"], "false");
        assert!(r["timestamp"].ends_with('Z'), "--utc: {}", r["timestamp"]);
        assert!(r["command"].contains("--hog"), "--hog is the default");
        // The flags agree with the numbers they judge.
        let cpu: f64 = r["cpu_time_total_pct"].parse().unwrap();
        assert_eq!(r["flag_client_cpu_low"], (cpu < 90.0).to_string());
    }
    for (rate, run) in [(20, 1), (20, 2), (40, 1), (40, 2)] {
        let f = raw.join(format!("127.0.0.1_r{rate}_{run}.txt"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(
            lbbench::httperf::parse_report(&text)
                .unwrap()
                .total_connections,
            rate
        );
    }
    assert_eq!(server.requests(), 2 * 20 + 2 * 40);

    // Everything is done: running it again does nothing.
    let res = sweep_cmd(server.port(), &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("4 already in"), "{stderr}");
    assert_eq!(line_count(&out), 5);
    assert_eq!(server.requests(), 120);
}

#[test]
fn a_killed_sweep_resumes_without_repeating_or_losing_runs() {
    let server = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let mut first = Supervised::spawn(
        "lbbench sweep",
        sweep_cmd(server.port(), &out)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    poll_until("the first row", DEADLINE, POLL, || {
        (line_count(&out) >= 2).then_some(())
    })
    .unwrap();
    first.signal(rustix::process::Signal::KILL).unwrap();
    let status = first.wait_timeout(DEADLINE).unwrap().unwrap();
    assert!(!status.success());
    let (_, before) = read_rows(&out);
    assert!(
        !before.is_empty() && before.len() < 4,
        "{} rows",
        before.len()
    );
    // The httperf of the killed sweep died with it.
    let needle = format!("--port={}", server.port());
    poll_until("the orphaned httperf to die", DEADLINE, POLL, || {
        processes_with(&needle).is_empty().then_some(())
    })
    .unwrap();

    let res = sweep_cmd(server.port(), &out).arg("-q").output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let (_, after) = read_rows(&out);
    assert_eq!(after.len(), 4, "exactly the 4 planned runs");
    assert_eq!(keys(&after).len(), 4, "no run twice");
    assert_eq!(after[..before.len()], before[..], "earlier rows untouched");
}

#[test]
fn sigterm_stops_a_sweep_and_discards_the_run_in_progress() {
    let server = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let child = sweep_cmd(server.port(), &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    poll_until("the first row", DEADLINE, POLL, || {
        (line_count(&out) >= 2).then_some(())
    })
    .unwrap();
    common::process::signal_pid(child.id(), rustix::process::Signal::TERM).unwrap();
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted:"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let (_, rows) = read_rows(&out);
    assert!((1..4).contains(&rows.len()), "{} rows", rows.len());
    // Every row is a complete run: rate × 1 s connections.
    for r in &rows {
        assert_eq!(r["total_connections"], r["target_rate"]);
    }
    assert!(processes_with(&format!("--port={}", server.port())).is_empty());
}

/// An observer like the lab's: records each run's window and adds two columns.
#[derive(Default)]
struct Windows {
    before: Vec<PlannedRun>,
    seen: Vec<(
        f64,
        u32,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    )>,
}

impl SweepObserver for Windows {
    fn extra_columns(&self) -> Vec<String> {
        vec!["lb_name".into(), "window_s".into()]
    }
    fn before_run(&mut self, run: &PlannedRun) -> Result<(), ObserverError> {
        self.before.push(run.clone());
        Ok(())
    }
    fn after_run(&mut self, r: &RunResult) -> Result<Vec<String>, ObserverError> {
        let (a, b) = (r.output.started_at, r.output.finished_at);
        self.seen.push((r.run.rate, r.run.run, a, b));
        let secs = (b - a).num_milliseconds() as f64 / 1000.0;
        Ok(vec!["test-lb".into(), format!("{secs:.3}")])
    }
}

#[test]
fn the_library_sweep_calls_its_observer_around_each_run() {
    let server = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SweepConfig::seed("127.0.0.1");
    cfg.label = "haproxy".into();
    cfg.base.port = server.port();
    cfg.base.uri = "/perf.php?sleep=0.01".into();
    cfg.rates = vec![50.0];
    cfg.repeat = 2;
    cfg.duration_s = 0.5;
    cfg.pause = Duration::ZERO;
    cfg.output = dir.path().join("lab.csv");
    cfg.progress = ProgressMode::Quiet;
    // The lab's pattern: its own observer, and the balancer's CPU over each run.
    let cpu = CpuObserver::new("lb", ProcessSelector::Pids(vec![server.pid()])).unwrap();
    let mut obs = (Windows::default(), cpu);
    let shutdown = common::Shutdown::new().unwrap();
    let s = run_sweep(&httperf(), &cfg, &mut obs, &shutdown).unwrap();
    assert_eq!(
        (s.planned, s.skipped, s.written, s.interrupted),
        (2, 0, 2, false)
    );
    let windows = &obs.0;
    assert_eq!(windows.before.len(), 2);
    assert_eq!(windows.seen.len(), 2);
    assert!(
        windows.seen[0].3 <= windows.seen[1].2,
        "windows do not overlap"
    );
    let (header, rows) = read_rows(&cfg.output);
    assert_eq!(
        &header[header.len() - 6..],
        [
            "lb_name",
            "window_s",
            "lb_cpu_user_s",
            "lb_cpu_system_s",
            "lb_cpu_pct",
            "lb_processes"
        ]
    );
    assert_eq!(rows[0]["server"], "haproxy");
    assert_eq!(rows[0]["lb_name"], "test-lb");
    assert_eq!(rows[0]["total_connections"], "25");
    assert_eq!(rows[0]["lb_processes"], "1", "the backend process");
    let pct: f64 = rows[0]["lb_cpu_pct"].parse().unwrap();
    assert!((0.0..200.0).contains(&pct), "{pct}");

    // The same file with other extra columns is refused before any run.
    let before = std::fs::read(&cfg.output).unwrap();
    let err = run_sweep(&httperf(), &cfg, &mut (), &shutdown).unwrap_err();
    assert!(err.is_usage(), "{err}");
    assert!(err.to_string().contains("header"), "{err}");
    assert_eq!(std::fs::read(&cfg.output).unwrap(), before);

    // A requested shutdown stops before the next run.
    let mut cfg2 = cfg.clone();
    cfg2.output = dir.path().join("other.csv");
    shutdown.trigger();
    let s = run_sweep(&httperf(), &cfg2, &mut (), &shutdown).unwrap();
    assert!(s.interrupted);
    assert_eq!(s.written, 0);
}

/// A wrapper script given as the httperf program, whose child holds the output pipes and
/// ignores SIGINT and SIGTERM on its own (`sleep` stands for a hung httperf): the watchdog
/// stops the whole process group, and the run ends shortly after its deadline instead of
/// when the child would have.
#[test]
fn the_watchdog_stops_a_wrapper_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("httperf-wrapper");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\ntrap '' INT TERM\nsleep 120\necho done\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let program = Httperf::locate(Some(&wrapper)).unwrap();
    let a = HttperfArgs::new("127.0.0.1", 20.0, 10);
    let started = std::time::Instant::now();
    let run = program
        .start_with_deadline(&a, Duration::from_millis(500))
        .unwrap();
    let pid = run.pid();
    let err = run.wait(None).unwrap_err();
    // Deadline 0.5 s + 3 s for SIGINT + 2 s grace + 2 s draining the pipes, at most.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, HttperfError::TimedOut { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("its stderr: (empty)"), "{msg}");
    assert!(!msg.contains("FD_SETSIZE"), "{msg}");
    assert!(!common::process::group_has_live_members(pid));
}
