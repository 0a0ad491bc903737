//! The benchmark backend under the real httperf, as the lab drives it; httperf's report is
//! read with lbbench's own parser.

use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Supervised;
use common::wait::poll_until;
use lbbench::httperf::parse_report;
use lbbench::lab::fleet::parse_listening;

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

    // 200 connections per second for 3 s, one request each, as the lab report's sweep does.
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

    let r = parse_report(&report).unwrap_or_else(|e| panic!("{e}\n{report}"));
    assert_eq!(r.errors_total, 0, "{report}");
    assert_eq!(r.total_connections, u64::from(CONNS), "{report}");
    assert_eq!(r.total_replies, u64::from(CONNS), "{report}");
    assert_eq!(r.reply_status_2xx, u64::from(CONNS), "{report}");
    // About 200 ms: the sleep, plus a little (more on a busy machine).
    assert!(
        (199.0..=300.0).contains(&r.reply_time_response),
        "reply time {} ms\n{report}",
        r.reply_time_response
    );
    let status = backend.stop().unwrap();
    assert!(
        status.success(),
        "the backend exits cleanly on SIGTERM: {status:?}"
    );
}
