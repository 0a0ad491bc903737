//! `webscaler run`: the scaling loop as a service: the [`Controller`] on the drift-free
//! ticker, one CSV row and one log line per tick, until SIGINT or SIGTERM; and `webscaler
//! down` ([`down`]), the explicit teardown.
//!
//! With the local provider and no admin socket, webscaler runs its own HAProxy (the
//! embedded mode: one command gives an auto-scaled web service on a fresh machine);
//! otherwise it attaches to the system's HAProxy through its admin socket. One instance per
//! state directory ([`lock`]); after every tick it writes `status.json` there for
//! `webscaler status` ([`status`]), which shows a [`snapshot`] of the backends and the rate,
//! and `policy-memory.json` ([`recall`]), from which the next `run` resumes the policy.
//!
//! The loop is never in the data path: the embedded HAProxy and the local backends outlive
//! `run` (exit, crash, `kill -9`), and the next `run` adopts them as they are. A dead
//! embedded HAProxy is started again before the next tick; a system HAProxy that does not
//! answer, a cloud that fails, a CSV that cannot be written are logged once per change and
//! retried every tick: nothing but SIGINT or SIGTERM ends the loop.
//!
//! With `--metrics ADDR`, an [`exporter`] thread serves the [`metrics`] that the loop
//! publishes at the end of every tick.

pub mod exporter;
pub mod lock;
pub mod metrics;
pub mod output;
pub mod recall;
pub mod snapshot;
pub mod status;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::csvfile::CsvFileError;
use common::shutdown::Shutdown;
use common::ticker::Ticker;
use common::time::{TimeFormat, format_duration};

use crate::balancer::several::Several;
use crate::clock::SystemClock;
use crate::cloud::local::{LocalCloud, LocalOptions};
use crate::cloud::openstack::config::Env;
use crate::controller::{self, Controller};
use crate::haproxy::process::{self, EmbeddedConfig, HaproxyProcess, ProcessError, Start};
use crate::policy::{SeedConfig, Zone, resume};
use crate::settings::{HaproxySettings, Settings, SettingsError};

