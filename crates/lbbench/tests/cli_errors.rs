//! Bad input gives one clear line and the right exit status (2 for bad usage or input, 1 for
//! runtime failures), and never touches data already written.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("lbbench").expect("the lbbench binary")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn one_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(s.lines().count(), 1, "one line: {s}");
    s
}

/// A host name whose lookup fails inside the resolver (a label over 63 bytes), so no DNS
/// query leaves the machine.
fn unresolvable() -> String {
    format!("{}.invalid", "x".repeat(70))
}

#[test]
fn httperf_not_installed_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let a = bin()
        .env("PATH", dir.path())
        .args(["sweep", "--server", "127.0.0.1", "-o"])
        .arg(&out)
        .assert()
        .code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(msg.contains("httperf is not installed"), "{msg}");
    assert!(msg.contains("apt-get install httperf"), "{msg}");
    assert!(!out.exists(), "nothing written");

    let a = bin()
        .args([
            "run",
            "--server",
            "127.0.0.1",
            "--rate",
            "1",
            "--num-conns",
            "1",
        ])
        .args(["--httperf", "/nonexistent/bin/httperf"])
        .assert()
        .code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(msg.contains("/nonexistent/bin/httperf"), "{msg}");
}

#[test]
fn an_unresolvable_host_fails_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    // A fake httperf that records being run: it must not be.
    let marker = dir.path().join("ran");
    let fake = script(
        dir.path(),
        "httperf",
        &format!("touch {}", marker.display()),
    );
    let host = unresolvable();
    let a = bin()
        .args(["sweep", "--server", &host, "--httperf"])
        .arg(&fake)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains(&format!("cannot resolve the server `{host}`")),
        "{msg}"
    );
    assert!(!marker.exists(), "httperf was started");
    assert!(!out.exists());
    bin()
        .args([
            "run",
            "--server",
            &host,
            "--rate",
            "1",
            "--num-conns",
            "1",
            "--httperf",
        ])
        .arg(&fake)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot resolve"));
    assert!(!marker.exists());
}

#[test]
fn an_empty_rate_list_is_a_usage_error() {
    let a = bin()
        .args([
            "sweep",
            "--server",
            "127.0.0.1",
            "--from",
            "300",
            "--to",
            "200",
        ])
        .assert()
        .code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains("empty rate list: --from 300 is above --to 200"),
        "{msg}"
    );
    bin()
        .args(["sweep", "--server", "127.0.0.1", "--step", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--step must be a positive number"));
}

#[test]
fn other_bad_arguments_are_usage_errors() {
    // --num-conns and --duration: exactly one.
    bin()
        .args(["run", "--server", "127.0.0.1", "--rate", "1"])
        .assert()
        .code(2);
    bin()
        .args([
            "run",
            "--server",
            "127.0.0.1",
            "--rate",
            "1",
            "--num-conns",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("at least 1"));
    bin()
        .args([
            "run",
            "--server",
            "127.0.0.1",
            "--rate",
            "1",
            "--num-conns",
            "5",
        ])
        .args(["--", "--rate=9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use lbbench's --rate"));
    bin()
        .args(["sweep", "--server", "127.0.0.1", "--pause", "-1"])
        .assert()
        .code(2);
}

#[test]
fn httperf_failing_or_printing_no_report_is_an_error_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let fails = script(
        dir.path(),
        "fails",
        "echo 'httperf: warning: open file limit > FD_SETSIZE; limiting' >&2\n\
         echo 'httperf: something broke' >&2; exit 3",
    );
    let a = bin()
        .args([
            "run",
            "--server",
            "127.0.0.1",
            "--rate",
            "1",
            "--num-conns",
            "1",
            "--httperf",
        ])
        .arg(&fails)
        .assert()
        .code(1);
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains("httperf failed (exit status: 3): httperf: something broke"),
        "{msg}"
    );

    let garbage = script(
        dir.path(),
        "garbage",
        "echo hello; echo 'it went wrong' >&2; exit 0",
    );
    let out = dir.path().join("perf.csv");
    let a = bin()
        .args(["sweep", "--server", "127.0.0.1", "--httperf"])
        .arg(&garbage)
        .arg("-q")
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let msg = one_line(&a.get_output().stderr);
    assert!(msg.contains("rate 100/s run 1"), "{msg}");
    assert!(msg.contains("no usable report"), "{msg}");
    assert!(msg.contains("it went wrong"), "{msg}");
    // The file has its header at most, never a partial row.
    assert!(
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
            <= 1
    );

    // A truncated report from httperf names the missing line.
    let cut = script(
        dir.path(),
        "cut",
        &format!("head -n 19 {}", fixture("httperf-sample-1.txt").display()),
    );
    bin()
        .args([
            "run",
            "--server",
            "127.0.0.1",
            "--rate",
            "1",
            "--num-conns",
            "1",
            "--httperf",
        ])
        .arg(&cut)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the `Net I/O:` line is missing"));
}

