//! The chaos test: the site stays up whatever happens to `webscaler run`, and comes back
//! within two ticks whatever happens to its HAProxy. Real HAProxy, real `lbbench backend`s,
//! httperf at a constant rate on `/perf.php?sleep=0.5` (about five requests in flight).
//!
//! 1. `webscaler run` is killed with SIGKILL five times, each time at a chosen moment, and
//!    started again on the same state directory: between two ticks (after its status file
//!    shows a new tick), inside a create (`WEBSCALER_CRASH_AT=local-create@2`: the second
//!    backend's process started, its pid not recorded), after an add and before the ready
//!    (`added`), during a drain (`drained`), and while a backend is being stopped
//!    (`local-stop`). httperf must see no error at all.
//! 2. The HAProxy worker, then the master, are killed with SIGKILL: the frontend must serve
//!    again within two ticks (the errors httperf sees meanwhile are printed, not asserted).
//! 3. Throughout: no process of the state directory without a slot (or, for HAProxy, not in
//!    its master's group); exactly one whole CSV row per tick logged; and after `webscaler
//!    down`, no process of the state directory at all.
//!
//! The figures it prints (`chaos:` lines on stderr) are those docs/benchmarks.md reports.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::net::{free_port, http_get};
use common::process::{is_alive, signal_pid};
use common::wait::poll_until;
use rustix::process::Signal;
use support::{POLL, Teardown, WebscalerRun, httperf, processes_of};
use webscaler::balancer::BackendName;
use webscaler::cloud::local::STATE_FILE;
use webscaler::controller::record::read_csv;
use webscaler::haproxy::reload::parse_show_proc;
use webscaler::haproxy::{Haproxy, Socket};

const T: Duration = Duration::from_secs(60);

fn haproxy(state: &Path) -> Haproxy {
    Haproxy::new(
        Socket::admin(state.join("haproxy/admin.sock")),
        BackendName::default(),
    )
}

/// (name, takes traffic) of each server, or `None` if HAProxy does not answer.
fn servers(state: &Path) -> Option<Vec<(String, bool)>> {
    Some(
        haproxy(state)
            .servers()
            .ok()?
            .into_iter()
            .map(|s| (s.name, s.status.takes_traffic()))
            .collect(),
    )
}

/// The 2xx replies the running HAProxy has sent (its counters start at 0 with it).
fn replies(state: &Path) -> u64 {
    haproxy(state)
        .stats()
        .ok()
        .and_then(|s| s.backend.get_u64("hrsp_2xx").ok().flatten())
        .unwrap_or(0)
}

fn serving(state: &Path) -> usize {
    servers(state).map_or(0, |v| v.iter().filter(|s| s.1).count())
}

