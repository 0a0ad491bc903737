//! `webscaler cloud` end to end: the local provider with real `lbbench backend`s, and the
//! OpenStack provider against the fake OpenStack.

mod openstack;

use std::path::Path;

use assert_cmd::Command;
use openstack::fake_openstack::{FakeOpenStack, IMAGE_NAME, NETWORK_NAME};
use predicates::prelude::*;
use serde_json::Value;
use webscaler::settings::cloud::DEFAULT_CLOUD_INIT;

/// `webscaler` with an empty environment and a temporary home and working directory.
fn webscaler(home: &Path) -> Command {
    let mut c = Command::cargo_bin("webscaler").unwrap();
    c.env_clear()
        .env("HOME", home)
        .env("PATH", "/nonexistent")
        .current_dir(home);
    c
}

fn json_list(home: &Path, args: &[&str]) -> Vec<Value> {
    let out = webscaler(home)
        .args(args)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn local_backends_through_the_cli_with_lbbench_found_next_to_webscaler() {
    // Build lbbench into the same target directory as webscaler; PATH is empty, so the
    // default command's bare `lbbench` must be found next to the executable.
    testkit::workspace_bin("lbbench");
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let s = state.to_str().unwrap();
    let base = ["cloud", "--provider", "local", "--state-dir", s];
    struct Cleanup<'a>(&'a Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let Ok(t) = std::fs::read_to_string(self.0.join("local-cloud.json")) else {
                return;
            };
            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
            for slot in v["slots"].as_array().into_iter().flatten() {
                if let Some(pid) = slot["pid"].as_u64() {
                    let _ =
                        common::process::terminate(pid as u32, std::time::Duration::from_secs(2));
                }
            }
        }
    }
    let _cleanup = Cleanup(&state);

    webscaler(home.path())
        .args(base)
        .args(["create", "2", "--wait", "--timeout", "60"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("created node-1")
                .and(predicate::str::contains("active: node-1 node-2")),
        );
    let l = json_list(home.path(), &base);
    assert_eq!(l.len(), 2);
    for b in &l {
        assert_eq!(b["status"], "ACTIVE");
        let addr: std::net::SocketAddr = b["address"].as_str().unwrap().parse().unwrap();
        assert!(addr.ip().is_loopback());
        let r = common::net::http_get(addr, "/", std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(r.status, 200);
        assert!(b["id"].as_str().unwrap().starts_with("local-"));
    }

    webscaler(home.path())
        .args(base)
        .args(["stop", "node-1", "--wait", "--timeout", "60"])
        .assert()
        .success()
        .stdout("stopped node-1\n");
    let l = json_list(home.path(), &base);
    assert_eq!(l[0]["status"], "SHUTOFF");
    webscaler(home.path())
        .args(base)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^NAME +STATUS +ADDRESS +ID +CREATED\nnode-1 +SHUTOFF +127\.0\.0\.1:\d+ +local-1 ").unwrap());
    webscaler(home.path())
        .args(base)
        .args(["quota"])
        .assert()
        .success()
        .stdout("instances: 2 used of 20\nbackends that still fit: 18\n");
    webscaler(home.path())
        .args(base)
        .args(["delete", "node-1", "node-3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no backend named node-3"));
    webscaler(home.path())
        .args(base)
        .args(["delete", "node-1", "node-2", "--wait", "--timeout", "60"])
        .assert()
        .success();
    assert!(json_list(home.path(), &base).is_empty());
}

#[test]
fn a_missing_backend_program_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    webscaler(home.path())
        .args([
            "cloud",
            "--provider",
            "local",
            "--state-dir",
            "st",
            "--command",
            "no-such-backend --port {port}",
        ])
        .args(["create", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot find no-such-backend next to",
        ));
}

fn os_args(fake: &FakeOpenStack) -> Vec<String> {
    [
        "cloud",
        "--os-auth-url",
        &fake.auth_url(),
        "--os-username",
        "s171201",
        "--os-project-name",
        "admin",
        "--os-user-domain-name",
        "Default",
        "--image",
        IMAGE_NAME,
        "--flavor",
        "m1.tiny",
        "--network",
        NETWORK_NAME,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn openstack_through_the_cli() {
    let fake = FakeOpenStack::start();
    fake.world().expected_user_data = Some(DEFAULT_CLOUD_INIT.as_bytes().to_vec());
    fake.world().max_instances = 3;
    let home = tempfile::tempdir().unwrap();
    let args = os_args(&fake);
    let run = || {
        let mut c = webscaler(home.path());
        c.env("OS_PASSWORD", "correct horse").args(&args);
        c
    };
    run()
        .args(["create", "2", "--wait", "--poll-interval", "0.01"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("created node-1 (BUILD")
                .and(predicate::str::contains("active: node-1 node-2")),
        );
    let out = run().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success());
    let l: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[1]["name"], "node-2");
    assert_eq!(l[1]["status"], "ACTIVE");
    assert!(l[1]["address"].as_str().unwrap().starts_with("10.0.0."));
    run().args(["quota"]).assert().success().stdout(
        predicate::str::contains("instances: 2 used of 3")
            .and(predicate::str::contains("backends that still fit: 1")),
    );
    run()
        .args(["create", "2"])
        .assert()
        .code(1)
        // node-3 and node-4 are created in parallel: one of them gets the last slot.
        .stdout(predicate::str::is_match(r"^created node-[34] \(BUILD").unwrap())
        .stderr(
            predicate::str::is_match(
                r"1 of 2 not created: node-[34]: quota exceeded: Quota exceeded for instances",
            )
            .unwrap(),
        );
    run()
        .args(["stop", "node-1"])
        .assert()
        .success()
        .stdout("stopped node-1\n");
    run()
        .args(["stop", "node-1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("node-1 cannot be stopped now"));
    let out = run().args(["list", "--json"]).output().unwrap();
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.len(), 3);
    let names: Vec<&str> = all.iter().map(|b| b["name"].as_str().unwrap()).collect();
    run().arg("delete").args(&names).assert().success();
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert!(!fake.requests().is_empty());

    // Bad configuration is bad input (exit 2), named.
    webscaler(home.path())
        .args(["cloud", "--os-cloud", "nope", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no clouds.yaml found"));
    webscaler(home.path())
        .args(&args)
        .args(["list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("password is missing"));
    // A wrong password is a runtime failure, and the password is never printed.
    webscaler(home.path())
        .env("OS_PASSWORD", "wrong-pw")
        .args(&args)
        .args(["list"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("authentication failed")
                .and(predicate::str::contains("wrong-pw").not()),
        );
}
