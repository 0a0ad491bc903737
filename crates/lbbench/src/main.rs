use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = lbbench::cli::Cli::parse();
    common::cli::run("lbbench", || lbbench::cli::run(cli))
}
