//! The sampler's command line, run as the binary against the machine's real
//! `/proc/diskstats`: file names, the loop and its count, signals, bad input, SIGKILL at any
//! moment, and concurrent cron runs on one file.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use common::process::Supervised;
use common::wait::poll_until;
use diskstats::parse::{line_name, parse_line};
use diskstats::record::{HEADER, Row, decode_row};
use predicates::prelude::*;
use rustix::process::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_diskstats");
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);

fn bin() -> Command {
    Command::cargo_bin("diskstats").unwrap()
}

/// The device names of the running kernel, in its order.
fn kernel_devices() -> Vec<String> {
    fs::read_to_string("/proc/diskstats")
        .expect("/proc/diskstats")
        .lines()
        .filter_map(line_name)
        .map(str::to_owned)
        .collect()
}

/// A real disk of this machine (not loop, ram or zram) if there is one, else the first device.
fn real_device() -> String {
    let all = kernel_devices();
    all.iter()
        .find(|d| !["loop", "ram", "zram"].iter().any(|p| d.starts_with(p)))
        .or(all.first())
        .expect("a device in /proc/diskstats")
        .clone()
}

fn header_line() -> String {
    HEADER.join(",")
}

/// Every data row of a diskstats CSV, checking the header is the first line and only there.
fn read_rows(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.ends_with('\n'),
        "{} ends with a torn row",
        path.display()
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header_line().as_str()));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    rdr.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            decode_row(&r).unwrap_or_else(|e| panic!("{}: {e}: {r:?}", path.display()))
        })
        .collect()
}

/// The kernel's counters for `dev` right now.
fn kernel_counters(dev: &str) -> diskstats::parse::Counters {
    let text = fs::read_to_string("/proc/diskstats").unwrap();
    let line = text.lines().find(|l| line_name(l) == Some(dev)).unwrap();
    parse_line(line).unwrap().counters
}

#[test]
fn a_loop_with_a_count_writes_that_many_samples_to_mon_dev_csv() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let before = kernel_counters(&dev);
    let outdir = format!("{}/", dir.path().display());
    bin()
        .args(["-l", "0.05", "-n", "4", "-d", &dev, "-o", &outdir])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "wrote 4 samples (4 rows) to {outdir}mon_{dev}.csv"
        )));
    let after = kernel_counters(&dev);
    let rows = read_rows(&dir.path().join(format!("mon_{dev}.csv")));
    assert_eq!(rows.len(), 4);
    let line = fs::read_to_string("/proc/diskstats").unwrap();
    let kernel = parse_line(line.lines().find(|l| line_name(l) == Some(&dev)).unwrap()).unwrap();
    for r in &rows {
        assert_eq!(r.device, dev);
        assert_eq!((r.major, r.minor), (kernel.major, kernel.minor));
        // Real counters, taken between the two reads of this test.
        assert!(before.rd_ios <= r.counters.rd_ios && r.counters.rd_ios <= after.rd_ios);
        assert!(before.wr_ios <= r.counters.wr_ios && r.counters.wr_ios <= after.wr_ios);
        assert!(
            r.datetime.len() == 26 && !r.datetime.ends_with('Z'),
            "{}",
            r.datetime
        );
    }
    // Uptime is monotonic and spans the three intervals of 50 ms (ticks never fire early).
    assert!(rows.windows(2).all(|w| w[1].uptime > w[0].uptime));
    let span = rows[3].uptime - rows[0].uptime;
    assert!(span >= 0.149, "span {span}");
    let up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (up - rows[3].uptime).abs() < 60.0,
        "uptime column is CLOCK_BOOTTIME"
    );
}

#[test]
fn several_devices_go_to_mon_diskstats_a_b_and_all_to_mon_diskstats() {
    let devs = kernel_devices();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (&devs[devs.len() - 1], &devs[0]);
    bin()
        .args(["-l", "0", "-n", "3", "-q", "-d", a, b, "-o"])
        .arg(dir.path())
        .assert()
        .success()
        .stderr("");
    let rows = read_rows(&dir.path().join(format!("mon_diskstats_{a}_{b}.csv")));
    let names: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
    assert_eq!(names, [a, b, a, b, a, b]);
    // Both rows of a sample come from the same read.
    assert_eq!(rows[0].uptime, rows[1].uptime);
    assert_eq!(rows[0].datetime, rows[1].datetime);

    bin()
        .args(["-l", "0", "-n", "2", "-q", "-o"])
        .arg(dir.path())
        .assert()
        .success();
    let rows = read_rows(&dir.path().join("mon_diskstats.csv"));
    let names: Vec<String> = rows.iter().map(|r| r.device.clone()).collect();
    let mut expected = kernel_devices();
    expected.extend(kernel_devices());
    assert_eq!(names, expected);
}

