//! Many processes append to one CSV file at once; every row must come out whole.
//!
//! A test without the libtest harness (`harness = false`): run as it is, `main` runs the
//! test, which starts this same binary as each writer with the explicit arguments
//! `--writer PATH ID`, and then checks that every writer's rows are in the file, whole and
//! once. The writer is not a test of its own, so nothing here can pass without running.

use std::path::Path;
use std::process::Command;

use common::CsvAppender;

const WRITERS: usize = 10;
const BATCHES: usize = 60;
const HEADER: [&str; 4] = ["writer", "seq", "payload", "check"];

/// A payload long enough (several KiB per batch) that a split or unlocked write would tear.
fn payload(writer: usize, seq: usize) -> String {
    let len = 700 + (writer * 131 + seq * 17) % 1500;
    let c = (b'a' + (writer % 26) as u8) as char;
    std::iter::repeat_n(c, len).collect()
}

fn check(writer: usize, seq: usize, payload: &str) -> String {
    format!(
        "{}",
        (writer * 1_000_003 + seq * 7919 + payload.len()) % 1_000_000_007
    )
}

/// The writer: appends its batches to `path`.
fn writer_process(path: &Path, writer: usize) {
    let mut w = CsvAppender::open(path, &HEADER).unwrap();
    for batch in 0..BATCHES {
        // Batches of 1..=4 rows, written as one unit.
        let rows: Vec<[String; 4]> = (0..1 + (batch + writer) % 4)
            .map(|i| {
                let seq = batch * 4 + i;
                let p = payload(writer, seq);
                let c = check(writer, seq, &p);
                [writer.to_string(), seq.to_string(), p, c]
            })
            .collect();
        w.append_rows(rows.iter().map(|r| r.iter())).unwrap();
    }
}

fn run_writers(path: &Path) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .arg("--writer")
                .arg(path)
                .arg(id.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--writer") {
        let path = Path::new(&args[i + 1]);
        let id: usize = args[i + 2].parse().expect("a writer id");
        writer_process(path, id);
        return;
    }
    // `cargo test -- --list` and filters: this binary has one test.
    if args.iter().any(|a| a == "--list") {
        println!("concurrent_processes_never_tear_or_interleave_rows: test");
        return;
    }
    concurrent_processes_never_tear_or_interleave_rows();
    println!("test concurrent_processes_never_tear_or_interleave_rows ... ok");
}

fn concurrent_processes_never_tear_or_interleave_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.csv");
    run_writers(&path);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("writer,seq,payload,check"),
        "header first"
    );
    let mut per_writer = vec![Vec::new(); WRITERS];
    for (n, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "line {} is torn: {:.80}...", n + 2, line);
        let writer: usize = fields[0]
            .parse()
            .unwrap_or_else(|_| panic!("line {}: bad writer", n + 2));
        let seq: usize = fields[1].parse().unwrap();
        assert_eq!(
            fields[2],
            payload(writer, seq),
            "line {}: payload mixed",
            n + 2
        );
        assert_eq!(
            fields[3],
            check(writer, seq, fields[2]),
            "line {}: check",
            n + 2
        );
        per_writer[writer].push(seq);
    }
    // Every writer's rows are all there, once each, in its own order.
    for (writer, seqs) in per_writer.iter().enumerate() {
        let expected: Vec<usize> = (0..BATCHES)
            .flat_map(|b| (0..1 + (b + writer) % 4).map(move |i| b * 4 + i))
            .collect();
        assert_eq!(seqs, &expected, "writer {writer} lost or duplicated rows");
    }
}
