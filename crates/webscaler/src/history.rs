//! Earlier days, read back for the seasonal floor ([`crate::policy::baseline`]): the CSV
//! files of earlier `webscaler run`s (or `simulate -o`) and request-rate traces.
//!
//! - **A run's CSV** (a header with a `date` column, and `rate` or the lab report's `diff`): each
//!   row's rate was measured over the time since the previous row, so it covers
//!   `(previous date, date]`; a gap of more than [`MAX_GAP`] (the scaler was stopped) covers
//!   nothing, and rows without a rate (the first tick, an error) are skipped. Dates are read
//!   as `run` writes them (local time without an offset, or RFC 3339 with `--utc`) and the
//!   lab report's `2014-09-28 15:49:58.808737`.
//! - **A trace** (`seconds,rate`, benches-data/README.md): its second 0 is midnight of
//!   [`TRACE_EPOCH`] (Monday 2024-01-01) in the baseline's zone, so a trace of several days
//!   is several days of history; `webscaler simulate` puts the trace it simulates on the
//!   same calendar.
//!
//! Errors name the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

use crate::policy::baseline::{Segment, Zone};
use crate::simulation::trace::{Trace, TraceError};

/// The longest time between two rows of a run's CSV that still counts as measured.
pub const MAX_GAP: Duration = Duration::from_secs(600);

/// The longest trace read as history (a year and a day).
pub const MAX_TRACE: Duration = Duration::from_secs(366 * 86_400);

/// Midnight at the start of a trace's second 0 (a Monday).
pub const TRACE_EPOCH: NaiveDateTime = match NaiveDate::from_ymd_opt(2024, 1, 1) {
    Some(d) => match d.and_hms_opt(0, 0, 0) {
        Some(t) => t,
        None => NaiveDateTime::MIN,
    },
    None => NaiveDateTime::MIN,
};

/// A history file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("cannot read history {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a run's CSV is wrong.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// A trace is wrong (the message names the file and line).
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A trace is longer than [`MAX_TRACE`].
    #[error("{}: a history trace may be at most 366 days long, this one is {days:.0} days", path.display())]
    TooLong { path: PathBuf, days: f64 },
}

/// The segments of a trace, its second 0 at `start`.
pub fn trace_segments(trace: &Trace, start: NaiveDateTime) -> Vec<Segment> {
    let at = |d: Duration| start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    trace
        .segments()
        .map(|(from, to, rate)| Segment {
            start: at(from),
            end: at(to),
            rate: rate.to_f64(),
        })
        .collect()
}

/// Reads every file, in `zone`'s civil time.
pub fn load(paths: &[PathBuf], zone: Zone) -> Result<Vec<Segment>, HistoryError> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(load_one(p, zone)?);
    }
    Ok(out)
}

fn load_one(path: &Path, zone: Zone) -> Result<Vec<Segment>, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.split(',').any(|f| f.trim() == "date") {
        parse_run_csv(&text, path, zone)
    } else {
        let trace = Trace::parse_csv(&text, &path.display().to_string())?;
        if trace.end() > MAX_TRACE {
            return Err(HistoryError::TooLong {
                path: path.to_path_buf(),
                days: trace.end().as_secs_f64() / 86_400.0,
            });
        }
        Ok(trace_segments(&trace, TRACE_EPOCH))
    }
}

