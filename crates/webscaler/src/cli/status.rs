//! `webscaler status`: the backends as the cloud and HAProxy report them, side by side, each
//! with the role the controller gives it, and the current rate and number of servers needed.
//!
//! Against a running `webscaler run` (found through `status.json` in the state directory,
//! written after every tick) it uses that instance's HAProxy socket and shows its last
//! tick's rate and `needed`. Without one, it reads HAProxy itself (the embedded one of the
//! state directory, or the system's) and measures the rate over `--window`.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use common::table::Table;
use common::time::parse_duration;
use serde::Serialize;

use super::args::{ProviderArgs, SettingsArgs};
use super::{cli_error, settings_error};
use crate::balancer::{BackendName, Balancer, BalancerView};
use crate::cloud::openstack::config::Env;
use crate::cloud::{Naming, Quota};
use crate::controller::view::{ClassifyConfig, Counts, Member, Memory, classify};
use crate::haproxy::{Haproxy, Socket};
use crate::rate::meter::{RateMeter, Sample};
use crate::service::StatusFile;
use crate::settings::{Layer, Settings};

/// `webscaler status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Settings shared with `run` (the state directory, HAProxy, the policy's threshold,
    /// min and max).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With no running `webscaler run`: measure the rate over this long.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub window: Duration,
    /// The cloud provider.
    #[command(flatten)]
    pub provider: ProviderArgs,
}

#[derive(Debug, Serialize)]
struct CloudSide<'a> {
    status: String,
    task: Option<&'a str>,
    address: Option<String>,
    id: &'a str,
}

#[derive(Debug, Serialize)]
struct HaproxySide<'a> {
    admin: String,
    addr: Option<String>,
    healthy: bool,
    takes_traffic: bool,
    sessions: u64,
    detail: &'a str,
}

#[derive(Debug, Serialize)]
struct Row<'a> {
    name: &'a str,
    role: &'static str,
    cloud: Option<CloudSide<'a>>,
    haproxy: Option<HaproxySide<'a>>,
}

fn row(m: &Member) -> Row<'_> {
    Row {
        name: &m.name,
        role: m.role.label(),
        cloud: m.backend.as_ref().map(|b| CloudSide {
            status: b.status.to_string(),
            task: b.task.as_deref(),
            address: b.address.map(|a| a.to_string()),
            id: &b.id,
        }),
        haproxy: m.server.as_ref().map(|s| HaproxySide {
            admin: s.admin.to_string(),
            addr: s.addr.map(|a| a.to_string()),
            healthy: s.healthy,
            takes_traffic: s.takes_traffic,
            sessions: s.sessions,
            detail: &s.detail,
        }),
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    running: Option<&'a StatusFile>,
    rate: Option<f64>,
    needed: Option<u32>,
    rate_source: &'static str,
    counts: Counts,
    quota: Option<&'a Quota>,
    backends: Vec<Row<'a>>,
}

