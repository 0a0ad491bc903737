//! The local provider with real processes: `lbbench backend` on 127.0.0.1.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::{Supervised, cmdline, is_alive};
use common::wait::poll_until;
use testkit::workspace_bin;
use webscaler::cloud::local::{LocalCloud, LocalOptions, STATE_FILE};
use webscaler::cloud::{Backend, Cloud, CloudError, Status};

fn options(dir: &Path) -> LocalOptions {
    let lbbench = workspace_bin("lbbench");
    LocalOptions {
        command: format!(
            "{} backend --port {{port}} --name {{name}} --grace 1s",
            lbbench.display()
        ),
        grace: Duration::from_secs(5),
        ..LocalOptions::new(dir)
    }
}

/// Kills whatever the state file still lists, so a failing test leaves no process behind.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for pid in state_pids(self.0) {
            let _ = common::process::terminate(pid, Duration::from_secs(2));
        }
    }
}

fn state_pids(dir: &Path) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(dir.join(STATE_FILE)) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn wait_for(cloud: &LocalCloud, what: &str, check: impl Fn(&[Backend]) -> bool) -> Vec<Backend> {
    poll_until(
        what,
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            let l = cloud.list().unwrap();
            check(&l).then_some(l)
        },
    )
    .unwrap()
}

fn get(b: &Backend, path: &str) -> common::net::HttpReply {
    let addr = b.address.unwrap().socket_addr(0);
    common::net::http_get(addr, path, Duration::from_secs(10)).unwrap()
}

fn by_name<'a>(l: &'a [Backend], name: &str) -> &'a Backend {
    l.iter().find(|b| b.name == name).unwrap()
}

#[test]
fn create_stop_start_delete_and_find_them_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let cloud = LocalCloud::new(options(dir.path())).unwrap();
    assert!(cloud.list().unwrap().is_empty());

    let created = cloud.create(3).unwrap();
    let names: Vec<&str> = created.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["node-1", "node-2", "node-3"]);
    for c in &created {
        let b = c.result.as_ref().unwrap();
        assert!(matches!(b.status, Status::Build | Status::Active), "{b:?}");
    }
    let list = wait_for(&cloud, "3 ACTIVE backends", |l| {
        l.len() == 3 && l.iter().all(|b| b.status == Status::Active)
    });
    for b in &list {
        let r = get(b, "/");
        assert_eq!(r.status, 200);
        assert!(r.body.contains(&b.name), "{}: {}", b.name, r.body);
        assert_eq!(b.address.unwrap().ip.to_string(), "127.0.0.1");
    }
    let pids: Vec<u32> = list
        .iter()
        .map(|b| cloud.pid_of(b).unwrap().unwrap())
        .collect();

    // Stop node-2: its process goes, its slot stays as SHUTOFF with the same port.
    let node2 = by_name(&list, "node-2").clone();
    cloud.stop(&node2).unwrap();
    assert!(!is_alive(pids[1]));
    let l = cloud.list().unwrap();
    assert_eq!(by_name(&l, "node-2").status, Status::Shutoff);
    assert_eq!(by_name(&l, "node-2").address, node2.address);
    assert!(matches!(
        cloud.stop(&node2),
        Err(CloudError::Transitional { .. })
    ));
    let q = cloud.quota().unwrap();
    assert_eq!(q.instances.used, 3, "a stopped backend still counts");

    // Start it again: ACTIVE, answering.
    cloud.start(&node2).unwrap();
    let l = wait_for(&cloud, "node-2 ACTIVE again", |l| {
        by_name(l, "node-2").status == Status::Active
    });
    assert_eq!(get(by_name(&l, "node-2"), "/").status, 200);
    assert!(matches!(
        cloud.start(&node2),
        Err(CloudError::Transitional { .. })
    ));

    // A new provider on the same state directory (a restarted webscaler) finds them all.
    drop(cloud);
    let again = LocalCloud::new(options(dir.path())).unwrap();
    let l2 = again.list().unwrap();
    assert_eq!(
        l2.iter()
            .map(|b| (&b.name, &b.id, b.address))
            .collect::<Vec<_>>(),
        l.iter()
            .map(|b| (&b.name, &b.id, b.address))
            .collect::<Vec<_>>()
    );
    assert!(l2.iter().all(|b| b.status == Status::Active));
    assert_eq!(again.pid_of(by_name(&l2, "node-1")).unwrap(), Some(pids[0]));
    assert_eq!(again.pid_of(by_name(&l2, "node-3")).unwrap(), Some(pids[2]));

    // New names continue the sequence.
    let c4 = again.create(1).unwrap();
    assert_eq!(c4[0].name, "node-4");
    c4[0].result.as_ref().unwrap();

    // Delete everything: no process left, no slot left.
    let all_pids = state_pids(dir.path());
    assert_eq!(all_pids.len(), 4);
    for b in again.list().unwrap() {
        again.delete(&b).unwrap();
    }
    assert!(again.list().unwrap().is_empty());
    for pid in all_pids {
        assert!(!is_alive(pid), "pid {pid} still runs");
    }
    assert!(matches!(
        again.delete(&node2),
        Err(CloudError::NotFound { .. })
    ));
}

