//! Which runs a sweep's CSV file already has, so a restarted sweep skips them.
//!
//! Only whole rows count, decided as the CSV appender decides ([`common::csvfile::whole_len`]):
//! a last line cut short (a writer killed mid-write by a tool that is not lbbench, or a full
//! disk) is not a finished run, and the appender cuts it off before the next row; a last row
//! that lacks only its newline is kept by the appender, and counted here.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use super::plan::RunKey;

/// Why the runs in a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file is not a CSV file of this layout.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The runs found in a sweep file, and the rows that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completed {
    /// The runs with a complete row.
    pub runs: HashSet<RunKey>,
    /// 1-based line numbers of rows whose server, rate or run cell is unreadable; these runs
    /// are done again.
    pub unreadable_lines: Vec<usize>,
}

/// Reads the (server, target_rate, run) of every complete row of `path`. A missing or empty
/// file has none. The caller checks the header first (the CSV appender refuses a different
/// one); this only needs the three columns.
pub fn completed_runs(path: &Path) -> Result<Completed, ResumeError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Completed::default()),
        Err(error) => {
            return Err(ResumeError::Io {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    completed_in(&bytes).map_err(|reason| ResumeError::Format {
        path: path.to_path_buf(),
        reason,
    })
}

/// [`completed_runs`] on the file's bytes.
pub fn completed_in(bytes: &[u8]) -> Result<Completed, String> {
    let complete = &bytes[..common::csvfile::whole_len(bytes)];
    if complete.is_empty() {
        return Ok(Completed::default());
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(complete);
    let headers = rdr
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("the header has no `{name}` column"))
    };
    let (server_i, rate_i, run_i) = (col("server")?, col("target_rate")?, col("run")?);
    let mut out = Completed::default();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let key = row_key(&record, headers.len(), [server_i, rate_i, run_i]);
                match key {
                    Some(k) => {
                        out.runs.insert(k);
                    }
                    None => out
                        .unreadable_lines
                        .push(record.position().map_or(0, |p| p.line() as usize)),
                }
            }
            Err(e) => return Err(format!("cannot read a row: {e}")),
        }
    }
    Ok(out)
}

/// A row's run key, or `None` if the row is unreadable: a cell count that is not the
/// header's, an empty server, or a rate or run that is not a number. The sweep does such a
/// run again and the report leaves the row out; both decide with this function.
pub fn row_key(
    record: &csv::StringRecord,
    columns: usize,
    [server_i, rate_i, run_i]: [usize; 3],
) -> Option<RunKey> {
    if record.len() != columns {
        return None;
    }
    let server = record.get(server_i).filter(|s| !s.is_empty())?;
    let rate: f64 = record.get(rate_i)?.trim().parse().ok()?;
    let run = record.get(run_i)?.trim().parse().ok()?;
    Some(RunKey::new(server, rate, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_ignores_a_torn_last_line() {
        let text = b"timestamp,server,target_rate,run,x\n\
            t,b1,100,1,a\n\
            t,b1,100.0,2,a\n\
            t,b2,200,1,a\n\
            t,b1,200,1";
        let c = completed_in(text).unwrap();
        let mut keys: Vec<RunKey> = c.runs.into_iter().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                RunKey::new("b1", 100.0, 1),
                RunKey::new("b1", 100.0, 2),
                RunKey::new("b2", 200.0, 1)
            ]
        );
        assert!(c.unreadable_lines.is_empty());
        // A whole last row without its newline counts: the appender keeps it.
        let c = completed_in(b"server,target_rate,run\nb1,100,1\nb1,200,1").unwrap();
        assert_eq!(c.runs.len(), 2);
    }

    #[test]
    fn bad_rows_are_listed_not_counted() {
        let text = b"server,target_rate,run\nb1,fast,1\nb1,100\nb1,100,1\n";
        let c = completed_in(text).unwrap();
        assert_eq!(c.runs.len(), 1);
        assert_eq!(c.unreadable_lines, [2, 3]);
    }

    #[test]
    fn empty_and_missing_files_have_no_runs() {
        assert!(completed_in(b"").unwrap().runs.is_empty());
        assert!(
            completed_in(b"server,target_rate,run\n")
                .unwrap()
                .runs
                .is_empty()
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(
            completed_runs(&dir.path().join("none.csv"))
                .unwrap()
                .runs
                .is_empty()
        );
    }

    #[test]
    fn a_file_without_the_key_columns_is_refused() {
        let err = completed_in(b"a,b\n1,2\n").unwrap_err();
        assert!(err.contains("`server`"), "{err}");
    }
}
