//! `diskstats report`: the `iostat -x` numbers of every interval in a CSV file.
//!
//! Rows are read in file order and paired per device: each row after a device's first gives
//! one interval, whose length is the difference of the `uptime` column (CLOCK_BOOTTIME, so
//! wall-clock steps do not matter). The pairing rules ([`Pairing`]) are pure:
//!
//! - uptime went back by more than [`REBOOT_SLACK`]: the machine rebooted, and the counters
//!   restarted with it. The interval is "since boot" (previous counters zero, length = the
//!   new uptime), like iostat's first report;
//! - uptime did not advance otherwise (two one-shot runs appending the same moment, in
//!   either order): the row is skipped and the earlier one stays the base;
//! - the counters went back (device removed and added again): sysstat's rule, in
//!   [`iostat::compute`].
//!
//! Devices that have never done any I/O are left out, as iostat does, unless named.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::iostat::{self, COLUMNS, ExtStats};
use crate::parse::Counters;
use crate::record::{HEADER, Row, RowError, SEED_HEADER, decode_row};

/// How far uptime may go back before it is taken for a reboot rather than rows appended out
/// of order by concurrent runs.
pub const REBOOT_SLACK: f64 = 1.0;

/// How an interval was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Against the device's previous row.
    Previous,
    /// The counters restarted (device re-added): against zero, as sysstat does.
    Reset,
    /// The machine rebooted: since boot.
    SinceBoot,
}

/// One interval of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The `datetime` of the interval's end row, as written in the file.
    pub datetime: String,
    /// The device's name, as in the file's `device_name` column.
    pub device: String,
    /// The uptime at the interval's end.
    pub uptime: f64,
    /// The interval's length in seconds.
    pub secs: f64,
    /// The numbers.
    pub stats: ExtStats,
    /// How it was measured.
    pub basis: Basis,
}

/// Pairs rows into intervals, per device (pure).
#[derive(Debug, Default)]
pub struct Pairing {
    last: HashMap<String, (Counters, f64)>,
    /// Rows skipped because their uptime did not advance.
    pub skipped: u64,
    /// Reboots seen (counted once per device).
    pub reboots: u64,
    /// Device resets seen.
    pub resets: u64,
}

impl Pairing {
    /// Feeds the next row; returns its interval, if it closes one.
    pub fn push(&mut self, row: &Row) -> Option<Interval> {
        let Some((prev, prev_up)) = self.last.get(&row.device).copied() else {
            self.last
                .insert(row.device.clone(), (row.counters, row.uptime));
            return None;
        };
        let dt = row.uptime - prev_up;
        let (base, secs, basis) = if dt > 0.0 {
            let basis = if iostat::is_reset(&prev, &row.counters) {
                self.resets += 1;
                Basis::Reset
            } else {
                Basis::Previous
            };
            (prev, dt, basis)
        } else if -dt > REBOOT_SLACK && row.uptime > 0.0 {
            self.reboots += 1;
            (Counters::default(), row.uptime, Basis::SinceBoot)
        } else {
            self.skipped += 1;
            return None;
        };
        if let Some(slot) = self.last.get_mut(&row.device) {
            *slot = (row.counters, row.uptime);
        }
        Some(Interval {
            datetime: row.datetime.clone(),
            device: row.device.clone(),
            uptime: row.uptime,
            secs,
            stats: iostat::compute(&base, &row.counters, secs),
            basis,
        })
    }
}

