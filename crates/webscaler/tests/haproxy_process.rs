//! The embedded HAProxy (`webscaler::haproxy::process`) with the real program: files and
//! socket modes, a clean stop, cleaning up after a crashed run, and refusing an HAProxy
//! that is not ours.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::net::{free_port, http_get};
use common::process::is_alive;
use common::wait::poll_until;
use webscaler::haproxy::process::{EmbeddedConfig, HaproxyProcess, ProcessError};

const T: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    let port = free_port().unwrap();
    let mut c = EmbeddedConfig::new(dir, ([127, 0, 0, 1], port).into());
    c.start_timeout = T;
    c.stop_grace = Duration::from_secs(5);
    c
}

fn start(c: EmbeddedConfig) -> HaproxyProcess {
    HaproxyProcess::start(c).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn it_runs_in_its_directory_with_private_sockets_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(config(dir.path()));
    let paths = p.paths().clone();
    let frontend = p.config().frontend;
    for s in [&paths.admin, &paths.master] {
        let mode = fs::metadata(s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", s.display());
    }
    let main = fs::read_to_string(&paths.main_cfg).unwrap();
    assert!(
        main.contains("noreuseport") && main.contains("level admin"),
        "{main}"
    );
    assert!(paths.backends_cfg.exists());
    let pid: u32 = fs::read_to_string(&paths.pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, p.pid());
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
fn a_previous_runs_haproxy_is_replaced_and_its_leftovers_removed() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let old = start(c.clone());
    let old_pid = old.pid();
    // The previous webscaler was killed: its HAProxy keeps running, unsupervised.
    std::mem::forget(old);
    let new = start(c.clone());
    assert_eq!(new.replaced(), Some(old_pid));
    assert!(!is_alive(old_pid), "the old HAProxy was stopped");
    assert_ne!(new.pid(), old_pid);
    assert_eq!(http_get(c.frontend, "/", T).unwrap().status, 503);
    let paths = new.paths().clone();
    new.stop().unwrap();

    // Leftovers of a dead run: a pid file naming a dead process, stale socket files.
    fs::write(&paths.pid_file, "999999\n").unwrap();
    fs::write(&paths.admin, "").unwrap();
    fs::write(&paths.master, "").unwrap();
    let again = start(c);
    assert_eq!(again.replaced(), None);
    assert!(again.admin_socket().command("show info").is_ok());
}

#[test]
fn an_haproxy_that_is_not_ours_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let first = start(c.clone());
    // Its pid file is gone: nothing says it is ours.
    fs::remove_file(&first.paths().pid_file).unwrap();
    let e = HaproxyProcess::start(c).unwrap_err();
    assert!(matches!(e, ProcessError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("admin.sock"), "{e}");
    assert!(is_alive(first.pid()), "left running");
    assert!(first.admin_socket().command("show info").is_ok());
}

#[test]
fn a_taken_frontend_is_named() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
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
    poll_until(
        "the failed start to clean up",
        T,
        Duration::from_millis(20),
        || (!b.path().join("admin.sock").exists()).then_some(()),
    )
    .unwrap();
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