fn wait_for(what: &str, run: &WebscalerRun, mut cond: impl FnMut() -> bool) {
    poll_until(what, T, POLL * 5, || cond().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
}

/// The last tick `status.json` records.
fn last_tick(state: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(state.join("status.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["tick"].as_u64()
}

/// Every process of the state directory is tracked: a backend's marker names a slot of the
/// state file; an HAProxy process is in the group of the master its pid file names.
fn assert_all_tracked(state: &Path, when: &str) {
    let text = std::fs::read_to_string(state.join(STATE_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dir = std::fs::canonicalize(state).unwrap();
    let slots: Vec<String> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}:{}", dir.display(), s["id"].as_str().unwrap()))
        .collect();
    let master: Option<u32> = std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    for (pid, pgid, kind, marker) in processes_of(state) {
        let tracked = match kind {
            "backend" => slots.contains(&marker),
            _ => Some(pgid) == master,
        };
        assert!(
            tracked,
            "{when}: {kind} process {pid} (group {pgid}) is not tracked: slots {slots:?}, master {master:?}\n{text}"
        );
    }
}

#[test]
fn the_site_stays_up_through_five_kills_of_the_loop_and_comes_back_after_haproxy_dies() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let csv = home.path().join("chaos.csv");
    let frontend: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let csv_arg = csv.to_str().unwrap().to_owned();
    // Load never decides here (1000 req/s per server): --min does, run by run.
    let args = |min: &'static str| -> Vec<String> {
        [
            "--threshold",
            "1000",
            "--min",
            min,
            "--scale-down-window",
            "1s",
            "--drain-timeout",
            "20s",
            "--check-timeout",
            "30s",
            "-o",
            &csv_arg,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let start = |min: &'static str, crash: Option<&str>| {
        let a = args(min);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = crash
            .map(|c| vec![("WEBSCALER_CRASH_AT", c)])
            .unwrap_or_default();
        WebscalerRun::start(home.path(), &state, frontend, &a, &env)
    };
    let mut logs = Vec::new();

    // Run 1: two backends serving, then the load.
    let mut run = start("2", None);
    wait_for("two backends serving", &run, || serving(&state) == 2);
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 200);
    let load = httperf(frontend, "/perf.php?sleep=0.5", 10, 100_000);
    wait_for("requests in flight", &run, || {
        haproxy(&state)
            .stats()
            .is_ok_and(|s| s.backend.scur.unwrap_or(0) > 0)
    });

    // Kill 1: between two ticks, right after one ended.
    let seen = last_tick(&state).unwrap();
    wait_for("the next tick", &run, || {
        last_tick(&state).is_some_and(|t| t > seen)
    });
    run.proc.signal(Signal::KILL).unwrap();
    run.wait_exit(T);
    logs.push(run.log());
    assert_all_tracked(&state, "after kill 1");

    // Kill 2: inside a create of two backends (the second one started, not recorded).
    let mut run = start("4", Some("local-create@2"));
    assert_eq!(run.wait_exit(T).code(), None, "killed:\n{}", run.log());
    logs.push(run.log());
    assert!(logs[1].contains("crash point local-create reached"));
    assert_all_tracked(
        &state,
        "after kill 2 (its slot is recorded, its pid not yet)",
    );

    // Kill 3: after adding a server (in maintenance), before readying it; the run adopts the
    // backend the killed create had started.
    let mut run = start("4", Some("added"));
    assert_eq!(run.wait_exit(T).code(), None, "killed:\n{}", run.log());
    logs.push(run.log());
    assert!(logs[2].contains("adopted node-4"), "{}", logs[2]);
    assert!(logs[2].contains("crash point added reached"));
    assert_all_tracked(&state, "after kill 3");

    // Kill 4: during a drain (back to two: the four serve, then two are drained).
    let mut run = start("2", Some("drained"));
    assert_eq!(run.wait_exit(T).code(), None, "killed:\n{}", run.log());
    logs.push(run.log());
    assert!(logs[3].contains("node-4 ready"), "{}", logs[3]);
    assert!(logs[3].contains("crash point drained reached"));
    assert_all_tracked(&state, "after kill 4");

    // Kill 5: while a drained backend is being stopped (SIGTERM sent).
    let mut run = start("2", Some("local-stop"));
    assert_eq!(run.wait_exit(T).code(), None, "killed:\n{}", run.log());
    logs.push(run.log());
    assert!(logs[4].contains("crash point local-stop reached"));
    assert_all_tracked(&state, "after kill 5");

    // Every run after the first carried on the policy of the one before it.
    for (i, log) in logs.iter().enumerate().skip(1) {
        assert!(
            log.contains("note: the policy resumes from the previous run's last "),
            "run {}:\n{log}",
            i + 1
        );
    }

    // Run 6 settles: two serving, the others drained and gone (one kept stopped).
    let run = start("2", None);
    wait_for("back to two backends", &run, || {
        servers(&state).is_some_and(|v| v.len() == 2 && v.iter().all(|s| s.1))
    });
    let loop_kills = load.interrupt();
    eprintln!(
        "chaos: loop killed 5 times under load: {} connections, {} replies, {} errors, {} 5xx",
        loop_kills.connections, loop_kills.replies, loop_kills.errors, loop_kills.status_5xx
    );
    assert_eq!(
        (loop_kills.errors, loop_kills.status_5xx),
        (0, 0),
        "{}",
        loop_kills.text
    );
    // The load ran through all five (they take 4-5 s since runs resume their policy: a
    // resumed window lets run 4 drain at its first tick): some 40 replies.
    assert!(loop_kills.replies >= 20, "{}", loop_kills.text);
    assert_all_tracked(&state, "after the loop kills");

    // HAProxy dies: the worker, then the master, each killed right after a tick ended.
    // Serving again within two ticks.
    let load = httperf(frontend, "/perf.php?sleep=0.5", 10, 100_000);
    for victim in ["worker", "master"] {
        wait_for("ten replies from this HAProxy", &run, || {
            replies(&state) >= 10
        });
        let master: u32 = std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pid = match victim {
            "worker" => {
                let reply = Socket::master(state.join("haproxy/master.sock"))
                    .command("show proc")
                    .unwrap();
                parse_show_proc(&reply)
                    .unwrap()
                    .current_worker()
                    .unwrap()
                    .pid
            }
            _ => master,
        };
        let seen = last_tick(&state).unwrap();
        wait_for("the next tick", &run, || {
            last_tick(&state).is_some_and(|t| t > seen)
        });
        let tick = last_tick(&state).unwrap();
        let killed = Instant::now();
        signal_pid(pid, Signal::KILL).unwrap();
        // Served by the new HAProxy (the old worker may answer for a moment after its
        // master died).
        let new_master = || {
            std::fs::read_to_string(state.join("haproxy/haproxy.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|&p| p != master && is_alive(p))
        };
        poll_until(
            "the frontend to serve again",
            T,
            Duration::from_millis(10),
            || {
                new_master()?;
                http_get(frontend, "/", Duration::from_secs(2))
                    .ok()
                    .filter(|r| r.status == 200 && !is_alive(master))
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
        let back = killed.elapsed();
        // The tick that started it again: the first tick logged after the restart's line.
        let restarted_at = poll_until("the restart's tick", T, POLL, || {
            let log = run.log();
            let after = log
                .split_once(&format!("error: the embedded HAProxy (pid {master})"))?
                .1;
            after.lines().find_map(|l| {
                l.split_once(" webscaler: tick ")?
                    .1
                    .split_once(':')?
                    .0
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
        eprintln!(
            "chaos: HAProxy {victim} killed after tick {tick}: serving again after {:.0} ms, started again by tick {restarted_at}",
            back.as_secs_f64() * 1000.0
        );
        assert!(
            restarted_at <= tick + 2,
            "killed after tick {tick}, started again by tick {restarted_at}\n{}",
            run.log()
        );
        wait_for("two backends serving after the restart", &run, || {
            serving(&state) == 2
        });
        assert_all_tracked(&state, &format!("after the {victim} was killed"));
    }
    wait_for("ten replies from the last HAProxy", &run, || {
        replies(&state) >= 10
    });
    let deaths = load.interrupt();
    eprintln!(
        "chaos: HAProxy killed twice under load: {} connections, {} replies, {} errors ({})",
        deaths.connections,
        deaths.replies,
        deaths.errors,
        deaths
            .text
            .lines()
            .find(|l| l.starts_with("Errors: total"))
            .unwrap_or("")
    );
    logs.push(run.terminate());

    // One whole CSV row per tick that was logged, in every run.
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows = read_csv(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ticks: usize = logs
        .iter()
        .map(|l| {
            l.lines()
                .filter(|l| l.contains(" webscaler: tick "))
                .count()
        })
        .sum();
    assert_eq!(rows.len(), ticks, "{text}");
    let restarts = rows.windows(2).filter(|w| w[1].epoch < w[0].epoch).count();
    assert!(
        restarts <= 5,
        "six runs: {restarts} restarts of the epoch\n{text}"
    );
    // The rows of the ticks that restarted HAProxy have the true counts.
    assert!(rows.iter().rev().take(5).all(|r| r.active >= 2), "{text}");

    if std::env::var_os("CHAOS_LOGS").is_some() {
        for (i, l) in logs.iter().enumerate() {
            eprintln!("--- run {} ---\n{l}", i + 1);
        }
    }
    // `webscaler down`: nothing of the state directory is left.
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("webscaler"))
        .env_clear()
        .env("HOME", home.path())
        .args(["down", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        processes_of(&state).is_empty(),
        "{:?}",
        processes_of(&state)
    );
    eprintln!(
        "chaos: {} ticks in {} runs, {} CSV rows; the test took {:.1} s",
        ticks,
        logs.len(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
}
