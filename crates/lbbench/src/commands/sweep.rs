//! `lbbench sweep`: the lab report's rate sweep, resumable, to CSV.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use common::{Shutdown, TimeFormat};

use super::{Target, classify, usage};
use crate::httperf::Thresholds;
use crate::sweep::{ProgressMode, SweepConfig, default_output, rates, run_sweep};

/// Arguments of `lbbench sweep`. The defaults are the report's (its listing 2.3).
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub target: Target,
    /// The URI to request.
    #[arg(long, default_value = "/perf.php?sleep=0.2")]
    pub uri: String,
    /// The first rate, in connections/s.
    #[arg(long, value_name = "R", default_value_t = 100.0)]
    pub from: f64,
    /// The last rate.
    #[arg(long, value_name = "R", default_value_t = 2000.0)]
    pub to: f64,
    /// The step between rates.
    #[arg(long, value_name = "R", default_value_t = 100.0)]
    pub step: f64,
    /// Reply sizes to sweep at each rate (`size=` added to the URI, which the benchmark
    /// backend honours): bytes or k, m, g (powers of 1,024), e.g. `1k,64k,1m,16m`. Give one
    /// rate with `--from R --to R` for a size sweep.
    #[arg(long, value_name = "LIST")]
    pub sizes: Option<String>,
    /// Runs per rate.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub repeat: u32,
    /// Seconds per run (connections = rate × seconds).
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds to pause between runs.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub pause: f64,
    /// Do not pass --hog to httperf (it is passed by default, as in the report).
    #[arg(long)]
    pub no_hog: bool,
    /// The CSV file [default: perf_<label>_combined.csv, the label being --server by default].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The `server` column [default: the --server value].
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Keep each run's raw httperf output in DIR (<label>_r<rate>_<run>.txt).
    #[arg(long, value_name = "DIR")]
    pub save_raw: Option<PathBuf>,
    /// No progress bar (warnings are still shown).
    #[arg(short, long)]
    pub quiet: bool,
    /// Write timestamps in UTC (RFC 3339) instead of local time.
    #[arg(long)]
    pub utc: bool,
}

/// A comma-separated list of reply sizes (a usage error if one is bad); order kept,
/// duplicates dropped.
pub fn parse_sizes(list: &str) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let s = crate::sweep::parse_size(item).map_err(|e| usage(format!("--sizes: {e}")))?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Runs `lbbench sweep`.
pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    let rates = rates(a.from, a.to, a.step).map_err(|e| usage(e.to_string()))?;
    let pause = common::time::seconds("--pause", a.pause).map_err(usage)?;
    let httperf = a.target.locate()?;
    let label = a.label.clone().unwrap_or_else(|| a.target.server.clone());
    let cfg = SweepConfig {
        output: a
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(default_output(&label))),
        base: a.target.args(&a.uri, a.from, 1, !a.no_hog),
        label,
        rates,
        sizes: match &a.sizes {
            Some(list) => parse_sizes(list)?,
            None => Vec::new(),
        },
        repeat: a.repeat,
        duration_s: a.duration,
        pause,
        save_raw: a.save_raw.clone(),
        time_format: TimeFormat::from_utc_flag(a.utc),
        thresholds: Thresholds::default(),
        progress: if a.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
    };
    let shutdown = Shutdown::install().context("cannot install signal handlers")?;
    let summary = run_sweep(&httperf, &cfg, &mut (), &shutdown).map_err(|e| {
        let u = e.is_usage();
        classify(e, u)
    })?;
    let file = cfg.output.display();
    let done = summary.skipped + summary.written;
    if summary.interrupted {
        anyhow::bail!(
            "interrupted: {done} of {} runs are in {file}; run the same command again to continue",
            summary.planned
        );
    }
    if !a.quiet {
        eprintln!(
            "lbbench: {done} runs in {file} ({} written now, {} already there; {} flagged)",
            summary.written, summary.skipped, summary.flagged
        );
    }
    if !summary.failed.is_empty() {
        anyhow::bail!(
            "{} of {} runs failed and are not in {file} (run the same command again to do them): {}",
            summary.failed.len(),
            summary.planned,
            summary
                .failed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
