//! Command-line interface.

use clap::Parser;

/// Samples /proc/diskstats to CSV, in a loop or once per run (for cron).
#[derive(Debug, Parser)]
#[command(name = "diskstats", version, about)]
pub struct Cli {}

/// Runs the command line.
pub fn run(_cli: Cli) -> anyhow::Result<()> {
    Ok(())
}
