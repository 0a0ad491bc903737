//! `lbbench lab`: the whole experiment of the lab report's HAProxy-vs-Pound comparison (its
//! chapter 2), on one machine.
//!
//! 1. Checks everything it can first: the settings, httperf and every balancer's program
//!    and version (a missing one names its package before any run), and, when the output
//!    directory already holds a lab, that it measured the same thing (backends, URI, run
//!    length, timeout, httperf arguments), so a resumed lab never mixes two setups in one file.
//! 2. Starts the backends (one fleet for the whole lab).
//! 3. For each balancer in turn: starts it on its own port with its own temp dir, waits until
//!    it answers through to a backend, runs the sweep against it (resumable: runs already in
//!    its CSV are skipped) while sampling its CPU (and the backends' and the machine's) over
//!    every run's window, then stops it. Only one balancer runs at a time, so none is
//!    measured while another one works.
//! 4. Stops the backends and writes the report.
//!
//! Everything it starts is stopped by PID, also on Ctrl-C (the sweep stops at once, then the
//! handles stop the balancer and the backends) and on an error (their `Drop`). What it
//! started is recorded in `lab.json` as it starts, for a post-mortem.
//!
//! The output directory holds: `perf_<balancer>_combined.csv` (one row per run, the sweep's
//! columns plus the CPU columns), `cpu_mon_<balancer>.csv` (the machine and the balancer
//! every 2 s during its sweep, the lab report's `sar -u 2`), `raw/` (each run's httperf output),
//! `<balancer>/` (its config and log), `backends/` (their logs), `lab.json` and
//! `report.html`.

mod across;
mod config;
mod journal;
mod measure;
mod observer;

use std::path::{Path, PathBuf};

use common::Shutdown;

pub use config::{CONNECTION_CLOSE, LabConfig, Leg};
use journal::{Journal, now_rfc3339, tool};

use super::hosts::HostError;
use super::info::{
    BalancerInfo, HostInfo, InfoError, Invocation, LabInfo, MachineInfo, ProgramInfo,
};
use super::{Balancer, LabError};
use crate::cpu::CpuError;
use crate::httperf::{HttperfError, fmt_rate};
use crate::report::{self, ReportError};
use crate::sweep::{SweepError, completed_runs};

/// Why a lab run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabRunError {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The output directory holds a lab with other settings.
    #[error(
        "{} holds a lab measured with other settings: {}; use another -o DIR, or the same \
         settings to continue it",
        dir.display(), differences.join(", ")
    )]
    OtherSettings {
        dir: PathBuf,
        /// What differs.
        differences: Vec<String>,
    },
    /// httperf is missing or its version cannot be read.
    #[error(transparent)]
    Httperf(#[from] HttperfError),
    /// A balancer or the backends failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A sweep failed.
    #[error("{balancer}: {error}")]
    Sweep {
        /// Which balancer's.
        balancer: String,
        error: SweepError,
    },
    /// The CPU file's sampler failed.
    #[error("{balancer}: the CPU file: {error}")]
    Cpu {
        /// Which balancer's.
        balancer: String,
        error: CpuError,
    },
    /// `lab.json` could not be read or written.
    #[error(transparent)]
    Info(#[from] InfoError),
    /// The report could not be made.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A file or directory could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Another lab runs in the same directory.
    #[error(
        "another lab{} is running in {}; wait for it to finish, or use another -o DIR",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), dir.display()
    )]
    Locked {
        dir: PathBuf,
        /// The other lab's pid.
        pid: Option<u32>,
    },
    /// The lock file could not be made.
    #[error(transparent)]
    Lock(common::lock::LockError),
    /// A host of a lab across hosts cannot be used (unreachable, or missing what the lab
    /// needs), each named.
    #[error("{0}")]
    Hosts(String),
    /// A host of a lab across hosts failed a request.
    #[error(transparent)]
    Host(HostError),
    /// The connection to a host was lost while the lab ran.
    #[error(
        "{0}; the lab's processes on the hosts still reachable were stopped; run the same \
         command again to continue once the host is back (the runs done are kept)"
    )]
    HostLost(String),
    /// Ctrl-C (or SIGTERM).
    #[error(
        "interrupted: {done} of {planned} runs are in {}; run the same command again to continue",
        dir.display()
    )]
    Interrupted {
        /// Runs in the files.
        done: usize,
        /// Runs planned.
        planned: usize,
        dir: PathBuf,
    },
}

impl LabRunError {
    /// Whether the error comes from bad input (exit 2).
    pub fn is_usage(&self) -> bool {
        match self {
            LabRunError::Config(_) | LabRunError::OtherSettings { .. } => true,
            LabRunError::Httperf(e) => e.is_usage(),
            LabRunError::Sweep { error, .. } => error.is_usage(),
            LabRunError::Lab(LabError::UnknownBalancer(_)) => true,
            _ => false,
        }
    }
}

