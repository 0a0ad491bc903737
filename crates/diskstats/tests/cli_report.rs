//! `diskstats report` and `diskstats plot` on a CSV built from two fixture snapshots of
//! `/proc/diskstats` ten seconds apart (uptime 1000 → 1010), against numbers worked out by
//! hand for every column:
//!
//! - `sda`: busy, and fields 4 (ms reading) and 11 (weighted ms) wrap past 2^32;
//! - `sdb`: removed and added again between the snapshots (its counters restarted), so it is
//!   measured from zero, as iostat does;
//! - `loop0`: never did any I/O, so it is hidden unless named.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use diskstats::parse::parse_line;
use diskstats::record::{HEADER, encode_row};
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("diskstats").unwrap()
}

fn fixture(name: &str) -> String {
    fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Writes the CSV the sampler would have written for the two snapshots.
fn two_snapshots(dir: &Path) -> PathBuf {
    let mut out = HEADER.join(",").into_bytes();
    out.push(b'\n');
    for (snap, time, uptime) in [
        ("report-a.txt", "2024-05-01T12:00:00.000000", "1000.000000"),
        ("report-b.txt", "2024-05-01T12:00:10.000000", "1010.000000"),
    ] {
        for line in fixture(snap).lines() {
            let d = parse_line(line).unwrap();
            encode_row(&mut out, time.as_bytes(), &d, uptime.as_bytes());
        }
    }
    let path = dir.join("mon_diskstats.csv");
    fs::write(&path, out).unwrap();
    path
}

/// Worked by hand from report-a.txt and report-b.txt, interval 10 s.
///
/// sda: Δrd_ios 500, Δrd_merges 100, Δrd_sectors 8000, Δrd_ticks 704 − 4294967000 mod 2^32
/// = 1000; Δwr_ios 250, Δwr_merges 250, Δwr_sectors 4000, Δwr_ticks 1250; Δdc_ios 20,
/// Δdc_merges 5, Δdc_sectors 8000, Δdc_ticks 60; Δfl_ios 50, Δfl_ticks 25; Δtot_ticks 7500;
/// Δrq_ticks 8704 − 4294960000 mod 2^32 = 16000.
const SDA: [(&str, f64); 22] = [
    ("r/s", 50.0),          // 500 / 10
    ("rkB/s", 400.0),       // 8000 / 10 / 2
    ("rrqm/s", 10.0),       // 100 / 10
    ("%rrqm", 100.0 / 6.0), // 100 / (100 + 500) × 100
    ("r_await", 2.0),       // 1000 / 500
    ("rareq-sz", 8.0),      // 8000 / 500 / 2
    ("w/s", 25.0),          // 250 / 10
    ("wkB/s", 200.0),       // 4000 / 10 / 2
    ("wrqm/s", 25.0),       // 250 / 10
    ("%wrqm", 50.0),        // 250 / (250 + 250) × 100
    ("w_await", 5.0),       // 1250 / 250
    ("wareq-sz", 8.0),      // 4000 / 250 / 2
    ("d/s", 2.0),           // 20 / 10
    ("dkB/s", 400.0),       // 8000 / 10 / 2
    ("drqm/s", 0.5),        // 5 / 10
    ("%drqm", 20.0),        // 5 / (5 + 20) × 100
    ("d_await", 3.0),       // 60 / 20
    ("dareq-sz", 200.0),    // 8000 / 20 / 2
    ("f/s", 5.0),           // 50 / 10
    ("f_await", 0.5),       // 25 / 50
    ("aqu-sz", 1.6),        // 16000 ms / 10000 ms
    ("%util", 75.0),        // 7500 ms / 10000 ms × 100
];

/// sdb's counters went back (ios 8020 → 54, every sectors counter down or 0): a re-added
/// device, measured against zero: rd 40 ios, 0 merges, 320 sectors, 80 ms; wr 10, 2, 160,
/// 50 ms; no discards; fl 4, 8 ms; tot 100 ms; rq 130 ms.
const SDB: [(&str, f64); 22] = [
    ("r/s", 4.0),
    ("rkB/s", 16.0),
    ("rrqm/s", 0.0),
    ("%rrqm", 0.0),
    ("r_await", 2.0),
    ("rareq-sz", 4.0),
    ("w/s", 1.0),
    ("wkB/s", 8.0),
    ("wrqm/s", 0.2),
    ("%wrqm", 100.0 / 6.0), // 2 / (2 + 10) × 100
    ("w_await", 5.0),
    ("wareq-sz", 8.0),
    ("d/s", 0.0),
    ("dkB/s", 0.0),
    ("drqm/s", 0.0),
    ("%drqm", 0.0),
    ("d_await", 0.0),
    ("dareq-sz", 0.0),
    ("f/s", 0.4),
    ("f_await", 2.0),
    ("aqu-sz", 0.013),
    ("%util", 1.0),
];

fn report_csv(args: &[&str]) -> Vec<csv::StringRecord> {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let h = rdr.headers().unwrap().clone();
    let mut want = vec!["datetime", "device", "uptime", "interval", "basis"];
    want.extend(SDA.iter().map(|(c, _)| *c));
    assert_eq!(h.iter().collect::<Vec<_>>(), want);
    rdr.records().map(Result::unwrap).collect()
}

fn check(rec: &csv::StringRecord, expected: &[(&str, f64); 22]) {
    for (i, (col, want)) in expected.iter().enumerate() {
        let got: f64 = rec[5 + i].parse().unwrap();
        assert!(
            (got - want).abs() < 1e-6,
            "{} {col}: got {got}, want {want}",
            &rec[1]
        );
    }
}

#[test]
fn report_csv_matches_the_numbers_worked_by_hand_for_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let recs = report_csv(&["report", file.to_str().unwrap(), "--csv"]);
    assert_eq!(recs.len(), 2, "loop0 never did I/O and is hidden");
    assert_eq!(&recs[0][0], "2024-05-01T12:00:10.000000");
    assert_eq!(
        (&recs[0][1], &recs[0][2], &recs[0][3]),
        ("sda", "1010.000000", "10")
    );
    assert_eq!(&recs[0][4], "previous");
    check(&recs[0], &SDA);
    assert_eq!((&recs[1][1], &recs[1][4]), ("sdb", "reset"));
    check(&recs[1], &SDB);
}

