//! `lbbench report`: the HTML page (and a Markdown summary) from a lab directory or sweep
//! CSV files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{classify, usage};
use crate::report;

/// Arguments of `lbbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A lab directory (its perf_*_combined.csv and lab.json), or sweep CSV files.
    #[arg(required = true, value_name = "DIR|CSV")]
    pub inputs: Vec<PathBuf>,
    /// The HTML file [default: DIR/report.html for one directory, else report.html].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also print the summary table in Markdown on stdout.
    #[arg(long)]
    pub markdown: bool,
    /// No message on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `lbbench report`.
pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let input = report::load(&a.inputs).map_err(|e| {
        let u = e.is_usage();
        classify(e, u)
    })?;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| match a.inputs.as_slice() {
            [one] if one.is_dir() => one.join("report.html"),
            _ => PathBuf::from("report.html"),
        });
    // The report never replaces what it is made from (`-o k.csv`, or a lab's own CSV).
    let mut inputs: Vec<PathBuf> = input.files.clone();
    for i in &a.inputs {
        let dir = if i.is_dir() {
            Some(i.as_path())
        } else {
            i.parent()
        };
        let dir = dir
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        inputs.push(dir.join(crate::lab::info::FILE_NAME));
    }
    common::atomic::refuse_overwriting_inputs(&output, &inputs)
        .map_err(|e| usage(e.to_string()))?;
    let generated = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    let html = report::render_html(&input, &generated)?;
    common::atomic::write(&output, html.as_bytes())
        .with_context(|| format!("cannot write {}", output.display()))?;
    if !a.quiet {
        for w in &input.warnings {
            eprintln!("lbbench: warning: {w}");
        }
    }
    if a.markdown {
        let mut out = std::io::stdout().lock();
        out.write_all(input.markdown().as_bytes())?;
        out.flush()?;
    }
    if !a.quiet {
        eprintln!(
            "lbbench: {} runs from {} file{} → {}",
            input.runs.len(),
            input.files.len(),
            if input.files.len() == 1 { "" } else { "s" },
            output.display()
        );
    }
    Ok(())
}
