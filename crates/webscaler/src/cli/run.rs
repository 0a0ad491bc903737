//! `webscaler run`: the flags of the scaling loop; [`crate::service`] runs it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use common::cli::UsageError;

use super::args::{ProviderArgs, SettingsArgs};
use crate::cloud::openstack::config::Env;
use crate::policy::{PolicyKind, Zone};
use crate::service;
use crate::settings::policy::ORACLE_NEEDS_A_TRACE;
use crate::settings::{Layer, Settings};

/// `webscaler run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Settings shared with `status`.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The CSV file, one row per tick (default: named after the start time as the lab report's,
    /// e.g. 2014-09-28T1549--webscaler.csv, in the current directory).
    #[arg(short = 'o', long, env = "WEBSCALER_OUTPUT", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9180; off by
    /// default).
    #[arg(long, env = "WEBSCALER_METRICS", value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Check the configuration (and read the history files), print the settings in effect
    /// and exit (nothing is started).
    #[arg(long)]
    pub check_config: bool,
    /// The cloud provider.
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Runs `webscaler run` with the process environment.
pub fn run(args: RunArgs) -> Result<()> {
    let env = Env::from_process();
    let flags = Layer {
        output: args.output.clone(),
        metrics: args.metrics,
        cloud: args.provider.layer()?,
        ..args.settings.layer()
    };
    let layer = flags.over(args.settings.file()?);
    let settings = Settings::resolve(&layer).map_err(super::settings_error)?;
    if settings.policy.kind == PolicyKind::Oracle {
        return Err(UsageError::new(ORACLE_NEEDS_A_TRACE).into());
    }
    if args.check_config {
        // The history files are input too: read and learn them, as run would.
        let zone = Zone::of(settings.controller.time_format);
        let learnt = settings
            .policy
            .learn(zone, Vec::new())
            .map_err(super::settings_error)?;
        if let Some(note) = learnt.note() {
            eprintln!("webscaler: {note}");
        }
        std::io::stdout()
            .lock()
            .write_all(settings.describe(&env).as_bytes())?;
        return Ok(());
    }
    service::run(&settings, &env).map_err(|e| {
        if e.is_bad_input() {
            UsageError::new(e.to_string()).into()
        } else {
            e.into()
        }
    })
}
