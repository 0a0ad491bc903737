//! `webscaler run` end to end, in its embedded mode: its own HAProxy, real local
//! `lbbench backend`s, real httperf, on 127.0.0.1. Short intervals, small rates, bounded
//! time; every wait polls with a deadline, and `webscaler down` stops everything at the end
//! (the embedded HAProxy and the backends outlive `run` by design).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::net::{free_port, http_get};
use common::process::{is_alive, signal_group};
use common::wait::poll_until;
use rustix::process::Signal;
use support::{POLL, Teardown, WebscalerRun, httperf, processes_of};
use webscaler::balancer::BackendName;
use webscaler::cloud::local::{LocalCloud, LocalOptions};
use webscaler::cloud::{Cloud, Status};
use webscaler::controller::record::read_csv;
use webscaler::haproxy::{Haproxy, Socket};

/// Generous: 2 shared cores.
const T: Duration = Duration::from_secs(40);

fn webscaler_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("webscaler")
}

/// `webscaler ARGS` with an empty environment but for `HOME`.
fn webscaler(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(webscaler_bin())
        .env_clear()
        .env("HOME", home)
        .args(args)
        .output()
        .unwrap()
}

fn wait_for(what: &str, run: &WebscalerRun, mut cond: impl FnMut() -> bool) {
    poll_until(what, T, POLL * 5, || cond().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
}

fn haproxy(state: &Path) -> Haproxy {
    Haproxy::new(
        Socket::admin(state.join("haproxy/admin.sock")),
        BackendName::default(),
    )
}

/// (name, takes traffic, stot) of each server, or `None` if HAProxy does not answer.
fn servers(state: &Path) -> Option<Vec<(String, bool, u64)>> {
    Some(
        haproxy(state)
            .servers()
            .ok()?
            .into_iter()
            .map(|s| (s.name, s.status.takes_traffic(), s.stot))
            .collect(),
    )
}

fn serving(state: &Path) -> usize {
    servers(state).map_or(0, |v| v.iter().filter(|s| s.1).count())
}

fn cloud(state: &Path) -> Vec<(String, Status)> {
    LocalCloud::new(LocalOptions::new(state))
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|b| (b.name, b.status))
        .collect()
}

