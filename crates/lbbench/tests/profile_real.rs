//! `lbbench profile` against a real `lbbench backend` with the real httperf: stages start at
//! their compressed offsets and run together, and the per-stage summary is httperf's own
//! numbers.

mod support;

use std::process::Command;

use lbbench::httperf::parse_report;
use serde_json::Value;
use support::Backend;

/// Three stages at 5 to 20 conn/s; at --speed 10: 3, 2 and 1 s long, starting at 0, 1 and
/// 1.5 s, so they overlap.
const PROFILE: &str = r#"
name = "tiny"
uri = "/perf.php?sleep=0.05"

[[stage]]
start = 0
rate = 5
num_conns = 150

[[stage]]
start = 10
rate = 20
num_conns = 400

[[stage]]
start = 15
rate = 10
num_conns = 96
"#;

#[test]
fn profile_plays_overlapping_stages_and_reports_httperf_s_numbers() {
    let backend = Backend::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.toml");
    std::fs::write(&file, PROFILE).unwrap();
    let raw = dir.path().join("raw");
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .arg("profile")
        .arg(&file)
        .args(["--server", "127.0.0.1", "--port"])
        .arg(backend.port().to_string())
        .args(["--speed", "10", "--json", "--save-raw"])
        .arg(&raw)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "tiny");
    assert_eq!(v["speed"], 10.0);
    let stages = v["stages"].as_array().unwrap();
    // (start ÷ 10, rate kept, connections ÷ 10)
    let want = [(0.0, 5.0, 15), (1.0, 20.0, 40), (1.5, 10.0, 10)];
    assert_eq!(stages.len(), want.len());
    let (mut conns, mut replies, mut errors, mut s5xx) = (0, 0, 0, 0);
    for (i, (s, (start, rate, n))) in stages.iter().zip(want).enumerate() {
        assert_eq!(s["stage"], i + 1);
        assert_eq!(s["status"], "done", "{s}");
        assert_eq!(s["start_s"], start);
        assert_eq!(s["rate"], rate);
        assert_eq!(s["num_conns"], n);
        // It started at its offset (not before; a loaded machine may be late).
        let started = s["started_s"].as_f64().unwrap();
        assert!(started >= start - 0.001 && started < start + 5.0, "{s}");
        // Its numbers are httperf's report for that stage.
        let text = std::fs::read_to_string(raw.join(format!("stage-{}.txt", i + 1))).unwrap();
        let r = parse_report(&text).unwrap();
        assert_eq!(r.command_option("rate"), Some(rate.to_string().as_str()));
        assert_eq!(r.command_option("num-conns"), Some(n.to_string().as_str()));
        assert_eq!(r.command_option("uri"), Some("/perf.php?sleep=0.05"));
        assert_eq!(r.total_connections, n);
        assert_eq!(s["replies"], r.total_replies);
        assert_eq!(s["requests"], r.total_requests);
        assert_eq!(s["request_rate"], r.request_rate_per_sec);
        assert_eq!(s["reply_time_ms"], r.reply_time_response);
        assert_eq!(s["test_duration_s"], r.total_test_duration);
        assert_eq!(s["errors"], r.errors_total);
        assert_eq!(s["status_5xx"], r.reply_status_5xx);
        assert_eq!(r.reply_status_2xx, n, "{text}");
        assert!(r.reply_time_response >= 50.0, "{text}");
        conns += r.total_connections;
        replies += r.total_replies;
        errors += r.errors_total;
        s5xx += r.reply_status_5xx;
    }
    assert_eq!(v["connections"], conns);
    assert_eq!(v["replies"], replies);
    assert_eq!(
        (v["errors"].as_u64(), v["status_5xx"].as_u64()),
        (Some(errors), Some(s5xx))
    );
    assert_eq!(v["failed_stages"], 0);
    assert_eq!(v["interrupted_stages"], 0);
    // The backend saw every request of the three stages.
    assert_eq!(backend.requests(), 15 + 40 + 10);
    // They ran at the same time: stage 2 started before stage 1 ended.
    let s1_end = stages[0]["started_s"].as_f64().unwrap() + 15.0 / 5.0;
    assert!(stages[1]["started_s"].as_f64().unwrap() < s1_end - 1.0);
    assert!(stderr.contains("stage 3 started at +"), "{stderr}");
}

#[test]
fn load_errors_are_shown_but_do_not_fail_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "[[stage]]\nstart = 0\nrate = 20\nnum_conns = 3\n").unwrap();
    // Nobody listens there: every connection is refused.
    let port = common::net::free_port().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .arg("profile")
        .arg(&file)
        .args(["--port", &port.to_string(), "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let total = stdout.lines().last().unwrap();
    assert!(total.contains("errors 3, 5xx 0"), "{stdout}");
    assert!(
        stderr.contains("warning: httperf saw 3 errors and 0 5xx replies"),
        "{stderr}"
    );

    // A profile that cannot be read is a usage error, naming the file.
    std::fs::write(&file, "[[stage]]\nstart = 0\nrate = 0\nnum_conns = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .arg("profile")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("p.toml: stage 1: rate"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["profile", "--speed", "0"])
        .arg(testkit::workspace_root().join("benches-data/seed-profile.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--speed must be"));
}
