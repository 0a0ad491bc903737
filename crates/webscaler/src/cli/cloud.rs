//! `webscaler cloud`: the operator's commands on the configured provider (the lab report's
//! `nova.py main()`): list, create, start, stop, delete, quota.
//!
//! The provider's flags ([`ProviderArgs`]) are shared with `run` and `status`;
//! [`CloudSettings`] opens the provider they resolve to.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use common::cli::UsageError;
use common::table::Table;

use super::args::{ProviderArgs, secs};
use super::{cli_error, settings_error};
use crate::cloud::openstack::config::Env;
use crate::cloud::{Backend, Cloud, CloudError, Status};
use crate::settings::{CloudSettings, Provider};

/// `webscaler cloud`.
#[derive(Debug, Args)]
pub struct CloudArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: CloudCommand,
}

/// The subcommands of `webscaler cloud`.
#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// List the backends: name, status, address, id, creation time.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create N backends, named after the highest existing number.
    Create {
        count: usize,
        /// Wait until they are ACTIVE.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 600.0, value_name = "SECS")]
        timeout: f64,
        /// With --wait: seconds between polls [default: 0.2 local, 2 OpenStack].
        #[arg(long, value_name = "SECS")]
        poll_interval: Option<f64>,
    },
    /// Start stopped backends.
    Start {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop backends (they stay, and start again quickly). Returns once the cloud has
    /// accepted; the backends read `ACTIVE (powering-off)` until they are stopped.
    Stop {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Wait until they are SHUTOFF.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 600.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Delete backends. Returns once the cloud has accepted; they are listed (`deleting`)
    /// until they are gone.
    Delete {
        /// Backend names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Wait until they are gone.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 600.0, value_name = "SECS")]
        timeout: f64,
    },
    /// Show the resolved configuration of the provider (secrets redacted), without
    /// contacting the cloud: for OpenStack, what clouds.yaml, secure.yaml, the OS_*
    /// variables and the flags resolve to.
    Config {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the quota: instances used and limit, and how many more backends fit.
    Quota {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `webscaler cloud` with the process environment.
pub fn run(args: CloudArgs) -> Result<()> {
    let env = Env::from_process();
    let mut out = std::io::stdout().lock();
    run_with(args, &env, &mut out)
}

fn status_text(b: &Backend) -> String {
    match &b.task {
        Some(t) => format!("{} ({t})", b.status),
        None => b.status.to_string(),
    }
}

/// Runs `webscaler cloud` in `env`, writing the results to `out`.
pub fn run_with(args: CloudArgs, env: &Env, out: &mut dyn std::io::Write) -> Result<()> {
    let settings = CloudSettings::resolve(&args.provider.layer()?).map_err(settings_error)?;
    let provider = settings.provider(env);
    if let CloudCommand::Config { json } = args.command {
        return show_config(&settings, env, json, out);
    }
    let cloud = settings.open(env).map_err(settings_error)?;
    match args.command {
        CloudCommand::List { json } => {
            let backends = cloud.list().map_err(cli_error)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &backends)?;
                writeln!(out)?;
            } else {
                let mut table = Table::new(["NAME", "STATUS", "ADDRESS", "ID", "CREATED"]);
                for b in &backends {
                    table.row([
                        b.name.clone(),
                        status_text(b),
                        b.address
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| "-".into()),
                        b.id.clone(),
                        b.created
                            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                write!(out, "{table}")?;
            }
        }
        CloudCommand::Create {
            count,
            wait,
            timeout,
            poll_interval,
        } => {
            let created = cloud.create(count).map_err(cli_error)?;
            let mut failed = Vec::new();
            let mut ok = Vec::new();
            for c in created {
                match c.result {
                    Ok(b) => {
                        writeln!(out, "created {} ({}, id {})", b.name, status_text(&b), b.id)?;
                        ok.push(b.name);
                    }
                    Err(e) => failed.push(format!("{}: {e}", c.name)),
                }
            }
            if wait && !ok.is_empty() {
                let every = poll_interval
                    .map_or(Ok(poll_every(provider)), |p| secs("--poll-interval", p))?;
                wait_active(cloud.as_ref(), &ok, secs("--timeout", timeout)?, every)?;
                writeln!(out, "active: {}", ok.join(" "))?;
            }
            if !failed.is_empty() {
                bail!(
                    "{} of {count} not created: {}",
                    failed.len(),
                    failed.join("; ")
                );
            }
        }
        CloudCommand::Start { names } => {
            act(cloud.as_ref(), &names, out, "started", |c, b| c.start(b))?
        }
        CloudCommand::Stop {
            names,
            wait,
            timeout,
        } => {
            act(cloud.as_ref(), &names, out, "stopped", |c, b| c.stop(b))?;
            if wait {
                wait_for(
                    cloud.as_ref(),
                    &names,
                    "stopped",
                    secs("--timeout", timeout)?,
                    poll_every(provider),
                    |b| b.is_some_and(|b| b.status == Status::Shutoff && b.task.is_none()),
                )?;
            }
        }
        CloudCommand::Delete {
            names,
            wait,
            timeout,
        } => {
            act(cloud.as_ref(), &names, out, "deleted", |c, b| c.delete(b))?;
            if wait {
                wait_for(
                    cloud.as_ref(),
                    &names,
                    "gone",
                    secs("--timeout", timeout)?,
                    poll_every(provider),
                    |b| b.is_none(),
                )?;
            }
        }
        CloudCommand::Config { .. } => unreachable!("handled before the provider is opened"),
        CloudCommand::Quota { json } => {
            let q = cloud.quota().map_err(cli_error)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &q)?;
                writeln!(out)?;
            } else {
                let lim = |l: &crate::cloud::Limit| match l.max {
                    Some(m) => format!("{} used of {m}", l.used),
                    None => format!("{} used, unlimited", l.used),
                };
                writeln!(out, "instances: {}", lim(&q.instances))?;
                if let Some(c) = &q.cores {
                    writeln!(out, "cores: {}", lim(c))?;
                }
                if let Some(r) = &q.ram_mb {
                    writeln!(out, "ram (MiB): {}", lim(r))?;
                }
                match q.left {
                    Some(n) => writeln!(out, "backends that still fit: {n}")?,
                    None => writeln!(out, "backends that still fit: unlimited")?,
                }
            }
        }
    }
    Ok(())
}

/// `webscaler cloud config`: resolves, never connects.
fn show_config(
    settings: &CloudSettings,
    env: &Env,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let v = settings.to_json(env).map_err(settings_error)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else if let serde_json::Value::Object(m) = &v {
        for (k, val) in m {
            match val {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => writeln!(out, "{k}: {s}")?,
                other => writeln!(out, "{k}: {other}")?,
            }
        }
    }
    Ok(())
}

fn act(
    cloud: &(dyn Cloud + Send + Sync),
    names: &[String],
    out: &mut dyn std::io::Write,
    done: &str,
    f: impl Fn(&(dyn Cloud + Send + Sync), &Backend) -> Result<(), CloudError>,
) -> Result<()> {
    let backends = cloud.list().map_err(cli_error)?;
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        match backends.iter().filter(|b| &b.name == n).collect::<Vec<_>>()[..] {
            [b] => chosen.push(b),
            [] => unknown.push(n.as_str()),
            ref several => bail!(UsageError::new(format!(
                "{} backends are named {n} ({}); refusing to guess",
                several.len(),
                several
                    .iter()
                    .map(|b| b.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
    if !unknown.is_empty() {
        bail!(UsageError::new(format!(
            "no backend named {} (see `webscaler cloud list`)",
            unknown.join(", ")
        )));
    }
    let mut failed = Vec::new();
    for b in chosen {
        match f(cloud, b) {
            Ok(()) => writeln!(out, "{done} {}", b.name)?,
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// How often `--wait` looks: 0.2 s for local processes, 2 s for OpenStack.
fn poll_every(provider: Provider) -> Duration {
    match provider {
        Provider::Local => Duration::from_millis(200),
        Provider::Openstack => Duration::from_secs(2),
    }
}

/// Polls the listing until every backend named satisfies `done` (given `None` when it is
/// no longer listed).
fn wait_for(
    cloud: &(dyn Cloud + Send + Sync),
    names: &[String],
    what: &str,
    timeout: Duration,
    every: Duration,
    done: impl Fn(Option<&Backend>) -> bool,
) -> Result<()> {
    let mut last = String::new();
    let r = common::wait::poll_until(
        &format!("the backends to be {what}"),
        timeout,
        every,
        || {
            let list = match cloud.list() {
                Ok(l) => l,
                Err(e) => {
                    last = e.to_string();
                    return None;
                }
            };
            let pending: Vec<String> = names
                .iter()
                .filter_map(|n| {
                    let b = list.iter().find(|b| &b.name == n);
                    (!done(b)).then(|| {
                        b.map_or_else(|| n.clone(), |b| format!("{} {}", n, status_text(b)))
                    })
                })
                .collect();
            last = pending.join(", ");
            pending.is_empty().then_some(())
        },
    );
    r.map_err(|e| anyhow::anyhow!("{e} (last seen: {last})"))
}

fn wait_active(
    cloud: &(dyn Cloud + Send + Sync),
    names: &[String],
    timeout: Duration,
    every: Duration,
) -> Result<()> {
    let mut last = String::new();
    let r = common::wait::poll_until("the new backends to be ACTIVE", timeout, every, || {
        let list = match cloud.list() {
            Ok(l) => l,
            Err(e) => {
                last = e.to_string();
                return None;
            }
        };
        let mine: Vec<&Backend> = list.iter().filter(|b| names.contains(&b.name)).collect();
        if let Some(b) = mine.iter().find(|b| b.status == Status::Error) {
            return Some(Err(anyhow::anyhow!("{} went to ERROR", b.name)));
        }
        last = mine
            .iter()
            .map(|b| format!("{} {}", b.name, b.status))
            .collect::<Vec<_>>()
            .join(", ");
        (mine.len() == names.len() && mine.iter().all(|b| b.is_running())).then_some(Ok(()))
    });
    match r {
        Ok(r) => r,
        Err(e) => bail!("{e} (last seen: {last})"),
    }
}
