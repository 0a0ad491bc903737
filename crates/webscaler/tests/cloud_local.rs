//! The local provider with real processes: `lbbench backend` on 127.0.0.1, behind wrapper
//! scripts too; a create killed half-way; stops that never wait.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::{Marked, Supervised, cmdline, find_marked, group_has_live_members, is_alive};
use common::wait::poll_until;
use testkit::workspace_bin;
use webscaler::cloud::local::{LocalCloud, LocalOptions, MARKER, STATE_FILE};
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

/// Stops every process of the state directory (by its marker), so a failing test leaves no
/// process behind.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for m in marked(self.0) {
            let _ = common::process::terminate_group(m.pgid, Duration::from_secs(2), || {});
        }
    }
}

/// The live processes that carry the marker of a backend of the state directory `dir`.
fn marked(dir: &Path) -> Vec<Marked> {
    let prefix = format!("{}:", std::fs::canonicalize(dir).unwrap().display());
    find_marked(MARKER)
        .into_iter()
        .filter(|m| m.value.starts_with(&prefix))
        .collect()
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
    let l = wait_for(&cloud, "node-2 SHUTOFF", |l| {
        by_name(l, "node-2").status == Status::Shutoff
    });
    assert!(!is_alive(pids[1]));
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
    wait_for(&again, "every backend gone", |l| l.is_empty());
    assert!(marked(dir.path()).is_empty());
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
    wait_for(&cloud, "SHUTOFF", |l| l[0].status == Status::Shutoff);
    assert!(!is_alive(pid));

    // Pretend the pid was reused by an unrelated process (with the same command line, even).
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

    v["slots"][0]["spawned"] = serde_json::json!(["sleep", "300"]);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();

    let l = cloud.list().unwrap();
    assert_eq!(l[0].status, Status::Shutoff);
    assert_eq!(cloud.pid_of(&l[0]).unwrap(), None);
    assert!(matches!(
        cloud.stop(&l[0]),
        Err(CloudError::Transitional { .. })
    ));
    cloud.delete(&l[0]).unwrap();
    assert!(
        cloud.list().unwrap().is_empty(),
        "nothing runs: deleted at once"
    );
    assert!(is_alive(spid), "the stranger must not be signalled");
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
    assert_eq!(cloud.teardown().unwrap().deleted, ["node-1", "node-2"]);
    assert!(cloud.list().unwrap().is_empty());
    assert!(marked(dir.path()).is_empty());
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
    assert!(group_has_live_members(pid));
    slow.delete(&b).unwrap();
    wait_for(&slow, "the slot gone", |l| l.is_empty());
    assert!(
        !group_has_live_members(pid),
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
    wait_for(&quick, "the slot gone", |l| l.is_empty());
}

/// A command behind a wrapper that stays its parent, run by an interpreter: the process
/// webscaler started is `/bin/sh wrapper.sh ...`, never the argv it was given, and the
/// backend is its child.
fn wrapper(dir: &Path) -> String {
    let script = dir.join("backend-wrapper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# Not exec: the shell stays, the backend is its child.\n{} backend \"$@\"\necho \"backend exited with $?\"\n",
            workspace_bin("lbbench").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{} --port {{port}} --name {{name}} --grace 1s",
        script.display()
    )
}

#[test]
fn a_backend_behind_a_wrapper_is_one_backend_that_runs_and_stops_whole() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let cloud = LocalCloud::new(LocalOptions {
        command: wrapper(dir.path()),
        ..options(dir.path())
    })
    .unwrap();
    cloud.create(2).unwrap();
    let l = wait_for(&cloud, "2 ACTIVE", |l| {
        l.len() == 2 && l.iter().all(|b| b.status == Status::Active)
    });
    // Each backend: the shell and lbbench, in the shell's group.
    let before = marked(dir.path());
    assert_eq!(before.len(), 4, "{before:?}");
    for b in &l {
        let pid = cloud.pid_of(b).unwrap().unwrap();
        assert_eq!(
            cmdline(pid).unwrap()[0],
            "/bin/sh",
            "the interpreter, not argv[0]"
        );
        assert_eq!(before.iter().filter(|m| m.pgid == pid).count(), 2);
        assert_eq!(get(b, "/").status, 200);
    }
    // Listing again and again respawns nothing: the same processes.
    for _ in 0..5 {
        assert!(
            cloud
                .list()
                .unwrap()
                .iter()
                .all(|b| b.status == Status::Active)
        );
        assert!(matches!(
            cloud.start(&l[0]),
            Err(CloudError::Transitional { .. })
        ));
    }
    let pids = |v: Vec<Marked>| {
        let mut p: Vec<u32> = v.into_iter().map(|m| m.pid).collect();
        p.sort();
        p
    };
    assert_eq!(pids(marked(dir.path())), pids(before));

    // Stopping node-1 stops the wrapper and its backend.
    let g = cloud.pid_of(&l[0]).unwrap().unwrap();
    cloud.stop(&l[0]).unwrap();
    wait_for(&cloud, "node-1 SHUTOFF", |l| l[0].status == Status::Shutoff);
    assert!(!group_has_live_members(g));
    assert_eq!(marked(dir.path()).len(), 2);
    cloud.delete(&l[1]).unwrap();
    wait_for(&cloud, "node-2 gone", |l| l.len() == 1);
    assert!(marked(dir.path()).is_empty());
}