#[test]
fn the_text_table_shows_the_same_numbers_like_iostat() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let out = bin()
        .args(["report", file.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicate::str::contains("1 counter reset"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head[..2], ["datetime", "Device"]);
    assert_eq!(head[2..], SDA.map(|(c, _)| c));
    let sda: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(sda[..2], ["2024-05-01T12:00:10.000000", "sda"]);
    let want: Vec<String> = SDA.iter().map(|(_, v)| format!("{v:.2}")).collect();
    assert_eq!(sda[2..], want);
    assert!(lines[2].contains(" sdb "));
}

#[test]
fn named_devices_are_shown_even_when_idle_and_unknown_ones_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let recs = report_csv(&[
        "report",
        file.to_str().unwrap(),
        "--csv",
        "-d",
        "/dev/loop0",
        "loop0",
    ]);
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0][1], "loop0");
    assert!(recs[0].iter().skip(5).all(|v| v == "0"));
    bin()
        .args(["report", file.to_str().unwrap(), "-d", "sdq"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no rows for sdq; devices in the file: loop0 sda sdb",
        ));
}

#[test]
fn a_torn_last_row_is_ignored_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("2024-05-01T12:00:20.000000,8,0,sda,1600,300,88");
    fs::write(&file, text).unwrap();
    let recs = bin()
        .args(["report", file.to_str().unwrap(), "--csv"])
        .assert()
        .success()
        .stderr(predicate::str::contains("ignored an unterminated last row"))
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(recs).unwrap().lines().count(), 3);
}

