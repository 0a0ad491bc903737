//! The lab's balancers and backends, run for real: HAProxy, Pound and nginx in front of
//! `lbbench backend` processes on 127.0.0.1.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Shutdown;
use common::net::http_get;
use lbbench::lab::{
    Balancer, BalancerOptions, ConfigSpec, Fleet, FleetOptions, LabError, Upstream, procs,
};

const T: Duration = Duration::from_secs(10);

fn fleet(n: usize) -> Fleet {
    let shutdown = Shutdown::new().unwrap();
    Fleet::start(
        &FleetOptions::with_program(n, env!("CARGO_BIN_EXE_lbbench")),
        &shutdown,
    )
    .unwrap()
}

fn spec(dir: &Path, upstreams: Vec<Upstream>, request_log: bool) -> ConfigSpec {
    ConfigSpec {
        listen: SocketAddr::from(([127, 0, 0, 1], common::net::free_port().unwrap())),
        upstreams,
        run_dir: dir.to_owned(),
        work_dir: dir.to_owned(),
        request_log,
        max_connections: 4096,
        tls: None,
    }
}

fn upstreams(n: u16) -> Vec<Upstream> {
    (1..=n)
        .map(|i| Upstream {
            name: format!("node-{i}"),
            addr: SocketAddr::from(([127, 0, 0, 1], 18080 + i)),
        })
        .collect()
}

#[test]
fn every_config_template_is_valid_for_its_program() {
    let lab = tempfile::tempdir().unwrap();
    let tls = lbbench::lab::LabTls::in_dir(lab.path()).unwrap();
    for b in Balancer::ALL {
        let program = b.locate(None).unwrap();
        for (request_log, with_tls) in [(false, false), (true, false), (false, true)] {
            let dir = tempfile::tempdir().unwrap();
            let mut spec = spec(dir.path(), upstreams(4), request_log);
            spec.tls = with_tls.then(|| tls.pem_path().to_owned());
            let text = b.render_config(&spec).unwrap();
            let config = dir.path().join("test.cfg");
            fs::write(&config, &text).unwrap();
            b.check_config(&program, &config, dir.path())
                .unwrap_or_else(|e| {
                    panic!("{b} (request_log {request_log}, tls {with_tls}): {e}\n{text}")
                });
            // The check leaves nothing behind (nginx -t writes its pid file).
            let left: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !["test.cfg", "temp", "access.log"].contains(&n.as_str()))
                .collect();
            assert!(left.is_empty(), "{b} left {left:?}");
        }
    }
}

#[test]
fn a_broken_config_is_rejected_with_the_programs_own_words() {
    for (b, junk, expect) in [
        (Balancer::Haproxy, "    chek\n", "chek"),
        (Balancer::Pound, "Portx 1\n", "unrecognized keyword"),
        (Balancer::Nginx, "bogus_directive on;\n", "bogus_directive"),
    ] {
        let program = b.locate(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut text = b
            .render_config(&spec(dir.path(), upstreams(2), false))
            .unwrap();
        text.push_str(junk);
        let config = dir.path().join("broken.cfg");
        fs::write(&config, &text).unwrap();
        let err = b.check_config(&program, &config, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LabError::InvalidConfig { .. }), "{b}: {msg}");
        assert!(
            msg.contains(expect) && msg.contains("broken.cfg"),
            "{b}: {msg}"
        );
    }
}