/// Runs `webscaler status`.
pub fn run(args: StatusArgs) -> Result<()> {
    let env = Env::from_process();
    let flags = Layer {
        cloud: args.provider.layer()?,
        ..args.settings.layer()
    };
    let layer = flags.over(args.settings.file()?);
    let settings = Settings::resolve(&layer).map_err(settings_error)?;
    let provider = settings.cloud.provider(&env);
    let state_dir = settings.cloud.state_dir(&env);
    let running = StatusFile::running(&state_dir);
    let h = &settings.haproxy;
    // A running instance's own socket, backend and naming win over the settings given here.
    let mut classify_cfg = ClassifyConfig {
        naming: settings.controller.naming.clone(),
        backend_port: settings.controller.backend_port,
        check_timeout: settings.controller.check_timeout,
    };
    let ha: Haproxy = match &running {
        Some(s) => {
            classify_cfg.naming = Naming::new(&s.prefix);
            classify_cfg.backend_port = s.backend_port;
            let backend = BackendName::new(&s.backend).unwrap_or_else(|_| h.backend.clone());
            Haproxy::new(h.timeouts(Socket::admin(&s.admin_socket)), backend)
        }
        None if h.embedded(provider) => h.embedded_client(&state_dir),
        None => h.system_client().map_err(settings_error)?,
    };
    let cloud = settings.cloud.open(&env).map_err(settings_error)?;
    let backends = cloud.list().map_err(cli_error)?;
    let quota = cloud.quota().ok();
    let metric = settings.controller.metric;
    let view = ha.observe(metric).with_context(|| {
        if running.is_none() && h.embedded(provider) {
            format!(
                "no webscaler run is using {} (its HAProxy does not answer)",
                state_dir.display()
            )
        } else {
            format!("cannot read HAProxy's backend {}", h.backend)
        }
    })?;
    let members = classify(
        &backends,
        &view,
        &Memory::default(),
        Duration::ZERO,
        &classify_cfg,
    );
    let counts = Counts::of(&members);

    let (rate, needed, source) = match &running {
        Some(s) => (s.last.rate, s.last.needed, "last tick"),
        None => {
            let origin = Instant::now();
            let sample = |v: &BalancerView| Sample {
                counter: v.counter,
                at: origin.elapsed(),
                uptime_sec: v.uptime_sec,
                pid: v.pid,
            };
            let mut meter = RateMeter::new();
            let _ = meter.update(sample(&view));
            std::thread::sleep(args.window);
            let second = ha.observe(metric)?;
            match meter.update(sample(&second)) {
                Ok(r) => {
                    let cap = quota.as_ref().and_then(|q| q.backends(counts.instances));
                    (
                        Some(r.rate.to_f64()),
                        Some(settings.policy.config.needed(r.rate, cap)),
                        "measured",
                    )
                }
                Err(_) => (None, None, "measured"),
            }
        }
    };

    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            running: running.as_ref(),
            rate,
            needed,
            rate_source: if source == "last tick" {
                "tick"
            } else {
                "measured"
            },
            counts,
            quota: quota.as_ref(),
            backends: members.iter().map(row).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    match &running {
        Some(s) => writeln!(
            out,
            "webscaler run: running (pid {}, since {}), {} HAProxy{}, CSV {}",
            s.pid,
            s.started,
            s.haproxy,
            s.frontend.map(|f| format!(" on {f}")).unwrap_or_default(),
            s.csv.display()
        )?,
        None => writeln!(out, "webscaler run: not running on {}", state_dir.display())?,
    }
    let fmt_rate = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.2} req/s"));
    let fmt_needed = needed.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let when = match &running {
        Some(s) => format!("last tick at {}, action {}", s.last.date, s.last.action),
        None => format!(
            "measured over {}",
            common::time::format_duration(args.window)
        ),
    };
    writeln!(out, "rate {fmt_rate}, needed {fmt_needed} ({when})")?;
    write!(
        out,
        "serving {}, pending {}, draining {}, stopped {}",
        counts.serving, counts.pending, counts.draining, counts.stopped
    )?;
    if let Some(q) = &quota {
        write!(
            out,
            "; quota: {} of {} instances",
            q.instances.used,
            q.instances
                .max
                .map_or_else(|| "unlimited".to_owned(), |m| m.to_string())
        )?;
    }
    writeln!(out)?;
    writeln!(out)?;
    let mut table = Table::new([
        "NAME",
        "CLOUD",
        "ADDRESS",
        "HAPROXY",
        "STATE, CHECK",
        "SESSIONS",
        "ROLE",
    ])
    .right([5]);
    for m in &members {
        let (cloud, addr) = match &m.backend {
            Some(b) => (
                match &b.task {
                    Some(t) => format!("{} ({t})", b.status),
                    None => b.status.to_string(),
                },
                b.address.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let (admin, state, sessions) = match &m.server {
            Some(s) => (
                s.admin.to_string(),
                s.detail.clone(),
                s.sessions.to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        table.row([
            m.name.clone(),
            cloud,
            addr,
            admin,
            state,
            sessions,
            m.role.label().to_owned(),
        ]);
    }
    write!(out, "{table}")?;
    Ok(())
}