pub use exporter::{Exporter, ExporterError};
pub use lock::{LOCK_FILE, LockError, RunLock};
pub use metrics::Metrics;
pub use output::CsvOutput;
pub use recall::{RECALL_FILE, RecallFile};
pub use status::{STATUS_FILE, StatusFile};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The CSV file cannot be used (checked before anything is started).
    #[error("-o {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: CsvFileError,
    },
    /// The state directory could not be created.
    #[error("cannot create the state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another instance runs on the state directory, or its lock failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The provider or HAProxy's settings cannot be used.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// SIGINT and SIGTERM could not be caught.
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    /// The embedded HAProxy could not be started.
    #[error(transparent)]
    Embedded(#[from] ProcessError),
    /// `down` could not stop everything.
    #[error(transparent)]
    Teardown(#[from] crate::cloud::CloudError),
    /// The metrics' server could not start (its address is taken, or not local).
    #[error(transparent)]
    Metrics(#[from] ExporterError),
}

impl ServiceError {
    /// Whether the error is bad input (exit status 2), rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ServiceError::Settings(e) => e.is_bad_input(),
            ServiceError::Output { .. } => true,
            ServiceError::Metrics(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// The lab report's file name: `<start time>--webscaler.csv`
/// (`2014-09-28T1549--webscaler.csv`).
pub fn default_csv_name(start: chrono::DateTime<chrono::Local>) -> PathBuf {
    PathBuf::from(format!("{}--webscaler.csv", start.format("%Y-%m-%dT%H%M")))
}

/// One log line on stderr, with the local time.
fn log(line: &str) {
    eprintln!("{} webscaler: {line}", TimeFormat::Local.now());
}

/// Runs the service with `settings` in `env` until SIGINT or SIGTERM (see the module
/// documentation).
pub fn run(settings: &Settings, env: &Env) -> Result<(), ServiceError> {
    // The policy first: a bad policy or history file is refused before anything starts.
    let learnt = settings
        .policy
        .learn(Zone::of(settings.controller.time_format), Vec::new())?;
    if let Some(note) = learnt.note() {
        log(&note);
    }
    let policy = settings
        .policy
        .build(SeedConfig::default().quota, learnt.floor())?;
    let provider = settings.cloud.provider(env);
    let state_dir = settings.cloud.state_dir(env);
    if provider == crate::settings::Provider::Local {
        // The backends' program is looked up now, not at the first create.
        crate::cloud::local::check_command(&settings.cloud.command)
            .map_err(|e| ServiceError::Settings(SettingsError::Cloud(e)))?;
    }
    // The metrics' address: one that cannot be listened on stops the run before anything
    // exists (until the first tick, `/metrics` shows the counters at 0).
    let mut metrics = Metrics::new(settings.policy.config.threshold.to_f64());
    let exporter = match settings.metrics {
        Some(addr) => Some(Exporter::start(addr, metrics.encode().into())?),
        None => None,
    };
    // The output: a CSV that cannot be used stops the run before anything exists.
    let h = &settings.haproxy;
    let several = h.instance_count(provider) > 1;
    let start = chrono::Local::now();
    let csv_path = output::csv_path(settings.output.as_deref(), start);
    let mut csv = CsvOutput::open(&csv_path, several).map_err(|source| ServiceError::Output {
        path: csv_path.clone(),
        source,
    })?;
    fs::create_dir_all(&state_dir).map_err(|source| ServiceError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let _lock = RunLock::acquire(&state_dir)?;
    let cloud = settings.cloud.open(env)?;
    // What the provider repaired on opening (a backend adopted after a killed create).
    for note in cloud.take_notes() {
        log(&format!("note: {note}"));
    }
    let shutdown = Shutdown::install().map_err(ServiceError::Signals)?;

    // HAProxy: our own (adopted if they run), one per frontend, or the system's, one per
    // admin socket.
    let embedded = h.embedded(provider);
    let mut processes = Vec::new();
    let members = if embedded {
        let mut members = Vec::new();
        for (i, frontend) in h.frontends.iter().enumerate() {
            let p = start_embedded(h, &state_dir, i)?;
            members.push((frontend.to_string(), p.haproxy()));
            processes.push(p);
        }
        members
    } else {
        // Not checked here: a socket that does not answer is logged by the first tick and
        // retried every tick.
        h.system_clients()?
    };
    let admin_socket = members[0].1.socket().path().to_path_buf();
    let haproxy = Several::new(members);

    let pc = settings.policy.config;
    log(&format!(
        "{} provider ({}), {} HAProxy ({}), every {}, policy {} (threshold {}, min {}, max {}, scale-down window {}, predictive {}), warm pool {}; CSV {}{}",
        cloud.provider(),
        state_dir.display(),
        if embedded { "embedded" } else { "system" },
        if embedded {
            processes
                .iter()
                .zip(&h.frontends)
                .map(|(p, f)| format!("frontend {f}, pid {}", p.pid()))
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            haproxy
                .members()
                .map(|(name, _)| name.to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        },
        format_duration(settings.interval),
        settings.policy.kind,
        pc.threshold,
        pc.min,
        pc.max
            .map_or_else(|| "the quota".to_owned(), |m| m.to_string()),
        format_duration(pc.scale_down_window),
        if pc.predictive.is_some() { "on" } else { "off" },
        settings.controller.warm_pool,
        csv_path.display(),
        exporter.as_ref().map_or_else(String::new, |x| format!(
            "; metrics at http://{}{}",
            x.local_addr(),
            exporter::PATH
        ))
    ));

    // The policy resumes from what the previous run showed it, if it stopped lately.
    let (mut recall, warning) = RecallFile::open(&state_dir);
    if let Some(w) = warning {
        log(&w);
    }
    let clock = SystemClock::new();
    let max_gap = resume::max_gap(settings.interval);
    let (policy, resumption) = resume::resume(policy, recall.recall(), Utc::now(), max_gap);
    if let Some(note) = resumption.note(max_gap) {
        log(&format!("note: {note}"));
    }
    let policy_time = {
        let offset = policy.offset();
        move |at: Duration| at.saturating_add(offset)
    };
    let mut ticker = Ticker::starting_at(clock.origin(), settings.interval);
    let mut c = Controller::new(cloud, haproxy, clock, policy, settings.controller.clone());
    let mut status = StatusFile {
        pid: std::process::id(),
        started: TimeFormat::Utc.format(start.with_timezone(&Utc)),
        provider: c.cloud().provider().to_owned(),
        haproxy: if embedded { "embedded" } else { "system" }.to_owned(),
        admin_socket,
        backend: h.backend.to_string(),
        prefix: settings.controller.naming.prefix().to_owned(),
        backend_port: settings.controller.backend_port,
        frontend: embedded.then_some(h.frontend()),
        csv: csv_path.clone(),
        policy: settings.policy.kind.to_string(),
        threshold: pc.threshold.to_string(),
        min: pc.min,
        max: pc.max,
        tick: 0,
        haproxy_pid: processes.first().map(HaproxyProcess::pid),
        csv_pending: 0,
        csv_dropped: 0,
        last: controller::Record {
            diffpt: None,
            haactive: 0,
            active: 0,
            epoch: 0,
            acu: None,
            date: String::new(),
            diff: None,
            needed: None,
            pending: 0,
            stopped: 0,
            action: "starting".to_owned(),
            rate: None,
            instances: None,
        },
        target: None,
    };
    // The embedded HAProxy instances are watched between ticks too: a dead one is started
    // again within a tenth of a second, whatever the interval.
    let embedded_guard: Arc<Vec<Mutex<Embedded>>> = Arc::new(
        processes
            .into_iter()
            .map(|p| Mutex::new(Embedded::new(p)))
            .collect(),
    );
    let check_all = |all: &[Mutex<Embedded>]| {
        for e in all {
            e.lock().unwrap_or_else(|e| e.into_inner()).check();
        }
    };
    let watchdog = (!embedded_guard.is_empty()).then(|| {
        let all = Arc::clone(&embedded_guard);
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            while shutdown.sleep(WATCHDOG_EVERY) {
                check_all(&all);
            }
        })
    });
    let first_pid = |all: &[Mutex<Embedded>]| {
        all.first()
            .map(|e| e.lock().unwrap_or_else(|e| e.into_inner()).process.pid())
    };
    let mut state_failing: Vec<Option<String>> = vec![None; c.balancer().len()];
    while let Some(tick) = ticker.wait(&shutdown) {
        let began = Instant::now();
        if tick.skipped > 0 {
            log(&format!(
                "warning: {} tick(s) skipped: the last tick took longer than the interval",
                tick.skipped
            ));
        }
        // A dead embedded HAProxy is started again before the tick observes it (the
        // watchdog usually has done it already).
        check_all(&embedded_guard);
        let report = c.tick();
        for line in csv.push(report.record.clone()) {
            log(&line);
        }
        log(&report.log_line());
        for e in &report.events {
            log(&e.to_string());
        }
        // What the policy was shown, for the next run.
        if let Some(obs) = &report.observation
            && let Some(line) = recall.push(policy_time(report.at), obs)
        {
            log(&line);
        }
        // The servers and their states for the next HAProxy start (a failed observation has
        // nothing new to save).
        if report.observation.is_some() {
            for ((name, haproxy), failing) in c.balancer().members().zip(&mut state_failing) {
                persist(name, haproxy, failing);
            }
        }
        if let Some(pid) = first_pid(&embedded_guard) {
            status.haproxy_pid = Some(pid);
        }
        status.tick = report.index;
        status.last = report.record.clone();
        status.target = report.decision.as_ref().map(|d| d.target);
        status.csv_pending = csv.pending();
        status.csv_dropped = csv.dropped();
        if let Err(e) = status.write(&state_dir) {
            log(&format!(
                "warning: cannot write {}: {e}",
                state_dir.join(STATUS_FILE).display()
            ));
        }
        // Published last: the metrics' tick duration covers all of the tick's work.
        if let Some(x) = &exporter {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            metrics.tick(&report, began.elapsed(), tick.skipped, now);
            x.publish(metrics.encode().into());
        }
        crate::fault::point("tick-end");
    }
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    let _ = fs::remove_file(state_dir.join(STATUS_FILE));
    for line in csv.flush() {
        log(&line);
    }
    if csv.pending() > 0 {
        log(&format!(
            "error: {} CSV row(s) could not be written to {}",
            csv.pending(),
            csv_path.display()
        ));
    }
    log(&format!(
        "stopped after {} tick(s); CSV {}{}",
        c.ticks(),
        csv_path.display(),
        if embedded_guard.is_empty() {
            String::new()
        } else {
            format!(
                "; HAProxy (pid {}) and the backends keep serving (`webscaler down` stops them)",
                embedded_guard
                    .iter()
                    .map(|e| e
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .process
                        .pid()
                        .to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    Ok(())
}

/// Embedded HAProxy `i` of `state_dir` (on frontend `i`): the running one adopted, or a new
/// one; says which.
fn start_embedded(
    h: &HaproxySettings,
    state_dir: &Path,
    i: usize,
) -> Result<HaproxyProcess, ServiceError> {
    let mut cfg = EmbeddedConfig::new(
        HaproxySettings::embedded_dir_of(state_dir, i),
        h.frontends[i],
    );
    // The stats page is the first instance's.
    cfg.stats = h.stats.filter(|_| i == 0);
    cfg.backend = h.backend.clone();
    cfg.check = h.check;
    cfg.haproxy = h.program.clone();
    let p = HaproxyProcess::start(cfg)?;
    let (pid, dir) = (p.pid(), p.paths().dir.display());
    log(&match p.how_started() {
        Start::Started => format!("started HAProxy (pid {pid}) in {dir}"),
        Start::Adopted => format!("adopted the running HAProxy (pid {pid}) of {dir}: no restart"),
        Start::Reloaded => format!(
            "adopted the running HAProxy (pid {pid}) of {dir}, reloaded for its new main.cfg"
        ),
        Start::Replaced { old } => format!(
            "the HAProxy (pid {old}) of {dir} did not answer: stopped it and started pid {pid}"
        ),
    });
    Ok(p)
}

/// Brings HAProxy instance `name`'s backend file and server state file up to date; a
/// failure is logged once per change (`failing` keeps the last one).
fn persist(name: &str, haproxy: &crate::haproxy::Haproxy, failing: &mut Option<String>) {
    match haproxy.persist() {
        Ok(()) => {
            if failing.take().is_some() {
                log(&format!(
                    "HAProxy's backend file and server state file are written again ({name})"
                ));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            if failing.as_deref() != Some(msg.as_str()) {
                log(&format!("warning: {msg}; retried every tick"));
            }
            *failing = Some(msg);
        }
    }
}

/// How often the embedded HAProxy is looked at between ticks.
const WATCHDOG_EVERY: Duration = Duration::from_millis(100);

/// After a failed start, how long before the next attempt.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// The embedded HAProxy of a run, started again when it dies.
struct Embedded {
    process: HaproxyProcess,
    /// The last failure to start it again, to log it once per change, and when.
    failing: Option<(String, std::time::Instant)>,
}

impl Embedded {
    fn new(process: HaproxyProcess) -> Embedded {
        Embedded {
            process,
            failing: None,
        }
    }

    /// Starts HAProxy again if it died, and says so once; after a failed start, tries again
    /// once a second at most.
    fn check(&mut self) {
        if self
            .failing
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < RESTART_BACKOFF)
        {
            return;
        }
        let p = &mut self.process;
        match p.ensure_running() {
            Ok(None) => {
                if self.failing.take().is_some() {
                    log("the embedded HAProxy runs again");
                }
            }
            Ok(Some(r)) => {
                self.failing = None;
                log(&format!(
                    "error: the embedded HAProxy (pid {}) {}; started it again (pid {}) from {} with the servers' states of {}; its log: {}",
                    r.old,
                    r.how,
                    r.new,
                    p.paths().backends_cfg.display(),
                    p.paths().state_file.display(),
                    p.log_tail()
                ));
            }
            Err(e) => {
                let msg = e.to_string();
                if self.failing.as_ref().map(|f| f.0.as_str()) != Some(msg.as_str()) {
                    log(&format!(
                        "error: the embedded HAProxy is down and cannot be started again: {msg}; retried every second"
                    ));
                }
                self.failing = Some((msg, std::time::Instant::now()));
            }
        }
    }
}

/// What [`down`] stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Down {
    /// The embedded HAProxy masters stopped, with their directories.
    pub haproxy: Vec<(u32, PathBuf)>,
    /// The local backends deleted.
    pub backends: Vec<String>,
    /// Processes of the state directory that had no slot, stopped.
    pub strays: usize,
}

/// `webscaler down`: stops the embedded HAProxy of `state_dir` (every instance) with a
/// soft stop of up to `haproxy_grace`, and deletes its local backends (SIGTERM, up to
/// `backend_grace`, SIGKILL), waiting until nothing of the state directory runs. Refused
/// while a `webscaler run` uses the directory (it would start them again): its lock is
/// held for the whole teardown.
pub fn down(
    state_dir: &Path,
    haproxy_grace: Duration,
    backend_grace: Duration,
) -> Result<Down, ServiceError> {
    let mut done = Down::default();
    if !state_dir.exists() {
        return Ok(done);
    }
    let state_dir = fs::canonicalize(state_dir).map_err(|source| ServiceError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let _lock = RunLock::acquire(&state_dir)?;
    let mut dirs: Vec<PathBuf> = vec![HaproxySettings::embedded_dir(&state_dir)];
    for (_, dir) in process::find_masters_under(&state_dir) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        if let Some(pid) = process::shut_down(&dir, haproxy_grace)? {
            done.haproxy.push((pid, dir));
        }
    }
    if state_dir.join(crate::cloud::local::STATE_FILE).exists()
        || !local_processes(&state_dir).is_empty()
    {
        let cloud = LocalCloud::new(LocalOptions {
            grace: backend_grace,
            ..LocalOptions::new(&state_dir)
        })?;
        let t = cloud.teardown()?;
        done.backends = t.deleted;
        done.strays = t.strays;
    }
    let _ = fs::remove_file(state_dir.join(STATUS_FILE));
    // What comes up next starts from nothing.
    let _ = fs::remove_file(state_dir.join(RECALL_FILE));
    Ok(done)
}

/// The live processes of the local backends of `state_dir`, by their marker.
pub fn local_processes(state_dir: &Path) -> Vec<common::process::Marked> {
    let prefix = format!("{}:", state_dir.display());
    common::process::find_marked(crate::cloud::local::MARKER)
        .into_iter()
        .filter(|m| m.value.starts_with(&prefix))
        .collect()
}
