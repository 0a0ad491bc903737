//! `webscaler haproxy …` end to end: the binary against a real HAProxy.

mod support;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use common::wait::poll_until;
use predicates::prelude::*;
use support::{Backend, HaproxyLab, LabOptions, POLL, T, httperf};
use webscaler::haproxy::Status;

fn webscaler() -> Command {
    let mut c = Command::cargo_bin("webscaler").unwrap();
    c.timeout(std::time::Duration::from_secs(120));
    c
}

fn lab_with(backends: &[&Backend]) -> HaproxyLab {
    let lab = HaproxyLab::start(LabOptions {
        servers: backends.iter().map(|b| (b.name.clone(), b.addr)).collect(),
        ..LabOptions::default()
    });
    let ha = lab.haproxy();
    poll_until("all servers UP", T, POLL, || {
        let s = ha.servers().ok()?;
        (s.len() == backends.len()
            && s.iter()
                .all(|s| s.status == Status::Up && s.check_status.as_deref() == Some("L7OK")))
        .then_some(())
    })
    .unwrap();
    lab
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn servers_prints_a_table_and_json() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = lab_with(&[&b1, &b2]);
    for _ in 0..4 {
        lab.get("/");
    }
    let out = webscaler()
        .args(["haproxy", "servers", "--socket", path(&lab.admin)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "ADDR", "STATUS", "CHECK", "SCUR", "STOT"],
        "{text}"
    );
    assert_eq!(
        lines[1],
        ["node-1", &b1.addr.to_string(), "UP", "L7OK", "0", "2"],
        "{text}"
    );
    assert_eq!(lines[2][0], "node-2", "{text}");
    assert_eq!(lines.len(), 3);

    let out = webscaler()
        .args(["haproxy", "servers", "--json", "--socket", path(&lab.admin)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["name"], "node-2");
    assert_eq!(arr[1]["addr"], b2.addr.to_string());
    assert_eq!(arr[1]["status"], "up");
    assert_eq!(arr[1]["check_status"], "L7OK");
    assert_eq!(arr[1]["stot"], 2);

    // Through the master socket alone (`@1 show stat`), the same servers.
    webscaler()
        .args(["haproxy", "servers", "--master-socket", path(&lab.master)])
        .assert()
        .success()
        .stdout(predicate::str::contains("node-2"));
}

#[test]
fn rate_measures_a_running_load() {
    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    let ha = lab.haproxy();
    // 50 req/s for about 6 s; the rate is read over 2 s in the middle of it.
    let load = httperf(lab.frontend, "/", 50, 300);
    poll_until("the load to start", T, POLL, || {
        (ha.stats().ok()?.backend.stot? >= 25).then_some(())
    })
    .unwrap();
    let out = webscaler()
        .args([
            "haproxy",
            "rate",
            "--socket",
            path(&lab.admin),
            "--window",
            "2s",
            "--metric",
            "requests",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = load.finish(std::time::Duration::from_secs(60));
    assert_eq!(report.errors, 0, "{}", report.text);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rate = v["rate"].as_f64().unwrap();
    // Wide bounds: the machine is shared, httperf may lag, but it is a rate near 50/s.
    assert!((20.0..=80.0).contains(&rate), "{v}");
    assert_eq!(v["metric"], "req_tot");
    let reading = &v["sockets"][0]["reading"];
    assert_eq!(reading["reset"], false);
    let inc = reading["increase"].as_f64().unwrap();
    let secs = reading["elapsed"].as_f64().unwrap();
    assert!((inc / secs - rate).abs() < 1e-6, "{v}");

    // The text form, with two sockets summed (the same instance twice here).
    webscaler()
        .args([
            "haproxy",
            "rate",
            "--socket",
            path(&lab.admin),
            "--socket",
            path(&lab.admin),
            "--window",
            "200ms",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 instances summed"))
        .stdout(predicate::str::contains("(backend nodes, stot +"));
}

#[test]
fn add_drain_ready_maint_remove_and_render() {
    let b1 = Backend::start("node-1");
    let b2 = Backend::start("node-2");
    let lab = lab_with(&[&b1]);
    let admin = path(&lab.admin).to_owned();
    let file_args = [
        "--backend-file",
        path(&lab.backends_cfg),
        "--config",
        path(&lab.main_cfg),
        "--config",
        path(&lab.backends_cfg),
        "--check-inter",
        "300ms",
        "--check-fall",
        "2",
    ];
    webscaler()
        .args([
            "haproxy",
            "add",
            "node-2",
            &b2.addr.to_string(),
            "--socket",
            &admin,
        ])
        .args(file_args)
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "added nodes/node-2 ({}): ready after",
            b2.addr
        )))
        .stdout(predicate::str::contains("backends.cfg rewritten"));
    let file = fs::read_to_string(&lab.backends_cfg).unwrap();
    assert!(file.contains(&format!("server node-2 {} check inter 300ms", b2.addr)));
    assert!(
        (0..4).any(|_| lab.get("/").body.contains("node-2")),
        "node-2 takes traffic"
    );

    // render prints exactly what was installed.
    webscaler()
        .args([
            "haproxy",
            "render",
            "--socket",
            &admin,
            "--check-inter",
            "300ms",
            "--check-fall",
            "2",
        ])
        .assert()
        .success()
        .stdout(predicate::str::diff(file.clone()));

    webscaler()
        .args(["haproxy", "drain", "node-2", "--socket", &admin])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "drained nodes/node-2: no sessions left",
        ));
    webscaler()
        .args(["haproxy", "ready", "node-2", "--socket", &admin])
        .assert()
        .success()
        .stdout("nodes/node-2: ready\n");
    webscaler()
        .args(["haproxy", "maint", "node-2", "--socket", &admin])
        .assert()
        .success()
        .stdout("nodes/node-2: in maintenance\n");
    webscaler()
        .args(["haproxy", "remove", "node-2", "--socket", &admin])
        .args(file_args)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("removed nodes/node-2 after"));
    let file = fs::read_to_string(&lab.backends_cfg).unwrap();
    assert!(!file.contains("node-2"), "{file}");
    webscaler()
        .args(["haproxy", "remove", "node-2", "--socket", &admin])
        .assert()
        .success()
        .stdout("nodes/node-2: no such server (nothing to do)\n");
}

