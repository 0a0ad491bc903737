//! The binary answers `--help` and `--version`, and follows the exit-code convention.

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("diskstats").unwrap()
}

#[test]
fn help_and_version() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: diskstats"));
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::diff(format!(
            "diskstats {}\n",
            env!("CARGO_PKG_VERSION")
        )));
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    bin()
        .arg("--no-such-flag")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-such-flag"));
}
