//! `webscaler plot`: the lab report's "Scaling of servers" chart (its figure 1.4) from the CSV of `run` or `simulate`
//! ([`crate::plot`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use common::cli::UsageError;

use crate::plot::{self, PlotError};

/// `webscaler plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// The CSV that `webscaler run` or `webscaler simulate` wrote.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The SVG file to write [default: FILE with the extension .svg].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The title above the figure [default: "Scaling of servers: FILE"].
    #[arg(long)]
    pub title: Option<String>,
}

fn input_error(e: PlotError) -> anyhow::Error {
    if e.is_input() {
        UsageError::new(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Runs `webscaler plot`.
pub fn run(args: PlotArgs) -> Result<()> {
    let records = plot::load(&args.file).map_err(input_error)?;
    let name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| format!("Scaling of servers: {name}"));
    let svg = plot::svg(&records, &title).map_err(input_error)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("svg"));
    common::atomic::write(&out, svg.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let peak_rate = records.iter().filter_map(|r| r.rate).fold(0.0, f64::max);
    let peak_active = records.iter().map(|r| r.active).max().unwrap_or(0);
    println!(
        "{}: {} ticks, peak {peak_rate:.1} req/s, at most {peak_active} active servers",
        out.display(),
        records.len()
    );
    Ok(())
}
