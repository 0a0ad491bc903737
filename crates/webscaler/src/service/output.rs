//! The CSV of `webscaler run` when the disk does not cooperate ([`CsvOutput`]): a row that
//! cannot be written is kept in memory and written, in order, once writing works again; the
//! loop never stops for it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use common::csvfile::{CsvAppender, CsvFileError};

use crate::controller::Record;
use crate::controller::record::{Row, header};

/// Rows kept in memory while the CSV cannot be written: a day of 5-s ticks.
pub const DEFAULT_CAPACITY: usize = 17_280;

/// The CSV file of a run, with the rows not yet written.
#[derive(Debug)]
pub struct CsvOutput {
    appender: CsvAppender,
    pending: VecDeque<Record>,
    capacity: usize,
    /// Rows given up (the oldest) because `capacity` were waiting.
    dropped: u64,
    /// The last write error, to log it once per change.
    failing: Option<String>,
}

impl CsvOutput {
    /// Opens `path` for the run's rows: created (with its directories) if missing, its
    /// header checked if not. An error here is the output's fault (bad `-o`). With
    /// `several` HAProxy instances the rows have the `instances` column.
    pub fn open(path: &Path, several: bool) -> Result<CsvOutput, CsvFileError> {
        Ok(CsvOutput {
            appender: CsvAppender::open(path, &header(several))?,
            pending: VecDeque::new(),
            capacity: DEFAULT_CAPACITY,
            dropped: 0,
            failing: None,
        })
    }

    /// Keeps at most `rows` rows waiting (at least 1).
    pub fn with_capacity(mut self, rows: usize) -> CsvOutput {
        self.capacity = rows.max(1);
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.appender.path()
    }

    /// Rows waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Rows given up so far because too many were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `record` after the rows still waiting, and tries to write them all, in order,
    /// as one batch. Returns what is worth a log line: a write error (once, and again when
    /// it changes), or that writing works again (with the rows written late and dropped).
    pub fn push(&mut self, record: Record) -> Vec<String> {
        self.pending.push_back(record);
        let lines = self.flush();
        while self.pending.len() > self.capacity {
            self.pending.pop_front();
            self.dropped += 1;
        }
        lines
    }

    /// Tries to write the rows waiting (see [`CsvOutput::push`]).
    pub fn flush(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.pending.is_empty() {
            return lines;
        }
        let (front, back) = self.pending.as_slices();
        let rows: Vec<Row> = front.iter().chain(back).map(Row).collect();
        match self.appender.append_records(&rows) {
            Ok(_) => {
                if self.failing.take().is_some() {
                    let late = self.pending.len().saturating_sub(1);
                    let mut line = format!(
                        "{} is written again: {late} row(s) kept in memory written late",
                        self.path().display()
                    );
                    if self.dropped > 0 {
                        line.push_str(&format!(
                            ", {} row(s) lost (more than {} were waiting)",
                            self.dropped, self.capacity
                        ));
                    }
                    lines.push(line);
                }
                self.pending.clear();
            }
            Err(e) => {
                let msg = e.to_string();
                if self.failing.as_deref() != Some(msg.as_str()) {
                    lines.push(format!(
                        "error: cannot write the CSV ({msg}); rows are kept in memory (up to {}) and written when it works again; scaling goes on",
                        self.capacity
                    ));
                }
                self.failing = Some(msg);
            }
        }
        lines
    }
}

/// The path of a run's CSV: `-o`, or the lab report's name for the start time.
pub fn csv_path(output: Option<&Path>, start: chrono::DateTime<chrono::Local>) -> PathBuf {
    output.map_or_else(|| super::default_csv_name(start), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::record::read_csv;

    fn record(epoch: u64) -> Record {
        Record {
            diffpt: None,
            haactive: 1,
            active: 1,
            epoch,
            acu: Some(epoch * 10),
            date: format!("2014-09-28T15:49:{epoch:02}.000000"),
            diff: None,
            needed: Some(1),
            pending: 0,
            stopped: 0,
            action: "hold".into(),
            rate: None,
            instances: None,
        }
    }

    fn epochs(path: &Path) -> Vec<u64> {
        read_csv(&std::fs::read_to_string(path).unwrap())
            .unwrap()
            .iter()
            .map(|r| r.epoch)
            .collect()
    }

    #[test]
    fn rows_that_cannot_be_written_wait_and_are_written_in_order_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.csv");
        let mut out = CsvOutput::open(&path, false).unwrap();
        assert!(out.push(record(0)).is_empty());
        assert_eq!(epochs(&path), [0]);

        // The file is replaced by a directory: nothing can be written there.
        std::fs::rename(&path, dir.path().join("old.csv")).unwrap();
        std::fs::create_dir(&path).unwrap();
        let lines = out.push(record(1));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("error: cannot write the CSV"),
            "{lines:?}"
        );
        assert!(out.push(record(2)).is_empty(), "logged once per error");
        assert_eq!(out.pending(), 2);

        std::fs::remove_dir(&path).unwrap();
        let lines = out.push(record(3));
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("2 row(s) kept in memory written late"),
            "{lines:?}"
        );
        assert_eq!(
            epochs(&path),
            [1, 2, 3],
            "in order, in a new file with its header"
        );
        assert_eq!(out.pending(), 0);
        assert!(out.push(record(4)).is_empty());
        assert_eq!(epochs(&path), [1, 2, 3, 4]);
    }

    #[test]
    fn the_rows_kept_are_bounded_and_the_dropped_ones_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.csv");
        let mut out = CsvOutput::open(&path, false).unwrap().with_capacity(3);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        for e in 0..5 {
            out.push(record(e));
        }
        assert_eq!((out.pending(), out.dropped()), (3, 2));
        std::fs::remove_dir(&path).unwrap();
        let lines = out.push(record(5));
        assert!(
            lines[0].contains("3 row(s) kept in memory written late"),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("2 row(s) lost (more than 3 were waiting)"),
            "{lines:?}"
        );
        assert_eq!(epochs(&path), [2, 3, 4, 5], "the newest kept, in order");
    }

    #[test]
    fn a_bad_output_is_refused_when_opened() {
        let e = CsvOutput::open(Path::new("/dev/full"), false).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
