//! `lbbench lab`: the whole experiment of the lab report's chapter 2 on one machine.
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
//! every 2 s during its sweep, the report's `sar -u 2`), `raw/` (each run's httperf output),
//! `<balancer>/` (its config and log), `backends/` (their logs), `lab.json` and
//! `report.html`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use common::{Shutdown, TimeFormat};

use super::info::{
    BalancerInfo, InfoError, LabInfo, LabSettings, MachineInfo, ProgramInfo, Session, Started,
};
use super::{Balancer, BalancerOptions, Fleet, FleetOptions, LabError, RunningBalancer};
use crate::cpu::machine::{CpuTimes, machine_usage, read_machine};
use crate::cpu::{CpuError, MonitorConfig, ProcessSelector, monitor};
use crate::httperf::{Httperf, HttperfArgs, HttperfError, fmt_rate};
use crate::report::data::{
    BACKENDS_PREFIX, BALANCER_PREFIX, CPU_PER_1K_COLUMN, MACHINE_BUSY_COLUMN, cpu_s_per_1k,
};
use crate::report::{self, ReportError};
use crate::sweep::{
    CpuObserver, ObserverError, PlannedRun, ProgressMode, RunResult, SweepConfig, SweepError,
    SweepObserver, completed_runs, default_output, rates, run_sweep,
};

/// The header every lab request carries. httperf closes each connection first after its
/// reply, which leaves a TIME_WAIT entry on the client side for 60 s; on loopback, runs of
/// 2,000 connections/s then run out of client ports (`fd-unavail`, `addrunavail`) after
/// about 28,000 connections. With `Connection: close` the balancer closes first and holds
/// the TIME_WAIT instead, on its listening port, which needs no client port.
pub const CONNECTION_CLOSE: &str = "--add-header=Connection: close\\n";

/// Everything a lab run needs.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The balancers, in the order they are measured.
    pub balancers: Vec<Balancer>,
    /// How many backends.
    pub backends: usize,
    /// The demanded connection rates.
    pub rates: Vec<f64>,
    /// Runs per rate.
    pub repeat: u32,
    /// Seconds per run.
    pub duration_s: f64,
    /// Pause between runs.
    pub pause: Duration,
    /// The URI requested.
    pub uri: String,
    /// httperf's reply timeout, in s.
    pub timeout_s: f64,
    /// The output directory.
    pub output: PathBuf,
    /// httperf.
    pub httperf: Httperf,
    /// The `lbbench` binary the backends run from.
    pub lbbench: PathBuf,
    /// A balancer's program, where it is not the one found in `PATH` and the sbin
    /// directories.
    pub programs: BTreeMap<Balancer, PathBuf>,
    /// The sweep's progress display.
    pub progress: ProgressMode,
    /// Timestamps in the CSV files.
    pub time_format: TimeFormat,
    /// The CPU file's interval (the report's `sar -u 2`).
    pub cpu_interval: Duration,
}

impl LabConfig {
    /// The report's sweep (100 to 2,000 conn/s by 100, 3 runs of 60 s each) against every
    /// balancer, with 4 backends, a 5 s pause and `/perf.php?sleep=0.2`.
    pub fn full(output: PathBuf, httperf: Httperf, lbbench: PathBuf) -> LabConfig {
        LabConfig {
            balancers: Balancer::ALL.to_vec(),
            backends: 4,
            rates: rates(100.0, 2000.0, 100.0).unwrap_or_default(),
            repeat: 3,
            duration_s: 60.0,
            pause: Duration::from_secs(5),
            uri: "/perf.php?sleep=0.2".into(),
            timeout_s: 5.0,
            output,
            httperf,
            lbbench,
            programs: BTreeMap::new(),
            progress: ProgressMode::Auto,
            time_format: TimeFormat::Local,
            cpu_interval: Duration::from_secs(2),
        }
    }

    /// A reduced sweep for a first look: 100 to 1,000 conn/s by 300, one 5 s run each, 2 s
    /// apart (under 2 minutes for all three balancers).
    pub fn quick(output: PathBuf, httperf: Httperf, lbbench: PathBuf) -> LabConfig {
        LabConfig {
            rates: rates(100.0, 1000.0, 300.0).unwrap_or_default(),
            repeat: 1,
            duration_s: 5.0,
            pause: Duration::from_secs(2),
            ..LabConfig::full(output, httperf, lbbench)
        }
    }

    /// The settings recorded in `lab.json`.
    pub fn settings(&self) -> LabSettings {
        LabSettings {
            backends: self.backends,
            uri: self.uri.clone(),
            duration_s: self.duration_s,
            pause_s: self.pause.as_secs_f64(),
            rates: self.rates.clone(),
            repeat: self.repeat,
            timeout_s: self.timeout_s,
            httperf_extra: vec![CONNECTION_CLOSE.to_owned()],
        }
    }

