//! Command-line interface.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::backend::{self, BackendConfig};
use crate::commands;

/// Benchmarks HTTP load balancers with httperf.
#[derive(Debug, Parser)]
#[command(name = "lbbench", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Serve the benchmark page (the lab report's perf.php): `/perf.php?sleep=S&rounds=N`.
    Backend(BackendArgs),
}

/// `lbbench backend`.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, short = 'p')]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Name shown on the home page and in the X-Backend header.
    #[arg(long, default_value = "node-1")]
    pub name: String,
    /// Listen backlog.
    #[arg(long, default_value_t = 1024)]
    pub backlog: u32,
    /// How long in-flight requests may finish after SIGTERM (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = common::time::parse_duration)]
    pub grace: Duration,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => commands::run::run(a),
        Command::Parse(a) => commands::parse::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Cpu(a) => commands::cpu::run(a),
        Command::Backend(a) => {
            let cfg = BackendConfig {
                bind: a.bind,
                port: a.port,
                name: a.name,
                backlog: a.backlog,
                grace: a.grace,
                threads: a.threads,
            };
            backend::run(&cfg, |addr| {
                eprintln!("lbbench backend {}: listening on {addr}", cfg.name);
            })
            .with_context(|| format!("backend {}", cfg.name))
        }
    }
}
