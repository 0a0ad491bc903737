//! `webscaler run`: the scaling loop as a service: the [`Controller`] on the drift-free
//! ticker, one CSV row and one log line per tick, until SIGINT or SIGTERM.
//!
//! With the local provider and no admin socket, webscaler starts and owns its own HAProxy
//! (the embedded mode: one command gives an auto-scaled web service on a fresh machine);
//! otherwise it attaches to the system's HAProxy through its admin socket. One instance per
//! state directory ([`lock`]); after every tick it writes `status.json` there for
//! `webscaler status` ([`status`]), which shows a [`snapshot`] of the backends and the rate.

pub mod lock;
pub mod snapshot;
pub mod status;

use std::fs;
use std::path::PathBuf;

use chrono::Utc;
use common::csvfile::{CsvAppender, CsvFileError};
use common::shutdown::Shutdown;
use common::ticker::Ticker;
use common::time::{TimeFormat, format_duration};

use crate::clock::SystemClock;
use crate::cloud::openstack::config::Env;
use crate::controller::{self, Controller, HEADER};
use crate::haproxy::HaproxyError;
use crate::haproxy::process::{EmbeddedConfig, HaproxyProcess, ProcessError};
use crate::policy::{SeedConfig, Zone};
use crate::settings::{HaproxySettings, Settings, SettingsError};

pub use lock::{LOCK_FILE, LockError, RunLock};
pub use status::{STATUS_FILE, StatusFile};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
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
    /// The system's HAProxy does not answer for the backend.
    #[error(
        "cannot use HAProxy's backend {backend} (is HAProxy running, and is --socket its admin socket at level admin?)"
    )]
    System {
        backend: String,
        #[source]
        source: Box<HaproxyError>,
    },
    /// The CSV file could not be opened.
    #[error(transparent)]
    Csv(#[from] CsvFileError),
    /// A tick's row could not be appended.
    #[error("cannot append to {}", path.display())]
    Append {
        path: PathBuf,
        #[source]
        source: CsvFileError,
    },
    /// The embedded HAProxy died under us.
    #[error("the embedded HAProxy exited ({status}); its log says: {log}")]
    HaproxyExited { status: String, log: String },
}

impl ServiceError {
    /// Whether the error is bad input (exit status 2), rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ServiceError::Settings(e) if e.is_bad_input())
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
    fs::create_dir_all(&state_dir).map_err(|source| ServiceError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let _lock = RunLock::acquire(&state_dir)?;
    let cloud = settings.cloud.open(env)?;
    let shutdown = Shutdown::install().map_err(ServiceError::Signals)?;

    // HAProxy: our own, or the system's.
    let h = &settings.haproxy;
    let embedded = h.embedded(provider);
    let mut process = None;
    let haproxy = if embedded {
        let mut cfg = EmbeddedConfig::new(HaproxySettings::embedded_dir(&state_dir), h.frontend);
        cfg.stats = h.stats;
        cfg.backend = h.backend.clone();
        cfg.check = h.check;
        cfg.haproxy = h.program.clone();
        let p = HaproxyProcess::start(cfg)?;
        if let Some(old) = p.replaced() {
            log(&format!(
                "stopped the HAProxy (pid {old}) a previous run left behind"
            ));
        }
        let client = p.haproxy();
        process = Some(p);
        client
    } else {
        let ha = h.system_client()?;
        ha.stats().map_err(|e| ServiceError::System {
            backend: h.backend.to_string(),
            source: Box::new(e),
        })?;
        ha
    };
    let admin_socket = haproxy.socket().path().to_path_buf();

    let start = chrono::Local::now();
    let csv_path = settings
        .output
        .clone()
        .unwrap_or_else(|| default_csv_name(start));
    let mut csv = CsvAppender::open(&csv_path, &HEADER)?;

    let pc = settings.policy.config;
    log(&format!(
        "{} provider ({}), {} HAProxy ({}), every {}, policy {} (threshold {}, min {}, max {}, scale-down window {}, predictive {}), warm pool {}; CSV {}",
        cloud.provider(),
        state_dir.display(),
        if embedded { "embedded" } else { "system" },
        match &process {
            Some(p) => format!("frontend {}, pid {}", h.frontend, p.pid()),
            None => admin_socket.display().to_string(),
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
        csv_path.display()
    ));

    let clock = SystemClock::new();
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
        frontend: embedded.then_some(h.frontend),
        csv: csv_path.clone(),
        policy: settings.policy.kind.to_string(),
        threshold: pc.threshold.to_string(),
        min: pc.min,
        max: pc.max,
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
        },
        target: None,
    };
    let result = (|| -> Result<(), ServiceError> {
        while let Some(tick) = ticker.wait(&shutdown) {
            if tick.skipped > 0 {
                log(&format!(
                    "warning: {} tick(s) skipped: the last tick took longer than the interval",
                    tick.skipped
                ));
            }
            let report = c.tick();
            csv.append_records(std::slice::from_ref(&report.record))
                .map_err(|source| ServiceError::Append {
                    path: csv_path.clone(),
                    source,
                })?;
            log(&report.log_line());
            for e in &report.events {
                log(&e.to_string());
            }
            status.last = report.record.clone();
            status.target = report.decision.as_ref().map(|d| d.target);
            if let Err(e) = status.write(&state_dir) {
                log(&format!(
                    "warning: cannot write {}: {e}",
                    state_dir.join(STATUS_FILE).display()
                ));
            }
            if let Some(p) = process.as_mut()
                && let Some(st) = p.exited()
            {
                return Err(ServiceError::HaproxyExited {
                    status: st.to_string(),
                    log: p.log_tail(),
                });
            }
        }
        Ok(())
    })();
    let _ = fs::remove_file(state_dir.join(STATUS_FILE));
    if let Some(p) = process.take() {
        log("stopping the embedded HAProxy");
        if let Err(e) = p.stop() {
            log(&format!("warning: cannot stop HAProxy: {e}"));
        }
    }
    if result.is_ok() {
        log(&format!(
            "stopped after {} tick(s); CSV {}",
            c.ticks(),
            csv_path.display()
        ));
    }
    result
}
