//! The demo's diskstats step (`scripts/demo-diskstats.sh`) samples while its 64 MiB write is
//! going on, so the samples, the report and the plot show the write.

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_samples_during_its_write() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_diskstats")).parent().unwrap();
    // On the build's disk (not a tmpfs /tmp), where the write reaches a block device.
    let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let status = Command::new("bash")
        .arg(root.join("scripts/demo-diskstats.sh"))
        .arg(bin_dir)
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut rdr = csv::Reader::from_path(out.path().join("report.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (secs, wkb) = (col("interval"), col("wkB/s"));
    // kB written per interval, over all devices (a partition and its disk both count it).
    let mut per_interval = std::collections::BTreeMap::<String, f64>::new();
    for r in rdr.records() {
        let r = r.unwrap();
        let kb: f64 = r[wkb].parse::<f64>().unwrap() * r[secs].parse::<f64>().unwrap();
        *per_interval.entry(r[0].to_owned()).or_default() += kb;
    }
    let intervals = per_interval.len();
    let written: f64 = per_interval.values().sum();
    assert!(intervals >= 3, "{intervals} intervals");
    assert!(
        written >= 64.0 * 1024.0,
        "{written} kB written in the samples"
    );
    // The first interval (before the write) and the last ones (after) are quiet.
    let last = per_interval.values().last().unwrap();
    assert!(*last < 64.0 * 1024.0, "{per_interval:?}");
    assert!(
        std::fs::read_to_string(out.path().join("diskstats.svg"))
            .unwrap()
            .starts_with("<svg")
    );
}
