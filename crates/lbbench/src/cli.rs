//! Command-line interface.

use clap::{Parser, Subcommand};

use crate::commands;

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
pub enum Command {
    /// Run httperf once and print its parsed report (table, --json or --csv).
    Run(commands::run::RunArgs),
    /// Parse saved httperf reports into CSV (or --json) on stdout.
    Parse(commands::parse::ParseArgs),
    /// The report's rate sweep: rates × repeats, one CSV row per run, resumable.
    Sweep(commands::sweep::SweepArgs),
    /// Sample the machine's CPU and that of processes to CSV (the report's `sar -u 2`).
    Cpu(commands::cpu::CpuArgs),
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => Ok(()),
        Some(Command::Run(a)) => commands::run::run(a),
        Some(Command::Parse(a)) => commands::parse::run(a),
        Some(Command::Sweep(a)) => commands::sweep::run(a),
        Some(Command::Cpu(a)) => commands::cpu::run(a),
    }
}
