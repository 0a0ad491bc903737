//! `testkit` finds and builds the workspace's binaries.

use std::process::Command;

#[test]
fn workspace_bins_are_found_and_run() {
    let bin = testkit::workspace_bin("diskstats");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("diskstats "));
}