#[test]
fn a_one_shot_without_o_writes_into_the_current_directory_and_prints_nothing() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        bin()
            .current_dir(dir.path())
            .args(["-d", &dev])
            .assert()
            .success()
            .stdout("")
            .stderr("");
    }
    let rows = read_rows(&dir.path().join(format!("mon_{dev}.csv")));
    assert_eq!(rows.len(), 2, "header once, one row per run");
}

#[test]
fn the_outdir_is_created_with_or_without_a_trailing_slash() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a/b/c", "x/y/"] {
        let out = format!("{}/{sub}", dir.path().display());
        bin().args(["-d", &dev, "-o", &out]).assert().success();
        let file = PathBuf::from(&out).join(format!("mon_{dev}.csv"));
        assert_eq!(read_rows(&file).len(), 1, "{}", file.display());
    }
}

#[test]
fn an_unknown_device_exits_2_lists_the_devices_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let assert = bin()
        .args(["-l", "1", "-d", "nosuchdisk0", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "diskstats: error: unknown device nosuchdisk0",
        ));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for d in kernel_devices() {
        assert!(
            stderr.contains(&format!(" {d}")),
            "{d} missing from: {stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!out.exists(), "nothing is created");
}

#[test]
fn an_outdir_that_cannot_be_created_exits_1_naming_the_path_and_the_os_error() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    fs::write(&blocker, "not a directory").unwrap();
    let out = blocker.join("sub");
    bin()
        .args(["-d", &dev, "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(out.display().to_string())
                .and(predicate::str::contains("Not a directory (os error 20)")),
        );
}

#[test]
fn a_file_with_another_header_is_refused_and_left_alone() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("mon_{dev}.csv"));
    // The lab report's own format (no uptime column).
    let seed = "datetime,major_number,minor_number,device_name,read_completed_successfully,\
                reads_merged,sectors_read,time_spent_reading(ms),writes_completed,writes_merged,\
                sectors_written,time_spent_writing(ms),IO_currently_in_progress,\
                time_spent_doing_IO(ms),weighted_time_spent_doing_IO\n\
                2014-12-14T14:27:07.878920,253,0,vda,5964436,13925,540485938,2768828,1289917,\
                1519024,48384848,9417637,0,1382484,12180809\n";
    fs::write(&file, seed).unwrap();
    bin()
        .args(["-d", &dev, "-o"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("original diskstats.py")
                .and(predicate::str::contains("refusing to append"))
                .and(predicate::str::contains(file.display().to_string())),
        );
    assert_eq!(fs::read_to_string(&file).unwrap(), seed);

    fs::write(&file, "a,b,c\n1,2,3\n").unwrap();
    bin()
        .args(["-l", "0", "-n", "2", "-d", &dev, "-o"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "a different header (file has `a,b,c`, expected `datetime,",
        ));
    assert_eq!(fs::read_to_string(&file).unwrap(), "a,b,c\n1,2,3\n");
}

