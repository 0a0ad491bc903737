//! Command-line interface.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::backend::{self, BackendConfig};
use crate::commands;
use crate::lab::{Balancer, BalancerOptions, Fleet, FleetOptions, LabTls};

/// Benchmarks HTTP load balancers with httperf.
#[derive(Debug, Parser)]
#[command(name = "lbbench", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand per job; `agent` is what `lab --hosts` starts on each host over ssh.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run httperf once and print its parsed report (table, --json or --csv).
    Run(commands::run::RunArgs),
    /// Parse saved httperf reports into CSV (or --json) on stdout.
    Parse(commands::parse::ParseArgs),
    /// The lab report's rate sweep: rates × repeats, one CSV row per run, resumable.
    Sweep(commands::sweep::SweepArgs),
    /// Sample the machine's CPU and that of processes to CSV (the lab report's `sar -u 2`).
    Cpu(commands::cpu::CpuArgs),
    /// Serve the benchmark page (the lab report's perf.php): `/perf.php?sleep=S&rounds=N`.
    Backend(BackendArgs),
    /// Start N backends and one balancer on 127.0.0.1 and keep them running until Ctrl-C
    /// (to try a balancer of the lab by hand).
    Up(UpArgs),
    /// The lab report's HAProxy-vs-Pound experiment (and nginx) on 127.0.0.1: backends, each
    /// balancer in turn under the sweep with its CPU measured, and the report. Resumable.
    Lab(commands::lab::LabArgs),
    /// One HTML page (and --markdown) from a lab directory or sweep CSV files: reply time,
    /// balancer CPU, achieved rate and errors against the demanded rate.
    Report(commands::report::ReportArgs),
    /// Play a staged load profile (the lab report's load generator, its listing 1.2): httperf runs
    /// that start at their own offsets and run at the same time; --speed compresses time.
    Profile(commands::profile::ProfileArgs),
    /// What runs on each host of `lbbench lab --hosts`, started there over ssh: requests on
    /// stdin, replies on stdout, one JSON object per line. Not for typing.
    #[command(hide = true)]
    Agent,
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(common::clidoc::CompletionsArgs),
    /// Print the manual page (of a subcommand if named), or write them all with --dir.
    Man(common::clidoc::ManArgs),
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
    /// Threads; 0 means one per CPU. One thread costs the least CPU per request (each
    /// thread wakes up for fewer requests at a time) and uses about a fifth of a core at
    /// 2,000 req/s of sleeping requests.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `lbbench up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The balancer: haproxy, pound or nginx.
    #[arg(long, short = 'b', default_value = "haproxy", value_parser = parse_balancer)]
    pub balancer: Balancer,
    /// How many backends.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub backends: u16,
    /// The balancer's port on 127.0.0.1 (default: a free one).
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// The balancer's program (default: found in PATH and the sbin directories).
    #[arg(long)]
    pub program: Option<PathBuf>,
    /// Log every request (to the balancer's log).
    #[arg(long)]
    pub request_log: bool,
    /// Keep the balancer's config and log in this directory (default: its temp dir,
    /// removed at the stop).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Terminate TLS at the balancer with a certificate made for the lab (in DIR/tls/ with
    /// --dir, else in a temp dir removed at the stop); the backends stay plain HTTP.
    #[arg(long)]
    pub tls: bool,
}

fn parse_balancer(s: &str) -> Result<Balancer, String> {
    s.parse().map_err(|e: crate::lab::LabError| e.to_string())
}

/// `lbbench up`: starts everything, prints what runs where, waits for Ctrl-C (or for a
/// process to die), and stops everything.
fn up(a: UpArgs) -> anyhow::Result<()> {
    let shutdown = common::Shutdown::install().context("cannot install the signal handlers")?;
    let mut fleet = Fleet::start(&FleetOptions::new(usize::from(a.backends))?, &shutdown)
        .context("cannot start the backends")?;
    let mut out = std::io::stdout().lock();
    for b in fleet.backends() {
        writeln!(
            out,
            "backend {} http://{}/ pid {} log {}",
            b.name(),
            b.addr(),
            b.pid(),
            b.log_path().display()
        )?;
    }
    // Without --dir the certificate lives in a temp dir for as long as `up` runs.
    let tls_dir = match (&a.dir, a.tls) {
        (None, true) => Some(
            tempfile::Builder::new()
                .prefix("lbbench-tls-")
                .tempdir()
                .context("cannot create a temp dir")?,
        ),
        _ => None,
    };
    let tls = match (a.tls, &a.dir, &tls_dir) {
        (false, ..) => None,
        (true, Some(dir), _) => Some(LabTls::in_dir(dir)?),
        (true, None, Some(tmp)) => Some(LabTls::in_dir(tmp.path())?),
        (true, None, None) => None,
    };
    let opts = BalancerOptions {
        program: a.program,
        port: a.port,
        work_dir: a.dir,
        request_log: a.request_log,
        tls: tls.clone(),
        ..BalancerOptions::default()
    };
    let mut lb = a
        .balancer
        .start(&fleet.upstreams(), &opts, &shutdown)
        .with_context(|| format!("cannot start {}", a.balancer))?;
    let pids: Vec<String> = lb.pids().iter().map(u32::to_string).collect();
    writeln!(
        out,
        "{} {} {} pids {} config {} log {} run-dir {}",
        lb.kind(),
        lb.version(),
        lb.url(),
        pids.join(","),
        lb.config_path().display(),
        lb.log_path().display(),
        lb.run_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    )?;
    if let Some(tls) = &tls {
        writeln!(
            out,
            "tls: the lab's CA is {} (curl --cacert {} {})",
            tls.ca_path().display(),
            tls.ca_path().display(),
            lb.url()
        )?;
    }
    writeln!(out, "ready: Ctrl-C stops everything")?;
    out.flush()?;
    drop(out);
    let mut failure = Ok(());
    while shutdown.sleep(Duration::from_millis(500)) {
        if let Err(e) = lb.check_alive().and_then(|()| fleet.check_alive()) {
            failure = Err(e);
            break;
        }
    }
    let stopped = lb.stop();
    let fleet_stopped = fleet.stop();
    failure?;
    stopped.with_context(|| format!("cannot stop {}", a.balancer))?;
    fleet_stopped.context("cannot stop the backends")?;
    eprintln!("lbbench up: stopped {} and the backends", a.balancer);
    Ok(())
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
                threads: (a.threads > 0).then_some(a.threads),
            };
            backend::run(&cfg, |addr| {
                eprintln!("lbbench backend {}: listening on {addr}", cfg.name);
            })
            .with_context(|| format!("backend {}", cfg.name))
        }
        Command::Up(a) => up(a),
        Command::Lab(a) => commands::lab::run(a),
        Command::Report(a) => commands::report::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Agent => {
            let signals =
                common::Shutdown::install().context("cannot install the signal handlers")?;
            crate::lab::limits::raise_fd_limit();
            crate::lab::hosts::agent::run_agent(
                std::io::BufReader::new(std::io::stdin()),
                std::io::stdout(),
                &signals,
            )
            .context("agent")
        }
        Command::Completions(a) => a.run(Cli::command()),
        Command::Man(a) => a.run(Cli::command()),
    }
}
