use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = webscaler::cli::Cli::parse();
    common::cli::run("webscaler", || webscaler::cli::run(cli))
}
