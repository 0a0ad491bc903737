//! `lbbench profile`: plays a staged load profile with httperf.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use common::Shutdown;
use common::profile::Profile;

use super::usage;
use crate::httperf::{Httperf, resolve_server};
use crate::profile::{PlayConfig, plan, play, play::save_raw, summarize};

/// Arguments of `lbbench profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The profile: TOML with `[[stage]]` tables of `start` (s), `rate` (conn/s) and `num_conns`,
    /// as benches-data/seed-profile.toml (the lab report's load generator, its listing 1.2).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The server for every stage [default: the profile's, else 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    pub server: Option<String>,
    /// The port for every stage [default: the profile's, else 80].
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// The URI for every stage [default: the profile's, else /].
    #[arg(long)]
    pub uri: Option<String>,
    /// Play X times faster: start offsets and stage durations ÷ X, connection rates kept,
    /// so the request-rate curve keeps its shape and height over compressed time (the lab report's
    /// 20-minute profile plays in 3 minutes at --speed 6.67).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// Seconds httperf waits for a reply.
    #[arg(long, value_name = "T", default_value_t = 5.0)]
    pub timeout: f64,
    /// Do not pass --hog to httperf.
    #[arg(long)]
    pub no_hog: bool,
    /// The httperf program to run: a name looked up on PATH, or a path.
    #[arg(long, value_name = "PATH", default_value = "httperf")]
    pub httperf: PathBuf,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep each stage's raw httperf output in DIR (stage-N.txt).
    #[arg(long, value_name = "DIR")]
    pub save_raw: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// More httperf arguments for every stage, after `--`.
    #[arg(last = true, value_name = "EXTRA_HTTPERF_ARGS")]
    pub extra: Vec<String>,
}

/// Runs `lbbench profile`. Exits 0 when every stage ran, whatever errors the load met (they
/// are in the summary, and a warning names them); 1 when a stage could not run or on Ctrl-C.
pub fn run(a: ProfileArgs) -> anyhow::Result<()> {
    let profile = Profile::load(&a.file).map_err(|e| usage(e.to_string()))?;
    let cfg = PlayConfig {
        server: a.server.clone(),
        port: a.port,
        uri: a.uri.clone(),
        speed: a.speed,
        timeout_s: a.timeout,
        hog: !a.no_hog,
        extra: a.extra.clone(),
    };
    let stages = plan(&profile, &cfg).map_err(|e| usage(e.to_string()))?;
    let httperf = Httperf::locate(Some(&a.httperf)).map_err(|e| usage(e.to_string()))?;
    let mut targets: Vec<(String, u16)> = stages
        .iter()
        .map(|s| (s.args.server.clone(), s.args.port))
        .collect();
    targets.sort();
    targets.dedup();
    for (host, port) in &targets {
        resolve_server(host, *port).map_err(|e| usage(e.to_string()))?;
    }
    let shutdown = Shutdown::install().context("cannot install the signal handlers")?;
    let quiet = a.quiet;
    let say = |line: String| {
        if !quiet {
            eprintln!("profile: {line}");
        }
    };
    let end = crate::profile::play::expected_duration(&stages);
    say(format!(
        "{}: {} stages over {} at speed {} (rates kept, time ÷ {})",
        profile.name.as_deref().unwrap_or("profile"),
        stages.len(),
        crate::sweep::progress::fmt_duration(end),
        a.speed,
        a.speed
    ));
    for s in &stages {
        say(format!(
            "  stage {}: +{:.1}s  {} conn/s × {} ({:.1}s) → {}:{}{}",
            s.stage,
            s.start_s,
            crate::httperf::fmt_rate(s.args.rate),
            s.args.num_conns,
            s.duration_s,
            s.args.server,
            s.args.port,
            s.args.uri
        ));
    }
    let results = play(
        &httperf,
        &stages,
        &shutdown,
        &mut |s, at| say(format!("stage {} started at +{at:.1}s", s.stage)),
        &mut |r| {
            let what = match &r.outcome {
                crate::profile::StageOutcome::Done(o) => format!(
                    "done: {:.1} req/s, reply {:.1} ms, {} errors, {} 5xx",
                    o.report.request_rate_per_sec,
                    o.report.reply_time_response,
                    o.report.errors_total,
                    o.report.reply_status_5xx
                ),
                crate::profile::StageOutcome::Failed(e) => format!("failed: {e}"),
                crate::profile::StageOutcome::Interrupted => "interrupted".into(),
            };
            say(format!("stage {} {what}", r.planned.stage));
        },
    );
    if let Some(dir) = &a.save_raw {
        save_raw(dir, &results)
            .with_context(|| format!("cannot save raw outputs to {}", dir.display()))?;
    }
    let summary = summarize(profile.name.as_deref(), a.speed, &results);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        out.write_all(summary.to_text().as_bytes())?;
    }
    out.flush()?;
    if summary.errors + summary.status_5xx > 0 {
        eprintln!(
            "lbbench: warning: httperf saw {} errors and {} 5xx replies over {} connections",
            summary.errors, summary.status_5xx, summary.connections
        );
    }
    if summary.interrupted_stages > 0 {
        anyhow::bail!(
            "interrupted: {} of {} stages did not finish",
            summary.interrupted_stages,
            summary.stages.len()
        );
    }
    if summary.failed_stages > 0 {
        anyhow::bail!(
            "{} of {} stages could not run (see the table)",
            summary.failed_stages,
            summary.stages.len()
        );
    }
    Ok(())
}