#[test]
fn a_pid_that_runs_something_else_is_not_ours_and_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let cloud = LocalCloud::new(options(dir.path())).unwrap();
    let b = cloud.create(1).unwrap().remove(0).result.unwrap();
    let pid = cloud.pid_of(&b).unwrap().unwrap();
    cloud.stop(&b).unwrap();

    // Pretend the pid was reused by an unrelated process.
    let stranger = Supervised::spawn("stranger", Command::new("sleep").arg("300")).unwrap();
    let spid = stranger.pid();
    poll_until(
        "sleep to exec",
        Duration::from_secs(5),
        Duration::from_millis(5),
        || (cmdline(spid)? == ["sleep", "300"]).then_some(()),
    )
    .unwrap();
    let path = dir.path().join(STATE_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["slots"][0]["pid"] = spid.into();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();

    let l = cloud.list().unwrap();
    assert_eq!(l[0].status, Status::Shutoff);
    assert_eq!(cloud.pid_of(&l[0]).unwrap(), None);
    cloud.delete(&l[0]).unwrap();
    assert!(is_alive(spid), "the stranger must not be signalled");
    // The stopped backend got SIGTERM; it exits on its own time.
    poll_until(
        "the stopped backend to exit",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || (!is_alive(pid)).then_some(()),
    )
    .unwrap();
    drop(stranger);
}

#[test]
fn the_quota_caps_creation_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let cloud = LocalCloud::new(LocalOptions {
        max_backends: Some(2),
        ..options(dir.path())
    })
    .unwrap();
    let c = cloud.create(3).unwrap();
    assert!(c[0].result.is_ok() && c[1].result.is_ok());
    assert!(matches!(c[2].result, Err(CloudError::QuotaExceeded { .. })));
    let q = cloud.quota().unwrap();
    assert_eq!(
        (q.instances.used, q.instances.max, q.left),
        (2, Some(2), Some(0))
    );
    for b in cloud.list().unwrap() {
        cloud.delete(&b).unwrap();
    }
}

#[test]
fn a_boot_delay_shows_build_first_and_delete_during_boot_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let slow = LocalCloud::new(LocalOptions {
        boot_delay: Duration::from_secs(60),
        ..options(dir.path())
    })
    .unwrap();
    let b = slow.create(1).unwrap().remove(0).result.unwrap();
    assert_eq!(b.status, Status::Build);
    assert_eq!(slow.list().unwrap()[0].status, Status::Build);
    let pid = slow.pid_of(&b).unwrap().expect("the wrapper runs");
    assert!(webscaler::cloud::local::group_has_live_members(pid));
    slow.delete(&b).unwrap();
    assert!(
        !webscaler::cloud::local::group_has_live_members(pid),
        "the boot delay's sleep must go with its backend"
    );

    let quick = LocalCloud::new(LocalOptions {
        boot_delay: Duration::from_millis(500),
        ..options(dir.path())
    })
    .unwrap();
    let b = quick.create(1).unwrap().remove(0).result.unwrap();
    assert_eq!(b.status, Status::Build);
    let l = wait_for(&quick, "ACTIVE after the boot delay", |l| {
        l[0].status == Status::Active
    });
    assert_eq!(get(&l[0], "/").status, 200);
    quick.delete(&l[0]).unwrap();
}
