//! `webscaler haproxy …`: the operator's commands for the HAProxy side (the lab report had them as
//! the `main()`s of `haproxy.py` and `hastats.py`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use common::Shutdown;
use common::cli::UsageError;
use common::table::Table;
use common::time::{format_duration, parse_duration};

use crate::balancer::{BackendName, Metric, ServerAddr, ServerName};
use crate::haproxy::{
    AddOutcome, ChangeMethod, DEFAULT_ADMIN_SOCKET, DrainOutcome, Haproxy, HaproxyError, Installed,
    RemoveOutcome, Socket,
};
use crate::rate::meter::{RateMeters, Sample};
use crate::settings::haproxy::DEFAULT_RELOAD_COMMAND;
use crate::settings::{HaproxyLayer, HaproxySettings};

use super::settings_error;

/// `webscaler haproxy`.
#[derive(Debug, Args)]
pub struct HaproxyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: HaproxyCommand,
}

/// The `webscaler haproxy` subcommands.
#[derive(Debug, Subcommand)]
pub enum HaproxyCommand {
    /// Show each server's state, last check, current and total sessions.
    Servers {
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure the current request rate from the backend's cumulative counter.
    Rate {
        /// An admin socket; repeat for several HAProxy instances (their rates are summed).
        #[arg(long = "socket", value_name = "PATH", default_value = DEFAULT_ADMIN_SOCKET)]
        sockets: Vec<PathBuf>,
        #[arg(long, default_value = "nodes", value_parser = parse_backend)]
        backend: BackendName,
        /// The counter: `sessions` (stot, as the lab report) or `requests` (req_tot).
        #[arg(long, value_enum, default_value_t = Metric::Sessions)]
        metric: Metric,
        /// Time between the two samples.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        window: Duration,
        /// Socket connect and read timeout.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        socket_timeout: Duration,
        /// Print JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// Add a server: add server, enable health, wait for the check to pass, state ready.
    Add {
        /// Server name (`[A-Za-z0-9._-]+`).
        #[arg(value_parser = parse_server)]
        name: ServerName,
        /// Its address, IP:PORT.
        #[arg(value_parser = parse_addr)]
        addr: ServerAddr,
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
        /// Backend file and reload fallback.
        #[command(flatten)]
        change: ChangeArgs,
        /// How long to wait for the health check to pass.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Drain a server and wait until its current sessions reach 0.
    Drain {
        /// Server name.
        #[arg(value_parser = parse_server)]
        name: ServerName,
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
        /// How long to wait for the sessions to end.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Remove a server: state maint, then del server, retried while connections remain.
    Remove {
        /// Server name.
        #[arg(value_parser = parse_server)]
        name: ServerName,
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
        /// Backend file and reload fallback.
        #[command(flatten)]
        change: ChangeArgs,
        /// How long to retry while the server still has connections.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Put a server back into load balancing (state ready).
    Ready {
        /// Server name.
        #[arg(value_parser = parse_server)]
        name: ServerName,
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
    },
    /// Put a server into maintenance (state maint).
    Maint {
        /// Server name.
        #[arg(value_parser = parse_server)]
        name: ServerName,
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
    },
    /// Print the backend file that would be written for the servers HAProxy has now.
    Render {
        /// Which HAProxy and backend.
        #[command(flatten)]
        target: Target,
        /// Check options on the server lines.
        #[command(flatten)]
        check: CheckArgs,
    },
}

/// Which HAProxy and backend a command talks to.
#[derive(Debug, Args)]
pub struct Target {
    /// The admin socket (runtime API) [default: /var/run/haproxy/admin.sock, or the master
    /// socket's first worker when only --master-socket is given].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The master CLI socket (`haproxy -W -S PATH`): used to reload.
    #[arg(long, value_name = "PATH")]
    pub master_socket: Option<PathBuf>,
    #[arg(long, default_value = "nodes", value_parser = parse_backend)]
    pub backend: BackendName,
    /// Socket connect and read timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub socket_timeout: Duration,
}

/// Server options (health check, idle connections) for added servers and the backend file.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Time between health checks.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub check_inter: Duration,
    /// Passed checks needed to go up.
    #[arg(long, default_value_t = 2)]
    pub check_rise: u32,
    /// Failed checks needed to go down.
    #[arg(long, default_value_t = 3)]
    pub check_fall: u32,
    /// How fast HAProxy closes idle pooled connections to a server (`del server` waits for
    /// them: about three periods).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub pool_purge_delay: Duration,
}

impl CheckArgs {
    fn layer(&self) -> HaproxyLayer {
        HaproxyLayer {
            check_inter: Some(self.check_inter),
            check_rise: Some(self.check_rise),
            check_fall: Some(self.check_fall),
            pool_purge_delay: Some(self.pool_purge_delay),
            ..HaproxyLayer::default()
        }
    }
}

/// Keeping the backend file in step, and the reload fallback.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The generated backend file to keep in step (rewritten only if `haproxy -c` accepts it).
    #[arg(long, value_name = "PATH")]
    pub backend_file: Option<PathBuf>,
    /// Every config file HAProxy loads, in order (repeat); the backend file is checked in its
    /// place among them.
    #[arg(long = "config", value_name = "PATH")]
    pub configs: Vec<PathBuf>,
    /// The haproxy binary for `haproxy -c`.
    #[arg(long, default_value = "haproxy", value_name = "PATH")]
    pub haproxy: PathBuf,
    /// Reload command for the fallback when there is no master socket.
    #[arg(long, default_value = DEFAULT_RELOAD_COMMAND)]
    pub reload_command: String,
    /// Check options.
    #[command(flatten)]
    pub check: CheckArgs,
}

fn parse_backend(s: &str) -> Result<BackendName, String> {
    BackendName::new(s).map_err(|e| e.to_string())
}

fn parse_server(s: &str) -> Result<ServerName, String> {
    ServerName::new(s).map_err(|e| e.to_string())
}

fn parse_addr(s: &str) -> Result<ServerAddr, String> {
    ServerAddr::new(s).map_err(|e| e.to_string())
}

impl Target {
    /// A client for this HAProxy and backend, with `more` settings.
    fn client(&self, more: HaproxyLayer) -> anyhow::Result<Haproxy> {
        let layer = more.over(HaproxyLayer {
            socket: self.socket.clone().map(|s| vec![s]),
            master_socket: self.master_socket.clone().map(|s| vec![s]),
            backend: Some(self.backend.to_string()),
            socket_timeout: Some(self.socket_timeout),
            ..HaproxyLayer::default()
        });
        HaproxySettings::resolve(&layer)
            .and_then(|s| s.operator_client())
            .map_err(settings_error)
    }
}

impl ChangeArgs {
    fn layer(&self) -> HaproxyLayer {
        HaproxyLayer {
            backend_file: self.backend_file.clone().map(|f| vec![f]),
            config: (!self.configs.is_empty()).then(|| self.configs.clone()),
            program: Some(self.haproxy.clone()),
            reload_command: Some(self.reload_command.clone()),
            ..self.check.layer()
        }
    }
}

/// Bad input from the user (a refused name) exits 2; everything else 1.
fn classify(e: HaproxyError) -> anyhow::Error {
    if e.is_invalid_input() {
        UsageError::new(e.to_string()).into()
    } else {
        e.into()
    }
}

fn file_note(file: Option<Installed>, ha: &Haproxy) -> String {
    match (file, ha.backend_file()) {
        (Some(Installed::Written), Some(f)) => format!("; {} rewritten", f.path().display()),
        (Some(Installed::Unchanged), Some(f)) => {
            format!("; {} already up to date", f.path().display())
        }
        _ => String::new(),
    }
}

fn via(m: ChangeMethod) -> &'static str {
    match m {
        ChangeMethod::Runtime => "the runtime API",
        ChangeMethod::Reload => "the backend file and a reload",
    }
}

/// Runs `webscaler haproxy …`.
pub fn run(args: HaproxyArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        HaproxyCommand::Servers { target, json } => {
            let ha = target.client(HaproxyLayer::default())?;
            let servers = ha.servers().map_err(classify)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &servers)?;
                writeln!(out)?;
            } else {
                let mut table =
                    Table::new(["NAME", "ADDR", "STATUS", "CHECK", "SCUR", "STOT"]).right([4, 5]);
                for s in &servers {
                    table.row([
                        s.name.clone(),
                        s.addr.clone().unwrap_or_else(|| "-".into()),
                        s.status_text.clone(),
                        s.check_status.clone().unwrap_or_else(|| "-".into()),
                        s.scur.to_string(),
                        s.stot.to_string(),
                    ]);
                }
                write!(out, "{table}")?;
            }
        }
        HaproxyCommand::Rate {
            sockets,
            backend,
            metric,
            window,
            socket_timeout,
            json,
        } => {
            let shutdown = Shutdown::install().context("cannot install signal handlers")?;
            let instances: Vec<Haproxy> = sockets
                .iter()
                .map(|p| {
                    Haproxy::new(
                        Socket::admin(p).with_timeout(socket_timeout),
                        backend.clone(),
                    )
                })
                .collect();
            let origin = Instant::now();
            let sample_all = || -> anyhow::Result<Vec<(usize, Sample)>> {
                instances
                    .iter()
                    .enumerate()
                    .map(|(i, h)| Ok((i, h.sample(metric, origin).map_err(classify)?)))
                    .collect()
            };
            let mut meters = RateMeters::new();
            meters.update(sample_all()?);
            if !shutdown.sleep(window) {
                anyhow::bail!("interrupted");
            }
            let round = meters.update(sample_all()?);
            let total = round
                .rate
                .context("no rate: a sample did not advance the clock")?;
            if json {
                let per: Vec<_> = round
                    .readings
                    .iter()
                    .map(|(i, r)| {
                        serde_json::json!({
                            "socket": sockets[*i],
                            "reading": r,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({
                        "backend": backend,
                        "metric": metric.column(),
                        "rate": total,
                        "increase": round.increase,
                        "sockets": per,
                    }),
                )?;
                writeln!(out)?;
            } else {
                for (i, r) in round.readings.iter() {
                    if let (Some(r), true) = (r, sockets.len() > 1) {
                        writeln!(
                            out,
                            "{}: {:.2}/s ({} +{} in {}{})",
                            sockets[*i].display(),
                            r.rate.to_f64(),
                            metric.column(),
                            r.increase,
                            format_duration(r.elapsed),
                            if r.reset { ", after a reload" } else { "" }
                        )?;
                    }
                }
                let reset = round
                    .readings
                    .iter()
                    .any(|(_, r)| r.is_some_and(|r| r.reset));
                let r0 = round.readings.first().and_then(|(_, r)| *r);
                writeln!(
                    out,
                    "{total:.2}/s  (backend {backend}, {} +{} in {}{}{})",
                    metric.column(),
                    round.increase.unwrap_or(0),
                    r0.map(|r| format_duration(r.elapsed)).unwrap_or_default(),
                    if sockets.len() > 1 {
                        format!(", {} instances summed", sockets.len())
                    } else {
                        String::new()
                    },
                    if reset {
                        "; HAProxy reloaded in between: counted since the reload"
                    } else {
                        ""
                    }
                )?;
            }
        }
        HaproxyCommand::Add {
            name,
            addr,
            target,
            change,
            timeout,
        } => {
            let shutdown = Shutdown::install().context("cannot install signal handlers")?;
            let ha = target.client(change.layer())?;
            let AddOutcome {
                method,
                resumed,
                waited,
                file,
            } = ha
                .add_server(&name, addr, Instant::now() + timeout, &shutdown)
                .map_err(classify)?;
            writeln!(
                out,
                "{} {}/{name} ({addr}): ready after {} through {}{}",
                if resumed { "finished adding" } else { "added" },
                ha.backend(),
                format_duration(waited),
                via(method),
                file_note(file, &ha)
            )?;
        }
        HaproxyCommand::Drain {
            name,
            target,
            timeout,
        } => {
            let shutdown = Shutdown::install().context("cannot install signal handlers")?;
            let ha = target.client(HaproxyLayer::default())?;
            match ha
                .drain(&name, Instant::now() + timeout, &shutdown)
                .map_err(classify)?
            {
                DrainOutcome::Drained { waited } => writeln!(
                    out,
                    "drained {}/{name}: no sessions left after {}",
                    ha.backend(),
                    format_duration(waited)
                )?,
                DrainOutcome::TimedOut { sessions, waited } => anyhow::bail!(
                    "{}/{name} still has {sessions} sessions after {}; it stays in DRAIN",
                    ha.backend(),
                    format_duration(waited)
                ),
            }
        }
        HaproxyCommand::Remove {
            name,
            target,
            change,
            timeout,
        } => {
            let shutdown = Shutdown::install().context("cannot install signal handlers")?;
            let ha = target.client(change.layer())?;
            match ha
                .remove(&name, Instant::now() + timeout, &shutdown)
                .map_err(classify)?
            {
                RemoveOutcome::Removed {
                    method,
                    waited,
                    file,
                } => writeln!(
                    out,
                    "removed {}/{name} after {} through {}{}",
                    ha.backend(),
                    format_duration(waited),
                    via(method),
                    file_note(file, &ha)
                )?,
                RemoveOutcome::AlreadyGone => writeln!(
                    out,
                    "{}/{name}: no such server (nothing to do)",
                    ha.backend()
                )?,
            }
        }
        HaproxyCommand::Ready { name, target } => {
            let ha = target.client(HaproxyLayer::default())?;
            ha.ready(&name).map_err(classify)?;
            writeln!(out, "{}/{name}: ready", ha.backend())?;
        }
        HaproxyCommand::Maint { name, target } => {
            let ha = target.client(HaproxyLayer::default())?;
            ha.maint(&name).map_err(classify)?;
            writeln!(out, "{}/{name}: in maintenance", ha.backend())?;
        }
        HaproxyCommand::Render { target, check } => {
            let ha = target.client(check.layer())?;
            out.write_all(ha.render_backend_file().map_err(classify)?.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}