/// Starts `b` in front of `n` backends and checks everything the lab relies on.
fn balancer_round_trip(b: Balancer, n: usize, expect_procs: std::ops::RangeInclusive<usize>) {
    let fleet = fleet(n);
    let shutdown = Shutdown::new().unwrap();
    let lb = b
        .start(&fleet.upstreams(), &BalancerOptions::default(), &shutdown)
        .unwrap_or_else(|e| panic!("{b}: {e}"));
    assert_eq!(lb.kind(), b);
    assert!(!lb.version().is_empty());
    assert!(lb.addr().ip().is_loopback());
    assert_eq!(
        lb.max_connections(),
        lbbench::lab::connection_budget(4096, lbbench::lab::fd_limit())
    );

    // It answers through to a backend.
    let home = http_get(lb.addr(), "/", T).unwrap();
    assert_eq!(home.status, 200);
    assert!(home.body.contains("It works!"), "{}", home.body);

    // Round robin: 5 rounds of sequential requests give each backend exactly 5.
    let before = fleet.status().unwrap();
    const ROUNDS: u64 = 5;
    for i in 0..ROUNDS * n as u64 {
        let r = http_get(lb.addr(), "/perf.php?sleep=0&rounds=2", T).unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert!(r.body.starts_with("Rounds "), "request {i}: {}", r.body);
    }
    let after = fleet.status().unwrap();
    let spread: Vec<u64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.perf_requests - b.perf_requests)
        .collect();
    assert_eq!(
        spread,
        vec![ROUNDS; n],
        "{b}: /perf.php requests per backend"
    );

    // Its processes: the main one first, each running the balancer's program.
    let pids = lb.pids();
    assert_eq!(pids.first().copied(), lb.pid(), "{b}: {pids:?}");
    assert!(
        expect_procs.contains(&pids.len()),
        "{b}: {} processes {pids:?}",
        pids.len()
    );
    for pid in &pids {
        let stat = lbbench::cpu::process::read_pid_stat(*pid).unwrap();
        assert_eq!(stat.comm, b.name(), "{b}: pid {pid}");
    }
    let ids: Vec<procs::ProcessId> = pids
        .iter()
        .map(|p| procs::ProcessId::of(*p).unwrap())
        .collect();
    let run_dir = lb.run_dir().unwrap().to_owned();
    let files: Vec<PathBuf> = lb.runtime_files().to_vec();
    assert!(files.iter().all(|f| f.starts_with(&run_dir)));
    // HAProxy's admin socket and Pound's control socket are there while it runs.
    match b {
        Balancer::Haproxy => assert!(run_dir.join("admin.sock").exists()),
        Balancer::Pound => assert!(run_dir.join("pound.sock").exists()),
        Balancer::Nginx => assert!(run_dir.join("nginx.pid").exists()),
    }

    // After the stop: no process, no socket, no pid file, no run dir.
    let stopped = lb.stop().unwrap();
    assert_eq!(stopped.pids, pids);
    for id in &ids {
        assert!(!id.is_running(), "{b}: pid {} still runs", id.pid);
    }
    for f in &files {
        assert!(!f.exists(), "{b}: {} left behind", f.display());
    }
    assert!(!run_dir.exists(), "{b}: {} left behind", run_dir.display());

    let backend_pids = fleet.pids();
    fleet.stop().unwrap();
    for pid in backend_pids {
        assert!(!common::process::is_alive(pid), "backend {pid}");
    }
}

#[test]
fn haproxy_round_robins_over_four_backends_and_stops_clean() {
    // The master and one worker.
    balancer_round_trip(Balancer::Haproxy, 4, 2..=2);
}

#[test]
fn pound_round_robins_over_three_backends_and_stops_clean() {
    // In the foreground Pound is one process with worker threads.
    balancer_round_trip(Balancer::Pound, 3, 1..=1);
}

#[test]
fn nginx_round_robins_over_two_backends_and_stops_clean() {
    // The master and one worker per CPU.
    let cpus = std::thread::available_parallelism().unwrap().get();
    balancer_round_trip(Balancer::Nginx, 2, 1 + cpus..=1 + cpus);
}

#[test]
fn a_missing_binary_names_the_debian_package() {
    let dir = tempfile::tempdir().unwrap();
    for (b, package) in [
        (Balancer::Haproxy, "haproxy"),
        (Balancer::Pound, "pound"),
        (Balancer::Nginx, "nginx-light"),
    ] {
        let missing = dir.path().join(b.name());
        let opts = BalancerOptions {
            program: Some(missing.clone()),
            ..BalancerOptions::default()
        };
        let err = b
            .start(&upstreams(2), &opts, &Shutdown::new().unwrap())
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LabError::NotInstalled { .. }), "{msg}");
        assert!(
            msg.contains(&missing.display().to_string())
                && msg.contains(&format!("install the Debian package {package} "))
                && msg.contains("scripts/setup.sh installs it"),
            "{msg}"
        );
    }
    // A file that is not executable is refused the same way.
    let not_exec = dir.path().join("haproxy");
    fs::write(&not_exec, "not a program").unwrap();
    let err = Balancer::Haproxy.locate(Some(&not_exec)).unwrap_err();
    assert!(err.to_string().contains("not an executable"), "{err}");
}

