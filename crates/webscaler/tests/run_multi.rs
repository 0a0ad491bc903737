//! Several HAProxy instances: `webscaler run` with two embedded HAProxy (`--frontend`
//! twice), real `lbbench backend`s, httperf on each frontend.
//!
//! 1. Load split between the two frontends: the summed rate scales the pool up; a lower
//!    load scales it down while requests flow; httperf sees no error on either frontend.
//! 2. The second HAProxy's master is killed with SIGKILL, and its restarted copy is put out
//!    of step through its admin socket (a stray server, a server in maintenance): the run
//!    brings it back in step, so both admin sockets report the same servers in the same
//!    states.
//!
//! The figures it prints (`multi:` lines on stderr) are those docs/benchmarks.md reports.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::net::{free_port, http_get};
use common::process::{is_alive, signal_pid};
use common::wait::poll_until;
use rustix::process::Signal;
use support::{POLL, Teardown, WebscalerRun, httperf};
use webscaler::balancer::{BackendName, Balancer, Metric, ServerName};
use webscaler::controller::record::read_csv;
use webscaler::haproxy::{Haproxy, Socket};

const T: Duration = Duration::from_secs(60);

fn dir(state: &Path, i: usize) -> PathBuf {
    state.join(if i == 0 { "haproxy" } else { "haproxy.2" })
}

fn haproxy(state: &Path, i: usize) -> Haproxy {
    Haproxy::new(
        Socket::admin(dir(state, i).join("admin.sock")),
        BackendName::default(),
    )
}

/// (name, address, administrative state) of each server of instance `i`, sorted.
fn servers(state: &Path, i: usize) -> Option<Vec<(String, String, String)>> {
    let mut v: Vec<_> = haproxy(state, i)
        .observe(Metric::Sessions)
        .ok()?
        .servers
        .into_iter()
        .map(|s| {
            (
                s.name,
                s.addr.map(|a| a.to_string()).unwrap_or_default(),
                s.admin.to_string(),
            )
        })
        .collect();
    v.sort();
    Some(v)
}

/// Servers taking traffic in instance `i`.
fn serving(state: &Path, i: usize) -> usize {
    haproxy(state, i)
        .observe(Metric::Sessions)
        .map_or(0, |v| v.taking_traffic() as usize)
}

