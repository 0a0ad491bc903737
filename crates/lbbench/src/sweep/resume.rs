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
use crate::httperf::Tls;

/// Why the runs in a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
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
    let columns = KeyColumns::find(&headers)?;
    let mut out = Completed::default();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let key = row_key(&record, headers.len(), &columns);
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

/// Where a file's key columns are. `tls` and `reply_size` are absent from files written
/// before they existed, whose rows are plain runs of the URI's own reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyColumns {
    /// `server`.
    pub server: usize,
    /// `tls`, if the file has it.
    pub tls: Option<usize>,
    /// `reply_size`, if the file has it.
    pub reply_size: Option<usize>,
    /// `target_rate`.
    pub rate: usize,
    /// `run`.
    pub run: usize,
}

impl KeyColumns {
    /// The key columns in `headers`; an error names a missing required one.
    pub fn find(headers: &csv::StringRecord) -> Result<KeyColumns, String> {
        let pos = |name: &str| headers.iter().position(|h| h == name);
        let col =
            |name: &str| pos(name).ok_or_else(|| format!("the header has no `{name}` column"));
        Ok(KeyColumns {
            server: col("server")?,
            tls: pos("tls"),
            reply_size: pos("reply_size"),
            rate: col("target_rate")?,
            run: col("run")?,
        })
    }
}

/// A row's run key, or `None` if the row is unreadable: a cell count that is not the
/// header's, an empty server, a rate or run that is not a number, a `tls` cell other than
/// `off`, `on` or `resumed`, or a `reply_size` that is not a number of bytes. The sweep does
/// such a run again and the report leaves the row out; both decide with this function.
pub fn row_key(record: &csv::StringRecord, columns: usize, k: &KeyColumns) -> Option<RunKey> {
    if record.len() != columns {
        return None;
    }
    let server = record.get(k.server).filter(|s| !s.is_empty())?;
    let rate: f64 = record.get(k.rate)?.trim().parse().ok()?;
    let run = record.get(k.run)?.trim().parse().ok()?;
    let tls = match k.tls {
        Some(i) => Tls::from_cell(record.get(i)?)?,
        None => Tls::Off,
    };
    let reply_size = match k.reply_size.map(|i| record.get(i).map(str::trim)) {
        None | Some(Some("")) => None,
        Some(Some(cell)) => Some(cell.parse().ok()?),
        Some(None) => return None,
    };
    Some(RunKey::new(server, tls, reply_size, rate, run))
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
        let k = |s, rate, run| RunKey::new(s, Tls::Off, None, rate, run);
        assert_eq!(
            keys,
            [k("b1", 100.0, 1), k("b1", 100.0, 2), k("b2", 200.0, 1)]
        );
        assert!(c.unreadable_lines.is_empty());
        // A whole last row without its newline counts: the appender keeps it.
        let c = completed_in(b"server,target_rate,run\nb1,100,1\nb1,200,1").unwrap();
        assert_eq!(c.runs.len(), 2);
    }

    #[test]
    fn tls_and_reply_size_are_part_of_the_key() {
        let text = b"server,tls,reply_size,target_rate,run\n\
            b1,off,,100,1\n\
            b1,on,,100,1\n\
            b1,resumed,1024,20,1\n\
            b1,maybe,,100,1\n\
            b1,on,1k,100,1\n";
        let c = completed_in(text).unwrap();
        assert!(
            c.runs
                .contains(&RunKey::new("b1", Tls::Off, None, 100.0, 1))
        );
        assert!(c.runs.contains(&RunKey::new("b1", Tls::On, None, 100.0, 1)));
        assert!(
            c.runs
                .contains(&RunKey::new("b1", Tls::Resumed, Some(1024), 20.0, 1))
        );
        assert_eq!(c.runs.len(), 3);
        assert_eq!(c.unreadable_lines, [5, 6]);
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
