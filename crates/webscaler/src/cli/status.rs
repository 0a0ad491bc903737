//! `webscaler status`: the flags, and a [`Snapshot`] of the backends and the rate
//! ([`crate::service::snapshot`]) printed as a table or as JSON.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use common::cli::UsageError;
use common::table::Table;
use common::time::parse_duration;
use serde::Serialize;

use super::args::{ProviderArgs, SettingsArgs};
use super::settings_error;
use crate::cloud::Quota;
use crate::cloud::openstack::config::Env;
use crate::controller::view::{Counts, Member};
use crate::service::StatusFile;
use crate::service::snapshot::Snapshot;
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
    /// Why HAProxy's side is missing (`null`: it answered).
    haproxy_error: Option<&'a str>,
    rate: Option<f64>,
    needed: Option<u32>,
    rate_source: &'static str,
    counts: Counts,
    quota: Option<&'a Quota>,
    backends: Vec<Row<'a>>,
}

/// Runs `webscaler status`. With `--json`, an error is printed as JSON too
/// (`{"error": "..."}` on stdout), with the same exit status.
pub fn run(args: StatusArgs) -> Result<()> {
    let json = args.json;
    let r = report(args);
    if json && let Err(e) = &r {
        let v = serde_json::json!({ "error": common::cli::one_line(e) });
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    }
    r
}

fn report(args: StatusArgs) -> Result<()> {
    let env = Env::from_process();
    let flags = Layer {
        cloud: args.provider.layer()?,
        ..args.settings.layer()
    };
    let layer = flags.over(args.settings.file()?);
    let settings = Settings::resolve(&layer).map_err(settings_error)?;
    let Snapshot {
        state_dir,
        running,
        rate,
        needed,
        measured,
        counts,
        quota,
        members,
        haproxy_error,
    } = Snapshot::take(&settings, &env, args.window).map_err(|e| {
        if e.is_bad_input() {
            UsageError::new(e.to_string()).into()
        } else {
            anyhow::Error::from(e)
        }
    })?;

    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            running: running.as_ref(),
            haproxy_error: haproxy_error.as_deref(),
            rate,
            needed,
            rate_source: if measured { "measured" } else { "tick" },
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
        None => writeln!(
            out,
            "webscaler run: no run active on {}",
            state_dir.display()
        )?,
    }
    if let Some(e) = &haproxy_error {
        writeln!(out, "HAProxy: {e}")?;
    }
    let fmt_rate = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.2} req/s"));
    let fmt_needed = needed.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let when = match (&running, &haproxy_error) {
        (Some(s), _) => format!("last tick at {}, action {}", s.last.date, s.last.action),
        (None, Some(_)) => "HAProxy does not answer".to_owned(),
        (None, None) => format!(
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