#[test]
fn a_file_with_another_header_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    std::fs::write(&out, "a,b,c\n1,2,3\n").unwrap();
    let a = bin()
        .args(["sweep", "--server", "127.0.0.1", "-o"])
        .arg(&out)
        .assert()
        .code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(msg.contains("header differs"), "{msg}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a,b,c\n1,2,3\n");
}

#[test]
fn parse_writes_csv_and_json_for_several_files_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.log");
    let text = std::fs::read_to_string(fixture("httperf-sample-1.txt")).unwrap()
        + &std::fs::read_to_string(fixture("httperf-sample-errors.txt")).unwrap();
    std::fs::write(&both, text).unwrap();
    let a = bin()
        .arg("parse")
        .arg(&both)
        .arg(fixture("seed-listing-2.1.txt"))
        .assert()
        .success();
    let out = a.get_output().stdout.clone();
    let mut rdr = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..3], ["source", "line", "command"]);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][col("line")], "1");
    assert_eq!(&rows[1][col("line")], "24");
    assert_eq!(&rows[1][col("errors_conn_refused")], "100");
    assert_eq!(&rows[1][col("valid")], "false");
    assert_eq!(&rows[2][col("total_connections")], "6000");
    assert_eq!(&rows[2][col("net_io_bps")], "200000.0");
    assert_eq!(&rows[2][col("line")], "2", "after the typed command");

    let a = bin()
        .args(["parse", "--json", "-"])
        .write_stdin(std::fs::read(fixture("httperf-wsess-verbose.txt")).unwrap())
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v[0]["source"], "-");
    assert_eq!(v[0]["report"]["sessions_completed"], 30);
    assert_eq!(v[0]["report"]["session_length_histogram"][2], 30);
    assert_eq!(
        v[0]["validity"]["target_request_rate"],
        serde_json::Value::Null
    );
}

#[test]
fn parse_refuses_bad_files_without_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.log");
    let full = std::fs::read_to_string(fixture("httperf-sample-2.txt")).unwrap();
    std::fs::write(
        &cut,
        format!("{full}{}", &full[..full.find("CPU time").unwrap()]),
    )
    .unwrap();
    let a = bin()
        .arg("parse")
        .arg(fixture("httperf-sample-1.txt"))
        .arg(&cut)
        .assert()
        .code(2);
    assert!(a.get_output().stdout.is_empty());
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains("cut.log: the report starting at line 24"),
        "{msg}"
    );
    assert!(msg.contains("the `CPU time [s]:` line is missing"), "{msg}");

    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "nothing here\n").unwrap();
    bin()
        .arg("parse")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no httperf report found"));
    bin()
        .args(["parse", "/nonexistent/file.log"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read /nonexistent/file.log",
        ));
}

