//! The sampler on a file in `/proc/diskstats` format that the test rewrites between samples:
//! devices that disappear and come back, devices that appear, bad lines, big files, the
//! sample count and shutdown. (The CLI tests run against the real `/proc/diskstats`.)

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Shutdown, TimeFormat};
use diskstats::record::{HEADER, decode_row};
use diskstats::sample::{Event, Recorder, RunSummary, SampleError, Sampler, Selection, Source};

const SDA: &str = "   8       0 sda 10 1 80 5 20 2 160 9 0 30 14 0 0 0 0 3 1";
const SDB: &str = "   8      16 sdb 11 1 88 5 21 2 168 9 0 31 14 0 0 0 0 3 1";
const SDC: &str = "   8      32 sdc 12 1 96 5 22 2 176 9 0 32 14 0 0 0 0 3 1";

fn write_source(path: &Path, lines: &[&str]) {
    // In place (same inode), as the kernel's file "changes" under an open descriptor.
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

fn rows(csv: &Path) -> Vec<(String, u64)> {
    let mut rdr = csv::Reader::from_path(csv).unwrap();
    assert_eq!(
        rdr.headers().unwrap(),
        &csv::StringRecord::from(HEADER.to_vec())
    );
    rdr.records()
        .map(|r| {
            let row = decode_row(&r.unwrap()).unwrap();
            (row.device, row.counters.rd_ios)
        })
        .collect()
}

fn devices(names: &[&str]) -> Selection {
    Selection::from_args(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn a_device_that_disappears_is_reported_once_and_the_others_keep_being_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    let out = dir.path().join("out/mon_diskstats_sda_sdb.csv");
    write_source(&src, &[SDA, SDB, SDC]);
    let sampler = Sampler::new(
        Source::open(&src).unwrap(),
        devices(&["sdb", "sda"]),
        TimeFormat::Utc,
    )
    .unwrap();
    let mut rec = Recorder::open(sampler, &out).unwrap();
    let mut events = Vec::new();
    let tick = |rec: &mut Recorder, events: &mut Vec<Event>| {
        rec.tick(&mut |e| events.push(e.clone())).unwrap().rows
    };

    assert_eq!(tick(&mut rec, &mut events), 2);
    write_source(&src, &[SDA, SDC]);
    assert_eq!(tick(&mut rec, &mut events), 1);
    assert_eq!(tick(&mut rec, &mut events), 1);
    assert_eq!(events, [Event::Gone("sdb".into())], "warned once");
    write_source(&src, &[SDB, SDA]);
    assert_eq!(tick(&mut rec, &mut events), 2);
    assert_eq!(
        events,
        [Event::Gone("sdb".into()), Event::Back("sdb".into())]
    );
    // Rows in the order the devices were asked for, whatever the kernel's order.
    let got = rows(&out);
    let names: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(names, ["sdb", "sda", "sda", "sda", "sdb", "sda"]);
    assert_eq!(got[0].1, 11);
    assert_eq!(got[1].1, 10);
}

#[test]
fn all_devices_follows_devices_that_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    let out = dir.path().join("mon_diskstats.csv");
    write_source(&src, &[SDA, SDB]);
    let sampler = Sampler::new(
        Source::open(&src).unwrap(),
        Selection::All,
        TimeFormat::Local,
    )
    .unwrap();
    let mut rec = Recorder::open(sampler, &out).unwrap();
    let mut events = Vec::new();
    let mut on = |e: &Event| events.push(e.clone());
    assert_eq!(rec.tick(&mut on).unwrap().rows, 2);
    write_source(&src, &[SDA, SDC]);
    assert_eq!(rec.tick(&mut on).unwrap().rows, 2);
    assert_eq!(rec.tick(&mut on).unwrap().rows, 2);
    assert_eq!(
        events,
        [Event::Gone("sdb".into()), Event::New("sdc".into())]
    );
    let names: Vec<String> = rows(&out).into_iter().map(|(d, _)| d).collect();
    assert_eq!(names, ["sda", "sdb", "sda", "sdc", "sda", "sdc"]);
}

#[test]
fn an_unknown_device_lists_the_devices_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    write_source(&src, &[SDA, SDB]);
    let err = Sampler::new(
        Source::open(&src).unwrap(),
        devices(&["sda", "sdz", "nvme9n1"]),
        TimeFormat::Local,
    )
    .unwrap_err();
    match &err {
        SampleError::UnknownDevice {
            missing, available, ..
        } => {
            assert_eq!(missing, &["sdz", "nvme9n1"]);
            assert_eq!(available, &["sda", "sdb"]);
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("unknown devices sdz, nvme9n1"), "{msg}");
    assert!(msg.contains("devices are: sda sdb"), "{msg}");
}

#[test]
fn a_bad_line_is_skipped_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    let out = dir.path().join("mon_diskstats.csv");
    write_source(&src, &[SDA, "   8 16 sdb 1 2 x", SDC]);
    let sampler = Sampler::new(
        Source::open(&src).unwrap(),
        Selection::All,
        TimeFormat::Local,
    )
    .unwrap();
    let mut rec = Recorder::open(sampler, &out).unwrap();
    let mut events = Vec::new();
    let mut on = |e: &Event| events.push(e.clone());
    assert_eq!(rec.tick(&mut on).unwrap().rows, 2);
    assert_eq!(rec.tick(&mut on).unwrap().rows, 2);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(&events[0], Event::BadLine { line, .. } if line.contains("sdb")));
}

