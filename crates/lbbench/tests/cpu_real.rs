//! `lbbench cpu` and the process sampler on real busy processes. Thresholds are low because
//! the tests share 2 cores with other work: a busy loop gets well over 20% of a CPU even then,
//! an idle one next to nothing.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use common::process::Supervised;
use common::wait::poll_until;
use lbbench::cpu::{ProcessSampler, ProcessSelector, process_usage};
use support::{DEADLINE, POLL, read_rows};

const BUSY: &str = "while :; do :; done";

/// Starts `sh -c script` under the name `name` (a symlink to sh, so its `comm` is `name`).
fn spawn_named(dir: &Path, name: &str, script: &str) -> Supervised {
    let link = dir.join(name);
    if !link.exists() {
        symlink("/bin/sh", &link).unwrap();
    }
    let p = Supervised::spawn(name, Command::new(&link).args(["-c", script]))
        .unwrap()
        .with_grace(Duration::from_millis(500));
    let pid = p.pid();
    // Wait until it has exec'd: its comm is the new name, and its command line (set a moment
    // after comm during exec) is readable.
    poll_until("the process to exec", DEADLINE, POLL, || {
        let stat = lbbench::cpu::process::read_pid_stat(pid)?;
        let argv = common::process::cmdline(pid)?;
        (stat.comm == name && argv.len() == 3).then_some(())
    })
    .unwrap();
    p
}

/// Stops processes that are not our children (a test's grandchildren) by pid, even when the
/// test fails.
struct Reaper(Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = common::process::terminate(pid, Duration::from_secs(2));
        }
    }
}

fn unique(prefix: &str) -> String {
    // comm holds 15 bytes.
    format!("{prefix}{}", std::process::id() % 100_000)
}

fn cpu_cmd() -> Command {
    Command::cargo_bin("lbbench").unwrap()
}

#[test]
fn cpu_measures_a_busy_process_and_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let busy = spawn_named(dir.path(), &unique("lbbusy"), BUSY);
    let out = dir.path().join("cpu.csv");
    let res = cpu_cmd()
        .args([
            "cpu",
            "--pid",
            &busy.pid().to_string(),
            "-i",
            "0.5",
            "-n",
            "3",
            "--utc",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8(res.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "a line per row: {stdout}");
    let (header, rows) = read_rows(&out);
    assert_eq!(header, lbbench::cpu::monitor::COLUMNS);
    assert_eq!(rows.len(), 3);
    let mut total = 0.0;
    for r in &rows {
        assert_eq!(r["proc_pids"], busy.pid().to_string());
        assert_eq!(r["proc_count"], "1");
        assert_eq!(r["proc_selector"], format!("pid:{}", busy.pid()));
        let interval: f64 = r["interval_s"].parse().unwrap();
        assert!((0.3..5.0).contains(&interval), "{interval}");
        let machine: f64 = ["user", "nice", "system", "iowait", "steal", "idle"]
            .iter()
            .map(|k| r[&format!("cpu_{k}_pct")].parse::<f64>().unwrap())
            .sum();
        assert!(
            (machine - 100.0).abs() < 0.1,
            "machine shares add to 100: {machine}"
        );
        assert!(r["timestamp"].ends_with('Z'));
        total += r["proc_cpu_pct"].parse::<f64>().unwrap();
    }
    let mean = total / 3.0;
    assert!(mean > 20.0, "a busy loop used {mean}% CPU");
    assert!(mean < 150.0, "one thread cannot use {mean}%");
    // The machine was at least as busy as the loop.
    let user: f64 = rows[2]["cpu_user_pct"].parse().unwrap();
    assert!(user > 5.0, "{user}");
}

#[test]
fn children_are_summed_and_an_idle_parent_alone_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    // The parent only waits; its two children spin. It stops them when it is stopped.
    let parent = spawn_named(
        dir.path(),
        &unique("lbpar"),
        &format!(
            "sh -c '{BUSY}' & a=$!; sh -c '{BUSY}' & b=$!; \
             trap 'kill $a $b; exit 0' TERM; wait"
        ),
    );
    let idle = spawn_named(
        dir.path(),
        &unique("lbidle"),
        "sleep 60 & s=$!; trap 'kill $s; exit 0' TERM; wait",
    );
    let mut family = ProcessSampler::new(ProcessSelector::Pids(vec![parent.pid()])).unwrap();
    let mut alone = ProcessSampler::new(ProcessSelector::Pids(vec![idle.pid()])).unwrap();
    let pids = poll_until("the children to start", DEADLINE, POLL, || {
        let s = family.sample().ok()?;
        (s.procs.len() == 3).then(|| s.pids())
    })
    .unwrap();
    let _reaper = Reaper(pids);
    let (f0, a0) = (family.sample().unwrap(), alone.sample().unwrap());
    std::thread::sleep(Duration::from_millis(800)); // the measured window, not a wait
    let (f1, a1) = (family.sample().unwrap(), alone.sample().unwrap());
    let _reaper2 = Reaper(a1.pids());
    let fu = process_usage(&f0, &f1);
    let au = process_usage(&a0, &a1);
    assert_eq!(fu.processes, 3);
    assert!(fu.cpu_pct > 30.0, "two busy children used {}%", fu.cpu_pct);
    assert_eq!(au.processes, 2, "sh and its sleep");
    assert!(au.cpu_pct < 10.0, "an idle process used {}%", au.cpu_pct);
}

#[test]
fn a_restarted_process_is_found_again_by_name_and_by_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("lbrst");
    let first = spawn_named(dir.path(), &name, BUSY);
    let first_pid = first.pid();
    let mut by_name = ProcessSampler::new(ProcessSelector::Name(name.clone())).unwrap();
    let mut by_pid = ProcessSampler::new(ProcessSelector::Pids(vec![first_pid])).unwrap();
    let s0 = by_name.sample().unwrap();
    assert_eq!(s0.pids(), [first_pid]);
    assert_eq!(by_pid.sample().unwrap().pids(), [first_pid]);
    drop(first);
    // Nothing runs under that name for a moment.
    assert!(by_name.sample().unwrap().procs.is_empty());
    assert!(by_pid.sample().unwrap().procs.is_empty());

    // "Restart": the same program with the same command line, under a new pid.
    let second = spawn_named(dir.path(), &name, BUSY);
    assert_ne!(second.pid(), first_pid);
    let a = by_name.sample().unwrap();
    assert_eq!(a.pids(), [second.pid()]);
    assert_eq!(by_pid.sample().unwrap().pids(), [second.pid()]);
    poll_until("CPU time to accrue", DEADLINE, POLL, || {
        let b = by_name.sample().ok()?;
        (process_usage(&a, &b).cpu_pct > 0.0).then_some(())
    })
    .unwrap();
    // A process started after a sample counts in full in the next interval.
    let u = process_usage(&s0, &by_name.sample().unwrap());
    assert!(u.user_s + u.system_s > 0.0);
}

#[test]
fn cpu_by_name_writes_the_default_file_name_until_count() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("lbnam");
    let _p = spawn_named(dir.path(), &name, BUSY);
    let res = cpu_cmd()
        .current_dir(dir.path())
        .args(["cpu", "--name", &name, "-i", "0.2", "-n", "2", "-q"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(res.stdout.is_empty(), "-q prints nothing");
    let (_, rows) = read_rows(&dir.path().join(format!("cpu_mon_{name}.csv")));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["proc_selector"], format!("name:{name}"));
    assert_eq!(rows[1]["proc_count"], "1");
}
