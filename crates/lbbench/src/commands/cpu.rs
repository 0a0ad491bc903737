//! `lbbench cpu`: the lab report's `sar -u 2`, plus the CPU of the balancer's processes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use common::{Shutdown, TimeFormat};

use super::{classify, usage};
use crate::cpu::{MonitorConfig, ProcessSelector, default_output, monitor};

/// Arguments of `lbbench cpu`.
#[derive(Debug, Args)]
pub struct CpuArgs {
    /// Processes to measure (with their threads and children); several add up.
    #[arg(long, value_name = "PID", num_args = 1.., conflicts_with = "name")]
    pub pid: Vec<u32>,
    /// Measure every process with this name (re-found at each sample, so restarts are
    /// followed).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Seconds between samples.
    #[arg(short, long, value_name = "SECONDS", default_value_t = 2.0)]
    pub interval: f64,
    /// Rows to write, then stop [default: until Ctrl-C].
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub count: Option<u64>,
    /// The CSV file [default: cpu_mon_<name>.csv, the host name if no process is selected].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not print each row on stdout.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write timestamps in UTC (RFC 3339) instead of local time.
    #[arg(long)]
    pub utc: bool,
}

/// Runs `lbbench cpu`.
pub fn run(a: CpuArgs) -> anyhow::Result<()> {
    let interval = Duration::try_from_secs_f64(a.interval)
        .ok()
        .filter(|d| *d >= Duration::from_millis(10))
        .ok_or_else(|| {
            usage(format!(
                "--interval must be at least 0.01 s (got {})",
                a.interval
            ))
        })?;
    let selector = match (&a.name, a.pid.is_empty()) {
        (Some(n), _) => Some(ProcessSelector::Name(n.clone())),
        (None, false) => Some(ProcessSelector::Pids(a.pid.clone())),
        (None, true) => None,
    };
    let cfg = MonitorConfig {
        interval,
        count: a.count,
        output: a
            .output
            .clone()
            .unwrap_or_else(|| default_output(selector.as_ref())),
        selector,
        time_format: TimeFormat::from_utc_flag(a.utc),
    };
    let shutdown = Shutdown::install().context("cannot install signal handlers")?;
    let quiet = a.quiet;
    monitor(&cfg, &shutdown, |row| {
        if !quiet {
            println!("{}", row.summary(&cfg));
        }
    })
    .map_err(|e| {
        let u = e.is_usage();
        classify(e, u)
    })?;
    Ok(())
}
