//! The embedded HAProxy (`webscaler::haproxy::process`) with the real program: files and
//! socket modes, adoption by a new run without a restart, a reload when `main.cfg` changes,
//! a dead HAProxy started again with its servers' states, the teardown, and refusing an
//! HAProxy that is not ours.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::net::{free_port, http_get};
use common::process::{Supervised, is_alive, signal_pid};
use common::wait::poll_until;
use rustix::process::Signal;
use support::Backend;
use webscaler::balancer::{Admin, Balancer, Metric, ServerAddr, ServerName};
use webscaler::haproxy::process::{
    EmbeddedConfig, HaproxyProcess, ProcessError, Start, find_master, shut_down,
};
use webscaler::haproxy::reload::parse_show_proc;
use webscaler::haproxy::{BackendServer, ServerOptions};

const T: Duration = Duration::from_secs(20);

fn config(dir: &Path) -> EmbeddedConfig {
    let port = free_port().unwrap();
    let mut c = EmbeddedConfig::new(dir, ([127, 0, 0, 1], port).into());
    c.start_timeout = T;
    c.stop_grace = Duration::from_secs(5);
    c.check = ServerOptions {
        inter: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    c
}

fn start(c: EmbeddedConfig) -> HaproxyProcess {
    HaproxyProcess::start(c).unwrap_or_else(|e| panic!("{e}"))
}

/// Stops whatever HAProxy of the directory is left when a test ends (it outlives its
/// `HaproxyProcess` by design).
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = shut_down(&self.0, Duration::from_secs(1));
    }
}

fn current_worker(p: &HaproxyProcess) -> u32 {
    let reply = p.master_socket().command("show proc").unwrap();
    parse_show_proc(&reply)
        .unwrap()
        .current_worker()
        .unwrap()
        .pid
}

#[test]
fn it_runs_in_its_directory_with_private_sockets_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let _down = Down(dir.path().into());
    let p = start(config(dir.path()));
    assert_eq!(p.how_started(), Start::Started);
    let paths = p.paths().clone();
    let frontend = p.config().frontend;
    for s in [&paths.admin, &paths.master] {
        let mode = fs::metadata(s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", s.display());
    }
    let main = fs::read_to_string(&paths.main_cfg).unwrap();
    assert!(
        main.contains("noreuseport")
            && main.contains("level admin")
            && main.contains(&format!("server-state-file {}", paths.state_file.display()))
            && main.contains("load-server-state-from-file global"),
        "{main}"
    );
    assert!(paths.backends_cfg.exists());
    let pid: u32 = fs::read_to_string(&paths.pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, p.pid());
    assert_eq!(find_master(&paths.dir), Some(pid), "found by its marker");
    // No servers yet: HAProxy answers 503 itself.
    assert_eq!(http_get(frontend, "/", T).unwrap().status, 503);
    p.stop().unwrap();
    assert!(!is_alive(pid));
    for f in [&paths.admin, &paths.master, &paths.pid_file] {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    assert!(
        paths.main_cfg.exists() && paths.backends_cfg.exists(),
        "configs stay"
    );
}

#[test]
fn a_previous_runs_haproxy_is_adopted_without_a_restart_and_reloaded_only_for_a_new_main_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let _down = Down(dir.path().into());
    let c = config(dir.path());
    let old = start(c.clone());
    let (master, worker) = (old.pid(), current_worker(&old));
    // The previous webscaler was killed: its HAProxy keeps running.
    drop(old);
    assert!(is_alive(master));
    assert_eq!(http_get(c.frontend, "/", T).unwrap().status, 503);

    let again = start(c.clone());
    assert_eq!(again.how_started(), Start::Adopted);
    assert_eq!(
        (again.pid(), current_worker(&again)),
        (master, worker),
        "untouched"
    );
    drop(again);

    // Another stats address: the same master reloads, a new worker takes the listeners.
    let mut c2 = c.clone();
    let stats: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    c2.stats = Some(stats);
    let p = start(c2);
    assert_eq!(p.how_started(), Start::Reloaded);
    assert_eq!(p.pid(), master);
    assert_ne!(current_worker(&p), worker);
    assert_eq!(http_get(stats, "/stats", T).unwrap().status, 200);
    assert_eq!(http_get(c.frontend, "/", T).unwrap().status, 503);

    // Leftovers of a dead run: a pid file naming a dead process, stale socket files.
    let paths = p.paths().clone();
    p.stop().unwrap();
    fs::write(&paths.pid_file, "999999\n").unwrap();
    fs::write(&paths.admin, "").unwrap();
    fs::write(&paths.master, "").unwrap();
    let fresh = start(c);
    assert_eq!(fresh.how_started(), Start::Started);
    assert!(fresh.admin_socket().command("show info").is_ok());
}

