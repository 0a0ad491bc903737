//! `diskstats --prometheus FILE` as the binary, against the machine's real `/proc/diskstats`
//! and the real `promtool`: the textfile holds the same counters as the CSV row of the same
//! sample, in their units; it is replaced whole, 0644, in cron and loop mode; a file that
//! cannot work is refused before anything is written; a failing write does not stop the CSV.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use common::process::Supervised;
use common::wait::poll_until;
use diskstats::parse::line_name;
use diskstats::record::{Row, decode_row};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_diskstats");
const DEADLINE: Duration = Duration::from_secs(30);

fn bin() -> Command {
    Command::cargo_bin("diskstats").unwrap()
}

/// A real disk of this machine (not loop, ram or zram) if there is one, else the first device.
fn real_device() -> String {
    let text = fs::read_to_string("/proc/diskstats").unwrap();
    let all: Vec<&str> = text.lines().filter_map(line_name).collect();
    all.iter()
        .find(|d| !["loop", "ram", "zram"].iter().any(|p| d.starts_with(p)))
        .or(all.first())
        .expect("a device in /proc/diskstats")
        .to_string()
}

fn rows(path: &Path) -> Vec<Row> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|r| decode_row(&r.unwrap()).unwrap())
        .collect()
}

/// The samples of a textfile: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// The textfile's values for `dev` are those of the CSV row (the same read of the kernel).
fn assert_same(text: &str, row: &Row) {
    let s = samples(text);
    let dev = &row.device;
    let v = |name: &str| {
        let k = format!("diskstats_{name}{{device=\"{dev}\"}}");
        *s.get(&k).unwrap_or_else(|| panic!("no {k} in\n{text}"))
    };
    let c = &row.counters;
    assert_eq!(v("reads_completed_total"), c.rd_ios as f64);
    assert_eq!(v("reads_merged_total"), c.rd_merges as f64);
    assert_eq!(v("read_bytes_total"), (c.rd_sectors * 512) as f64);
    assert_eq!(v("read_time_seconds_total"), f64::from(c.rd_ticks) / 1000.0);
    assert_eq!(v("writes_completed_total"), c.wr_ios as f64);
    assert_eq!(v("written_bytes_total"), (c.wr_sectors * 512) as f64);
    assert_eq!(
        v("write_time_seconds_total"),
        f64::from(c.wr_ticks) / 1000.0
    );
    assert_eq!(v("io_in_progress"), f64::from(c.ios_pgr));
    assert_eq!(v("io_time_seconds_total"), f64::from(c.tot_ticks) / 1000.0);
    assert_eq!(
        v("io_time_weighted_seconds_total"),
        f64::from(c.rq_ticks) / 1000.0
    );
}

