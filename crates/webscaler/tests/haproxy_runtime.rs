//! webscaler's HAProxy side against a real HAProxy (master-worker, started by each test in
//! its own temp dir) with real `lbbench backend` servers and httperf.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use common::Shutdown;
use common::wait::poll_until;
use support::{Backend, HaproxyLab, LabOptions, POLL, T, httperf};
use webscaler::balancer::{BackendName, Metric, ServerAddr, ServerName};
use webscaler::haproxy::lifecycle::{ChangeMethod, DrainOutcome, RemoveOutcome};
use webscaler::haproxy::reload::{ReloadError, ReloadMethod, parse_show_proc};
use webscaler::haproxy::stats::RowKind;
use webscaler::haproxy::{
    BackendFileError, BackendServer, Haproxy, HaproxyError, Installed, Status, render_backend,
};
use webscaler::rate::meter::RateMeter;

fn lab_with(backends: &[&Backend]) -> HaproxyLab {
    HaproxyLab::start(LabOptions {
        servers: backends.iter().map(|b| (b.name.clone(), b.addr)).collect(),
        ..LabOptions::default()
    })
}

/// Waits until every server of the backend is UP with a passed check.
fn wait_all_up(ha: &Haproxy, n: usize) {
    poll_until("all servers UP", T, POLL, || {
        let s = ha.servers().ok()?;
        (s.len() == n
            && s.iter()
                .all(|s| s.status == Status::Up && s.check_status.as_deref() == Some("L7OK")))
        .then_some(())
    })
    .unwrap();
}

fn name(s: &str) -> ServerName {
    ServerName::new(s).unwrap()
}

fn stot(ha: &Haproxy, server: &str) -> u64 {
    ha.stats()
        .unwrap()
        .server(server)
        .unwrap_or_else(|| panic!("no server {server}"))
        .stot
        .unwrap()
}

fn deadline() -> Instant {
    Instant::now() + T
}

#[test]
fn real_show_stat_info_and_servers_state_are_parsed() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = lab_with(&[&b1, &b2]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 2);

    for _ in 0..10 {
        let r = lab.get("/");
        assert_eq!(r.status, 200);
        assert!(r.body.contains("It works!"), "{}", r.body);
    }
    let table = ha.stat_table().unwrap();
    assert!(table.columns.len() >= 128, "{}", table.columns.len());
    assert!(table.columns.iter().any(|c| c == "-"));
    let fe = table
        .rows
        .iter()
        .find(|r| r.proxy == "fe_http" && r.kind == RowKind::Frontend)
        .unwrap();
    assert_eq!(fe.status, Status::Open);
    assert_eq!(fe.req_tot, Some(10));

    let stats = ha.stats().unwrap();
    assert_eq!(stats.backend.name, "BACKEND");
    assert_eq!(stats.backend.stot, Some(10));
    assert_eq!(stats.backend.req_tot, Some(10));
    let names: Vec<&str> = stats.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node-1", "node-2"]);
    assert_eq!(stats.active().count(), 2);
    for (row, b) in stats.servers.iter().zip([&b1, &b2]) {
        assert_eq!(row.addr.as_deref(), Some(b.addr.to_string().as_str()));
        assert_eq!(row.stot, Some(5), "round robin: 5 each");
        assert_eq!(row.check_code, Some(200));
        assert_eq!(row.scur, Some(0));
    }

    let info = ha.info().unwrap();
    assert!(info.version.starts_with('2') || info.version.starts_with('3'));
    let procs = parse_show_proc(&lab.master_socket().command("show proc").unwrap()).unwrap();
    assert_eq!(procs.master.pid, lab.pid());
    assert_eq!(info.pid, procs.current_worker().unwrap().pid);
    assert!(info.cum_req.unwrap() >= 10, "{info:?}");

    let state = ha.servers_state().unwrap();
    assert_eq!(state.len(), 2);
    assert_eq!(state[1].name, "node-2");
    assert_eq!(state[1].socket_addr(), b2.addr.to_string());
    assert!(
        state
            .iter()
            .all(|s| s.admin_state.ready() && s.checks_enabled())
    );

    // The master socket reaches the worker with `@1`.
    let via_master = Haproxy::new(lab.master_socket(), BackendName::default());
    assert_eq!(via_master.stats().unwrap().backend.stot, Some(10));

    // A backend that does not exist is named in the error.
    let other = Haproxy::new(lab.socket(), BackendName::new("nodez").unwrap());
    let e = other.stats().unwrap_err();
    assert!(matches!(e, HaproxyError::NoSuchBackend { .. }), "{e}");
    assert!(e.to_string().contains("nodez") && e.to_string().contains("admin.sock"));
    assert!(other.servers_state().is_err());
}

