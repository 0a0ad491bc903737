//! `webscaler simulate`: the controller of `webscaler run`, the same code, against a simulated
//! cloud and balancer on a simulated clock, over a request-rate trace or a load profile
//! ([`crate::simulation::run`]). It prints the SPEC RG elasticity metrics and can write the CSV that
//! `run` writes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};
use common::cli::UsageError;
use common::csvfile::CsvAppender;
use common::time::{format_duration, parse_duration};

use super::args::PolicyArgs;
use super::settings_error;
use crate::controller::{self, HEADER};
use crate::history;
use crate::policy::{OraclePolicy, Policy, PolicyKind, Zone};
use crate::settings::{self, Layer, PolicySettings};
use crate::simulation::elasticity::Metrics;
use crate::simulation::run::{SimulateConfig, simulate_each};
use crate::simulation::trace::Trace;
use crate::simulation::world::{SEED_START, SimConfig};

/// `webscaler simulate`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["trace", "profile"])))]
pub struct SimulateArgs {
    /// A request-rate trace: CSV rows `seconds,rate`, the last row marking the end
    /// (benches-data/README.md).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// A staged load profile (TOML, as `lbbench profile` plays it), simulated as the rate
    /// its stages add up to.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// A configuration file of `webscaler run` whose policy settings to simulate (its other
    /// keys are checked and ignored).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The tick, the policy and its settings, as for `run`.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Simulated cloud: from create to ACTIVE.
    #[arg(long, value_parser = parse_duration, default_value = "80s")]
    pub boot_delay: Duration,
    /// Simulated cloud: from starting a stopped backend to ACTIVE [default: the boot delay].
    #[arg(long, value_parser = parse_duration)]
    pub start_delay: Option<Duration>,
    /// Simulated cloud: instances allowed, stopped ones included (the lab report's quota).
    #[arg(long, value_name = "N", default_value_t = 13)]
    pub quota: u32,
    /// Backends serving at time 0 [default: what the trace needs at 0].
    #[arg(long, value_name = "N")]
    pub initial: Option<u32>,
    /// Simulate (and score) the trace from this offset on, e.g. `4d` for the fifth day.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub from: Option<Duration>,
    /// Learn the seasonal baseline from the trace before `--from` too (the default policy).
    #[arg(long, requires = "from")]
    pub learn: bool,
    /// Print the metrics as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the CSV `run` writes, one row per tick (an existing file is replaced).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// CSV dates in UTC (RFC 3339) instead of local time.
    #[arg(long)]
    pub utc: bool,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError::new(e.to_string()).into()
}

/// The trace to simulate, from `--trace` or `--profile`; errors name the file (and line).
fn load(args: &SimulateArgs) -> Result<(Trace, PathBuf)> {
    match (&args.trace, &args.profile) {
        (Some(t), _) => Ok((Trace::load(t).map_err(usage)?, t.clone())),
        (None, Some(p)) => Ok((Trace::load_profile(p).map_err(usage)?, p.clone())),
        (None, None) => Err(usage("give --trace FILE or --profile FILE")),
    }
}

/// Writes the rows as `run` would, replacing `path` atomically.
fn write_csv(path: &Path, records: &[controller::Record]) -> Result<()> {
    let context = || format!("cannot write {}", path.display());
    let file = common::atomic::AtomicFile::create(path, 0o644).with_context(context)?;
    let mut csv = CsvAppender::open(file.tmp_path(), &HEADER).with_context(context)?;
    csv.append_records(records).with_context(context)?;
    drop(csv);
    file.commit().with_context(context)?;
    Ok(())
}

