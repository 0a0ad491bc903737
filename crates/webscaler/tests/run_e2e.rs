//! `webscaler run` end to end, in its embedded mode: its own HAProxy, real local
//! `lbbench backend`s, real httperf, on 127.0.0.1. Short intervals, small rates, bounded
//! time; every wait polls with a deadline, and everything is stopped by PID at the end.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::net::{free_port, http_get};
use common::process::{Supervised, is_alive};
use common::wait::poll_until;
use rustix::process::Signal;
use support::{POLL, httperf};
use testkit::workspace_bin;
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

/// Stops what a test leaves running, by PID, even when it fails half-way: the local
/// backends (the provider stops each process group) and a leftover HAProxy.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cloud) = LocalCloud::new(LocalOptions::new(&self.0))
            && let Ok(list) = cloud.list()
        {
            for b in list {
                let _ = cloud.delete(&b);
            }
        }
        if let Some(pid) = std::fs::read_to_string(self.0.join("haproxy/haproxy.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            let _ = common::process::terminate(pid, Duration::from_secs(5));
        }
    }
}

struct Run {
    proc: Supervised,
    log: PathBuf,
}

impl Run {
    fn start(home: &Path, state: &Path, frontend: SocketAddr, extra: &[&str]) -> Run {
        workspace_bin("lbbench");
        let log = home.join(format!("run-{}.log", free_port().unwrap()));
        let proc = Supervised::spawn(
            "webscaler run",
            Command::new(webscaler_bin())
                .env_clear()
                .env("HOME", home)
                .env("PATH", "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
                .current_dir(home)
                .args(["run", "--provider", "local", "--state-dir"])
                .arg(state)
                .arg("--frontend")
                .arg(frontend.to_string())
                .args([
                    "--interval",
                    "1s",
                    "--check-inter",
                    "200ms",
                    "--command",
                    "lbbench backend --port {port} --name {name} --threads 2 --grace 2s",
                ])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        )
        .unwrap()
        .with_grace(Duration::from_secs(20));
        Run { proc, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: the current tick finishes and it exits 0.
    fn terminate(mut self) -> String {
        self.proc.signal(Signal::TERM).unwrap();
        let status = self
            .proc
            .wait_timeout(T)
            .unwrap()
            .unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", self.log()));
        assert!(status.success(), "exit {status}:\n{}", self.log());
        self.log()
    }
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

fn wait(what: &str, run: &Run, mut cond: impl FnMut() -> bool) {
    poll_until(what, T, POLL * 5, || cond().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
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
    let _cleanup = Cleanup(state.clone());
    let csv = home.path().join("run.csv");
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let run = Run::start(
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
    );
    wait("one backend serving", &run, || serving(&state) == 1);
    let haproxy_pid: u32 = std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // 20 req/s at a threshold of 5: 4 servers (the maximum).
    let high = httperf(frontend, "/", 20, 200);
    wait("four backends serving", &run, || serving(&state) == 4);
    wait("all four taking traffic", &run, || {
        servers(&state).is_some_and(|v| v.len() == 4 && v.iter().all(|s| s.1 && s.2 > 0))
    });
    let r = high.finish(T);
    assert_eq!((r.errors, r.status_5xx), (0, 0), "{}", r.text);
    assert_eq!(r.replies, 200);

    // The load falls to 2 req/s (1 server): after the 3-s window, three are drained, then
    // one is stopped (the warm pool) and two deleted, while requests keep coming.
    let low = httperf(frontend, "/", 2, 24);
    wait("back to one backend", &run, || {
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

    // SIGTERM: exit 0, HAProxy stopped, its sockets gone.
    let log = run.terminate();
    assert!(!is_alive(haproxy_pid), "HAProxy stopped:\n{log}");
    for f in [
        "haproxy/admin.sock",
        "haproxy/master.sock",
        "haproxy/haproxy.pid",
        "status.json",
    ] {
        assert!(!state.join(f).exists(), "{f} left behind");
    }
    assert!(
        log.contains("draining") && log.contains("stopped node-"),
        "{log}"
    );

    // One CSV row per tick, the seed's columns first.
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
fn a_killed_run_is_repaired_by_the_next_one() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _cleanup = Cleanup(state.clone());
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let extra = ["--min", "2", "-o", "run.csv"];
    let mut first = Run::start(home.path(), &state, frontend, &extra);
    wait("two backends serving", &first, || serving(&state) == 2);
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
    first.proc.signal(Signal::KILL).unwrap();
    first.proc.wait_timeout(T).unwrap().unwrap();
    assert!(is_alive(haproxy_pid));
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);

    // The next run replaces the stale HAProxy and adopts the backends: same processes,
    // nothing created.
    let second = Run::start(home.path(), &state, frontend, &extra);
    wait("the stale HAProxy replaced", &second, || {
        second
            .log()
            .contains(&format!("stopped the HAProxy (pid {haproxy_pid})"))
    });
    wait("two backends serving again", &second, || {
        serving(&state) == 2
    });
    assert!(!is_alive(haproxy_pid));
    assert_eq!(pids(&state), before, "the same backends, adopted");
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);
    assert!(!second.log().contains("created"), "{}", second.log());

    // A third one on the same state directory is refused while the second runs.
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
    assert_eq!(
        http_get(frontend, "/", T).unwrap().status,
        200,
        "undisturbed"
    );

    second.terminate();
}
