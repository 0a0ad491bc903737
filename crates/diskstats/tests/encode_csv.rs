//! The sampler's own CSV encoding (the fast path that copies the kernel's digits, and the slow
//! path that parses and formats) gives byte for byte what the `csv` crate writes for the same
//! fields: on the machine's real `/proc/diskstats`, on every fixture, and on lines whose
//! device name needs quoting.

use diskstats::parse::{DiskLine, ParseError, parse_line};
use diskstats::sample::{Selection, encode_sample};

const STAMP: &str = "2014-12-14T14:27:07.878920";
const UPTIME: &str = "1643.005123";

/// What the `csv` crate writes for the rows of `text` (lines that do not parse are skipped,
/// as the sampler skips them).
fn with_csv_crate(text: &str) -> (Vec<u8>, usize) {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut rows = 0;
    for line in text.lines() {
        let Ok(d): Result<DiskLine<'_>, ParseError> = parse_line(line) else {
            continue;
        };
        let c = d.counters;
        let mut record = vec![
            STAMP.to_owned(),
            d.major.to_string(),
            d.minor.to_string(),
            d.name.to_owned(),
        ];
        for v in c.fields() {
            record.push(v.to_string());
        }
        record.push(UPTIME.to_owned());
        w.write_record(&record).unwrap();
        rows += 1;
    }
    (w.into_inner().unwrap(), rows)
}

/// What the sampler writes for all devices of `text`.
fn with_sampler(text: &str) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    let (rows, _) = encode_sample(
        text,
        &Selection::All,
        &[],
        &mut [],
        STAMP.as_bytes(),
        UPTIME.as_bytes(),
        &mut out,
        &mut |_, _| bad += 1,
    );
    (out, rows)
}

fn assert_same(what: &str, text: &str) {
    let (mine, rows) = with_sampler(text);
    let (theirs, their_rows) = with_csv_crate(text);
    assert!(rows > 0, "{what}: no rows");
    assert_eq!(rows, their_rows, "{what}: row count");
    assert_eq!(
        String::from_utf8_lossy(&mine),
        String::from_utf8_lossy(&theirs),
        "{what}"
    );
}

#[test]
fn the_real_proc_diskstats_encodes_as_the_csv_crate_does() {
    let text = std::fs::read_to_string("/proc/diskstats").unwrap();
    assert_same("/proc/diskstats", &text);
}

#[test]
fn every_fixture_encodes_as_the_csv_crate_does() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_same(&path.display().to_string(), &text);
            seen += 1;
        }
    }
    assert!(seen >= 6, "fixtures found: {seen}");
}

#[test]
fn names_that_need_quoting_and_odd_lines_encode_as_the_csv_crate_does() {
    // Names with a comma or a quote (no kernel prints one, but the file could be anything),
    // an old partition line, a bad line, a blank line, and the widest numbers, among
    // ordinary lines.
    let text = "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n\
                \x20  8       1 sd,a1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n\
                \x20  3       1 hda1 35486 38030 38030 38030\n\
                \x20  8       2 s\"d\" 1 2 3 4 5 6 7 8 9 10 11\n\
                \n\
                \x20  8       3 sdx 1 2 x\n\
                \x20  8       4 sdy 0018 2 3 4294967295 5 6 7 8 9 10 4294967295 12 13 14 15\n\
                \x20  8       5 sdz 18446744073709551615 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n";
    assert_same("odd lines", text);
    let (mine, _) = with_sampler(text);
    let mine = String::from_utf8(mine).unwrap();
    assert!(mine.contains(",\"sd,a1\","), "{mine}");
    assert!(mine.contains(",\"s\"\"d\"\"\","), "{mine}");
}
