//! `lbbench parse`: saved httperf reports to CSV or JSON.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::usage;
use crate::httperf::{Report, Thresholds, Validity, parse_reports, target_from_command};

/// Arguments of `lbbench parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Files with httperf's output; each may hold several reports one after another, with or
    /// without their command lines (reports pasted from a terminal). `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON instead of CSV.
    #[arg(long)]
    pub json: bool,
}

/// One report found, for `--json`.
#[derive(Debug, Serialize)]
struct Parsed {
    source: String,
    line: usize,
    report: Report,
    validity: Validity,
}

/// The columns before the report's: where it came from.
pub const SOURCE_COLUMNS: &[&str] = &["source", "line"];

/// Runs `lbbench parse`. Everything is read and checked before anything is printed, so a bad
/// report anywhere gives an error and no partial output.
pub fn run(a: ParseArgs) -> anyhow::Result<()> {
    let limits = Thresholds::default();
    let mut parsed = Vec::new();
    for file in &a.files {
        let name = file.display().to_string();
        let text = if name == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            s
        } else {
            let bytes =
                std::fs::read(file).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let found = parse_reports(&text);
        if found.is_empty() {
            return Err(usage(format!(
                "{name}: {}",
                crate::httperf::ReportError::Empty
            )));
        }
        for f in found {
            let report = f.result.map_err(|e| {
                usage(format!(
                    "{name}: the report starting at line {}: {e}",
                    f.line_no
                ))
            })?;
            let validity = Validity::assess(&report, target_from_command(&report), &limits);
            parsed.push(Parsed {
                source: name.clone(),
                line: f.line_no,
                report,
                validity,
            });
        }
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut stdout, &parsed)?;
        writeln!(stdout)?;
    } else {
        let mut w = csv::Writer::from_writer(&mut stdout);
        w.write_record(
            SOURCE_COLUMNS
                .iter()
                .chain(Report::COLUMNS)
                .chain(Validity::COLUMNS),
        )?;
        for p in &parsed {
            w.write_record(
                [p.source.clone(), p.line.to_string()]
                    .into_iter()
                    .chain(p.report.to_cells())
                    .chain(p.validity.to_cells()),
            )?;
        }
        w.flush()?;
    }
    Ok(())
}
