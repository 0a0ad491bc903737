//! `lbbench lab`: backends, each balancer in turn, the sweep against it with its CPU, and
//! the report, all on 127.0.0.1.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use common::{Shutdown, TimeFormat};

use super::{TlsArgs, classify, usage};
use crate::httperf::Httperf;
use crate::lab::Balancer;
use crate::lab::experiment::{LabConfig, LabRunError, run_lab};
use crate::lab::hosts::HostsFile;
use crate::lab::hosts::check::{check_hosts, render};
use crate::sweep::{ProgressMode, rates};

/// Arguments of `lbbench lab`. Without `--quick`, the defaults are the lab report's sweep
/// (100 to 2,000 conn/s by 100, 3 runs of 60 s each); `--quick` changes the defaults to
/// 100 to 1,000 by 300, one run of 5 s each, 2 s apart. Options given explicitly win.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The balancers, in the order they are measured.
    #[arg(
        long,
        short = 'b',
        value_name = "LIST",
        default_value = "haproxy,pound,nginx"
    )]
    pub balancers: String,
    /// How many backends (`lbbench backend` processes).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub backends: usize,
    /// The first rate, in connections/s [default: 100].
    #[arg(long, value_name = "R")]
    pub from: Option<f64>,
    /// The last rate [default: 2000; --quick: 1000].
    #[arg(long, value_name = "R")]
    pub to: Option<f64>,
    /// The step between rates [default: 100; --quick: 300].
    #[arg(long, value_name = "R")]
    pub step: Option<f64>,
    /// Runs per rate [default: 3; --quick: 1].
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// Seconds per run [default: 60; --quick: 5].
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Seconds between runs [default: 5; --quick: 2].
    #[arg(long, value_name = "S")]
    pub pause: Option<f64>,
    /// A reduced sweep that takes under 2 minutes for the three balancers (with --tls: 100
    /// to 900 conn/s by 400, plain and TLS, 1 s apart).
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Sweep the reply size instead of the rate, at one rate (--rate): bytes or k, m, g
    /// (powers of 1,024), e.g. `1k,64k,1m,16m`. The backends stream each reply.
    #[arg(long, value_name = "LIST")]
    pub sizes: Option<String>,
    /// The connection rate of a size sweep [default: 20].
    #[arg(long, value_name = "R", requires = "sizes")]
    pub rate: Option<f64>,
    /// The URI every request asks for (the backends answer `/perf.php?sleep=S`).
    #[arg(long, default_value = "/perf.php?sleep=0.2")]
    pub uri: String,
    /// Seconds httperf waits for a reply.
    #[arg(long, value_name = "T", default_value_t = 5.0)]
    pub timeout: f64,
    /// The output directory; running the same command again continues an interrupted lab
    /// [default: lab-results, or lab-quick with --quick].
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The httperf program to run: a name looked up on PATH, or a path.
    #[arg(long, value_name = "PATH", default_value = "httperf")]
    pub httperf: PathBuf,
    /// The HAProxy program [default: found in PATH and the sbin directories].
    #[arg(long, value_name = "PATH")]
    pub haproxy: Option<PathBuf>,
    /// The Pound program [default: found in PATH, the sbin directories and /opt/pound/bin].
    #[arg(long, value_name = "PATH")]
    pub pound: Option<PathBuf>,
    /// The nginx program [default: found in PATH and the sbin directories].
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,
    /// Run the lab across hosts over ssh instead of on 127.0.0.1: a TOML file naming the
    /// client hosts (httperf), the balancer's host and the backend hosts
    /// (docs/lbbench-lab.md; scripts/netns-lab.sh makes such a lab on one machine).
    /// --httperf, --haproxy, --pound and --nginx are then paths on those hosts.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// With --hosts: check every host (ssh, lbbench, httperf and the balancers with their
    /// versions, addresses, ports, clocks), print what is missing, and start nothing.
    #[arg(long, requires = "hosts")]
    pub check: bool,
    /// Raise what bounds the lab before it starts, and say what changed: the open-file limit
    /// of lbbench and all it starts, and (as root, system-wide, put back when the lab ends)
    /// net.core.somaxconn and net.ipv4.ip_local_port_range when they are below what the lab
    /// can use. Without it, nothing system-wide changes.
    #[arg(long)]
    pub tune: bool,
    /// No progress bar or notes (warnings and the summary are still shown).
    #[arg(short, long)]
    pub quiet: bool,
    /// Write timestamps in UTC (RFC 3339) instead of local time.
    #[arg(long)]
    pub utc: bool,
}