/// What a lab run did.
#[derive(Debug, Clone, PartialEq)]
pub struct LabSummary {
    /// Runs planned, over all balancers.
    pub planned: usize,
    /// Rows written now.
    pub written: usize,
    /// Runs already there (a resumed lab).
    pub skipped: usize,
    /// Rows written now whose run was flagged.
    pub flagged: usize,
    /// Runs that failed and were skipped, with their balancer (see [`crate::sweep::SweepSummary::failed`]).
    pub failed: Vec<(String, crate::sweep::FailedRun)>,
    /// The report, if it was written.
    pub report: Option<PathBuf>,
    /// The Markdown summary of the report.
    pub markdown: String,
}

/// Runs the lab (or the rest of it). `note` receives one line per step for the user.
pub fn run_lab(
    cfg: &LabConfig,
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
) -> Result<LabSummary, LabRunError> {
    cfg.check()?;
    let dir = &cfg.output;
    // Checked before anything is made, then again under the lock (one lab per directory;
    // each sweep also locks its own file), which a lab that is not refused takes.
    previous_lab(cfg)?;
    // Put back (system-wide settings) when the lab returns, whatever happens.
    let _tuning = cfg.tune.then(|| {
        let t = super::limits::Tuning::apply(&super::limits::LabLimits::read());
        for c in &t.changes {
            note(&format!("--tune: {c}"));
        }
        t
    });
    super::limits::raise_fd_limit();
    // On one machine, everything that can be missing is found before anything is made;
    // across hosts, once the hosts are reached (their logs go into the output directory).
    let local = match &cfg.hosts {
        None => {
            let limits = super::limits::LabLimits::read();
            for line in limits.lines(cfg.reply_estimate_s(), cfg.duration_s) {
                note(&format!("limits: {line}"));
            }
            Some(find_programs(cfg)?)
        }
        Some(_) => None,
    };
    std::fs::create_dir_all(dir).map_err(|source| LabRunError::Io {
        what: format!("cannot create {}", dir.display()),
        source,
    })?;
    let _lock = lock_dir(dir)?;
    let previous = previous_lab(cfg)?;
    let (httperf_version, programs, host_infos, hosts) = match (local, &cfg.hosts) {
        (Some((version, programs)), _) => (version, programs, Vec::new(), None),
        (None, Some(file)) => {
            let c = across::connect(cfg, file, shutdown, note)?;
            (c.httperf_version, c.programs, c.infos, Some(c.hosts))
        }
        (None, None) => return Err(LabRunError::Config("no hosts to run on".into())),
    };
    note(&format!(
        "httperf {httperf_version}; {}",
        programs
            .iter()
            .map(|(b, p, v)| format!("{b} {v} ({})", p.display()))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let mut journal = open_journal(cfg, previous, httperf_version, &programs, host_infos, note)?;
    let swept = if cfg.sizes.is_empty() {
        format!("{} rates", cfg.rates.len())
    } else {
        format!(
            "{} reply sizes ({}) at {} conn/s",
            cfg.sizes.len(),
            cfg.sizes
                .iter()
                .map(|&s| crate::sweep::fmt_size(s))
                .collect::<Vec<_>>()
                .join(", "),
            fmt_rate(cfg.rates[0])
        )
    };
    note(&format!(
        "{} balancers{} × {swept} × {} runs of {} s, {} backends; about {} if nothing is done \
         yet; results in {}",
        cfg.balancers.len(),
        if cfg.tls.len() > 1 {
            format!(
                " × ({})",
                cfg.tls
                    .iter()
                    .map(|t| t.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        },
        cfg.repeat,
        fmt_rate(cfg.duration_s),
        cfg.backends,
        crate::sweep::progress::fmt_duration(cfg.estimate()),
        dir.display()
    ));
    let mut summary = LabSummary {
        planned: cfg.runs_per_leg() * cfg.legs().len(),
        written: 0,
        skipped: 0,
        flagged: 0,
        failed: Vec::new(),
        report: None,
        markdown: String::new(),
    };
    let pending = pending_legs(cfg, note, &mut summary)?;
    let interrupted = match hosts {
        Some(hosts) if !pending.is_empty() => across::run_on_hosts(
            cfg,
            hosts,
            &pending,
            shutdown,
            note,
            &mut journal,
            &mut summary,
        )?,
        Some(hosts) => {
            hosts.close();
            false
        }
        None => {
            !pending.is_empty()
                && measure::run_balancers(
                    cfg,
                    &pending,
                    shutdown,
                    note,
                    &mut journal,
                    &mut summary,
                )?
        }
    };
    if interrupted {
        journal.end("interrupted")?;
        return Err(LabRunError::Interrupted {
            done: summary.written + summary.skipped,
            planned: summary.planned,
            dir: dir.clone(),
        });
    }
    journal.end("complete")?;
    write_report(dir, &mut summary)?;
    Ok(summary)
}

/// The lock of one lab on its directory.
fn lock_dir(dir: &Path) -> Result<common::lock::PidLock, LabRunError> {
    common::lock::PidLock::acquire(&dir.join(".lab.lock")).map_err(|e| match e {
        common::lock::LockError::Held { pid, .. } => LabRunError::Locked {
            dir: dir.to_owned(),
            pid,
        },
        e => LabRunError::Lock(e),
    })
}

/// The lab already in the output directory, if any; an error if it measured something else.
fn previous_lab(cfg: &LabConfig) -> Result<Option<LabInfo>, LabRunError> {
    let dir = &cfg.output;
    let previous = LabInfo::load(dir)?;
    if let Some(p) = &previous {
        let differences = p.settings.measurement_differences(&cfg.settings());
        if !differences.is_empty() {
            return Err(LabRunError::OtherSettings {
                dir: dir.clone(),
                differences,
            });
        }
    }
    Ok(previous)
}

/// A balancer, its program and the program's version.
type Program = (Balancer, PathBuf, String);

/// httperf's version and every balancer's program and version: everything that can be
/// missing, before anything starts.
fn find_programs(cfg: &LabConfig) -> Result<(String, Vec<Program>), LabRunError> {
    let httperf_version = cfg.httperf.version()?;
    let mut programs = Vec::new();
    for &b in &cfg.balancers {
        let program = b.locate(cfg.programs.get(&b).map(PathBuf::as_path))?;
        let version = b.version(&program)?;
        programs.push((b, program, version));
    }
    Ok((httperf_version, programs))
}

/// `lab.json` with this invocation added (to the previous lab's, when resuming), written.
fn open_journal(
    cfg: &LabConfig,
    previous: Option<LabInfo>,
    httperf_version: String,
    programs: &[Program],
    hosts: Vec<HostInfo>,
    note: &mut dyn FnMut(&str),
) -> Result<Journal, LabRunError> {
    let invocation = Invocation {
        started_at: now_rfc3339(),
        finished_at: None,
        outcome: "running".into(),
        started: Vec::new(),
    };
    let httperf = ProgramInfo {
        program: cfg.httperf.program().to_owned(),
        version: httperf_version,
    };
    let mut info = match previous {
        Some(mut p) => {
            p.settings = cfg.settings();
            p.machine = MachineInfo::current();
            p.tool = tool();
            p.httperf = httperf;
            p.invocations.push(invocation);
            p.hosts = hosts;
            p
        }
        None => LabInfo {
            tool: tool(),
            settings: cfg.settings(),
            machine: MachineInfo::current(),
            httperf,
            balancers: Vec::new(),
            invocations: vec![invocation],
            hosts,
        },
    };
    for (b, program, version) in programs {
        let old = info.record_balancer(BalancerInfo {
            name: b.name().to_owned(),
            program: ProgramInfo {
                program: program.clone(),
                version: version.clone(),
            },
            max_connections: None,
            processes: None,
        });
        if let Some(old) = old {
            note(&format!(
                "warning: {b} was {old} in an earlier invocation of this lab and is {version} now; \
                 its rows mix both versions"
            ));
        }
    }
    let journal = Journal {
        dir: cfg.output.clone(),
        info,
        done: false,
    };
    journal.save()?;
    Ok(journal)
}

/// The legs with runs still to do. One whose runs are all in its file already (a resumed
/// lab) is not started; its runs count as skipped.
fn pending_legs(
    cfg: &LabConfig,
    note: &mut dyn FnMut(&str),
    summary: &mut LabSummary,
) -> Result<Vec<Leg>, LabRunError> {
    let mut pending = Vec::new();
    for leg in cfg.legs() {
        let sweep = cfg.sweep_for(leg, 80);
        let done = completed_runs(&sweep.output).map_err(|e| LabRunError::Sweep {
            balancer: leg.to_string(),
            error: e.into(),
        })?;
        let plan = sweep.plan();
        if plan.iter().all(|r| done.runs.contains(&sweep.key(r))) {
            note(&format!("{leg}: all {} runs are already done", plan.len()));
            summary.skipped += plan.len();
        } else {
            pending.push(leg);
        }
    }
    Ok(pending)
}

/// `report.html` from the whole directory, and the Markdown summary.
fn write_report(dir: &Path, summary: &mut LabSummary) -> Result<(), LabRunError> {
    let input = report::load(&[dir.to_owned()])?;
    let generated = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    let html = report::render_html(&input, &generated)?;
    let path = dir.join("report.html");
    common::atomic::write(&path, html.as_bytes()).map_err(|source| LabRunError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })?;
    summary.markdown = input.markdown();
    summary.report = Some(path);
    Ok(())
}
