//! Command-line interface.

use clap::{Parser, Subcommand};

/// Benchmarks HTTP load balancers with httperf.
#[derive(Debug, Parser)]
#[command(name = "lbbench", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => Ok(()),
        Some(c) => match c {},
    }
}