#[test]
fn cpu_refuses_a_missing_pid_and_a_bad_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cpu.csv");
    bin()
        .args(["cpu", "--pid", "4194305", "-n", "1", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no process with pid 4194305"));
    assert!(!out.exists());
    bin()
        .args(["cpu", "-i", "0", "-n", "1", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--interval"));
    bin()
        .args(["cpu", "--pid", "1", "--name", "x"])
        .assert()
        .code(2);
}

/// An httperf stand-in that prints a real report, except on the calls listed in `fail`
/// (counted from 1), where it prints to stderr and exits 3.
fn flaky_httperf(dir: &Path, fail: &[u32]) -> PathBuf {
    let count = dir.join("calls");
    let fail: Vec<String> = fail.iter().map(u32::to_string).collect();
    script(
        dir,
        "flaky-httperf",
        &format!(
            "n=$(cat {count} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {count}\n\
             case ' {fail} ' in *\" $n \"*) echo \"call $n hung\" >&2; exit 3;; esac\n\
             cat {report}",
            count = count.display(),
            fail = fail.join(" "),
            report = fixture("httperf-sample-1.txt").display()
        ),
    )
}

/// `target_rate/run` of each row.
fn rows(path: &Path) -> Vec<String> {
    support::read_rows(path)
        .1
        .iter()
        .map(|r| format!("{}/{}", r["target_rate"], r["run"]))
        .collect()
}

fn small_sweep(httperf: &Path, out: &Path) -> Command {
    let mut c = bin();
    c.args([
        "sweep",
        "--server",
        "127.0.0.1",
        "--from",
        "100",
        "--to",
        "200",
        "--step",
        "100",
        "--repeat",
        "2",
        "--pause",
        "0",
        "-q",
        "--httperf",
    ])
    .arg(httperf)
    .arg("-o")
    .arg(out);
    c
}

#[test]
fn a_failed_run_in_a_working_sweep_is_skipped_then_done_by_the_next_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    // Call 2 (rate 100, run 2) fails: the sweep goes on, then exits 1 naming that run.
    let a = small_sweep(&flaky_httperf(dir.path(), &[2]), &out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("1 of 4 runs failed") && last.contains("rate 100/s run 2"),
        "{stderr}"
    );
    assert!(last.contains("call 2 hung"), "{stderr}");
    assert_eq!(rows(&out), ["100/1", "200/1", "200/2"]);
    // Run again with a working httperf: only the missing run is done.
    std::fs::remove_file(dir.path().join("calls")).unwrap();
    small_sweep(&flaky_httperf(dir.path(), &[]), &out)
        .assert()
        .success();
    assert_eq!(rows(&out), ["100/1", "200/1", "200/2", "100/2"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("calls"))
            .unwrap()
            .trim(),
        "1"
    );
}

#[test]
fn two_failures_in_a_row_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let a = small_sweep(&flaky_httperf(dir.path(), &[2, 3]), &out)
        .assert()
        .code(1);
    let msg = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    let last = msg.lines().last().unwrap_or_default();
    assert!(
        last.contains("rate 200/s run 1") && last.contains("call 3 hung"),
        "{msg}"
    );
    assert_eq!(rows(&out), ["100/1"]);
}

/// Absurd numbers are refused with one line and exit 2 before anything runs or is
/// allocated: no panic on a pause past the clock's end, no plan of 4 billion runs.
#[test]
fn absurd_durations_and_counts_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    // A fake httperf: nothing may run.
    let fake = script(dir.path(), "httperf", "echo ran >> \"$0.log\"; exit 1");
    for args in [
        &["--pause", "1e19"][..],
        &["--repeat", "4294967295"],
        &["--duration", "9.3e18"],
        &["--timeout", "1e300"],
    ] {
        let a = bin()
            .args([
                "sweep",
                "--server",
                "127.0.0.1",
                "--from",
                "100",
                "--to",
                "100",
                "-o",
            ])
            .arg(&out)
            .arg("--httperf")
            .arg(&fake)
            .args(args)
            .assert()
            .code(2);
        let msg = one_line(&a.get_output().stderr);
        assert!(msg.contains(args[0]), "{args:?}: {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
    let a = bin()
        .args(["lab", "--pause", "1e19", "-o"])
        .arg(dir.path().join("lab"))
        .assert()
        .code(2);
    assert!(one_line(&a.get_output().stderr).contains("--pause"));
    assert!(!out.exists() && !fake.with_extension("log").exists());
    assert!(
        !dir.path().join("httperf.log").exists(),
        "httperf never ran"
    );
}

/// Two identical sweeps on one file: the second stops at once, naming the first one's pid,
/// and the file gets each planned run once.
#[test]
fn a_second_sweep_on_the_same_file_is_refused_with_the_first_one_s_pid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let httperf = script(
        dir.path(),
        "httperf",
        &format!(
            "sleep 1; cat '{}'",
            fixture("httperf-sample-1.txt").display()
        ),
    );
    let first = small_sweep(&httperf, &out);
    let mut first = common::process::Supervised::spawn(
        "first sweep",
        std::process::Command::new(first.get_program())
            .args(first.get_args())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let lock = dir.path().join(".perf.csv.lock");
    common::wait::poll_until(
        "the first sweep's lock",
        support::DEADLINE,
        support::POLL,
        || (std::fs::read_to_string(&lock).ok()?.trim() == first.pid().to_string()).then_some(()),
    )
    .unwrap();
    let a = small_sweep(&httperf, &out).assert().code(1);
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains(&format!("another sweep (pid {})", first.pid())) && msg.contains("perf.csv"),
        "{msg}"
    );
    let status = first.wait_timeout(support::DEADLINE).unwrap().unwrap();
    assert!(status.success());
    assert_eq!(
        rows(&out),
        ["100/1", "100/2", "200/1", "200/2"],
        "each planned run once"
    );
}

/// A run that got no reply because nothing listened is a failed run: not written, named at
/// the end (exit 1), and done again by the same command once the server answers.
#[test]
fn runs_refused_by_a_closed_port_are_failed_and_done_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("perf.csv");
    let counter = dir.path().join("calls");
    // The first run gets replies, the second finds the port closed, then it is back.
    let httperf = script(
        dir.path(),
        "httperf",
        &format!(
            "n=$(( $(cat '{c}' 2>/dev/null || echo 0) + 1 )); echo $n > '{c}'\n\
             if [ $n -eq 2 ]; then cat '{refused}'; else cat '{ok}'; fi",
            c = counter.display(),
            refused = fixture("httperf-sample-errors.txt").display(),
            ok = fixture("httperf-sample-1.txt").display(),
        ),
    );
    let a = small_sweep(&httperf, &out).assert().code(1);
    let msg = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(msg.contains("1 of 4 runs failed"), "{msg}");
    assert!(msg.contains("rate 100/s run 2: no replies"), "{msg}");
    assert_eq!(
        rows(&out),
        ["100/1", "200/1", "200/2"],
        "the refused run is not written"
    );
    small_sweep(&httperf, &out).assert().success();
    assert_eq!(rows(&out), ["100/1", "200/1", "200/2", "100/2"]);
    assert_eq!(support::read_rows(&out).1[3]["total_replies"], "200");
}