#[test]
fn the_rate_stays_right_across_a_real_reload() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let origin = Instant::now();
    let mut meter = RateMeter::new();
    assert!(
        meter
            .update(ha.sample(Metric::Requests, origin).unwrap())
            .is_err()
    );

    for _ in 0..20 {
        assert_eq!(lab.get("/").status, 200);
    }
    let before = ha.sample(Metric::Requests, origin).unwrap();
    let r = meter.update(before).unwrap();
    assert_eq!(r.increase, 20);
    assert!(!r.reset);

    // A real reload through the master CLI: a new worker with its counters at 0.
    let reloaded = ReloadMethod::Master(lab.master_socket())
        .reload(deadline())
        .unwrap();
    let new_pid = reloaded.new_worker.unwrap();
    assert_ne!(Some(new_pid), before.pid);
    // The new worker must own the listeners before its count means anything.
    poll_until("the new worker to answer", T, POLL, || {
        (ha.info().ok()?.pid == new_pid).then_some(())
    })
    .unwrap();
    for _ in 0..7 {
        assert_eq!(lab.get("/").status, 200);
    }
    let after = ha.sample(Metric::Requests, origin).unwrap();
    assert_eq!(after.pid, Some(new_pid));
    assert_eq!(after.counter, 7, "the counter started again from 0");
    let r = meter.update(after).unwrap();
    assert!(r.reset, "{r:?}");
    assert_eq!(r.increase, 7);
    assert!(r.rate > webscaler::rate::Rate::ZERO, "{r:?}");
    assert!(r.elapsed <= r.interval);
    // The window is the new worker's uptime (midpoint of its whole second), capped by the
    // interval: never the old worker's time, never negative.
    let uptime = Duration::from_secs(after.uptime_sec.unwrap()) + Duration::from_millis(500);
    assert_eq!(r.elapsed, uptime.min(r.interval), "{r:?}");
    assert_eq!(
        Some(r.rate),
        webscaler::rate::Rate::from_count(7, r.elapsed),
        "{r:?}"
    );

    // And the next interval is an ordinary one again.
    for _ in 0..5 {
        assert_eq!(lab.get("/").status, 200);
    }
    let r = meter
        .update(ha.sample(Metric::Sessions, origin).unwrap())
        .unwrap();
    assert!(!r.reset);
    assert_eq!(r.increase, 5);
}

#[test]
fn a_failed_reload_is_reported_and_the_old_worker_keeps_serving() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let pid = ha.info().unwrap().pid;
    // Bypass our own check on purpose: a broken file, then a reload.
    fs::write(&lab.backends_cfg, "backend nodes\n    balance nosuchalgo\n").unwrap();
    let e = ReloadMethod::Master(lab.master_socket())
        .reload(deadline())
        .unwrap_err();
    assert!(matches!(e, ReloadError::Failed { .. }), "{e}");
    assert!(e.to_string().contains("master.sock"), "{e}");
    assert_eq!(ha.info().unwrap().pid, pid, "the old worker still answers");
    assert_eq!(lab.get("/").status, 200);
}

