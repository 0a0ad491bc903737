//! `lbbench up`, the thin CLI over the lab's processes: Ctrl-C stops everything it started,
//! and even a SIGKILL of lbbench leaves no process behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Supervised, is_alive};
use common::wait::poll_until;
use rustix::process::Signal;

/// What `lbbench up` printed: every PID it started, and the balancer's run dir and URL.
struct Up {
    process: Supervised,
    pids: Vec<u32>,
    run_dir: PathBuf,
    backend_logs: Vec<PathBuf>,
    addr: std::net::SocketAddr,
}

fn up(balancer: &str, backends: u16) -> Up {
    let mut process = Supervised::spawn(
        "lbbench up",
        Command::new(env!("CARGO_BIN_EXE_lbbench"))
            .args(["up", "--balancer", balancer, "--backends"])
            .arg(backends.to_string())
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let stdout = process.child_mut().stdout.take().unwrap();
    let mut pids = Vec::new();
    let mut run_dir = None;
    let mut backend_logs = Vec::new();
    let mut addr = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("ready:") {
            break;
        } else if words.first() == Some(&"backend") {
            // `backend node-1 URL pid P log L`
            pids.push(words[4].parse().unwrap());
            backend_logs.push(PathBuf::from(words[6]));
        } else {
            // `haproxy VERSION URL pids P,Q config C log L run-dir D`
            assert_eq!(words[0], balancer, "{line}");
            let pos = |w: &str| words.iter().position(|x| *x == w).unwrap() + 1;
            pids.extend(
                words[pos("pids")]
                    .split(',')
                    .map(|p| p.parse::<u32>().unwrap()),
            );
            run_dir = Some(PathBuf::from(words[pos("run-dir")]));
            let url = words[2].trim_start_matches("http://").trim_end_matches('/');
            addr = Some(url.parse().unwrap());
        }
    }
    assert_eq!(
        pids.len(),
        usize::from(backends)
            + match balancer {
                // One process with threads.
                "pound" => 1,
                // The master and a worker per CPU.
                "nginx" => 1 + std::thread::available_parallelism().unwrap().get(),
                // The master and one worker.
                _ => 2,
            },
        "{pids:?}"
    );
    Up {
        process,
        pids,
        run_dir: run_dir.expect("the balancer's line"),
        backend_logs,
        addr: addr.expect("the balancer's URL"),
    }
}

fn all_gone(pids: &[u32]) {
    poll_until(
        "every process to be gone",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || pids.iter().all(|p| !is_alive(*p)).then_some(()),
    )
    .unwrap_or_else(|e| {
        let left: Vec<_> = pids.iter().filter(|p| is_alive(**p)).collect();
        panic!("{e}: still running: {left:?}")
    });
}

#[test]
fn ctrl_c_stops_everything_up_started() {
    for balancer in ["haproxy", "pound", "nginx"] {
        let mut up = up(balancer, 2);
        assert!(up.pids.iter().all(|p| is_alive(*p)));
        let r = common::net::http_get(up.addr, "/", Duration::from_secs(10)).unwrap();
        assert!(r.body.contains("It works!"), "{balancer}: {}", r.body);
        assert!(up.run_dir.exists());

        up.process.signal(Signal::INT).unwrap();
        let status = up
            .process
            .wait_timeout(Duration::from_secs(30))
            .unwrap()
            .expect("lbbench up exits after Ctrl-C");
        assert!(status.success(), "{balancer}: {status:?}");
        all_gone(&up.pids);
        for path in std::iter::once(&up.run_dir).chain(up.backend_logs.iter()) {
            assert!(!path.exists(), "{balancer}: {} left behind", path.display());
        }
    }
}

#[test]
fn a_killed_lbbench_leaves_no_process_behind() {
    let mut up = up("haproxy", 2);
    up.process.signal(Signal::KILL).unwrap();
    up.process.wait_timeout(Duration::from_secs(10)).unwrap();
    // Its children get SIGTERM from the kernel (the parent-death signal).
    all_gone(&up.pids);
    // Nobody was left to clean up the temp dirs: do it here.
    let _ = std::fs::remove_dir_all(&up.run_dir);
    for log in &up.backend_logs {
        if let Some(dir) = log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn an_unknown_balancer_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["up", "--balancer", "varnish"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown balancer \"varnish\""), "{err}");
}