    /// The sweep against one running balancer.
    pub fn sweep_for(&self, b: Balancer, port: u16) -> SweepConfig {
        let mut base = HttperfArgs::new("127.0.0.1", self.rates[0], 1);
        base.port = port;
        base.uri = self.uri.clone();
        base.hog = true;
        base.timeout = Some(self.timeout_s);
        base.extra = vec![CONNECTION_CLOSE.to_owned()];
        SweepConfig {
            label: b.name().to_owned(),
            base,
            rates: self.rates.clone(),
            repeat: self.repeat,
            duration_s: self.duration_s,
            pause: self.pause,
            output: self.output.join(default_output(b.name())),
            save_raw: Some(self.output.join("raw")),
            time_format: self.time_format,
            thresholds: Default::default(),
            progress: self.progress,
        }
    }

    /// About how long the lab takes: each run's duration plus a second, and the pauses.
    pub fn estimate(&self) -> Duration {
        let runs = self.rates.len() as f64 * f64::from(self.repeat);
        let per_balancer =
            runs * (self.duration_s + 1.0) + (runs - 1.0).max(0.0) * self.pause.as_secs_f64();
        Duration::from_secs_f64(per_balancer * self.balancers.len() as f64)
    }

    fn check(&self) -> Result<(), LabRunError> {
        let bad = |m: String| Err(LabRunError::Config(m));
        if self.balancers.is_empty() {
            return bad("no balancer to measure".into());
        }
        if !(1..=64).contains(&self.backends) {
            return bad(format!("--backends must be 1..64 (got {})", self.backends));
        }
        if self.output.as_os_str().is_empty() {
            return bad("the output directory is empty".into());
        }
        // The sweep checks the rest (rates, repeat, duration, httperf's arguments) before its
        // first run; check it here too, before anything starts.
        let cfg = self.sweep_for(self.balancers[0], 80);
        crate::sweep::check_config(&cfg).map_err(|e| LabRunError::Config(e.to_string()))
    }
}

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
        /// The directory.
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
        /// The error.
        error: SweepError,
    },
    /// The CPU file's sampler failed.
    #[error("{balancer}: the CPU file: {error}")]
    Cpu {
        /// Which balancer's.
        balancer: String,
        /// The error.
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
        /// The directory.
        dir: PathBuf,
        /// The other lab's pid.
        pid: Option<u32>,
    },
    /// The lock file could not be made.
    #[error(transparent)]
    Lock(common::lock::LockError),
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
        /// The directory.
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

/// Measures each run's CPU for the lab: the balancer's processes, the backends', CPU-seconds
/// per 1,000 requests and how busy the machine was; and stops the sweep if the balancer or a
/// backend died.
struct LabObserver<'a> {
    balancer: &'a mut RunningBalancer,
    fleet: &'a mut Fleet,
    lb_cpu: CpuObserver,
    backends_cpu: CpuObserver,
    machine_start: Option<CpuTimes>,
}

impl LabObserver<'_> {
    fn check_alive(&mut self) -> Result<(), ObserverError> {
        self.balancer.check_alive()?;
        self.fleet.check_alive()?;
        Ok(())
    }
}

impl SweepObserver for LabObserver<'_> {
    fn extra_columns(&self) -> Vec<String> {
        let mut c = self.lb_cpu.extra_columns();
        c.push(CPU_PER_1K_COLUMN.to_owned());
        c.extend(self.backends_cpu.extra_columns());
        c.push(MACHINE_BUSY_COLUMN.to_owned());
        c
    }

    fn before_run(&mut self, run: &PlannedRun) -> Result<(), ObserverError> {
        self.check_alive()?;
        self.lb_cpu.before_run(run)?;
        self.backends_cpu.before_run(run)?;
        self.machine_start = Some(read_machine()?);
        Ok(())
    }

    fn after_run(&mut self, result: &RunResult) -> Result<Vec<String>, ObserverError> {
        let machine_end = read_machine()?;
        let mut cells = self.lb_cpu.after_run(result)?;
        let per_1k = self
            .lb_cpu
            .last_usage()
            .and_then(|u| cpu_s_per_1k(u.user_s + u.system_s, result.output.report.total_requests));
        cells.push(per_1k.map_or(String::new(), |v| round_cell(v, 4)));
        cells.extend(self.backends_cpu.after_run(result)?);
        let busy = self.machine_start.take().map(|start| {
            let m = machine_usage(&start, &machine_end);
            (100.0 - m.idle_pct - m.iowait_pct).clamp(0.0, 100.0)
        });
        cells.push(busy.map_or(String::new(), |v| round_cell(v, 2)));
        // A balancer that died during the run measured nothing: no row.
        self.check_alive()?;
        Ok(cells)
    }

    fn run_abandoned(&mut self, run: &PlannedRun) {
        self.lb_cpu.run_abandoned(run);
        self.backends_cpu.run_abandoned(run);
        self.machine_start = None;
    }
}