#[test]
fn add_then_ready_then_the_server_takes_traffic_and_survives_a_reload() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let shutdown = Shutdown::new().unwrap();

    let out = ha
        .add_server(&b2.server_name(), b2.server_addr(), deadline(), &shutdown)
        .unwrap();
    assert_eq!(out.method, ChangeMethod::Runtime);
    assert!(!out.resumed);
    assert_eq!(out.file, Some(Installed::Written));
    let s = ha.stats().unwrap();
    let row = s.server("node-2").unwrap();
    assert_eq!(row.status, Status::Up, "{}", row.status_text);
    assert_eq!(row.check_status.as_deref(), Some("L7OK"));

    // It takes traffic: its own page comes back through the frontend.
    let mut from_node2 = 0;
    for _ in 0..20 {
        let r = lab.get("/");
        assert_eq!(r.status, 200);
        from_node2 += usize::from(r.body.contains("node-2"));
    }
    assert_eq!(from_node2, 10, "round robin over two servers");
    assert_eq!(stot(&ha, "node-2"), 10);

    // The backend file holds exactly the runtime servers, so a reload keeps node-2.
    let file = fs::read_to_string(&lab.backends_cfg).unwrap();
    let lines: Vec<&str> = file
        .lines()
        .filter(|l| l.trim_start().starts_with("server "))
        .collect();
    assert_eq!(
        lines,
        [
            format!(
                "    server node-1 {} check inter 300ms rise 2 fall 2 pool-purge-delay 1000ms",
                b1.addr
            ),
            format!(
                "    server node-2 {} check inter 300ms rise 2 fall 2 pool-purge-delay 1000ms",
                b2.addr
            ),
        ]
    );
    // node-1 drains (the client writes the server state file after the change): the new
    // worker reads it, and node-1 stays in DRAIN across the reload.
    webscaler::balancer::Balancer::drain(&ha, &name("node-1")).unwrap();
    let saved = fs::read_to_string(&lab.state_file).unwrap();
    assert!(saved.starts_with("1\n# be_id be_name"), "{saved}");
    ReloadMethod::Master(lab.master_socket())
        .reload(deadline())
        .unwrap();
    poll_until("node-2 UP after the reload", T, POLL, || {
        let s = ha.stats().ok()?;
        (s.server("node-2")?.status == Status::Up && s.servers.len() == 2).then_some(())
    })
    .unwrap();
    assert_eq!(
        ha.stats().unwrap().server("node-1").unwrap().status,
        Status::Drain
    );
    ha.ready(&name("node-1")).unwrap();

    // Adding it again is a resumed no-op; another address under the same name is refused.
    let again = ha
        .add_server(&b2.server_name(), b2.server_addr(), deadline(), &shutdown)
        .unwrap();
    assert!(again.resumed);
    assert_eq!(again.file, Some(Installed::Unchanged));
    let e = ha
        .add_server(&b2.server_name(), b1.server_addr(), deadline(), &shutdown)
        .unwrap_err();
    assert!(matches!(e, HaproxyError::AddressMismatch { .. }), "{e}");
}

#[test]
fn a_server_that_fails_its_check_is_never_made_ready() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let shutdown = Shutdown::new().unwrap();
    // Nothing listens there.
    let dead: ServerAddr = format!("127.0.0.1:{}", common::net::free_port().unwrap())
        .parse()
        .unwrap();
    let e = ha
        .add_server(
            &name("node-9"),
            dead,
            Instant::now() + Duration::from_secs(3),
            &shutdown,
        )
        .unwrap_err();
    assert!(matches!(e, HaproxyError::CheckTimeout { .. }), "{e}");
    assert!(e.to_string().contains("L4CON"), "{e}");
    let s = ha.stats().unwrap();
    assert_eq!(s.server("node-9").unwrap().status, Status::Maint);
    for _ in 0..6 {
        assert!(lab.get("/").body.contains("node-1"));
    }
    assert_eq!(stot(&ha, "node-9"), 0);

    // A shutdown request interrupts the wait at once.
    shutdown.trigger();
    let e = ha
        .add_server(&name("node-9"), dead, deadline(), &shutdown)
        .unwrap_err();
    assert!(matches!(e, HaproxyError::Cancelled(_)), "{e}");

    let gone = ha
        .remove(&name("node-9"), deadline(), &Shutdown::new().unwrap())
        .unwrap();
    assert!(matches!(gone, RemoveOutcome::Removed { .. }), "{gone:?}");
    assert!(ha.stats().unwrap().server("node-9").is_none());
}