#[test]
fn cron_runs_replace_a_0644_textfile_with_the_csv_rows_counters_that_promtool_accepts() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("diskstats.prom");
    let csv = dir.path().join(format!("mon_{dev}.csv"));
    for run in 1..=2 {
        // A umask that would hide the file from node_exporter's user.
        let out = StdCommand::new("sh")
            .args([
                "-c",
                "umask 077 && exec \"$0\" \"$@\"",
                BIN,
                "-d",
                &dev,
                "-o",
            ])
            .arg(dir.path())
            .arg("--prometheus")
            .arg(&prom)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let text = fs::read_to_string(&prom).unwrap();
        let rows = rows(&csv);
        assert_eq!(rows.len(), run);
        assert_same(&text, rows.last().unwrap());
        testkit::assert_promtool_accepts(&text);
    }
    let mode = fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Only the two files: no temporary file left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    // A mode the administrator chose is kept.
    fs::set_permissions(&prom, fs::Permissions::from_mode(0o640)).unwrap();
    bin()
        .args(["-d", &dev, "-o"])
        .arg(dir.path())
        .arg("--prometheus")
        .arg(&prom)
        .assert()
        .success();
    let mode = fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn the_loop_replaces_it_every_sample_and_goes_on_when_it_cannot() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let collector = dir.path().join("textfile");
    fs::create_dir(&collector).unwrap();
    let prom = collector.join("diskstats.prom");
    let csv = dir.path().join(format!("mon_{dev}.csv"));
    let log = dir.path().join("log");
    let mut cmd = StdCommand::new(BIN);
    cmd.args(["-l", "0.05", "-d", &dev, "-o"])
        .arg(dir.path())
        .arg("--prometheus")
        .arg(&prom)
        .stderr(fs::File::create(&log).unwrap());
    let mut p = Supervised::spawn("diskstats", &mut cmd).unwrap();
    let n_rows = || rows(&csv).len();
    poll_until("3 samples", DEADLINE, Duration::from_millis(10), || {
        (csv.exists() && n_rows() >= 3).then_some(())
    })
    .unwrap();
    // The collector's directory goes away: said once, the CSV goes on. Moved away in one
    // step rather than removed: a sample may be creating its temporary file in it meanwhile.
    fs::rename(&collector, dir.path().join("textfile.gone")).unwrap();
    let gone = n_rows();
    poll_until(
        "5 more samples",
        DEADLINE,
        Duration::from_millis(10),
        || (n_rows() >= gone + 5).then_some(()),
    )
    .unwrap();
    let said = fs::read_to_string(&log).unwrap();
    assert_eq!(said.matches("cannot write").count(), 1, "{said}");
    assert!(
        said.contains(&format!("warning: cannot write {}", prom.display())),
        "{said}"
    );
    // It comes back: written again.
    fs::create_dir(&collector).unwrap();
    poll_until(
        "the textfile again",
        DEADLINE,
        Duration::from_millis(10),
        || prom.exists().then_some(()),
    )
    .unwrap();
    p.signal(rustix::process::Signal::TERM).unwrap();
    assert!(p.wait_timeout(DEADLINE).unwrap().unwrap().success());
    // The last sample's textfile is the last row's.
    let text = fs::read_to_string(&prom).unwrap();
    assert_same(&text, rows(&csv).last().unwrap());
    let said = fs::read_to_string(&log).unwrap();
    assert!(said.contains("is written again"), "{said}");
}

#[test]
fn a_textfile_that_cannot_work_is_refused_before_anything_is_written() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let refused = |prom: &Path, says: &str| {
        bin()
            .args(["-d", &dev, "-o"])
            .arg(d)
            .arg("--prometheus")
            .arg(prom)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        assert_eq!(fs::read_dir(d).unwrap().count(), 0, "nothing written");
    };
    refused(
        &d.join("no/such/dir/x.prom"),
        "no/such/dir is not a directory",
    );
    refused(d, "is a directory");
    refused(&d.join(format!("mon_{dev}.csv")), "is the CSV file");
    // Not `.prom`: a warning, and it works.
    bin()
        .args(["-d", &dev, "-o"])
        .arg(d)
        .arg("--prometheus")
        .arg(d.join("x.txt"))
        .assert()
        .success()
        .stderr(predicate::str::contains("reads only *.prom files"));
    assert!(d.join("x.txt").exists());
    // In the CSV's directory, which diskstats creates.
    bin()
        .args(["-d", &dev, "-o"])
        .arg(d.join("new/"))
        .arg("--prometheus")
        .arg(d.join("new/x.prom"))
        .assert()
        .success();
    assert!(d.join("new/x.prom").exists());
}

#[test]
fn a_first_textfile_that_cannot_be_written_exits_1_after_the_csv_row() {
    let dev = real_device();
    let dir = tempfile::tempdir().unwrap();
    // /proc is a directory in which no one, root included, creates a file.
    bin()
        .args(["-d", &dev, "-o"])
        .arg(dir.path())
        .args(["--prometheus", "/proc/diskstats.prom"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("diskstats: error: cannot write /proc/diskstats.prom: ")
                .and(predicate::str::contains("\n").count(1))
                .and(predicate::str::contains("os error").count(1)),
        );
    assert_eq!(rows(&dir.path().join(format!("mon_{dev}.csv"))).len(), 1);
}
