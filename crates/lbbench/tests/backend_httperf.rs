//! The benchmark backend under the real httperf, as the lab drives it.
//!
//! httperf's report is read with a minimal line match here; once the httperf report parser
//! (issue #4) is merged, this test should use it instead.

use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Supervised;
use common::wait::poll_until;
use lbbench::lab::fleet::parse_listening;

/// The first number after `prefix` on the line that starts with it.
fn number_after(report: &str, prefix: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in httperf's report:\n{report}"));
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {prefix:?} in {line:?}"))
}

#[test]
fn backend_under_httperf_at_200_per_second_with_sleep_0_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backend.log");
    let mut backend = Supervised::spawn(
        "lbbench backend",
        Command::new(env!("CARGO_BIN_EXE_lbbench"))
            .args([
                "backend", "--port", "0", "--name", "node-1", "--grace", "2s",
            ])
            .stderr(std::fs::File::create(&log).unwrap()),
    )
    .unwrap();
    let addr = poll_until(
        "the backend to listen",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || parse_listening(&std::fs::read_to_string(&log).ok()?),
    )
    .unwrap();

    // 200 connections per second for 3 s, one request each, as the seed's sweep does.
    const CONNS: u32 = 600;
    let out = Command::new("httperf")
        .args(["--hog", "--server", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .args([
            "--uri",
            "/perf.php?sleep=0.2&rounds=1",
            "--rate",
            "200",
            "--num-calls",
            "1",
            "--timeout",
            "5",
            "--num-conns",
        ])
        .arg(CONNS.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("httperf runs (Debian package httperf; scripts/setup.sh installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "httperf: {out:?}");

    assert_eq!(number_after(&report, "Errors: total"), 0.0, "{report}");
    // `Total: connections 600 requests 600 replies 600 test-duration 3.2 s`
    let replies = report
        .lines()
        .find(|l| l.starts_with("Total: connections"))
        .and_then(|l| l.split("replies").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok());
    assert_eq!(replies, Some(CONNS), "{report}");
    // About 200 ms: the sleep, plus a little (more on a busy machine).
    let reply_ms = number_after(&report, "Reply time [ms]: response");
    assert!(
        (199.0..=300.0).contains(&reply_ms),
        "reply time {reply_ms} ms\n{report}"
    );
    let status = backend.stop().unwrap();
    assert!(
        status.success(),
        "the backend exits cleanly on SIGTERM: {status:?}"
    );
}