#[test]
fn drain_under_httperf_load_sends_no_new_requests_and_loses_none() {
    let backends: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("node-{i}")))
        .collect();
    let lab = lab_with(&backends.iter().collect::<Vec<_>>());
    let ha = lab.haproxy();
    wait_all_up(&ha, 3);
    let shutdown = Shutdown::new().unwrap();

    // About 50 req/s for about 5 s; each request takes 0.2 s, so sessions are in flight.
    let load = httperf(lab.frontend, "/perf.php?sleep=0.2", 50, 250);
    poll_until("the load to reach node-2", T, POLL, || {
        (stot(&ha, "node-2") >= 10).then_some(())
    })
    .unwrap();
    let out = ha.drain(&name("node-2"), deadline(), &shutdown).unwrap();
    assert!(matches!(out, DrainOutcome::Drained { .. }), "{out:?}");
    let drained_at = stot(&ha, "node-2");
    let others_at = stot(&ha, "node-1") + stot(&ha, "node-3");
    let during = ha.stats().unwrap();
    assert_eq!(during.server("node-2").unwrap().status, Status::Drain);
    assert_eq!(
        during.active().count(),
        2,
        "a draining server is not active"
    );

    let report = load.finish(Duration::from_secs(60));
    assert_eq!(report.errors, 0, "{}", report.text);
    assert_eq!(report.status_5xx, 0, "{}", report.text);
    assert_eq!(report.replies, 250, "{}", report.text);
    assert_eq!(report.status_2xx, 250, "{}", report.text);
    assert_eq!(
        stot(&ha, "node-2"),
        drained_at,
        "no new request after the drain"
    );
    let others = stot(&ha, "node-1") + stot(&ha, "node-3");
    assert!(others > others_at, "the others took the rest");
    assert_eq!(others + drained_at, 250);

    // Then remove it: gone from HAProxy and from the backend file.
    let out = ha.remove(&name("node-2"), deadline(), &shutdown).unwrap();
    assert!(
        matches!(
            out,
            RemoveOutcome::Removed {
                method: ChangeMethod::Runtime,
                file: Some(Installed::Written),
                ..
            }
        ),
        "{out:?}"
    );
    let names: Vec<String> = ha.servers().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["node-1", "node-3"]);
    let file = fs::read_to_string(&lab.backends_cfg).unwrap();
    assert!(
        !file.contains("node-2") && file.contains("server node-3"),
        "{file}"
    );
    assert_eq!(
        ha.remove(&name("node-2"), deadline(), &shutdown).unwrap(),
        RemoveOutcome::AlreadyGone
    );
}

#[test]
fn remove_waits_while_a_request_is_in_flight() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = lab_with(&[&b1, &b2]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 2);
    // Only node-2 gets the slow request.
    ha.maint(&name("node-1")).unwrap();
    let frontend = lab.frontend;
    let slow = std::thread::spawn(move || {
        common::net::http_get(frontend, "/perf.php?sleep=1.5&rounds=1", T)
    });
    poll_until("the slow request on node-2", T, POLL, || {
        (ha.stats().ok()?.server("node-2")?.scur? == 1).then_some(())
    })
    .unwrap();
    ha.ready(&name("node-1")).unwrap();
    // The exact protocol: in maint, del server is refused while the request runs...
    ha.maint(&name("node-2")).unwrap();
    let reply = ha.command("del server nodes/node-2").unwrap();
    assert!(reply.contains("still has connections"), "{reply:?}");
    // ...and remove() retries until it is done.
    let out = ha
        .remove(&name("node-2"), deadline(), &Shutdown::new().unwrap())
        .unwrap();
    assert!(matches!(out, RemoveOutcome::Removed { .. }), "{out:?}");
    let reply = slow.join().unwrap().unwrap();
    assert_eq!(reply.status, 200, "the in-flight request completed");
    assert!(reply.body.starts_with("Rounds "), "{}", reply.body);
    assert!(ha.stats().unwrap().server("node-2").is_none());
}

