//! Command-line interface.

pub mod args;
pub mod cloud;
pub mod down;
pub mod haproxy;
pub mod plot;
pub mod run;
pub mod simulate;
pub mod status;

use clap::{CommandFactory, Parser, Subcommand};
use common::cli::UsageError;

use crate::cloud::CloudError;
use crate::settings::SettingsError;

/// Keeps the number of web servers behind HAProxy matched to the request rate.
#[derive(Debug, Parser)]
#[command(name = "webscaler", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scaling loop: every tick, match the number of backends to the request rate
    /// (see docs/webscaler.md).
    Run(Box<run::RunArgs>),
    /// Show the backends as the cloud and HAProxy report them, with the rate and the number
    /// of servers needed (with or without a running loop).
    Status(Box<status::StatusArgs>),
    /// Stop what `run` leaves serving in a state directory: its embedded HAProxy, and its
    /// local backends (deleted). Refused while a `run` uses the directory.
    Down(down::DownArgs),
    /// Run the controller of `run` on a simulated cloud, balancer and clock over a rate trace
    /// or a load profile, and score it with the SPEC RG elasticity metrics.
    Simulate(Box<simulate::SimulateArgs>),
    /// Draw the lab report's "Scaling of servers" chart (its figure 1.4: request rate, active, pending and needed servers) from
    /// the CSV of `run` or `simulate`, as SVG.
    Plot(plot::PlotArgs),
    /// Operate the cloud's backends: list, create, start, stop, delete, quota.
    Cloud(Box<cloud::CloudArgs>),
    /// HAProxy: servers, request rate, add/drain/remove servers without a reload, the
    /// generated backend file.
    Haproxy(Box<haproxy::HaproxyArgs>),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(common::clidoc::CompletionsArgs),
    /// Print the manual page (of a subcommand if named), or write them all with --dir.
    Man(common::clidoc::ManArgs),
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => Ok(()),
        Some(Command::Run(args)) => run::run(*args),
        Some(Command::Status(args)) => status::run(*args),
        Some(Command::Down(args)) => down::run(args),
        Some(Command::Simulate(args)) => simulate::run(*args),
        Some(Command::Plot(args)) => plot::run(args),
        Some(Command::Cloud(args)) => cloud::run(*args),
        Some(Command::Haproxy(args)) => haproxy::run(*args),
        Some(Command::Completions(args)) => args.run(Cli::command()),
        Some(Command::Man(args)) => args.run(Cli::command()),
    }
}

/// A settings error as the command line reports it: bad input exits 2.
pub(crate) fn settings_error(e: SettingsError) -> anyhow::Error {
    if e.is_bad_input() {
        UsageError::new(e.to_string()).into()
    } else {
        e.into()
    }
}

/// A cloud error as the command line reports it: configuration problems are bad input
/// (exit 2).
pub(crate) fn cli_error(e: CloudError) -> anyhow::Error {
    match e {
        CloudError::Config { message } => UsageError::new(message).into(),
        e => e.into(),
    }
}
