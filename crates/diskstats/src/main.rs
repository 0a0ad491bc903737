use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = diskstats::cli::Cli::parse();
    common::cli::run("diskstats", || diskstats::cli::run(cli))
}
