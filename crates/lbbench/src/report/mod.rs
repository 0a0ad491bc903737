//! `lbbench report`: one self-contained HTML page (and a Markdown summary) from sweep CSV
//! files, the lab report's figures 2.1 (reply time) and 2.2 (balancer CPU) against the
//! demanded rate, with the achieved rate, the errors, a table of the numbers and the setup.
//!
//! - [`data`]: the CSV files → typed [`data::Run`]s (columns by name; torn last lines left out).
//! - [`mod@aggregate`]: runs → one [`aggregate::RatePoint`] per balancer and rate (pure).
//! - [`html`]: the page (askama template, inline SVG from `common::chart`).
//! - [`markdown`]: the summary table.
//!
//! ```no_run
//! let input = lbbench::report::load(&["lab-out".into()])?;
//! let html = lbbench::report::render_html(&input, "2025-01-01 12:00")?;
//! std::fs::write("report.html", html)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aggregate;
pub mod compare;
pub mod data;
pub mod html;
pub mod markdown;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::lab::info::{InfoError, LabInfo};
use aggregate::{RatePoint, aggregate};
use data::{DataError, Run};

/// Everything the report is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInput {
    /// The CSV files read.
    pub files: Vec<PathBuf>,
    /// Their runs (duplicates left out).
    pub runs: Vec<Run>,
    /// The lab's `lab.json`, if one was found next to the files.
    pub info: Option<LabInfo>,
    /// What the reader should know (torn lines, duplicates).
    pub warnings: Vec<String>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A CSV file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// `lab.json` could not be read.
    #[error(transparent)]
    Info(#[from] InfoError),
    /// The inputs hold no run.
    #[error("no runs in {0}")]
    NoRuns(String),
    /// The page could not be made.
    #[error(transparent)]
    Html(#[from] html::HtmlError),
}

impl ReportError {
    /// Whether the error comes from bad input (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ReportError::Data(DataError::Format { .. })
                | ReportError::Info(InfoError::Format { .. })
                | ReportError::NoRuns(_)
        ) || matches!(self, ReportError::Data(DataError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads the inputs: directories (their `perf_*_combined.csv` and `lab.json`) and CSV files
/// (with the `lab.json` next to the first one that has one).
pub fn load(inputs: &[PathBuf]) -> Result<ReportInput, ReportError> {
    let mut files = Vec::new();
    let mut info = None;
    for input in inputs {
        if input.is_dir() {
            let found = data::sweep_files_in(input)?;
            if found.is_empty() {
                return Err(ReportError::NoRuns(format!(
                    "{}: no perf_*_combined.csv in it",
                    input.display()
                )));
            }
            files.extend(found);
            if info.is_none() {
                info = LabInfo::load(input)?;
            }
        } else {
            files.push(input.clone());
            if info.is_none() {
                let dir = input.parent().filter(|d| !d.as_os_str().is_empty());
                info = LabInfo::load(dir.unwrap_or(Path::new(".")))?;
            }
        }
    }
    let mut seen_files = HashSet::new();
    files.retain(|f| seen_files.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    let mut keys = HashSet::new();
    for f in &files {
        let sweep = data::read_sweep_file(f)?;
        if !sweep.unreadable_lines.is_empty() {
            warnings.push(format!(
                "{}: lines {:?} have no readable server, target_rate or run; they were left out \
                 (the same `lbbench sweep` does these runs again)",
                f.display(),
                sweep.unreadable_lines
            ));
        }
        if sweep.torn_tail {
            warnings.push(format!(
                "{}: its last line is incomplete (a sweep still writing?); it was left out",
                f.display()
            ));
        }
        for r in sweep.runs {
            let key = (
                r.server.clone(),
                r.tls,
                r.reply_size,
                r.target_rate.to_bits(),
                r.run,
            );
            if keys.insert(key) {
                runs.push(r);
            } else {
                warnings.push(format!(
                    "{}:{}: {} at {}/s run {} is already in the report; this copy was left out",
                    r.file.display(),
                    r.line,
                    r.series(),
                    crate::httperf::fmt_rate(r.target_rate),
                    r.run
                ));
            }
        }
    }
    if runs.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(ReportError::NoRuns(names.join(", ")));
    }
    Ok(ReportInput {
        files,
        runs,
        info,
        warnings,
    })
}

impl ReportInput {
    /// The balancers in the lab's order (from `lab.json`), then any others by name.
    pub fn order(&self) -> Vec<String> {
        let mut order: Vec<String> = self
            .info
            .iter()
            .flat_map(|i| i.balancers.iter().map(|b| b.name.clone()))
            .collect();
        let mut others: Vec<String> = self
            .runs
            .iter()
            .map(|r| r.server.clone())
            .filter(|s| !order.contains(s))
            .collect();
        others.sort();
        others.dedup();
        order.extend(others);
        order
    }

    /// One point per balancer (plain or TLS), reply size and rate.
    pub fn points(&self) -> Vec<RatePoint> {
        aggregate(&self.runs, &self.order())
    }

    /// The CPUs of the machine the runs were measured on (`lab.json`), else this one's.
    pub fn cpus(&self) -> usize {
        self.info.as_ref().map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |i| i.machine.cpus,
        )
    }

    /// The Markdown summary (see [`markdown::summary`]).
    pub fn markdown(&self) -> String {
        markdown::summary(&self.points(), self.cpus())
    }
}

/// The HTML page; `generated` is the date shown as the time it was made.
pub fn render_html(input: &ReportInput, generated: &str) -> Result<String, ReportError> {
    Ok(html::render(input, &input.points(), generated)?)
}

/// A number with `decimals` decimals (`–` for a value that is not finite).
pub fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_dir_and_files_and_leaves_out_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let text = data::tests::lab_csv(&[
            &[("server", "haproxy"), ("target_rate", "100"), ("run", "1")],
            &[("server", "haproxy"), ("target_rate", "100"), ("run", "2")],
        ]);
        let a = dir.path().join("perf_haproxy_combined.csv");
        std::fs::write(&a, &text).unwrap();
        std::fs::write(dir.path().join("notes.csv"), "x\n").unwrap();
        let input = load(&[dir.path().to_owned(), a.clone()]).unwrap();
        assert_eq!(input.files, std::slice::from_ref(&a));
        assert_eq!(input.runs.len(), 2);
        assert!(input.warnings.is_empty());
        assert_eq!(input.info, None);

        let b = dir.path().join("copy.csv");
        std::fs::write(&b, &text).unwrap();
        let input = load(&[a, b]).unwrap();
        assert_eq!(input.runs.len(), 2);
        assert_eq!(input.warnings.len(), 2, "{:?}", input.warnings);
        assert!(input.warnings[0].contains("copy.csv:2: haproxy at 100/s run 1"));

        let empty = tempfile::tempdir().unwrap();
        let e = load(&[empty.path().to_owned()]).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("no perf_"), "{e}");
        let e = load(&[empty.path().join("none.csv")]).unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("none.csv"), "{e}");
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(201.449, 1), "201.4");
        assert_eq!(fmt_num(0.12345, 3), "0.123");
        assert_eq!(fmt_num(f64::NAN, 1), "–");
    }
}