#[test]
fn bad_hosts_files_and_options_across_hosts_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    let out = dir.path().join("lab");
    let lab = |extra: &[&str]| {
        let mut c = bin();
        c.arg("lab").args(extra).arg("-o").arg(&out);
        c
    };
    // A missing file, a file with an unknown key, a file without a balancer.
    let a = lab(&["--hosts", "/no/such/hosts.toml"]).assert().code(2);
    assert!(one_line(&a.get_output().stderr).contains("/no/such/hosts.toml"));
    std::fs::write(&hosts, "[[client]]\nssh = \"10.0.0.1\"\nprot = 22\n").unwrap();
    let a = lab(&["--hosts", hosts.to_str().unwrap()]).assert().code(2);
    let msg = one_line(&a.get_output().stderr);
    assert!(
        msg.contains("hosts.toml: line 3: unknown field `prot`"),
        "{msg}"
    );
    std::fs::write(
        &hosts,
        "[[client]]\nssh = \"10.0.0.1\"\n[[backend]]\nssh = \"10.0.0.3\"\n",
    )
    .unwrap();
    let a = lab(&["--hosts", hosts.to_str().unwrap(), "--check"])
        .assert()
        .code(2);
    assert!(one_line(&a.get_output().stderr).contains("no balancer"));
    // A good file, but --tune (this machine's limits) across hosts; nothing is reached.
    std::fs::write(
        &hosts,
        "[[client]]\nssh = \"10.0.0.1\"\n[balancer]\nssh = \"10.0.0.2\"\n[[backend]]\nssh = \"10.0.0.3\"\n",
    )
    .unwrap();
    let a = lab(&["--hosts", hosts.to_str().unwrap(), "--tune"])
        .assert()
        .code(2);
    assert!(one_line(&a.get_output().stderr).contains("--tune"));
    // --check needs --hosts.
    lab(&["--check"]).assert().code(2);
    assert!(!out.exists(), "nothing written");
}