#[test]
fn a_dead_haproxy_is_started_again_with_its_servers_states() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let b3 = Backend::start("node-3");
    let dir = tempfile::tempdir().unwrap();
    let _down = Down(dir.path().into());
    let mut c = config(dir.path());
    c.initial_servers = [&b1, &b2]
        .iter()
        .map(|b| BackendServer {
            name: b.server_name(),
            addr: b.server_addr(),
        })
        .collect();
    let mut p = start(c.clone());
    let ha = p.haproxy();
    let admin_of = |name: &str| -> Option<(Admin, bool)> {
        ha.observe(Metric::Sessions)
            .ok()?
            .servers
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| (s.admin, s.takes_traffic))
    };
    poll_until("node-1 and node-2 up", T, Duration::from_millis(20), || {
        (admin_of("node-1") == Some((Admin::Ready, true))
            && admin_of("node-2") == Some((Admin::Ready, true)))
        .then_some(())
    })
    .unwrap();
    // node-2 drains; node-3 joins (maintenance, checks on).
    Balancer::drain(&ha, &ServerName::new("node-2").unwrap()).unwrap();
    Balancer::add(&ha, &b3.server_name(), b3.server_addr()).unwrap();
    assert_eq!(admin_of("node-3").map(|a| a.0), Some(Admin::Maint));
    let state = fs::read_to_string(&p.paths().state_file).unwrap();
    assert!(state.lines().any(|l| l.contains(" node-2 ")), "{state}");

    for victim in ["worker", "master"] {
        let pid = match victim {
            "worker" => current_worker(&p),
            _ => p.pid(),
        };
        signal_pid(pid, Signal::KILL).unwrap();
        let old = p.pid();
        poll_until("the master to go", T, Duration::from_millis(10), || {
            p.ensure_running().unwrap().map(|r| {
                assert_eq!(r.old, old);
                assert_ne!(r.new, old);
            })
        })
        .unwrap();
        assert!(p.ensure_running().unwrap().is_none(), "running again");
        // At once: node-1 up and taking traffic, node-2 still draining.
        assert_eq!(admin_of("node-1"), Some((Admin::Ready, true)), "{victim}");
        assert_eq!(
            admin_of("node-2").map(|a| a.0),
            Some(Admin::Drain),
            "{victim}"
        );
        let r = http_get(c.frontend, "/", T).unwrap();
        assert_eq!(r.status, 200);
        assert!(
            r.body.contains("node-1") || r.body.contains("node-3"),
            "{}",
            r.body
        );
        match victim {
            "worker" => {
                // node-3 was joining: left out of the file, not in rotation; the next tick
                // adds it again, and this time it is made ready before the master dies.
                assert_eq!(admin_of("node-3"), None);
                Balancer::add(&ha, &b3.server_name(), b3.server_addr()).unwrap();
                poll_until("node-3 healthy", T, Duration::from_millis(20), || {
                    ha.observe(Metric::Sessions)
                        .ok()?
                        .servers
                        .iter()
                        .any(|s| s.name == "node-3" && s.healthy)
                        .then_some(())
                })
                .unwrap();
                Balancer::ready(&ha, &b3.server_name()).unwrap();
            }
            _ => assert_eq!(admin_of("node-3"), Some((Admin::Ready, true)), "ready kept"),
        }
    }

    // The teardown: no process, no state of the servers left.
    let paths = p.paths().clone();
    let master = p.pid();
    drop(p);
    assert_eq!(
        shut_down(&paths.dir, Duration::from_secs(5)).unwrap(),
        Some(master)
    );
    assert!(!is_alive(master));
    for f in [
        &paths.backends_cfg,
        &paths.state_file,
        &paths.admin,
        &paths.pid_file,
    ] {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    assert_eq!(shut_down(&paths.dir, Duration::from_secs(5)).unwrap(), None);
    let _ = ServerAddr::from_socket_addr(b1.addr);
}

#[test]
fn an_haproxy_that_is_not_ours_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    // The same configuration, started by someone else: no marker.
    let paths = webscaler::haproxy::process::Paths::new(dir.path());
    fs::write(
        &paths.main_cfg,
        webscaler::haproxy::process::main_config(&paths, "admin", c.frontend, None, &c.backend),
    )
    .unwrap();
    fs::write(
        &paths.backends_cfg,
        "backend nodes\n    balance roundrobin\n",
    )
    .unwrap();
    let mut foreign = Supervised::spawn(
        "foreign haproxy",
        Command::new("haproxy")
            .arg("-f")
            .arg(&paths.main_cfg)
            .arg("-f")
            .arg(&paths.backends_cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    poll_until("it to answer", T, Duration::from_millis(20), || {
        webscaler::haproxy::Socket::admin(&paths.admin)
            .command("show info")
            .ok()
    })
    .unwrap();
    let e = HaproxyProcess::start(c).unwrap_err();
    assert!(matches!(e, ProcessError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("admin.sock"), "{e}");
    assert!(foreign.try_status().unwrap().is_none(), "left running");
    assert!(
        webscaler::haproxy::Socket::admin(&paths.admin)
            .command("show info")
            .is_ok()
    );
    assert_eq!(shut_down(dir.path(), Duration::from_secs(1)).unwrap(), None);
    assert!(
        foreign.try_status().unwrap().is_none(),
        "down leaves it alone too"
    );
}

#[test]
fn a_taken_frontend_is_named() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let _down = Down(a.path().into());
    let ca = config(a.path());
    let first = start(ca.clone());
    let mut cb = config(b.path());
    cb.frontend = ca.frontend;
    let e = HaproxyProcess::start(cb).unwrap_err();
    assert!(
        matches!(e, ProcessError::AddressInUse { addr } if addr == ca.frontend),
        "{e}"
    );
    assert!(e.to_string().contains(&ca.frontend.to_string()), "{e}");
    // The first one still serves, and the failed one left no process or socket behind.
    assert_eq!(http_get(ca.frontend, "/", T).unwrap().status, 503);
    assert_eq!(find_master(&fs::canonicalize(b.path()).unwrap()), None);
    assert!(!b.path().join("admin.sock").exists());
    drop(first);
}

#[test]
fn a_missing_haproxy_binary_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.haproxy = "/nonexistent/haproxy".into();
    let e = HaproxyProcess::start(c).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/haproxy"), "{e}");
}