#[test]
fn a_file_larger_than_the_buffer_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    let out = dir.path().join("mon_diskstats.csv");
    let lines: Vec<String> = (0..400)
        .map(|i| format!(" 259 {i:7} nvme{i}n1 {i} 0 8 1 2 0 16 1 0 2 2 0 0 0 0 1 1"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    write_source(&src, &refs);
    assert!(
        fs::metadata(&src).unwrap().len() > 2 * 8 * 1024,
        "grows twice"
    );
    let sampler = Sampler::new(
        Source::open(&src).unwrap(),
        Selection::All,
        TimeFormat::Local,
    )
    .unwrap();
    let mut rec = Recorder::open(sampler, &out).unwrap();
    assert_eq!(rec.tick(&mut |_| {}).unwrap().rows, 400);
    let got = rows(&out);
    assert_eq!(got.len(), 400);
    assert_eq!(got[399], ("nvme399n1".to_owned(), 399));
}

#[test]
fn the_loop_stops_at_the_count_or_at_once_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("diskstats");
    write_source(&src, &[SDA]);
    let out = dir.path().join("mon_sda.csv");
    let open = || {
        let s = Sampler::new(
            Source::open(&src).unwrap(),
            devices(&["sda"]),
            TimeFormat::Utc,
        )
        .unwrap();
        Recorder::open(s, &out).unwrap()
    };
    let shutdown = Shutdown::new().unwrap();
    let mut summary = RunSummary::default();
    open()
        .run_loop(
            Duration::ZERO,
            Some(5),
            &shutdown,
            &mut summary,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        (
            summary.samples,
            summary.samples_written,
            summary.rows,
            summary.interrupted
        ),
        (5, 5, 5, false)
    );
    shutdown.trigger();
    let mut summary = RunSummary::default();
    open()
        .run_loop(
            Duration::from_secs(3600),
            None,
            &shutdown,
            &mut summary,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((summary.samples, summary.interrupted), (0, true));
    let got = rows(&out);
    assert_eq!(got.len(), 5);
    // The uptime column is monotonic.
    let mut rdr = csv::Reader::from_path(&out).unwrap();
    let ups: Vec<f64> = rdr
        .records()
        .map(|r| decode_row(&r.unwrap()).unwrap().uptime)
        .collect();
    assert!(ups.windows(2).all(|w| w[1] >= w[0]), "{ups:?}");
}