#[test]
fn a_stop_never_waits_and_a_later_listing_kills_what_outlives_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    // A backend that ignores SIGTERM (and never answers: it stays BUILD).
    let cloud = LocalCloud::new(LocalOptions {
        command: "sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'".into(),
        grace: Duration::from_secs(1),
        ..options(dir.path())
    })
    .unwrap();
    let b = cloud.create(1).unwrap().remove(0).result.unwrap();
    let pid = cloud.pid_of(&b).unwrap().unwrap();
    cloud.stop(&b).unwrap();
    // Returned at once: SIGTERM was sent, and ignored.
    assert!(is_alive(pid));
    let l = cloud.list().unwrap();
    assert_eq!(
        (&l[0].status, l[0].task.as_deref()),
        (&Status::Active, Some("powering-off"))
    );
    assert!(matches!(
        cloud.stop(&l[0]),
        Err(CloudError::Transitional { .. })
    ));
    assert!(matches!(
        cloud.start(&l[0]),
        Err(CloudError::Transitional { .. })
    ));
    let _ = cloud.take_notes();
    // Once the grace has passed, a listing sends SIGKILL; then it reads SHUTOFF.
    wait_for(&cloud, "SHUTOFF after SIGKILL", |l| {
        l[0].status == Status::Shutoff
    });
    assert!(!group_has_live_members(pid));
    let notes = cloud.take_notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("node-1 did not exit within 1s of SIGTERM: SIGKILL")),
        "{notes:?}"
    );

    // A delete of a running one: `deleting` until its processes are gone.
    cloud.start(&l[0]).unwrap();
    let b = cloud.list().unwrap().remove(0);
    cloud.delete(&b).unwrap();
    assert_eq!(cloud.list().unwrap()[0].task.as_deref(), Some("deleting"));
    assert_eq!(
        cloud.quota().unwrap().instances.used,
        1,
        "counted until gone"
    );
    wait_for(&cloud, "deleted", |l| l.is_empty());
    assert!(marked(dir.path()).is_empty());
}

#[test]
fn a_create_killed_half_way_leaves_nothing_untracked_and_strays_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path());
    let opts = options(dir.path());
    // `webscaler cloud create 3`, killed (SIGKILL) right after starting the second backend's
    // process and before recording its pid.
    let out = Command::new(assert_cmd::cargo::cargo_bin("webscaler"))
        .env("WEBSCALER_CRASH_AT", "local-create@2")
        .args(["cloud", "--provider", "local", "--state-dir"])
        .arg(dir.path())
        .arg("--command")
        .arg(&opts.command)
        .args(["create", "3"])
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2, "node-3 was never started: {text}");
    assert!(
        slots[1]["pid"].is_null(),
        "node-2's pid was not recorded: {text}"
    );
    assert_eq!(marked(dir.path()).len(), 2, "both processes run");

    // The next provider adopts node-2's process: the same one, not a new one.
    let cloud = LocalCloud::new(opts.clone()).unwrap();
    let l = wait_for(&cloud, "2 ACTIVE", |l| {
        l.len() == 2 && l.iter().all(|b| b.status == Status::Active)
    });
    let running: Vec<u32> = marked(dir.path()).iter().map(|m| m.pgid).collect();
    assert_eq!(running.len(), 2);
    assert!(running.contains(&cloud.pid_of(by_name(&l, "node-2")).unwrap().unwrap()));
    let notes = cloud.take_notes();
    assert!(
        notes.iter().any(|n| n.starts_with("adopted node-2")),
        "{notes:?}"
    );

    // A process of this state directory whose slot is gone is stopped on opening.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap())
            .unwrap();
    let stray = v["slots"][1]["pid"].as_u64().unwrap() as u32;
    v["slots"].as_array_mut().unwrap().remove(1);
    std::fs::write(dir.path().join(STATE_FILE), v.to_string()).unwrap();
    let again = LocalCloud::new(opts).unwrap();
    assert!(!group_has_live_members(stray));
    assert_eq!(marked(dir.path()).len(), 1);
    assert!(
        again
            .take_notes()
            .iter()
            .any(|n| n.contains(&format!("stopping process group {stray}"))),
    );
    let t = again.teardown().unwrap();
    assert_eq!((t.deleted, t.strays), (vec!["node-1".to_owned()], 0));
    assert!(marked(dir.path()).is_empty());
}