#[test]
fn load_adds_backends_that_take_traffic_and_they_are_drained_and_stopped_after_with_no_errors() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let csv = home.path().join("run.csv");
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let run = WebscalerRun::start(
        home.path(),
        &state,
        frontend,
        &[
            "--threshold",
            "5",
            "--min",
            "1",
            "--max",
            "4",
            "--scale-down-window",
            "3s",
            "--warm-pool",
            "1",
            "--drain-timeout",
            "10s",
            "-o",
            csv.to_str().unwrap(),
        ],
        &[],
    );
    wait_for("one backend serving", &run, || serving(&state) == 1);
    let haproxy_pid: u32 = std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // 20 req/s at a threshold of 5: 4 servers (the maximum).
    let high = httperf(frontend, "/", 20, 200);
    wait_for("four backends serving", &run, || serving(&state) == 4);
    wait_for("all four taking traffic", &run, || {
        servers(&state).is_some_and(|v| v.len() == 4 && v.iter().all(|s| s.1 && s.2 > 0))
    });
    let r = high.finish(T);
    assert_eq!((r.errors, r.status_5xx), (0, 0), "{}", r.text);
    assert_eq!(r.replies, 200);

    // The load falls to 2 req/s (1 server): after the 3-s window, three are drained, then
    // one is stopped (the warm pool) and two deleted, while requests keep coming.
    let low = httperf(frontend, "/", 2, 24);
    wait_for("back to one backend", &run, || {
        let c = cloud(&state);
        servers(&state).is_some_and(|v| v.len() == 1)
            && c.iter().filter(|b| b.1 == Status::Active).count() == 1
            && c.iter().filter(|b| b.1 == Status::Shutoff).count() == 1
            && c.len() == 2
    });
    let r = low.finish(T);
    assert_eq!((r.errors, r.status_5xx), (0, 0), "{}", r.text);
    assert_eq!(r.replies, 24);

    // `status` against the running instance.
    let out = Command::new(webscaler_bin())
        .env_clear()
        .env("HOME", home.path())
        .args(["status", "--json", "--provider", "local", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rate_source"], "tick");
    assert_eq!(v["running"]["haproxy"], "embedded");
    assert_eq!(v["counts"]["serving"], 1);
    assert_eq!(v["counts"]["stopped"], 1);
    let backends = v["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    let serving_row = backends.iter().find(|b| b["role"] == "serving").unwrap();
    assert_eq!(serving_row["cloud"]["status"], "ACTIVE");
    assert_eq!(serving_row["haproxy"]["admin"], "ready");
    assert!(v["needed"].as_u64().is_some());

    // SIGTERM: exit 0; HAProxy and the backend keep serving.
    let log = run.terminate();
    assert!(is_alive(haproxy_pid), "HAProxy outlives run:\n{log}");
    assert!(!state.join("status.json").exists());
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);
    assert!(
        log.contains("draining") && log.contains("stopped node-"),
        "{log}"
    );
    assert!(
        log.contains("keep serving (`webscaler down` stops them)"),
        "{log}"
    );

    // `status` without a loop: the cloud's backends, HAProxy's servers, a measured rate.
    let st = state.to_str().unwrap();
    let out = webscaler(
        home.path(),
        &[
            "status",
            "--json",
            "--provider",
            "local",
            "--state-dir",
            st,
            "--window",
            "200ms",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["running"].is_null(), "{v}");
    assert!(v["haproxy_error"].is_null(), "{v}");
    assert_eq!(v["rate_source"], "measured");
    assert_eq!(
        (
            v["counts"]["serving"].as_u64(),
            v["counts"]["stopped"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let text = webscaler(
        home.path(),
        &["status", "--provider", "local", "--state-dir", st],
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with("webscaler run: no run active on "),
        "{text}"
    );

    // `down`: HAProxy stopped, the backends deleted, nothing of the state directory left.
    let out = webscaler(home.path(), &["down", "--state-dir", st]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("stopped HAProxy (pid {haproxy_pid})")),
        "{said}"
    );
    assert!(said.contains("deleted node-"), "{said}");
    assert!(!is_alive(haproxy_pid));
    assert!(
        processes_of(&state).is_empty(),
        "{:?}",
        processes_of(&state)
    );
    for f in [
        "haproxy/admin.sock",
        "haproxy/master.sock",
        "haproxy/haproxy.pid",
        "policy-memory.json",
    ] {
        assert!(!state.join(f).exists(), "{f} left behind");
    }
    let out = webscaler(home.path(), &["down", "--state-dir", st]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "nothing runs in {}\n",
            std::fs::canonicalize(&state).unwrap().display()
        )
    );
    // Nothing runs: `status` says so, as JSON too, and exits 0.
    let out = webscaler(
        home.path(),
        &["status", "--json", "--provider", "local", "--state-dir", st],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backends"], serde_json::json!([]));
    assert!(
        v["haproxy_error"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "{v}"
    );
    // An error is JSON too, with its exit status.
    let out = webscaler(
        home.path(),
        &[
            "status",
            "--json",
            "--config",
            "/nonexistent/webscaler.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/webscaler.toml"),
        "{v}"
    );

    // One CSV row per tick, the lab report's columns first.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with(
        "diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate\n"
    ));
    let rows = read_csv(&text).unwrap();
    assert!(rows.len() >= 10, "{text}");
    assert!(rows.iter().any(|r| r.action == "up"), "{text}");
    assert!(rows.iter().any(|r| r.action == "down"), "{text}");
    assert_eq!(rows.iter().filter_map(|r| r.needed).max(), Some(4));
    assert!(
        rows.iter().any(|r| r.pending > 0),
        "pending capacity is recorded"
    );
    assert!(
        rows.iter().filter_map(|r| r.rate).any(|r| r >= 15.0),
        "{text}"
    );
    assert_eq!(rows.iter().map(|r| r.haactive).max(), Some(4));
    assert!(rows.windows(2).all(|w| w[1].epoch >= w[0].epoch));
}

#[test]
fn a_killed_run_is_adopted_by_the_next_one_and_a_hung_backend_is_replaced() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let extra = [
        "--min",
        "2",
        "-o",
        "run.csv",
        "--check-timeout",
        "4s",
        "--grace",
        "1",
    ];
    let mut first = WebscalerRun::start(home.path(), &state, frontend, &extra, &[]);
    wait_for("two backends serving", &first, || serving(&state) == 2);
    let haproxy_pid: u32 = std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids = |state: &Path| -> Vec<Option<u32>> {
        let cloud = LocalCloud::new(LocalOptions::new(state)).unwrap();
        cloud
            .list()
            .unwrap()
            .iter()
            .map(|b| cloud.pid_of(b).unwrap())
            .collect()
    };
    let before = pids(&state);
    assert_eq!(before.len(), 2);

    // Killed outright: its HAProxy and backends keep serving.
    wait_for("the policy's memory", &first, || {
        state.join("policy-memory.json").exists()
    });
    first.proc.signal(Signal::KILL).unwrap();
    first.wait_exit(T);
    assert!(is_alive(haproxy_pid));
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);

    // The next run adopts the HAProxy (the same process, no restart) and the backends
    // (the same processes): nothing is created.
    let second = WebscalerRun::start(home.path(), &state, frontend, &extra, &[]);
    wait_for("the HAProxy adopted", &second, || {
        second
            .log()
            .contains(&format!("adopted the running HAProxy (pid {haproxy_pid})"))
    });
    wait_for("a tick", &second, || second.log().contains("tick 1:"));
    // Its policy carries on from the first one's ticks: a rate on its first tick already
    // (HAProxy counted on), where a fresh policy needs two readings.
    let log = second.log();
    assert!(
        log.contains("note: the policy resumes from the previous run's last "),
        "{log}"
    );
    let rows = read_csv(&std::fs::read_to_string(home.path().join("run.csv")).unwrap()).unwrap();
    let starts: Vec<&webscaler::controller::Record> =
        rows.iter().filter(|r| r.epoch == 0).collect();
    assert_eq!(starts.len(), 2, "two runs' first ticks");
    assert_eq!(starts[0].rate, None, "the first run started afresh");
    assert!(starts[1].rate.is_some(), "{:?}", starts[1]);
    assert!(is_alive(haproxy_pid));
    assert_eq!(serving(&state), 2);
    assert_eq!(pids(&state), before, "the same backends, adopted");
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);
    assert!(!second.log().contains("created"), "{}", second.log());

    // A third one on the same state directory is refused while the second runs, and so is
    // `down`.
    let out = Command::new(webscaler_bin())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir(home.path())
        .args(["run", "--provider", "local", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another webscaler run"), "{err}");
    let out = webscaler(
        home.path(),
        &["down", "--state-dir", state.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another webscaler run"));
    assert_eq!(
        http_get(frontend, "/", T).unwrap().status,
        200,
        "undisturbed"
    );

    // A backend that hangs (SIGSTOP: its port still accepts, its checks time out) is not
    // capacity: it is replaced at once, and deleted once --check-timeout has passed.
    let node1 = before[0].unwrap();
    signal_group(node1, Signal::STOP).unwrap();
    wait_for("node-1 deleted and two others serving", &second, || {
        let c = cloud(&state);
        !c.iter().any(|b| b.0 == "node-1") && serving(&state) == 2
    });
    assert!(!is_alive(node1));
    let log = second.log();
    assert!(
        log.contains("deleted node-1 (its health check has failed for 4s)"),
        "{log}"
    );
    assert!(log.contains("created node-3"), "{log}");
    let rows = read_csv(&std::fs::read_to_string(home.path().join("run.csv")).unwrap()).unwrap();
    // The first run's tick 0, and the replacement.
    let ups: Vec<&str> = rows
        .iter()
        .map(|r| r.action.as_str())
        .filter(|a| a.starts_with("up"))
        .collect();
    assert_eq!(
        ups,
        ["up:min", "up:min"],
        "the missing capacity was replaced"
    );
    second.terminate();
}

#[test]
fn a_system_haproxy_that_goes_away_is_retried_every_tick_and_never_ends_the_loop() {
    use webscaler::haproxy::process::{EmbeddedConfig, HaproxyProcess};
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    // "The system's HAProxy": one started by the library in a directory of its own.
    let ha_state = home.path().join("system");
    let _ha_teardown = Teardown(ha_state.clone());
    let ha_dir = ha_state.join("haproxy");
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let mut cfg = EmbeddedConfig::new(&ha_dir, frontend);
    cfg.check.inter = Duration::from_millis(200);
    let system = HaproxyProcess::start(cfg.clone()).unwrap();
    let socket = system.paths().admin.clone();
    let csv = home.path().join("run.csv");
    let run = WebscalerRun::start(
        home.path(),
        &state,
        frontend,
        &[
            "--haproxy",
            "system",
            "--socket",
            socket.to_str().unwrap(),
            "--backend-file",
            system.paths().backends_cfg.to_str().unwrap(),
            "--haproxy-config",
            system.paths().main_cfg.to_str().unwrap(),
            "--haproxy-config",
            system.paths().backends_cfg.to_str().unwrap(),
            "--server-state-file",
            system.paths().state_file.to_str().unwrap(),
            "--min",
            "1",
            "-o",
            csv.to_str().unwrap(),
        ],
        &[],
    );
    wait_for("one backend serving", &run, || {
        http_get(frontend, "/", T).is_ok_and(|r| r.status == 200)
    });
    // webscaler keeps the system HAProxy's backend file and server state file current.
    let state_file = system.paths().state_file.clone();
    wait_for("node-1 in the state file", &run, || {
        std::fs::read_to_string(&state_file).is_ok_and(|s| s.contains(" node-1 "))
    });
    // HAProxy goes away: every tick is an error row, logged once; the loop goes on.
    system.stop().unwrap();
    wait_for("three ticks without HAProxy", &run, || {
        run.log().matches("(see the error)").count() >= 3
    });
    let log = run.log();
    assert_eq!(
        log.matches("cannot observe the balancer").count(),
        1,
        "once per streak:\n{log}"
    );
    // It comes back, with node-1 from the backend file, up at once from the state file: the
    // loop carries on with it.
    let _system = HaproxyProcess::start(cfg).unwrap();
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);
    wait_for("the balancer to answer again", &run, || {
        run.log()
            .contains("the cloud and the balancer answer again")
    });
    wait_for("one backend serving again", &run, || {
        http_get(frontend, "/", T).is_ok_and(|r| r.status == 200)
    });
    let log = run.terminate();
    let rows = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let errors: Vec<_> = rows.iter().filter(|r| r.action == "error").collect();
    assert!(errors.len() >= 3, "{log}");
    assert!(
        // (Backends ran all along: the cloud's count, never 0; nothing known to serve.)
        errors.iter().all(|r| r.active >= 1 && r.haactive == 0),
        "the cloud's count stays true: {errors:?}"
    );
}

#[test]
fn a_csv_that_cannot_be_written_mid_run_loses_no_row_and_stops_nothing() {
    // No HAProxy at all (every tick is an error row), ticks of 200 ms: only the CSV matters.
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let csv = home.path().join("out/run.csv");
    let log = home.path().join("run.log");
    let mut proc = common::process::Supervised::spawn(
        "webscaler run",
        Command::new(webscaler_bin())
            .env_clear()
            .env("HOME", home.path())
            .args([
                "run",
                "--provider",
                "local",
                "--haproxy",
                "system",
                "--socket",
            ])
            .arg(home.path().join("none.sock"))
            .arg("--state-dir")
            .arg(&state)
            .args(["--interval", "200ms", "--drain-timeout", "1s", "-o"])
            .arg(&csv)
            .stdin(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    )
    .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let ticks = || text().matches(" webscaler: tick ").count();
    let until = |what: &str, cond: &dyn Fn() -> bool| {
        poll_until(what, T, POLL, || cond().then_some(()))
            .unwrap_or_else(|e| panic!("{e}\n{}", text()));
    };
    until("two ticks", &|| ticks() >= 2);
    // The CSV's directory becomes unwritable: the file is replaced by a directory.
    std::fs::rename(&csv, home.path().join("first.csv")).unwrap();
    std::fs::create_dir(&csv).unwrap();
    let at = ticks();
    until("three ticks more", &|| ticks() >= at + 3);
    assert_eq!(
        text().matches("error: cannot write the CSV").count(),
        1,
        "once per change:\n{}",
        text()
    );
    std::fs::remove_dir(&csv).unwrap();
    until("the CSV written again", &|| {
        text().contains("is written again")
    });
    proc.signal(Signal::TERM).unwrap();
    assert!(
        proc.wait_timeout(T).unwrap().unwrap().success(),
        "{}",
        text()
    );
    // Every tick's row is in one of the two files, in order, none twice.
    let first = read_csv(&std::fs::read_to_string(home.path().join("first.csv")).unwrap()).unwrap();
    let second = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    assert_eq!(first.len() + second.len(), ticks(), "{}", text());
    let dates: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|r| r.date.as_str())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");
    assert!(
        second.len() >= 3,
        "the rows kept in memory were written late"
    );
}