#[test]
fn bad_files_are_refused_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("mon_vda");
    fs::write(
        &seed,
        "datetime,major_number,minor_number,device_name,read_completed_successfully,\
         reads_merged,sectors_read,time_spent_reading(ms),writes_completed,writes_merged,\
         sectors_written,time_spent_writing(ms),IO_currently_in_progress,\
         time_spent_doing_IO(ms),weighted_time_spent_doing_IO\n",
    )
    .unwrap();
    bin()
        .args(["report"])
        .arg(&seed)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("without the uptime column"));

    let other = dir.path().join("other.csv");
    fs::write(&other, "a,b\n1,2\n").unwrap();
    bin()
        .args(["report"])
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a diskstats CSV file"));

    let file = two_snapshots(dir.path());
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "2024-05-01T12:00:20.000000,8,0,sda{}\n",
        ",x".repeat(18)
    ));
    fs::write(&file, text).unwrap();
    bin()
        .args(["report"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "line 8: column read_completed_successfully is not a valid number",
        ));

    // A file that is not there is bad input, said once.
    let a = bin()
        .args(["report"])
        .arg(dir.path().join("missing.csv"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.csv"));
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn the_file_may_follow_the_device_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let a = bin()
        .args(["report", "--csv", "-d", "sda"])
        .arg(&file)
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().nth(1).unwrap().contains(",sda,"), "{out}");
    let svg = dir.path().join("sda.svg");
    bin()
        .args(["plot", "-o"])
        .arg(&svg)
        .args(["-d", "sda"])
        .arg(&file)
        .assert()
        .success();
    assert!(fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

/// `plot` never replaces its input with the plot: by the same name, the default name (an
/// input already called .svg), or a symbolic link.
#[test]
fn plot_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    let samples = fs::read(&file).unwrap();
    let as_svg = dir.path().join("samples.svg");
    fs::write(&as_svg, &samples).unwrap();
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    for (input, output) in [(&file, Some(&file)), (&as_svg, None), (&file, Some(&link))] {
        let mut cmd = bin();
        cmd.arg("plot").arg(input);
        if let Some(o) = output {
            cmd.arg("-o").arg(o);
        }
        let a = cmd.assert().code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains("is the input file"), "{err}");
        assert_eq!(fs::read(input).unwrap(), samples);
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn report_and_plot_read_what_the_sampler_wrote() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["-q", "-l", "0.01", "-n", "5", "-o"])
        .arg(dir.path())
        .assert()
        .success();
    let file = dir.path().join("mon_diskstats.csv");
    // Every device named, so idle ones are shown too: 4 intervals each.
    let devices: Vec<String> = fs::read_to_string("/proc/diskstats")
        .unwrap()
        .lines()
        .filter_map(diskstats::parse::line_name)
        .map(str::to_owned)
        .collect();
    let mut args = vec!["report", file.to_str().unwrap(), "--csv", "-d"];
    args.extend(devices.iter().map(String::as_str));
    let recs = report_csv(&args);
    assert_eq!(recs.len(), 4 * devices.len());
    for r in &recs {
        let secs: f64 = r[3].parse().unwrap();
        assert!(secs > 0.0 && secs < 30.0, "{r:?}");
        let util: f64 = r[26].parse().unwrap();
        assert!((0.0..=100.0 * 1.5).contains(&util), "{r:?}");
    }

    let svg = dir.path().join("plots/disk.svg");
    let mut args = vec![
        "plot",
        file.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
        "-d",
    ];
    args.extend(devices.iter().map(String::as_str));
    bin()
        .args(&args)
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote"));
    let text = fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let texts: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for want in [
        "mon_diskstats.csv: throughput",
        "mon_diskstats.csv: utilisation",
    ] {
        assert!(texts.contains(&want), "{want} not in {texts:?}");
    }
    let first = devices[0].as_str();
    assert!(
        texts.contains(&format!("{first} read").as_str()),
        "{texts:?}"
    );
    // Three panels: one line per device and direction, and one %util line per device.
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(lines >= 5 * devices.len(), "{lines} polylines");
}

#[test]
fn plot_defaults_to_the_file_name_with_svg_and_refuses_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_snapshots(dir.path());
    bin().args(["plot"]).arg(&file).assert().success();
    assert!(dir.path().join("mon_diskstats.svg").exists());

    let empty = dir.path().join("one.csv");
    let text = fs::read_to_string(&file).unwrap();
    let first_sample: Vec<&str> = text.lines().take(4).collect();
    fs::write(&empty, first_sample.join("\n") + "\n").unwrap();
    bin()
        .args(["plot"])
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing to plot"));
}