#[test]
fn injection_attempts_are_rejected_before_the_socket() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let before = ha.servers_state().unwrap();

    for bad in [
        "x;disable server nodes/node-1",
        "x\nset server nodes/node-1 state maint",
        "x nodes/node-1",
        "",
    ] {
        assert!(ServerName::new(bad).is_err(), "{bad:?}");
        assert!(BackendName::new(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "127.0.0.1:80;shutdown sessions server nodes/node-1",
        "127.0.0.1:80 check inter 1",
        "127.0.0.1:80\nset server nodes/node-1 state maint",
        "localhost:80",
    ] {
        assert!(ServerAddr::new(bad).is_err(), "{bad:?}");
    }
    // The socket layer refuses multi-command lines too (defence in depth).
    let e = ha
        .command("show info; set server nodes/node-1 state maint")
        .unwrap_err();
    assert!(e.to_string().contains("refusing to send"), "{e}");
    let e = ha
        .command("show info\nset server nodes/node-1 state maint")
        .unwrap_err();
    assert!(e.to_string().contains("refusing to send"), "{e}");

    assert_eq!(ha.servers_state().unwrap(), before, "nothing changed");
    assert_eq!(
        ha.stats().unwrap().server("node-1").unwrap().status,
        Status::Up
    );
}

#[test]
fn a_backend_file_that_fails_haproxy_c_is_rejected_and_the_old_file_kept() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let file = lab.backend_file();
    let old = fs::read_to_string(&lab.backends_cfg).unwrap();
    let servers = [BackendServer {
        name: b1.server_name(),
        addr: b1.server_addr(),
    }];
    // A valid name that collides with the main config's `listen stats`.
    let bad = render_backend(
        &BackendName::new("stats").unwrap(),
        &servers,
        &lab.options.check,
    );
    let e = file.install(&bad).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BackendFileError::Rejected { .. }), "{msg}");
    assert!(
        msg.contains(&lab.backends_cfg.display().to_string()),
        "names the file: {msg}"
    );
    assert!(
        msg.contains("backend 'stats' has the same name as proxy 'stats'"),
        "quotes HAProxy: {msg}"
    );
    assert!(!msg.contains(".tmp-"), "the temp name does not leak: {msg}");
    assert_eq!(fs::read_to_string(&lab.backends_cfg).unwrap(), old);
    let leftovers: Vec<String> = fs::read_dir(lab.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // HAProxy still serves from the old file.
    assert_eq!(lab.get("/").status, 200);

    // A good change goes through, and the same content again is left alone.
    let good = render_backend(&BackendName::default(), &[], &lab.options.check);
    assert_eq!(file.install(&good).unwrap(), Installed::Written);
    assert_eq!(fs::read_to_string(&lab.backends_cfg).unwrap(), good);
    assert_eq!(file.install(&good).unwrap(), Installed::Unchanged);
}

#[test]
fn a_refused_add_server_falls_back_to_the_file_and_a_master_reload() {
    // An operator-level socket refuses `add server` with "Permission denied", as an old
    // HAProxy refuses it with "Unknown command".
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = HaproxyLab::start(LabOptions {
        servers: vec![(b1.name.clone(), b1.addr)],
        level: "operator".into(),
        ..LabOptions::default()
    });
    let ha = lab.haproxy();
    wait_all_up(&ha, 1);
    let pid = ha.info().unwrap().pid;
    let shutdown = Shutdown::new().unwrap();

    let out = ha
        .add_server(&b2.server_name(), b2.server_addr(), deadline(), &shutdown)
        .unwrap();
    assert_eq!(out.method, ChangeMethod::Reload);
    assert_ne!(ha.info().unwrap().pid, pid, "reloaded");
    assert!(
        fs::read_to_string(&lab.backends_cfg)
            .unwrap()
            .contains(&format!("server node-2 {}", b2.addr))
    );
    let bodies: Vec<String> = (0..4).map(|_| lab.get("/").body).collect();
    assert!(bodies.iter().any(|b| b.contains("node-2")), "{bodies:?}");

    let out = ha.remove(&name("node-2"), deadline(), &shutdown).unwrap();
    assert!(
        matches!(
            out,
            RemoveOutcome::Removed {
                method: ChangeMethod::Reload,
                ..
            }
        ),
        "{out:?}"
    );
    poll_until("node-2 gone after the reload", T, POLL, || {
        (ha.stats().ok()?.server("node-2").is_none()).then_some(())
    })
    .unwrap();

    // Without a backend file there is nothing to fall back to: a clear error.
    let bare = Haproxy::new(lab.socket(), BackendName::default());
    let e = bare
        .add_server(&b2.server_name(), b2.server_addr(), deadline(), &shutdown)
        .unwrap_err();
    assert!(matches!(e, HaproxyError::Refused { .. }), "{e}");
    assert!(e.to_string().contains("Permission denied"), "{e}");
}
