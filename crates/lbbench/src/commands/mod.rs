//! The subcommands' arguments and what they do; `cli.rs` only dispatches to them.

pub mod cpu;
pub mod lab;
pub mod parse;
pub mod profile;
pub mod report;
pub mod run;
pub mod sweep;

use std::path::PathBuf;

use clap::Args;
use common::cli::UsageError;

use crate::httperf::{Httperf, HttperfArgs, Tls};

/// TLS: the options `run`, `sweep`, `lab` and `up` share.
#[derive(Debug, Clone, Copy, Args)]
pub struct TlsArgs {
    /// Use TLS: httperf connects with --ssl (in the lab, each balancer terminates TLS with a
    /// certificate made for the lab).
    #[arg(long)]
    pub tls: bool,
    /// With --tls: `off` makes every connection a full handshake (httperf --ssl-no-reuse),
    /// `on` resumes TLS sessions (sessions of 4 connections, 3 of them resumed).
    #[arg(
        long,
        value_name = "on|off",
        default_value = "off",
        value_parser = on_off,
        action = clap::ArgAction::Set,
        requires = "tls"
    )]
    pub tls_resumption: bool,
}

impl TlsArgs {
    /// What the run's connections do.
    pub fn mode(&self) -> Tls {
        match (self.tls, self.tls_resumption) {
            (false, _) => Tls::Off,
            (true, false) => Tls::On,
            (true, true) => Tls::Resumed,
        }
    }
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected `on` or `off`, got `{s}`")),
    }
}

/// Where and what httperf requests: the options `run` and `sweep` share.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The server (balancer) to load: a host name or an IPv4 address.
    #[arg(long, value_name = "HOST")]
    pub server: String,
    /// Its TCP port.
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    /// Requests per connection (httperf --num-calls).
    #[arg(long, value_name = "C", default_value_t = 1)]
    pub num_calls: u64,
    /// Seconds to wait for a reply before counting a client timeout.
    #[arg(long, value_name = "T", default_value_t = 5.0)]
    pub timeout: f64,
    /// The httperf program (a path, or a name looked up in PATH).
    #[arg(long, value_name = "PATH", default_value = "httperf")]
    pub httperf: PathBuf,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// More httperf arguments, after `--` (e.g. `-- --verbose`).
    #[arg(last = true, value_name = "EXTRA_HTTPERF_ARGS")]
    pub extra: Vec<String>,
}

impl Target {
    /// Finds httperf (a usage error, exit 2, if it is missing).
    pub fn locate(&self) -> anyhow::Result<Httperf> {
        Httperf::locate(Some(&self.httperf)).map_err(|e| usage(e.to_string()))
    }

    /// httperf's arguments for `rate` and `num_conns`.
    pub fn args(&self, uri: &str, rate: f64, num_conns: u64, hog: bool) -> HttperfArgs {
        HttperfArgs {
            server: self.server.clone(),
            port: self.port,
            uri: uri.to_owned(),
            rate,
            num_conns,
            num_calls: self.num_calls,
            timeout: Some(self.timeout),
            hog,
            tls: self.tls.mode(),
            extra: self.extra.clone(),
        }
    }
}

/// A usage error (exit 2) with this message.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(msg))
}

/// Turns a library error into an `anyhow` error that exits 2 if `is_usage`.
pub fn classify<E>(err: E, is_usage: bool) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    if is_usage {
        usage(err.to_string())
    } else {
        anyhow::Error::new(err)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use crate::httperf::Tls;

    fn lab_tls(args: &[&str]) -> Result<Tls, clap::Error> {
        let cli = Cli::try_parse_from([&["lbbench", "lab"], args].concat())?;
        match cli.command {
            Command::Lab(a) => Ok(a.tls.mode()),
            _ => unreachable!("parsed as lab"),
        }
    }

    #[test]
    fn tls_flags() {
        assert_eq!(lab_tls(&[]).unwrap(), Tls::Off);
        assert_eq!(lab_tls(&["--tls"]).unwrap(), Tls::On);
        assert_eq!(
            lab_tls(&["--tls", "--tls-resumption", "off"]).unwrap(),
            Tls::On
        );
        assert_eq!(
            lab_tls(&["--tls", "--tls-resumption", "on"]).unwrap(),
            Tls::Resumed
        );
        assert_eq!(
            lab_tls(&["--tls", "--tls-resumption=on"]).unwrap(),
            Tls::Resumed
        );
        // Resumption without TLS, or a value other than on/off, is a usage error.
        assert!(lab_tls(&["--tls-resumption", "on"]).is_err());
        let e = lab_tls(&["--tls", "--tls-resumption", "yes"]).unwrap_err();
        assert!(e.to_string().contains("expected `on` or `off`"), "{e}");
    }
}