fn round_cell(v: f64, decimals: i32) -> String {
    let f = 10f64.powi(decimals);
    crate::csvcell::fmt_f64((v * f).round() / f)
}

/// The `lbbench cpu` sampler in a thread for the length of one balancer's sweep; stopped
/// and joined on drop.
struct CpuFile {
    stop: Shutdown,
    thread: Option<JoinHandle<Result<u64, CpuError>>>,
}

impl CpuFile {
    fn start(cfg: MonitorConfig) -> std::io::Result<CpuFile> {
        let stop = Shutdown::new()?;
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lab-cpu".into())
            .spawn(move || monitor(&cfg, &s, |_| {}))?;
        Ok(CpuFile {
            stop,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> Result<u64, CpuError> {
        self.stop.trigger();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(CpuError::Config("the CPU sampler panicked".into())),
            None => Ok(0),
        }
    }
}

impl Drop for CpuFile {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keeps `lab.json` up to date; marks the session failed if the lab returns early.
struct Journal {
    dir: PathBuf,
    info: LabInfo,
    done: bool,
}

impl Journal {
    fn session(&mut self) -> &mut Session {
        // `run_lab` pushes the session before it makes the journal.
        let n = self.info.sessions.len();
        &mut self.info.sessions[n - 1]
    }

    fn save(&self) -> Result<(), InfoError> {
        self.info.save(&self.dir)
    }

    fn started(&mut self, s: Started) -> Result<(), InfoError> {
        self.session().started.push(s);
        self.save()
    }

    fn end(&mut self, outcome: &str) -> Result<(), InfoError> {
        let now = now_rfc3339();
        let s = self.session();
        s.finished_at = Some(now);
        s.outcome = outcome.to_owned();
        self.done = true;
        self.save()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.end("failed");
        }
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Raises this process's soft limit on open files to the hard limit, for httperf (which
/// inherits it and can then use its full `FD_SETSIZE` of 1,024).
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

/// Runs the lab (or the rest of it). `note` receives one line per step for the user.
pub fn run_lab(
    cfg: &LabConfig,
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
) -> Result<LabSummary, LabRunError> {
    cfg.check()?;
    let dir = &cfg.output;
    // One lab per directory (each sweep also locks its own file).
    let _lock = common::lock::PidLock::acquire(&dir.join(".lab.lock")).map_err(|e| match e {
        common::lock::LockError::Held { pid, .. } => LabRunError::Locked {
            dir: dir.clone(),
            pid,
        },
        e => LabRunError::Lock(e),
    })?;
    let settings = cfg.settings();
    let previous = LabInfo::load(dir)?;
    if let Some(p) = &previous {
        let differences = p.settings.measurement_differences(&settings);
        if !differences.is_empty() {
            return Err(LabRunError::OtherSettings {
                dir: dir.clone(),
                differences,
            });
        }
    }
    raise_fd_limit();

    // Everything that can be missing, before anything starts.
    let httperf_version = cfg.httperf.version()?;
    let mut programs = Vec::new();
    for &b in &cfg.balancers {
        let program = b.locate(cfg.programs.get(&b).map(PathBuf::as_path))?;
        let version = b.version(&program)?;
        programs.push((b, program, version));
    }
    std::fs::create_dir_all(dir).map_err(|source| LabRunError::Io {
        what: format!("cannot create {}", dir.display()),
        source,
    })?;
    note(&format!(
        "httperf {httperf_version}; {}",
        programs
            .iter()
            .map(|(b, p, v)| format!("{b} {v} ({})", p.display()))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let session = Session {
        started_at: now_rfc3339(),
        finished_at: None,
        outcome: "running".into(),
        started: Vec::new(),
    };
    let mut info = match previous {
        Some(mut p) => {
            p.settings = settings;
            p.machine = MachineInfo::current();
            p.tool = tool();
            p.httperf = ProgramInfo {
                program: cfg.httperf.program().to_owned(),
                version: httperf_version,
            };
            p.sessions.push(session);
            p
        }
        None => LabInfo {
            tool: tool(),
            settings,
            machine: MachineInfo::current(),
            httperf: ProgramInfo {
                program: cfg.httperf.program().to_owned(),
                version: httperf_version,
            },
            balancers: Vec::new(),
            sessions: vec![session],
        },
    };
    for (b, program, version) in &programs {
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
                "warning: {b} was {old} in an earlier session of this lab and is {version} now; \
                 its rows mix both versions"
            ));
        }
    }
    let mut journal = Journal {
        dir: dir.clone(),
        info,
        done: false,
    };
    journal.save()?;
    let per_balancer = cfg.rates.len() * cfg.repeat as usize;
    note(&format!(
        "{} balancers × {} rates × {} runs of {} s, {} backends; about {} if nothing is done yet; \
         results in {}",
        cfg.balancers.len(),
        cfg.rates.len(),
        cfg.repeat,
        fmt_rate(cfg.duration_s),
        cfg.backends,
        crate::sweep::progress::fmt_duration(cfg.estimate()),
        dir.display()
    ));

    let mut summary = LabSummary {
        planned: per_balancer * cfg.balancers.len(),
        written: 0,
        skipped: 0,
        flagged: 0,
        failed: Vec::new(),
        report: None,
        markdown: String::new(),
    };
    // A balancer whose runs are all in its file already (a resumed lab) is not started.
    let mut pending = Vec::new();
    for &b in &cfg.balancers {
        let sweep = cfg.sweep_for(b, 80);
        let done = completed_runs(&sweep.output).map_err(|e| LabRunError::Sweep {
            balancer: b.name().to_owned(),
            error: e.into(),
        })?;
        let plan = sweep.plan();
        if plan.iter().all(|r| done.runs.contains(&r.key(b.name()))) {
            note(&format!("{b}: all {} runs are already done", plan.len()));
            summary.skipped += plan.len();
        } else {
            pending.push(b);
        }
    }
    let mut interrupted = false;
    if !pending.is_empty() {
        interrupted = run_balancers(cfg, &pending, shutdown, note, &mut journal, &mut summary)?;
    }
    if interrupted {
        journal.end("interrupted")?;
        return Err(LabRunError::Interrupted {
            done: summary.written + summary.skipped,
            planned: summary.planned,
            dir: dir.clone(),
        });
    }
    journal.end("complete")?;

    let input = report::load(std::slice::from_ref(dir))?;
    let generated = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    let html = report::render_html(&input, &generated)?;
    let path = dir.join("report.html");
    common::atomic::write(&path, html.as_bytes()).map_err(|source| LabRunError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })?;
    summary.markdown = report::markdown::table(&input.points());
    summary.report = Some(path);
    Ok(summary)
}

/// Starts the backends, then measures each balancer of `pending` in turn; stops everything.
/// Returns whether Ctrl-C stopped it.
fn run_balancers(
    cfg: &LabConfig,
    pending: &[Balancer],
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
    journal: &mut Journal,
    summary: &mut LabSummary,
) -> Result<bool, LabRunError> {
    let dir = &cfg.output;
    let mut fleet_opts = FleetOptions::with_program(cfg.backends, &cfg.lbbench);
    fleet_opts.log_dir = Some(dir.join("backends"));
    let mut fleet = match Fleet::start(&fleet_opts, shutdown) {
        Ok(f) => f,
        Err(LabError::Interrupted) => return Ok(true),
        Err(e) => return Err(e.into()),
    };
    note(&format!(
        "backends: {}",
        fleet
            .backends()
            .iter()
            .map(|b| format!("{} {} (pid {})", b.name(), b.addr(), b.pid()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    journal.started(Started {
        what: "backends".into(),
        pids: fleet.pids(),
        addrs: fleet.addrs().iter().map(ToString::to_string).collect(),
        run_dir: None,
    })?;

    let mut interrupted = false;
    for &b in pending {
        let opts = BalancerOptions {
            program: cfg.programs.get(&b).cloned(),
            work_dir: Some(dir.join(b.name())),
            ..BalancerOptions::default()
        };
        let mut lb = match b.start(&fleet.upstreams(), &opts, shutdown) {
            Ok(lb) => lb,
            Err(LabError::Interrupted) => {
                interrupted = true;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let pids = lb.pids();
        note(&format!(
            "{b} {} on {} (pids {}), run dir {}",
            lb.version(),
            lb.url(),
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            lb.run_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ));
        journal.started(Started {
            what: b.name().to_owned(),
            pids: pids.clone(),
            addrs: vec![lb.addr().to_string()],
            run_dir: lb.run_dir().map(Path::to_owned),
        })?;
        let (program, version) = (lb.program().to_owned(), lb.version().to_owned());
        journal.info.record_balancer(BalancerInfo {
            name: b.name().to_owned(),
            program: ProgramInfo { program, version },
            max_connections: Some(lb.max_connections()),
            processes: Some(pids.len()),
        });
        journal.save()?;

        let root = lb.pid().ok_or_else(|| LabError::Io {
            what: format!("{b} has no process"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let cpu_err = |error: CpuError| LabRunError::Cpu {
            balancer: b.name().to_owned(),
            error,
        };
        let cpu_file = CpuFile::start(MonitorConfig {
            interval: cfg.cpu_interval,
            count: None,
            output: dir.join(format!("cpu_mon_{}.csv", b.name())),
            selector: Some(ProcessSelector::Pids(vec![root])),
            time_format: cfg.time_format,
        })
        .map_err(|source| LabRunError::Io {
            what: "cannot start the CPU sampler".into(),
            source,
        })?;
        let sweep = cfg.sweep_for(b, lb.addr().port());
        let result = {
            let mut observer = LabObserver {
                lb_cpu: CpuObserver::new(BALANCER_PREFIX, ProcessSelector::Pids(vec![root]))
                    .map_err(cpu_err)?,
                backends_cpu: CpuObserver::new(
                    BACKENDS_PREFIX,
                    ProcessSelector::Pids(fleet.pids()),
                )
                .map_err(cpu_err)?,
                balancer: &mut lb,
                fleet: &mut fleet,
                machine_start: None,
            };
            run_sweep(&cfg.httperf, &sweep, &mut observer, shutdown)
        };
        let cpu_result = cpu_file.finish();
        let stopped = lb.stop();
        let s = result.map_err(|error| LabRunError::Sweep {
            balancer: b.name().to_owned(),
            error,
        })?;
        cpu_result.map_err(cpu_err)?;
        stopped?;
        note(&format!("{b} stopped"));
        summary.written += s.written;
        summary.skipped += s.skipped;
        summary.flagged += s.flagged;
        summary
            .failed
            .extend(s.failed.into_iter().map(|f| (b.name().to_owned(), f)));
        if s.interrupted {
            interrupted = true;
            break;
        }
    }
    fleet.stop()?;
    note("backends stopped");
    Ok(interrupted)
}

fn tool() -> String {
    format!("lbbench {}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LabConfig {
        LabConfig::quick(
            PathBuf::from("out"),
            Httperf::locate(Some(Path::new("sh"))).unwrap(),
            PathBuf::from("lbbench"),
        )
    }

    #[test]
    fn quick_is_the_issue_s_reduced_sweep_and_under_two_minutes() {
        let c = cfg();
        assert_eq!(c.rates, [100.0, 400.0, 700.0, 1000.0]);
        assert_eq!((c.repeat, c.duration_s), (1, 5.0));
        assert_eq!(c.balancers.len(), 3);
        // 3 × (4 × 6 s + 3 × 2 s) = 90 s of runs and pauses.
        assert_eq!(c.estimate(), Duration::from_secs(90));
        let full = LabConfig::full(PathBuf::from("o"), c.httperf.clone(), PathBuf::new());
        // 3 × (60 × 61 s + 59 × 5 s): about 3 h 18 min.
        assert_eq!(full.estimate(), Duration::from_secs(3 * (60 * 61 + 59 * 5)));
        c.check().unwrap();
    }

    #[test]
    fn each_sweep_has_the_header_and_its_own_files() {
        let c = cfg();
        let s = c.sweep_for(Balancer::Pound, 4242);
        assert_eq!(s.label, "pound");
        assert_eq!(s.output, PathBuf::from("out/perf_pound_combined.csv"));
        assert_eq!(s.save_raw, Some(PathBuf::from("out/raw")));
        let args = s.args_for(&s.plan()[1]).to_args();
        assert!(args.contains(&"--server=127.0.0.1".to_owned()), "{args:?}");
        assert!(args.contains(&"--port=4242".to_owned()));
        assert!(args.contains(&"--rate=400".to_owned()));
        assert!(args.contains(&"--num-conns=2000".to_owned()));
        assert!(args.contains(&"--hog".to_owned()));
        assert_eq!(args.last().unwrap(), "--add-header=Connection: close\\n");
    }

    #[test]
    fn bad_settings_are_refused_before_anything_starts() {
        let mut c = cfg();
        c.backends = 0;
        assert!(c.check().unwrap_err().is_usage());
        let mut c = cfg();
        c.repeat = 0;
        assert!(c.check().unwrap_err().is_usage());
        let mut c = cfg();
        c.balancers.clear();
        assert!(c.check().unwrap_err().is_usage());
    }
}
