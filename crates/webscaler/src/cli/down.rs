//! `webscaler down`: the explicit teardown of a state directory ([`crate::service::down`]):
//! its embedded HAProxy stopped, its local backends deleted.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use common::cli::UsageError;

use super::args::secs;
use crate::cloud::openstack::config::Env;
use crate::service;
use crate::settings::{self, CloudLayer, CloudSettings, Layer};

/// `webscaler down`.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The state directory [default: $XDG_STATE_HOME/webscaler or
    /// ~/.local/state/webscaler].
    #[arg(long, env = "WEBSCALER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The TOML configuration file (its `state_dir` and `[cloud] grace`).
    #[arg(long, env = "WEBSCALER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seconds the backends get between SIGTERM and SIGKILL [default: 5].
    #[arg(long, value_name = "SECS")]
    pub grace: Option<f64>,
    /// Seconds HAProxy gets to finish its connections after its soft stop.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub haproxy_grace: f64,
}

/// Runs `webscaler down`.
pub fn run(args: DownArgs) -> Result<()> {
    let env = Env::from_process();
    let file = settings::load_file(args.config.as_deref()).map_err(super::settings_error)?;
    let flags = Layer {
        cloud: CloudLayer {
            state_dir: args.state_dir.clone(),
            grace: args.grace.map(|g| secs("--grace", g)).transpose()?,
            ..CloudLayer::default()
        },
        ..Layer::default()
    };
    let layer = flags.over(file);
    let cloud = CloudSettings::resolve(&layer.cloud).map_err(super::settings_error)?;
    let state_dir = cloud.state_dir(&env);
    let haproxy_grace = secs("--haproxy-grace", args.haproxy_grace)?;
    let done = service::down(&state_dir, haproxy_grace, cloud.grace).map_err(|e| {
        if e.is_bad_input() {
            UsageError::new(e.to_string()).into()
        } else {
            anyhow::Error::from(e)
        }
    })?;
    let mut out = std::io::stdout().lock();
    for (pid, dir) in &done.haproxy {
        writeln!(out, "stopped HAProxy (pid {pid}) of {}", dir.display())?;
    }
    if !done.backends.is_empty() {
        writeln!(out, "deleted {}", done.backends.join(" "))?;
    }
    if done.strays > 0 {
        writeln!(
            out,
            "stopped {} process group(s) of the state directory that had no backend",
            done.strays
        )?;
    }
    if done.haproxy.is_empty() && done.backends.is_empty() && done.strays == 0 {
        writeln!(out, "nothing runs in {}", state_dir.display())?;
    }
    Ok(())
}