/// The lab's settings from the arguments.
pub fn config(a: &LabArgs) -> anyhow::Result<LabConfig> {
    // Across hosts, httperf runs on the clients, which check it themselves.
    let httperf = if a.hosts.is_some() {
        Httperf::elsewhere(&a.httperf)
    } else {
        Httperf::locate(Some(&a.httperf)).map_err(|e| usage(e.to_string()))?
    };
    let lbbench = std::env::current_exe().context("cannot find the lbbench binary")?;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(if a.quick { "lab-quick" } else { "lab-results" }));
    let base = if a.quick {
        LabConfig::quick(output, httperf, lbbench)
    } else {
        LabConfig::full(output, httperf, lbbench)
    };
    // --quick --tls measures twice as many legs: 3 rates instead of 4, and shorter pauses,
    // to stay under 2 minutes.
    let (from, to, step) = match (a.quick, a.tls.tls) {
        (true, false) => (100.0, 1000.0, 300.0),
        (true, true) => (100.0, 900.0, 400.0),
        (false, _) => (100.0, 2000.0, 100.0),
    };
    let sizes = match &a.sizes {
        Some(list) => super::sweep::parse_sizes(list)?,
        None => Vec::new(),
    };
    let rates = if sizes.is_empty() {
        rates(
            a.from.unwrap_or(from),
            a.to.unwrap_or(to),
            a.step.unwrap_or(step),
        )
        .map_err(|e| usage(e.to_string()))?
    } else {
        if a.from.is_some() || a.to.is_some() || a.step.is_some() {
            return Err(usage(
                "--sizes sweeps the reply size at one rate: give it with --rate, not --from/--to/--step",
            ));
        }
        let r = a.rate.unwrap_or(LabConfig::SIZE_LAB_RATE);
        rates(r, r, 1.0).map_err(|e| usage(format!("--rate: {e}")))?
    };
    let tls = match a.tls.mode() {
        crate::httperf::Tls::Off => vec![crate::httperf::Tls::Off],
        t => vec![crate::httperf::Tls::Off, t],
    };
    Ok(LabConfig {
        balancers: Balancer::parse_list(&a.balancers).map_err(|e| usage(e.to_string()))?,
        backends: a.backends,
        rates,
        tls,
        sizes,
        repeat: a.repeat.unwrap_or(base.repeat),
        duration_s: a.duration.unwrap_or(base.duration_s),
        pause: match a.pause {
            Some(p) => common::time::seconds("--pause", p).map_err(usage)?,
            None if a.quick && a.tls.tls => std::time::Duration::from_secs(1),
            None => base.pause,
        },
        uri: a.uri.clone(),
        timeout_s: a.timeout,
        progress: if a.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
        time_format: TimeFormat::from_utc_flag(a.utc),
        tune: a.tune,
        hosts: match &a.hosts {
            Some(path) => Some(HostsFile::load(path).map_err(|e| usage(e.to_string()))?),
            None => None,
        },
        programs: [
            (Balancer::Haproxy, &a.haproxy),
            (Balancer::Pound, &a.pound),
            (Balancer::Nginx, &a.nginx),
        ]
        .into_iter()
        .filter_map(|(b, p)| Some((b, p.clone()?)))
        .collect(),
        ..base
    })
}

/// Runs `lbbench lab`.
pub fn run(a: LabArgs) -> anyhow::Result<()> {
    let cfg = config(&a)?;
    let shutdown = Shutdown::install().context("cannot install the signal handlers")?;
    if a.check
        && let Some(hosts) = &cfg.hosts
    {
        return check(&cfg, hosts, &shutdown);
    }
    let quiet = a.quiet;
    let mut note = |line: &str| {
        if !quiet || line.starts_with("warning") {
            eprintln!("lab: {line}");
        }
    };
    let summary = run_lab(&cfg, &shutdown, &mut note).map_err(|e: LabRunError| {
        let u = e.is_usage();
        classify(e, u)
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(summary.markdown.as_bytes())?;
    out.flush()?;
    if let Some(report) = &summary.report {
        eprintln!(
            "lab: {} runs ({} now, {} already there; {} flagged now); report: {}",
            summary.written + summary.skipped,
            summary.written,
            summary.skipped,
            summary.flagged,
            report.display()
        );
    }
    if !summary.failed.is_empty() {
        let list: Vec<String> = summary
            .failed
            .iter()
            .map(|(balancer, f)| format!("{balancer}: {f}"))
            .collect();
        anyhow::bail!(
            "{} of {} runs failed and are not in the results (run the same command again to do them): {}",
            summary.failed.len(),
            summary.planned,
            list.join("; ")
        );
    }
    Ok(())
}

/// `lbbench lab --hosts FILE --check`: the table of hosts on stdout; exit 1 if any is not
/// ready.
fn check(cfg: &LabConfig, hosts: &HostsFile, shutdown: &Shutdown) -> anyhow::Result<()> {
    let checks = check_hosts(hosts, &cfg.host_check(), shutdown);
    let (text, ready) = render(&checks);
    print!("{text}");
    std::io::stdout().flush()?;
    if shutdown.requested() {
        anyhow::bail!("interrupted");
    }
    if !ready {
        anyhow::bail!("not every host is ready (see above)");
    }
    Ok(())
}