/// Errors of `report` and `plot`; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be opened or read. (The message has the OS error, so it is not
    /// also a `source()`: a one-line report would print it twice.)
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        error: io::Error,
    },
    /// The file is empty.
    #[error("{} is empty: no header, no samples", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by the lab report's Python tool: no uptime column.
    #[error(
        "{} has the original diskstats.py header, without the uptime column: intervals need a \
         monotonic clock, so it cannot be reported; sample again with this diskstats",
        path.display()
    )]
    SeedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The header is not diskstats'.
    #[error("{} is not a diskstats CSV file (its header is `{found}`)", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        found: String,
    },
    /// A row is malformed.
    #[error("{} line {line}: {source}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        source: RowError,
    },
    /// The CSV layer failed (for example, unbalanced quotes).
    #[error("{} line {line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The CSV reader's message.
        message: String,
    },
    /// Devices named with `-d` are not in the file.
    #[error(
        "{}: no rows for {}; devices in the file: {}",
        path.display(),
        missing.join(", "),
        if present.is_empty() { "(none)".to_owned() } else { present.join(" ") }
    )]
    UnknownDevice {
        /// The file.
        path: PathBuf,
        /// Named devices without rows.
        missing: Vec<String>,
        /// Devices that have rows.
        present: Vec<String>,
    },
    /// Writing the output failed.
    #[error("cannot write the report: {0}")]
    Output(io::Error),
}

/// What a pass over a file found, besides the intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Data rows read.
    pub rows: u64,
    /// Intervals produced (after the device filter).
    pub intervals: u64,
    /// Rows skipped because their uptime did not advance.
    pub skipped: u64,
    /// Reboots seen (the uptime went back): each starts a since-boot interval.
    pub reboots: u64,
    /// Device resets seen.
    pub resets: u64,
    /// Whether the file ended with a torn (unterminated) row, which was ignored.
    pub torn_tail: bool,
    /// Devices left out because they never did any I/O.
    pub idle_hidden: Vec<String>,
}

/// Reads `path` and calls `each` for every interval of the selected devices (`devices`
/// empty: every device that did I/O), in file order.
pub fn for_each_interval(
    path: &Path,
    devices: &[String],
    mut each: impl FnMut(&Interval) -> io::Result<()>,
) -> Result<Summary, ReportError> {
    let io_err = |error| ReportError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io_err)?;
    let tail_start = torn_tail_start(&file).map_err(io_err)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(io::BufReader::with_capacity(256 * 1024, file));
    let mut record = csv::StringRecord::new();
    let csv_err = |e: csv::Error, line: u64| match e.kind() {
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(error) => ReportError::Io {
                path: path.to_path_buf(),
                error,
            },
            _ => unreachable!("matched Io above"),
        },
        _ => ReportError::Csv {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        },
    };
    if !rdr.read_record(&mut record).map_err(|e| csv_err(e, 1))? {
        return Err(ReportError::Empty {
            path: path.to_path_buf(),
        });
    }
    if record.iter().ne(HEADER.iter().copied()) {
        if record.iter().eq(SEED_HEADER.iter().copied()) {
            return Err(ReportError::SeedFormat {
                path: path.to_path_buf(),
            });
        }
        return Err(ReportError::Header {
            path: path.to_path_buf(),
            found: record.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut pairing = Pairing::default();
    let mut summary = Summary::default();
    let mut seen: Vec<String> = Vec::new();
    let mut active: Vec<String> = Vec::new();
    loop {
        let (line, start) = (rdr.position().line(), rdr.position().byte());
        if tail_start.is_some_and(|t| start >= t) {
            // An unterminated last row (a writer died mid-row): ignored, whatever it holds.
            summary.torn_tail = true;
            break;
        }
        if !rdr.read_record(&mut record).map_err(|e| csv_err(e, line))? {
            break;
        }
        let row = decode_row(&record).map_err(|source| ReportError::Row {
            path: path.to_path_buf(),
            line,
            source,
        })?;
        summary.rows += 1;
        if !seen.contains(&row.device) {
            seen.push(row.device.clone());
        }
        let wanted = if devices.is_empty() {
            if !iostat::is_idle(&row.counters) && !active.contains(&row.device) {
                active.push(row.device.clone());
            }
            active.contains(&row.device)
        } else {
            devices.contains(&row.device)
        };
        let interval = pairing.push(&row);
        if let Some(iv) = interval.filter(|_| wanted) {
            summary.intervals += 1;
            each(&iv).map_err(ReportError::Output)?;
        }
    }
    let missing: Vec<String> = devices
        .iter()
        .filter(|d| !seen.contains(d))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ReportError::UnknownDevice {
            path: path.to_path_buf(),
            missing,
            present: seen,
        });
    }
    summary.skipped = pairing.skipped;
    summary.reboots = pairing.reboots;
    summary.resets = pairing.resets;
    if devices.is_empty() {
        summary.idle_hidden = seen.into_iter().filter(|d| !active.contains(d)).collect();
    }
    Ok(summary)
}