#[test]
fn utc_timestamps_are_rfc3339() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["--utc", "-d", &dev, "-o"])
        .arg(dir.path())
        .assert()
        .success();
    let rows = read_rows(&dir.path().join(format!("mon_{dev}.csv")));
    let t = &rows[0].datetime;
    assert!(t.ends_with('Z') && t.len() == 27, "{t}");
    let parsed = common::time::parse_timestamp(t).unwrap();
    let age = chrono::Utc::now() - parsed;
    assert!(age.num_seconds().abs() < 300, "{t}");
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["-n", "3"][..],
        &["-l", "-1"],
        &["-l", "soon"],
        &["-l", "1", "-n", "0"],
        &["-d"],
        &["-l", "9.3e18", "-n", "2"],
        &["-l", "1e300"],
    ] {
        let a = bin().args(args).assert().code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn an_outdir_that_is_a_file_is_not_a_directory() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "keep").unwrap();
    let a = bin().args(["-d", &dev, "-o"]).arg(&file).assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("Not a directory"), "{err}");
    assert!(!err.contains("File exists"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep");
}

/// A FIFO where the CSV file should be would swallow the sample (nobody reads it): refused.
#[test]
fn a_fifo_as_the_csv_file_is_refused() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(format!("mon_{dev}.csv"));
    testkit::make_fifo(&fifo);
    let a = bin()
        .args(["-d", &dev, "-o"])
        .arg(dir.path())
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("not a regular file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Starts a looping sampler; returns it with its stderr piped.
fn start_loop(args: &[&str]) -> Supervised {
    Supervised::spawn(
        "diskstats",
        StdCommand::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .unwrap()
    .with_grace(Duration::from_secs(10))
}

fn data_lines(path: &Path) -> usize {
    fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn sigint_and_sigterm_stop_after_the_current_sample_and_print_the_count() {
    let dev = real_device();
    for sig in [Signal::INT, Signal::TERM] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().display().to_string();
        let file = dir.path().join(format!("mon_{dev}.csv"));
        let mut p = start_loop(&["-l", "0.02", "-d", &dev, "-o", &out]);
        poll_until("three samples", DEADLINE, POLL, || {
            (data_lines(&file) >= 3).then_some(())
        })
        .unwrap();
        p.signal(sig).unwrap();
        let status = p
            .wait_timeout(DEADLINE)
            .unwrap()
            .expect("exits on the signal");
        assert_eq!(status.code(), Some(0), "{sig:?}");
        let mut stderr = String::new();
        p.child_mut()
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let rows = read_rows(&file).len();
        assert!(
            stderr.contains(&format!(
                "wrote {rows} samples ({rows} rows) to {out}/mon_{dev}.csv (stopped by a signal)"
            )),
            "{sig:?}: {stderr}"
        );
    }
}

#[test]
fn sigkill_at_any_moment_never_leaves_a_torn_row() {
    let devs = kernel_devices();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let file = dir.path().join("mon_diskstats.csv");
    for round in 0..25 {
        let size = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        // As fast as possible, so the kill lands in the middle of the work.
        let mut p = start_loop(&["-q", "-l", "0", "-o", &out]);
        poll_until(
            "the file to grow",
            DEADLINE,
            Duration::from_micros(200),
            || {
                let now = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                (now > size + (round % 5) * 2000).then_some(())
            },
        )
        .unwrap();
        p.signal(Signal::KILL).unwrap();
        let status = p.wait_timeout(DEADLINE).unwrap().expect("killed");
        assert_eq!(status.code(), None, "killed by a signal");
    }
    // And a cron run appends cleanly after all that.
    bin().args(["-o", &out]).assert().success();

    // Every row parses whole (read_rows checks each row's fields). A sample is one batch,
    // one write(2); the kernel may still cut a write short at a page boundary when SIGKILL
    // lands during it, and the next writer then removes the torn row. So a sample is the
    // whole device list, in kernel order, from one read, except that a killed sampler's
    // last sample may be a prefix of it (at most one per kill).
    let rows = read_rows(&file);
    let expected: Vec<&str> = devs.iter().map(String::as_str).collect();
    let mut partial = 0;
    let mut samples = 0;
    let mut i = 0;
    while i < rows.len() {
        let uptime = rows[i].uptime;
        let block: Vec<_> = rows[i..]
            .iter()
            .take_while(|r| r.uptime == uptime)
            .collect();
        let names: Vec<&str> = block.iter().map(|r| r.device.as_str()).collect();
        assert!(
            names.len() <= expected.len() && names == expected[..names.len()],
            "rows {i}..: {names:?} is not the device list {expected:?} or a prefix of it"
        );
        if names.len() < expected.len() {
            partial += 1;
        }
        samples += 1;
        i += block.len();
    }
    assert!(samples >= 25, "{samples} samples");
    assert!(partial <= 25, "{partial} partial samples for 25 kills");
}

#[test]
fn concurrent_one_shot_runs_on_one_file_append_whole_rows() {
    let devs = kernel_devices();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let (rounds, width) = (4, 12);
    for _ in 0..rounds {
        let mut running: Vec<Supervised> = (0..width)
            .map(|_| {
                Supervised::spawn(
                    "diskstats",
                    StdCommand::new(BIN)
                        .args(["-o", &out])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                )
                .unwrap()
            })
            .collect();
        for p in &mut running {
            let status = p
                .wait_timeout(DEADLINE)
                .unwrap()
                .expect("a one-shot run exits");
            assert!(status.success());
        }
    }
    let rows = read_rows(&dir.path().join("mon_diskstats.csv"));
    assert_eq!(rows.len(), rounds * width * devs.len());
    let mut samples = HashSet::new();
    for block in rows.chunks(devs.len()) {
        let names: Vec<&str> = block.iter().map(|r| r.device.as_str()).collect();
        assert_eq!(names, devs.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            block
                .iter()
                .all(|r| r.uptime == block[0].uptime && r.datetime == block[0].datetime)
        );
        samples.insert(block[0].uptime.to_bits());
    }
    assert!(samples.len() > 1);
}

/// A torn last line is cut before the next sample, and what was cut is said on stderr; a last
/// row that lacks only its newline is kept whole.
#[test]
fn what_the_appender_cuts_or_keeps_is_said() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    bin().args(["-d", &dev, "-o", &out]).assert().success();
    let file = dir.path().join(format!("mon_{dev}.csv"));
    let whole = fs::read_to_string(&file).unwrap();
    let row = whole.lines().nth(1).unwrap().to_owned();

    // A row cut in its middle (not on a page boundary): cut, and said.
    fs::write(&file, format!("{whole}{}", &row[..20])).unwrap();
    let a = bin().args(["-d", &dev, "-o", &out]).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("cut 20 bytes") && err.contains(&file.display().to_string()),
        "{err}"
    );
    assert_eq!(read_rows(&file).len(), 2);

    // A whole row without its newline: kept.
    let text = fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap().to_owned();
    fs::write(&file, format!("{text}{last}")).unwrap();
    let a = bin().args(["-d", &dev, "-o", &out]).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("lacked its final newline"), "{err}");
    assert_eq!(read_rows(&file).len(), 4);
}