/// Runs `webscaler simulate`.
pub fn run(args: SimulateArgs) -> Result<()> {
    let file = settings::load_file(args.config.as_deref()).map_err(settings_error)?;
    let layer = Layer {
        utc: args.utc.then_some(true),
        ..args.policy.layer()
    }
    .over(file);
    let interval = layer.interval().map_err(settings_error)?;
    let policy = PolicySettings::resolve(&layer).map_err(settings_error)?;
    if args.quota == 0 {
        return Err(usage("--quota must be at least 1"));
    }
    if let Some(n) = args.initial.filter(|&n| n > args.quota) {
        return Err(usage(format!(
            "--initial {n} is above the quota of {}",
            args.quota
        )));
    }
    let kind = policy.kind;
    if args.learn && kind != PolicyKind::Default {
        return Err(usage(format!(
            "--learn is for the default policy, not for policy {kind}"
        )));
    }
    let (whole, input) = load(&args)?;
    let from = args.from.unwrap_or_default();
    let trace = whole.after(from).ok_or_else(|| {
        usage(format!(
            "--from {} is not before the end of {} ({})",
            format_duration(from),
            input.display(),
            format_duration(whole.end())
        ))
    })?;
    let learn_from = match whole.before(from).filter(|_| args.learn) {
        Some(before) => history::trace_segments(&before, history::TRACE_EPOCH),
        None => Vec::new(),
    };
    let learnt = policy
        .learn(Zone::Utc, learn_from)
        .map_err(settings_error)?;
    // With a history or an offset, the simulated clock follows the trace's calendar.
    let calendar = args.from.is_some() || !policy.history.is_empty();
    let wall_origin = if calendar {
        history::TRACE_EPOCH.and_utc() + chrono::Duration::from_std(from).unwrap_or_default()
    } else {
        SEED_START
    };
    let pc = policy.config;
    let cfg = SimulateConfig {
        interval,
        world: SimConfig {
            boot_delay: args.boot_delay,
            start_delay: args.start_delay.unwrap_or(args.boot_delay),
            quota: Some(args.quota),
            wall_origin,
            ..SimConfig::default()
        },
        initial: args.initial,
        controller: controller::Config {
            warm_pool: layer.warm_pool(),
            time_format: layer.time_format(),
            ..controller::Config::default()
        },
        demand: pc,
    };
    let note = learnt.note();
    let about = describe(&policy, &cfg, note.as_deref());
    let chosen: Box<dyn Policy> = if kind == PolicyKind::Oracle {
        let demand = trace.demand(|rate| pc.needed(rate, Some(args.quota)));
        Box::new(OraclePolicy::new(demand, cfg.serving_lead(), interval))
    } else {
        policy
            .build(args.quota, learnt.floor())
            .map_err(settings_error)?
    };

    let started = Instant::now();
    let mut records = Vec::new();
    let mut ticks = 0usize;
    let keep = args.output.is_some();
    let scores = simulate_each(&trace, chosen, &cfg, |tick| {
        ticks += 1;
        if keep {
            records.push(tick.record);
        }
    });
    let took = started.elapsed();

    if let Some(out) = &args.output {
        write_csv(out, &records)?;
    }
    eprintln!(
        "webscaler simulate: {}{} ({trace}), policy {kind}{about}, {} ticks of {}, boots {}, quota {}: simulated in {:.1} ms{}",
        input.display(),
        if from.is_zero() {
            String::new()
        } else {
            format!(" from {}", format_duration(from))
        },
        ticks,
        format_duration(interval),
        format_duration(args.boot_delay),
        args.quota,
        took.as_secs_f64() * 1e3,
        args.output
            .as_ref()
            .map(|p| format!("; CSV {}", p.display()))
            .unwrap_or_default()
    );
    let mut out = std::io::stdout().lock();
    print_metrics(&mut out, &scores.metrics, args.json)?;
    Ok(())
}

/// The policy's settings that matter, for the summary line: ` (window 1m, …)`.
fn describe(policy: &PolicySettings, cfg: &SimulateConfig, history: Option<&str>) -> String {
    let d = format_duration;
    let pc = policy.config;
    let text = match policy.kind {
        PolicyKind::Default => format!(
            "window {}{}, tolerance {}, predictive {}{}",
            d(pc.scale_down_window),
            if pc.scale_down_window_max > pc.scale_down_window {
                format!(" (up to {})", d(pc.scale_down_window_max))
            } else {
                String::new()
            },
            pc.tolerance,
            if pc.predictive.is_some() { "on" } else { "off" },
            history.map(|h| format!("; {h}")).unwrap_or_default()
        ),
        PolicyKind::Seed => return String::new(),
        PolicyKind::Hpa => {
            let h = policy.hpa;
            format!(
                "tolerance {}, sync {}, downscale window {}, up max(+{}, +{} %) per {}",
                h.tolerance,
                d(h.sync_period),
                d(h.downscale_window),
                h.scale_up_pods,
                h.scale_up_percent,
                d(h.scale_up_period)
            )
        }
        PolicyKind::TargetTracking => {
            let t = policy.target_tracking;
            format!(
                "out after {} × {} above the target, in after {} below it by {}, warm-up {}",
                t.scale_out_periods,
                d(t.period),
                t.scale_in_periods,
                t.scale_in_margin,
                d(t.warmup)
            )
        }
        PolicyKind::Oracle => format!("lead {}", d(cfg.serving_lead())),
    };
    format!(" ({text})")
}

/// The metrics as `name value` lines, or one JSON object with exactly the keys of
/// [`Metrics`].
pub fn print_metrics(out: &mut impl Write, m: &Metrics, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, m)?;
        writeln!(out)?;
    } else {
        write!(out, "{m}")?;
    }
    Ok(())
}