#[test]
fn versions_come_from_the_programs() {
    for b in Balancer::ALL {
        let v = b.version(&b.locate(None).unwrap()).unwrap();
        assert!(
            v.starts_with(|c: char| c.is_ascii_digit()) && v.contains('.'),
            "{b}: {v:?}"
        );
    }
}

#[test]
fn a_balancer_that_cannot_start_is_stopped_and_reported() {
    // A port that is taken (bound, not listening, so nothing answers on it): given
    // explicitly, it is not retried elsewhere.
    let taken = tokio::net::TcpSocket::new_v4().unwrap();
    taken.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = taken.local_addr().unwrap().port();
    let fleet = fleet(1);
    for b in [Balancer::Haproxy, Balancer::Pound] {
        let opts = BalancerOptions {
            port: Some(port),
            ..BalancerOptions::default()
        };
        let err = b
            .start(&fleet.upstreams(), &opts, &Shutdown::new().unwrap())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, LabError::Exited { .. }) && msg.contains("in use"),
            "{b}: {msg}"
        );
    }
}

#[test]
fn the_lab_can_keep_config_and_log_in_its_own_dir() {
    let out = tempfile::tempdir().unwrap();
    let fleet = fleet(2);
    let opts = BalancerOptions {
        work_dir: Some(out.path().join("haproxy")),
        request_log: true,
        ..BalancerOptions::default()
    };
    let lb = Balancer::Haproxy
        .start(&fleet.upstreams(), &opts, &Shutdown::new().unwrap())
        .unwrap();
    assert_eq!(lb.config_path(), out.path().join("haproxy/haproxy.cfg"));
    http_get(lb.addr(), "/perf.php?rounds=1", T).unwrap();
    let log = lb.log_path().to_owned();
    lb.stop().unwrap();
    // Kept after the stop, with the request in the log.
    let cfg = fs::read_to_string(out.path().join("haproxy/haproxy.cfg")).unwrap();
    assert!(cfg.contains("balance roundrobin"));
    let log = fs::read_to_string(log).unwrap();
    assert!(log.contains("GET /perf.php?rounds=1"), "{log}");
}

#[test]
fn fleet_backends_answer_and_go_away() {
    let fleet = fleet(3);
    let names: BTreeSet<String> = fleet
        .status()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        ["node-1", "node-2", "node-3"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let addrs = fleet.addrs();
    let pids = fleet.pids();
    assert_eq!(BTreeSet::from_iter(&addrs).len(), 3);
    let log_dir = fleet.backends()[0].log_path().parent().unwrap().to_owned();
    assert!(log_dir.join("node-3.log").exists());
    drop(fleet);
    assert!(!log_dir.exists(), "{} left behind", log_dir.display());
    for pid in pids {
        assert!(!common::process::is_alive(pid));
    }
    for a in addrs {
        assert!(std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err());
    }
}

#[test]
fn fleet_start_stops_at_a_shutdown_request() {
    let shutdown = Shutdown::new().unwrap();
    shutdown.trigger();
    let err = Fleet::start(
        &FleetOptions::with_program(2, env!("CARGO_BIN_EXE_lbbench")),
        &shutdown,
    )
    .unwrap_err();
    assert!(matches!(err, LabError::Interrupted), "{err}");
    let err = Balancer::Haproxy
        .start(&upstreams(1), &BalancerOptions::default(), &shutdown)
        .unwrap_err();
    assert!(matches!(err, LabError::Interrupted), "{err}");
}

#[test]
fn a_backend_that_cannot_start_is_reported() {
    let err = Fleet::start(
        &FleetOptions::with_program(2, "/nonexistent/lbbench"),
        &Shutdown::new().unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/lbbench"), "{err}");
}