/// Reads a run's CSV (see the module documentation).
pub fn parse_run_csv(text: &str, path: &Path, zone: Zone) -> Result<Vec<Segment>, HistoryError> {
    let err = |line: u64, message: String| HistoryError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| err(1, format!("not CSV: {e}")))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let date_col = col("date").ok_or_else(|| err(1, "no `date` column".into()))?;
    let (rate_col, diff_col) = (col("rate"), col("diff"));
    if rate_col.is_none() && diff_col.is_none() {
        return Err(err(1, "no `rate` or `diff` column".into()));
    }
    let mut out = Vec::new();
    let mut previous: Option<NaiveDateTime> = None;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, format!("not CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let text = record.get(date_col).unwrap_or("");
        let date = common::time::parse_timestamp(text)
            .map(|t| zone.civil(t))
            .ok_or_else(|| err(line, format!("date: cannot read `{text}`")))?;
        let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).filter(|v| !v.is_empty());
        let rate = match (cell(rate_col), cell(diff_col)) {
            (Some(v), _) | (None, Some(v)) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| err(line, format!("rate: `{v}` is not a rate ≥ 0")))?,
            ),
            (None, None) => None,
        };
        if let (Some(rate), Some(prev)) = (rate, previous) {
            let gap = (date - prev).to_std().ok();
            if gap.is_some_and(|g| !g.is_zero() && g <= MAX_GAP) {
                out.push(Segment {
                    start: prev,
                    end: date,
                    rate,
                });
            }
        }
        previous = Some(date);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Baseline;

    fn p() -> PathBuf {
        PathBuf::from("h.csv")
    }

    #[test]
    fn a_runs_rows_cover_the_time_since_the_previous_row() {
        let text = "\
diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate
,2,2,0,0,2024-01-01T10:00:00.000000Z,,,0,0,hold,
250,2,2,5,250,2024-01-01T10:00:05.000000Z,50,5,0,0,up,50.0
300,2,2,10,550,2024-01-01T10:00:10.000000Z,60,6,0,0,up,60.0
,2,2,10,550,2024-01-01T10:00:15.000000Z,,,0,0,error,
100,2,2,10,650,2024-01-01T11:00:00.000000Z,20,2,0,0,hold,20.0
";
        let segs = parse_run_csv(text, &p(), Zone::Utc).unwrap();
        let t = |h, m, s| TRACE_EPOCH.date().and_hms_opt(h, m, s).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment {
                    start: t(10, 0, 0),
                    end: t(10, 0, 5),
                    rate: 50.0
                },
                Segment {
                    start: t(10, 0, 5),
                    end: t(10, 0, 10),
                    rate: 60.0
                },
            ],
            "the row after a 45-minute gap covers nothing"
        );
        // The lab report's columns: `diff`, space-separated dates.
        let seed = "diffpt,haactive,active,epoch,acu,date,diff,needed\n\
0,2,2,0,0,2014-09-28 15:49:58.808737,0,\n\
60,2,2,61,10,2014-09-28 15:50:59.071109,1,1\n";
        let segs = parse_run_csv(seed, &p(), Zone::Local).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].rate, 1.0);
        assert_eq!(segs[0].start.to_string(), "2014-09-28 15:49:58.808737");
    }

    #[test]
    fn bad_rows_name_the_file_and_line() {
        let cases = [
            (
                "date,rate\n2024-01-01T00:00:00Z,1\nyesterday,2\n",
                "h.csv:3: date: cannot read `yesterday`",
            ),
            (
                "date,rate\n2024-01-01T00:00:00Z,-1\n",
                "h.csv:2: rate: `-1` is not a rate ≥ 0",
            ),
            (
                "date,rate\n2024-01-01T00:00:00Z,NaN\n",
                "h.csv:2: rate: `NaN` is not a rate ≥ 0",
            ),
            (
                "date,needed\n2024-01-01T00:00:00Z,1\n",
                "h.csv:1: no `rate` or `diff` column",
            ),
        ];
        for (text, want) in cases {
            let got = parse_run_csv(text, &p(), Zone::Utc)
                .unwrap_err()
                .to_string();
            assert_eq!(got, want);
        }
        let e = load(&[PathBuf::from("/nonexistent/h.csv")], Zone::Utc).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read history /nonexistent/h.csv"),
            "{e}"
        );
    }

    #[test]
    fn a_trace_of_two_days_is_two_days_of_history_from_monday_midnight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "seconds,rate\n0,10\n43200,30\n172800,0\n").unwrap();
        let segs = load(std::slice::from_ref(&path), Zone::Utc).unwrap();
        assert_eq!(segs[0].start, TRACE_EPOCH);
        assert_eq!(segs[1].end.to_string(), "2024-01-03 00:00:00");
        let b = Baseline::learn(segs).unwrap();
        assert_eq!(b.days(), 2);
        let noon = TRACE_EPOCH + chrono::Duration::hours(24 * 7 + 13);
        assert_eq!(b.at(noon), Some(30.0));
        // An absurd length is refused before anything is learnt.
        std::fs::write(&path, "0,1\n10000000000,0\n").unwrap();
        let e = load(std::slice::from_ref(&path), Zone::Utc)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("a history trace may be at most 366 days long, this one is 115741 days"),
            "{e}"
        );
        // A broken trace is reported as a trace.
        std::fs::write(&path, "0,1\nx,2\n").unwrap();
        let e = load(std::slice::from_ref(&path), Zone::Utc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv:2: seconds: `x` is not a decimal number"),
            "{e}"
        );
    }
}