/// If the file does not end with a newline (a torn last row), the offset where that row
/// starts.
fn torn_tail_start(file: &File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut block = vec![0u8; 4096];
    let mut end = len;
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(p) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + p as u64 + 1));
        }
        end = start;
    }
    Ok(Some(0))
}

/// iostat's column widths (`write_plain_ext_stat`), each printed after one space.
const WIDTHS: [usize; 22] = [
    7, 9, 8, 6, 7, 8, 7, 9, 8, 6, 7, 8, 7, 9, 8, 6, 7, 8, 7, 7, 7, 6,
];

/// Writes intervals as a text table like `iostat -x`, with the time first.
#[derive(Debug)]
pub struct TableWriter<W: Write> {
    out: W,
    header_done: bool,
}

impl<W: Write> TableWriter<W> {
    /// A table on `out`.
    pub fn new(out: W) -> Self {
        TableWriter {
            out,
            header_done: false,
        }
    }

    /// Writes one interval (and the header before the first).
    pub fn write(&mut self, iv: &Interval) -> io::Result<()> {
        let tw = iv.datetime.len().max(8);
        if !self.header_done {
            self.header_done = true;
            write!(self.out, "{:<tw$} {:<13}", "datetime", "Device")?;
            for (name, w) in COLUMNS.iter().zip(WIDTHS) {
                write!(self.out, " {name:>w$}")?;
            }
            writeln!(self.out)?;
        }
        write!(self.out, "{:<tw$} {:<13}", iv.datetime, iv.device)?;
        for (v, w) in iv.stats.values().iter().zip(WIDTHS) {
            write!(self.out, " {v:>w$.2}")?;
        }
        writeln!(self.out)
    }

    /// Flushes and returns the writer; writes just the header if there was no interval.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The header of `report --csv`.
pub fn csv_header() -> Vec<&'static str> {
    let mut h = vec!["datetime", "device", "uptime", "interval", "basis"];
    h.extend(COLUMNS);
    h
}

/// Writes intervals as CSV: [`csv_header`], values with up to six decimals.
#[derive(Debug)]
pub struct CsvReportWriter<W: Write> {
    out: csv::Writer<W>,
    fields: Vec<String>,
}