#[test]
fn bad_input_exits_2_and_runtime_failures_exit_1_naming_their_input() {
    for args in [
        vec![
            "add",
            "x;shutdown sessions server nodes/node-1",
            "127.0.0.1:80",
        ],
        vec![
            "add",
            "x\nset server nodes/node-1 state maint",
            "127.0.0.1:80",
        ],
        vec!["add", "node-9", "localhost:80"],
        vec!["add", "node-9", "127.0.0.1:80;disable server nodes/node-1"],
        vec!["drain", "a b"],
        vec!["servers", "--backend", "nodes;show info"],
        vec!["add", "node-9", "127.0.0.1:80", "--check-rise", "0"],
    ] {
        webscaler()
            .arg("haproxy")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid"));
    }
    webscaler()
        .args([
            "haproxy",
            "servers",
            "--socket",
            "/nonexistent/ws/admin.sock",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "webscaler: error: HAProxy socket /nonexistent/ws/admin.sock: cannot connect",
        ));

    let b1 = Backend::start("node-1");
    let lab = lab_with(&[&b1]);
    webscaler()
        .args(["haproxy", "ready", "node-7", "--socket", path(&lab.admin)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no server nodes/node-7"))
        .stderr(predicate::str::contains(path(&lab.admin)));
    webscaler()
        .args([
            "haproxy",
            "servers",
            "--backend",
            "web",
            "--socket",
            path(&lab.admin),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no backend named \"web\""));
}