fn master_pid(state: &Path, i: usize) -> Option<u32> {
    std::fs::read_to_string(dir(state, i).join("haproxy.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn wait_for(what: &str, run: &WebscalerRun, mut cond: impl FnMut() -> bool) {
    poll_until(what, T, POLL * 5, || cond().then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
}

#[test]
fn two_haproxy_instances_scale_together_and_a_killed_one_is_brought_back_in_step() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let csv = home.path().join("multi.csv");
    let fa: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let fb: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let (fb_arg, csv_arg, metrics_arg) = (
        fb.to_string(),
        csv.to_str().unwrap().to_owned(),
        metrics.to_string(),
    );
    let run = WebscalerRun::start(
        home.path(),
        &state,
        fa,
        &[
            "--frontend",
            &fb_arg,
            "--threshold",
            "10",
            "--min",
            "1",
            "--scale-down-window",
            "2s",
            // A fixed window: noise in the first load must not lengthen the second's.
            "--scale-down-window-max",
            "2s",
            "--drain-timeout",
            "20s",
            "--check-timeout",
            "30s",
            "--predictive",
            "false",
            "-o",
            &csv_arg,
            "--metrics",
            &metrics_arg,
        ],
        &[],
    );
    wait_for("one backend serving in both", &run, || {
        serving(&state, 0) == 1 && serving(&state, 1) == 1
    });
    wait_for("the metrics to count two instances answering", &run, || {
        http_get(metrics, "/metrics", Duration::from_secs(2)).is_ok_and(|r| {
            r.body
                .lines()
                .any(|l| l == "webscaler_haproxy_instances_answering 2")
        })
    });

    // 1. 14 + 14 req/s: the sum (28) needs three servers; neither alone would.
    let (a, b) = (
        httperf(fa, "/perf.php?sleep=0.05", 14, 100_000),
        httperf(fb, "/perf.php?sleep=0.05", 14, 100_000),
    );
    let up = Instant::now();
    wait_for("three backends serving in both", &run, || {
        serving(&state, 0) == 3 && serving(&state, 1) == 3
    });
    let up = up.elapsed();
    let (a, b) = (a.interrupt(), b.interrupt());
    eprintln!(
        "multi: 14 + 14 req/s on two HAProxy: 3 backends serving in both after {:.1} s; httperf {}/{} replies, {}/{} errors",
        up.as_secs_f64(),
        a.replies,
        b.replies,
        a.errors,
        b.errors
    );
    for r in [&a, &b] {
        assert_eq!((r.errors, r.status_5xx), (0, 0), "{}", r.text);
        assert!(r.replies > 20, "{}", r.text);
    }

    // Down to one server while 2 + 2 req/s flow.
    let (a, b) = (
        httperf(fa, "/perf.php?sleep=0.05", 2, 100_000),
        httperf(fb, "/perf.php?sleep=0.05", 2, 100_000),
    );
    let down = Instant::now();
    wait_for("one backend left in both", &run, || {
        [0, 1].iter().all(|&i| {
            servers(&state, i).is_some_and(|v| v.iter().filter(|s| s.2 != "maint").count() == 1)
        }) && serving(&state, 0) == 1
    });
    let down = down.elapsed();
    let (a, b) = (a.interrupt(), b.interrupt());
    eprintln!(
        "multi: 2 + 2 req/s: down to 1 backend in {:.1} s; httperf {}/{} replies, {}/{} errors",
        down.as_secs_f64(),
        a.replies,
        b.replies,
        a.errors,
        b.errors
    );
    for r in [&a, &b] {
        assert_eq!((r.errors, r.status_5xx), (0, 0), "{}", r.text);
        assert!(r.replies > 0, "{}", r.text);
    }

    // 2. The second HAProxy's master killed; its new copy put out of step.
    let old = master_pid(&state, 1).unwrap();
    signal_pid(old, Signal::KILL).unwrap();
    let killed = Instant::now();
    let new = poll_until("the second HAProxy started again", T, POLL, || {
        master_pid(&state, 1).filter(|&p| p != old && is_alive(p) && servers(&state, 1).is_some())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run.log()));
    let b = haproxy(&state, 1);
    b.add(
        &ServerName::new("stray-1").unwrap(),
        "127.0.0.1:9".parse().unwrap(),
    )
    .unwrap();
    let kept = servers(&state, 0).unwrap();
    let first = ServerName::new(&kept[0].0).unwrap();
    Balancer::maint(&b, &first).unwrap();
    assert_ne!(servers(&state, 1).unwrap(), kept);
    poll_until("the second HAProxy back in step", T, POLL * 5, || {
        (servers(&state, 1).is_some_and(|v| v == servers(&state, 0).unwrap_or_default())
            && serving(&state, 1) == serving(&state, 0))
        .then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?} and {:?}\n{}",
            servers(&state, 0),
            servers(&state, 1),
            run.log()
        )
    });
    eprintln!(
        "multi: second HAProxy killed (pid {old}), restarted (pid {new}) and put out of step: in step again {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let log = run.terminate();
    assert!(
        log.contains("bringing HAProxy instance") && log.contains("removed stray-1"),
        "{log}"
    );

    // The CSV: the `instances` column, 2 answering, and the summed rate seen.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with(
        "diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate,instances\n"
    ));
    let rows = read_csv(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(rows.iter().all(|r| r.instances.is_some()), "{text}");
    assert!(
        rows.iter().filter(|r| r.instances == Some(2)).count() >= rows.len() - 2,
        "{text}"
    );
    assert!(
        rows.iter().any(|r| r.rate.is_some_and(|x| x > 20.0)),
        "the summed rate: {text}"
    );
    eprintln!("multi: whole test {:.1} s", started.elapsed().as_secs_f64());
}