impl<W: Write> CsvReportWriter<W> {
    /// A CSV report on `out`; writes the header.
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(csv_header()).map_err(io::Error::other)?;
        Ok(CsvReportWriter {
            out,
            fields: Vec::with_capacity(27),
        })
    }

    /// Writes one interval.
    pub fn write(&mut self, iv: &Interval) -> io::Result<()> {
        self.fields.clear();
        self.fields.push(iv.datetime.clone());
        self.fields.push(iv.device.clone());
        self.fields.push(format!("{:.6}", iv.uptime));
        self.fields.push(decimal(iv.secs));
        self.fields.push(
            match iv.basis {
                Basis::Previous => "previous",
                Basis::Reset => "reset",
                Basis::SinceBoot => "since-boot",
            }
            .to_owned(),
        );
        for v in iv.stats.values() {
            self.fields.push(decimal(v));
        }
        self.out
            .write_record(&self.fields)
            .map_err(io::Error::other)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

/// A number with at most six decimals and no trailing zeros: `0.5`, `16.666667`, `400`.
pub fn decimal(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(device: &str, uptime: f64, rd_ios: u64, rd_sectors: u64) -> Row {
        Row {
            datetime: format!("t{uptime}"),
            major: 8,
            minor: 0,
            device: device.into(),
            counters: Counters {
                rd_ios,
                rd_sectors,
                ..Counters::default()
            },
            uptime,
        }
    }

    #[test]
    fn pairs_rows_per_device_on_the_uptime_clock() {
        let mut p = Pairing::default();
        assert!(p.push(&row("sda", 100.0, 10, 80)).is_none());
        assert!(p.push(&row("sdb", 100.0, 5, 40)).is_none());
        let iv = p.push(&row("sda", 102.0, 30, 480)).unwrap();
        assert_eq!(iv.secs, 2.0);
        assert_eq!(iv.stats.r_s, 10.0);
        assert_eq!(iv.stats.rkb_s, 100.0);
        assert_eq!(iv.basis, Basis::Previous);
        let iv = p.push(&row("sdb", 104.0, 25, 40)).unwrap();
        assert_eq!((iv.secs, iv.stats.r_s), (4.0, 5.0));
    }

    #[test]
    fn a_row_that_does_not_advance_is_skipped() {
        let mut p = Pairing::default();
        p.push(&row("sda", 100.0, 10, 80));
        assert!(p.push(&row("sda", 100.0, 10, 80)).is_none());
        assert!(p.push(&row("sda", 99.9995, 10, 80)).is_none());
        assert_eq!(p.skipped, 2);
        let iv = p.push(&row("sda", 101.0, 20, 80)).unwrap();
        assert_eq!((iv.secs, iv.stats.r_s), (1.0, 10.0));
    }

    #[test]
    fn a_reboot_gives_a_since_boot_interval() {
        let mut p = Pairing::default();
        p.push(&row("sda", 5000.0, 90_000, 800_000));
        let iv = p.push(&row("sda", 20.0, 400, 8000)).unwrap();
        assert_eq!(iv.basis, Basis::SinceBoot);
        assert_eq!((iv.secs, iv.stats.r_s, iv.stats.rkb_s), (20.0, 20.0, 200.0));
        assert_eq!(p.reboots, 1);
        let iv = p.push(&row("sda", 30.0, 500, 8000)).unwrap();
        assert_eq!((iv.secs, iv.stats.r_s), (10.0, 10.0));
    }

    #[test]
    fn a_re_added_device_is_a_reset() {
        let mut p = Pairing::default();
        p.push(&row("sdb", 100.0, 90_000, 800_000));
        let iv = p.push(&row("sdb", 110.0, 50, 400)).unwrap();
        assert_eq!(iv.basis, Basis::Reset);
        assert_eq!((iv.stats.r_s, iv.stats.rkb_s), (5.0, 20.0));
        assert_eq!(p.resets, 1);
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal(0.5), "0.5");
        assert_eq!(decimal(400.0), "400");
        assert_eq!(decimal(100.0 / 6.0), "16.666667");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(-0.0000001), "0");
    }

    #[test]
    fn the_table_has_iostat_columns() {
        let iv = Interval {
            datetime: "2024-01-01T00:00:00.000000".into(),
            device: "vda".into(),
            uptime: 10.0,
            secs: 1.0,
            stats: ExtStats {
                r_s: 1.5,
                util: 100.0,
                ..ExtStats::default()
            },
            basis: Basis::Previous,
        };
        let mut t = TableWriter::new(Vec::new());
        t.write(&iv).unwrap();
        let text = String::from_utf8(t.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("datetime"), "{text}");
        assert!(
            lines[0].ends_with("     r/s     rkB/s   rrqm/s  %rrqm r_await rareq-sz     w/s     wkB/s   wrqm/s  %wrqm w_await wareq-sz     d/s     dkB/s   drqm/s  %drqm d_await dareq-sz     f/s f_await  aqu-sz  %util"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains(" vda "), "{}", lines[1]);
        assert!(lines[1].contains("    1.50 "), "{}", lines[1]);
        assert!(lines[1].ends_with(" 100.00"), "{}", lines[1]);
    }
}
