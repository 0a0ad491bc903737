//! The lab report's rate sweep (its listing 2.3), resumable: every rate from `from` to `to` by
//! `step`, each run `repeat` times for `duration` seconds with a pause between runs, one CSV
//! row per run.
//!
//! One sweep at a time writes to a file: a second one on the same file stops before its first
//! run and names the first one's pid (a lock file `.NAME.lock` beside it).
//!
//! Resuming: the runs already in the output file, identified by (server, tls, reply_size,
//! target_rate, run),
//! are skipped, so a sweep stopped by Ctrl-C, `kill` or a reboot continues where it stopped
//! when started again with the same arguments, and no run is done twice. Each row is written
//! by [`common::CsvAppender`] in one `write(2)` after its run, so a killed sweep never leaves
//! half a row, and a file with another header is refused before any run.
//!
//! Callers that measure more around each run (the lab samples each balancer's CPU over the
//! run's time window) plug in a [`SweepObserver`]: it is called right before and right after
//! each httperf run and may add its own columns to the row.
//!
//! ```no_run
//! use lbbench::httperf::Httperf;
//! use lbbench::sweep::{SweepConfig, run_sweep};
//!
//! let httperf = Httperf::locate(None)?;
//! let mut cfg = SweepConfig::seed("balance1");
//! cfg.rates = vec![100.0, 200.0];
//! let summary = run_sweep(&httperf, &cfg, &mut (), &common::Shutdown::new()?)?;
//! println!("{} runs written to {}", summary.written, cfg.output.display());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod observers;
pub mod plan;
pub mod ports;
pub mod progress;
pub mod resume;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{CsvAppender, CsvFileError, Shutdown, TimeFormat};

use crate::httperf::{
    Httperf, HttperfArgs, HttperfError, HttperfOutput, RawOutput, Report, Thresholds, Tls,
    Validity, fmt_rate, num_conns_for, resolve_server,
};
pub use observers::{CpuObserver, usage_cells, usage_columns};
pub use plan::{PlanError, PlannedRun, RunKey, fmt_size, parse_size, plan, rates};
use progress::Progress;
pub use progress::ProgressMode;
pub use resume::{Completed, ResumeError, completed_runs};

/// The most runs of one rate (`--repeat`).
pub const MAX_REPEAT: u32 = 1000;
/// The most runs in one sweep (rates × repeats); a plan holds one small entry per run.
pub const MAX_RUNS: usize = 100_000;

/// lbbench's own columns before the lab report's: `timestamp, server, tls, reply_size,
/// target_rate, run`. `tls` is `off`, `on` or `resumed` ([`Tls`]); `reply_size` is the reply
/// size a size sweep asked for, in bytes, and empty otherwise.
pub const KEY_COLUMNS: &[&str] = &[
    "timestamp",
    "server",
    "tls",
    "reply_size",
    "target_rate",
    "run",
];

/// The most reply sizes in one sweep.
pub const MAX_SIZES: usize = 100;

/// The value of each column that lbbench has added since its first sweep files, for the
/// rows of a file written before it: a file of an older layout gets them (see
/// [`common::csvfile::with_added_columns`]) before a sweep appends to it. Their runs were
/// plain HTTP of the URI's own reply, and the lab's derived columns are left empty.
pub fn added_column_default(column: &str) -> Option<String> {
    match column {
        "tls" => Some(Tls::Off.cell().to_owned()),
        "reply_size" => Some(String::new()),
        crate::report::data::REPLY_MB_S_COLUMN | crate::report::data::CPU_PER_GB_COLUMN => {
            Some(String::new())
        }
        _ => None,
    }
}

/// Everything a sweep needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// The `server` column: which balancer the rows are about. The CLI uses the host name;
    /// the lab uses the balancer's name, since all its balancers are on 127.0.0.1.
    pub label: String,
    /// httperf's arguments except `rate` and `num_conns`, which each run sets (and the URI's
    /// `size=`, in a size sweep). Its `tls` is the rows' `tls` column.
    pub base: HttperfArgs,
    /// Connection rates, in order.
    pub rates: Vec<f64>,
    /// Reply sizes in bytes, each asked of the backend with `size=` added to the URI; empty
    /// leaves the URI as it is (a rate sweep).
    pub sizes: Vec<u64>,
    /// Runs per rate.
    pub repeat: u32,
    /// Seconds per run: each run makes `rate × duration` connections.
    pub duration_s: f64,
    /// Pause between runs.
    pub pause: Duration,
    /// The CSV file rows are appended to.
    pub output: PathBuf,
    /// Where each run's raw httperf output is kept, if anywhere.
    pub save_raw: Option<PathBuf>,
    /// The `timestamp` format.
    pub time_format: TimeFormat,
    /// The validity limits.
    pub thresholds: Thresholds,
    /// The progress display.
    pub progress: ProgressMode,
}

impl SweepConfig {
    /// The lab report's sweep against `server`: 100 to 2000 req/s by 100, 3 runs of 60 s each, a
    /// 30 s pause, `--hog --uri /perf.php?sleep=0.2 --num-calls 1 --timeout 5` on port 80,
    /// rows to `perf_<server>_combined.csv`.
    pub fn seed(server: &str) -> Self {
        let mut base = HttperfArgs::new(server, 100.0, 1);
        base.uri = "/perf.php?sleep=0.2".to_owned();
        base.hog = true;
        SweepConfig {
            label: server.to_owned(),
            base,
            rates: rates(100.0, 2000.0, 100.0).unwrap_or_default(),
            sizes: Vec::new(),
            repeat: 3,
            duration_s: 60.0,
            pause: Duration::from_secs(30),
            output: PathBuf::from(default_output(server)),
            save_raw: None,
            time_format: TimeFormat::Local,
            thresholds: Thresholds::default(),
            progress: ProgressMode::Auto,
        }
    }

    /// The httperf arguments of one run.
    pub fn args_for(&self, run: &PlannedRun) -> HttperfArgs {
        let mut uri = self.base.uri.clone();
        if let Some(size) = run.reply_size {
            uri.push(if uri.contains('?') { '&' } else { '?' });
            uri.push_str(&format!("size={size}"));
        }
        HttperfArgs {
            rate: run.rate,
            num_conns: num_conns_for(run.rate, self.duration_s),
            uri,
            ..self.base.clone()
        }
    }

    /// Every run of the sweep, done or not.
    pub fn plan(&self) -> Vec<PlannedRun> {
        plan(&self.rates, &self.sizes, self.repeat)
    }

    /// A run's key in this sweep's file.
    pub fn key(&self, run: &PlannedRun) -> RunKey {
        run.key(&self.label, self.base.tls)
    }
}

/// The lab report's output name for a server: `perf_<server>_combined.csv`.
pub fn default_output(server: &str) -> String {
    format!("perf_{}_combined.csv", file_name_safe(server))
}

/// `name` with every character other than ASCII letters, digits, `.`, `_` and `-` replaced
/// by `_`, for use inside a file name (a server may be `::1` or `host:8080`).
pub fn file_name_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The header of a sweep file: [`KEY_COLUMNS`], [`Report::COLUMNS`], [`Validity::COLUMNS`],
/// then the observer's columns.
pub fn header(extra: &[String]) -> Vec<String> {
    KEY_COLUMNS
        .iter()
        .chain(Report::COLUMNS)
        .chain(Validity::COLUMNS)
        .map(|s| (*s).to_owned())
        .chain(extra.iter().cloned())
        .collect()
}

/// One finished run, as the observer sees it before its row is written.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Which run.
    pub run: PlannedRun,
    /// The arguments httperf ran with.
    pub args: HttperfArgs,
    /// The report, raw output and time window.
    pub output: HttperfOutput,
    /// The verdict.
    pub validity: Validity,
}

/// Errors an observer returns; they stop the sweep (the run's row is not written).
pub type ObserverError = Box<dyn std::error::Error + Send + Sync>;

/// A hook around each run of a sweep.
///
/// The sweep calls [`before_run`](SweepObserver::before_run) right before httperf starts and
/// [`after_run`](SweepObserver::after_run) right after it exits, so the time between the two
/// calls is the run's window (also in [`HttperfOutput::started_at`] and `finished_at`).
/// `()` is the observer that does nothing; [`CpuObserver`] measures a process set's CPU over
/// each run; a pair `(a, b)` is both observers, `a`'s columns first.
pub trait SweepObserver {
    /// Columns added after lbbench's own, the same for every row.
    fn extra_columns(&self) -> Vec<String> {
        Vec::new()
    }

    /// Called right before httperf starts.
    fn before_run(&mut self, _run: &PlannedRun) -> Result<(), ObserverError> {
        Ok(())
    }

    /// Called right after httperf exits with a report, before the row is written. Returns the
    /// cells of [`extra_columns`](SweepObserver::extra_columns), in order.
    fn after_run(&mut self, _result: &RunResult) -> Result<Vec<String>, ObserverError> {
        Ok(Vec::new())
    }

    /// Called when a run fails or is interrupted (after `before_run`), so the observer can
    /// drop what it started. No row is written.
    fn run_abandoned(&mut self, _run: &PlannedRun) {}
}

impl SweepObserver for () {}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepSummary {
    /// Runs in the plan.
    pub planned: usize,
    /// Runs that were already in the file and were skipped.
    pub skipped: usize,
    /// Rows written now.
    pub written: usize,
    /// Rows written now whose run was flagged.
    pub flagged: usize,
    /// Whether shutdown stopped the sweep before its end.
    pub interrupted: bool,
    /// Runs that failed after an earlier run of the sweep had succeeded, and were skipped
    /// (not written: running the same sweep again does them again).
    pub failed: Vec<FailedRun>,
}

/// A run whose httperf hung past its watchdog, exited non-zero, printed no report, or got
/// no reply because nothing listened.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRun {
    /// The demanded rate, as in the CSV.
    pub rate: String,
    /// The run number.
    pub run: u32,
    /// What went wrong (httperf's stderr included).
    pub error: String,
}

impl fmt::Display for FailedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate {}/s run {}: {}", self.rate, self.run, self.error)
    }
}

impl SweepSummary {
    /// Runs still to do.
    pub fn remaining(&self) -> usize {
        self.planned - self.skipped - self.written
    }
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The rate list or another setting is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// httperf is missing, the host does not resolve, or a run failed.
    #[error("{context}{error}")]
    Httperf {
        /// Which run, if any.
        context: String,
        error: HttperfError,
    },
    /// The output file is not usable. (Its message already has the OS error, so it is not
    /// also exposed as a source: one-line reports would print the cause twice.)
    #[error("{0}")]
    Csv(CsvFileError),
    /// The output file's rows cannot be read.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// Another sweep writes to the same file.
    #[error(
        "another sweep{} is writing to {}; wait for it to finish, or write elsewhere with -o",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), output.display()
    )]
    Locked {
        /// The CSV file.
        output: PathBuf,
        /// The other sweep's pid.
        pid: Option<u32>,
    },
    /// The lock file could not be made.
    #[error(transparent)]
    Lock(common::lock::LockError),
    /// A raw output could not be saved.
    #[error("cannot save raw output to {}: {error}", path.display())]
    SaveRaw {
        /// The file.
        path: PathBuf,
        error: std::io::Error,
    },
    /// The observer failed.
    #[error("rate {rate}/s run {run}: {error}")]
    Observer {
        /// The run's rate.
        rate: String,
        /// The run's index.
        run: u32,
        error: ObserverError,
    },
}

impl From<CsvFileError> for SweepError {
    fn from(e: CsvFileError) -> Self {
        SweepError::Csv(e)
    }
}

impl SweepError {
    /// Whether the error comes from bad input (settings, host name, missing httperf, a file of
    /// another layout): the CLI exits 2 for these.
    pub fn is_usage(&self) -> bool {
        match self {
            SweepError::Plan(_) | SweepError::Config(_) => true,
            SweepError::Httperf { error, .. } => error.is_usage(),
            SweepError::Csv(CsvFileError::HeaderMismatch { .. }) => true,
            SweepError::Resume(ResumeError::Format { .. }) => true,
            _ => false,
        }
    }
}

/// Checks a sweep's settings and every run's httperf arguments (what [`run_sweep`] does
/// before its first run).
pub fn check_config(cfg: &SweepConfig) -> Result<(), SweepError> {
    if cfg.rates.is_empty() {
        return Err(SweepError::Config("the sweep has no rates".into()));
    }
    if !(1..=MAX_REPEAT).contains(&cfg.repeat) {
        return Err(SweepError::Config(format!(
            "--repeat must be 1 to {MAX_REPEAT} (got {})",
            cfg.repeat
        )));
    }
    // Both factors are bounded now; their product bounds the plan (one entry per run).
    if cfg.sizes.len() > MAX_SIZES {
        return Err(SweepError::Config(format!(
            "{} reply sizes is more than {MAX_SIZES}",
            cfg.sizes.len()
        )));
    }
    let runs = cfg
        .rates
        .len()
        .saturating_mul(cfg.sizes.len().max(1))
        .saturating_mul(cfg.repeat as usize);
    if runs > MAX_RUNS {
        return Err(SweepError::Config(format!(
            "{} rates{} × {} runs each is {runs} runs, more than {MAX_RUNS}",
            cfg.rates.len(),
            if cfg.sizes.is_empty() {
                String::new()
            } else {
                format!(" × {} sizes", cfg.sizes.len())
            },
            cfg.repeat
        )));
    }
    if !(cfg.duration_s.is_finite() && cfg.duration_s > 0.0) {
        return Err(SweepError::Config(format!(
            "--duration must be a positive number of seconds (got {})",
            cfg.duration_s
        )));
    }
    for (what, secs) in [
        ("--duration", cfg.duration_s),
        ("--pause", cfg.pause.as_secs_f64()),
        ("--timeout", cfg.base.timeout.unwrap_or(0.0)),
    ] {
        common::time::seconds(what, secs).map_err(SweepError::Config)?;
    }
    if !cfg.sizes.is_empty()
        && cfg
            .base
            .uri
            .split(['?', '&'])
            .any(|p| p.starts_with("size="))
    {
        return Err(SweepError::Config(format!(
            "the URI `{}` sets size= already; a size sweep sets it for each run",
            cfg.base.uri
        )));
    }
    if let Some(&s) = cfg.sizes.iter().find(|&&s| s > plan::MAX_REPLY_SIZE) {
        return Err(SweepError::Config(format!(
            "reply size {s} is above the backend's limit of {}",
            fmt_size(plan::MAX_REPLY_SIZE)
        )));
    }
    if cfg.label.is_empty() || cfg.label.contains(['\n', '\r']) {
        return Err(SweepError::Config(
            "the server label must be one non-empty line".into(),
        ));
    }
    // A run's arguments depend on its rate only.
    for &rate in &cfg.rates {
        cfg.args_for(&PlannedRun {
            index: 0,
            rate,
            reply_size: cfg.sizes.first().copied(),
            run: 1,
        })
        .validate()
        .map_err(|e| SweepError::Httperf {
            context: String::new(),
            error: e.into(),
        })?;
    }
    Ok(())
}

/// The file a run's raw output is saved to: `<dir>/<label>_r<rate>_<run>.txt` (stdout) and
/// `.stderr` next to it; `_tls` (or `_tls-resumed`) and `_s<bytes>` after the label for TLS
/// runs and reply sizes.
pub fn raw_path(dir: &Path, label: &str, tls: Tls, run: &PlannedRun) -> PathBuf {
    let safe = default_output(label);
    let mut name = safe
        .trim_start_matches("perf_")
        .trim_end_matches("_combined.csv")
        .to_owned();
    match tls {
        Tls::Off => {}
        Tls::On => name.push_str("_tls"),
        Tls::Resumed => name.push_str("_tls-resumed"),
    }
    if let Some(size) = run.reply_size {
        name.push_str(&format!("_s{size}"));
    }
    dir.join(format!("{name}_r{}_{}.txt", fmt_rate(run.rate), run.run))
}

/// Saves a run's output: httperf's, or with several clients each client's own as
/// `<raw_path stem>.<client>.txt` (and `.stderr`).
fn save_raw(
    dir: &Path,
    cfg: &SweepConfig,
    run: &PlannedRun,
    raw: &RawOutput,
    clients: &[(String, RawOutput)],
) -> Result<(), SweepError> {
    let out = raw_path(dir, &cfg.label, cfg.base.tls, run);
    let write = |p: PathBuf, text: &str| {
        std::fs::write(&p, text).map_err(|error| SweepError::SaveRaw { path: p, error })
    };
    let files: Vec<(PathBuf, &RawOutput)> = if clients.is_empty() {
        vec![(out, raw)]
    } else {
        clients
            .iter()
            .map(|(name, r)| {
                (
                    out.with_extension(format!("{}.txt", file_name_safe(name))),
                    r,
                )
            })
            .collect()
    };
    for (path, r) in files {
        write(path.clone(), &r.stdout)?;
        if !r.stderr.is_empty() {
            write(path.with_extension("stderr"), &r.stderr)?;
        }
    }
    Ok(())
}

/// What makes a sweep's load: httperf on this machine ([`Httperf`]), or httperf on several
/// client hosts at once (the lab across hosts), whose outputs come back as one.
pub trait LoadGenerator {
    /// Runs `args` (the whole run) to its end. When `shutdown` is requested meanwhile, the
    /// run is stopped and [`HttperfError::Interrupted`] returned.
    fn run(
        &mut self,
        args: &HttperfArgs,
        shutdown: &Shutdown,
    ) -> Result<HttperfOutput, HttperfError>;

    /// Whether httperf runs on this machine: then, before each run, the sweep waits while
    /// this machine's ports towards the server are held in TIME_WAIT (see [`ports`]).
    /// Remote clients wait for their own.
    fn is_local(&self) -> bool {
        true
    }
}

impl LoadGenerator for Httperf {
    fn run(
        &mut self,
        args: &HttperfArgs,
        shutdown: &Shutdown,
    ) -> Result<HttperfOutput, HttperfError> {
        self.start(args)?.wait(Some(shutdown))
    }
}

/// Runs (the rest of) a sweep. Checks everything it can before the first run: the settings,
/// that the server resolves, and that the output file has this sweep's header.
///
/// Returns when every planned run has a row, or as soon as `shutdown` is requested (the run
/// in progress is stopped and discarded; [`SweepSummary::interrupted`] is set). A failed run
/// stops the sweep with an error; its raw output is saved first if `save_raw` is set.
pub fn run_sweep(
    httperf: &Httperf,
    cfg: &SweepConfig,
    observer: &mut dyn SweepObserver,
    shutdown: &Shutdown,
) -> Result<SweepSummary, SweepError> {
    run_sweep_with(&mut httperf.clone(), cfg, observer, shutdown)
}

/// [`run_sweep`] with the load made by `load` (httperf here, or on client hosts). A run
/// whose error [`is_fatal`](HttperfError::is_fatal) (a client host lost) stops the sweep with
/// that error, whatever came before.
pub fn run_sweep_with(
    load: &mut dyn LoadGenerator,
    cfg: &SweepConfig,
    observer: &mut dyn SweepObserver,
    shutdown: &Shutdown,
) -> Result<SweepSummary, SweepError> {
    check_config(cfg)?;
    let target = resolve_server(&cfg.base.server, cfg.base.port)
        .map_err(|error| SweepError::Httperf {
            context: String::new(),
            error,
        })?
        .into_iter()
        .find_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(v4),
            std::net::SocketAddr::V6(_) => None,
        });
    // One sweep per file: two at once would both do every run.
    let _lock =
        common::lock::PidLock::acquire(&common::lock::lock_path_for(&cfg.output)).map_err(|e| {
            match e {
                common::lock::LockError::Held { pid, .. } => SweepError::Locked {
                    output: cfg.output.clone(),
                    pid,
                },
                e => SweepError::Lock(e),
            }
        })?;
    let extra = observer.extra_columns();
    let header = header(&extra);
    let migrated = migrate_older_layout(&cfg.output, &header)?;
    let mut csv = CsvAppender::open(&cfg.output, &header)?;
    let completed = completed_runs(&cfg.output)?;
    let all = cfg.plan();
    let todo: Vec<&PlannedRun> = all
        .iter()
        .filter(|r| !completed.runs.contains(&cfg.key(r)))
        .collect();
    let mut summary = SweepSummary {
        planned: all.len(),
        skipped: all.len() - todo.len(),
        ..SweepSummary::default()
    };
    if let Some(dir) = &cfg.save_raw {
        std::fs::create_dir_all(dir).map_err(|error| SweepError::SaveRaw {
            path: dir.clone(),
            error,
        })?;
    }
    let planned_run = Duration::try_from_secs_f64(cfg.duration_s + 1.0).unwrap_or(Duration::MAX);
    let progress = Progress::new(
        cfg.progress,
        all.len(),
        summary.skipped,
        planned_run,
        cfg.pause,
    );
    if let Some(m) = migrated {
        progress.warn(&m);
    }
    if !completed.unreadable_lines.is_empty() {
        progress.warn(&format!(
            "{}: lines {:?} are unreadable; their runs will be done again",
            cfg.output.display(),
            completed.unreadable_lines
        ));
    }
    progress.note(&format!(
        "{}: {} runs planned, {} already in {}, {} to do, about {}",
        cfg.label,
        all.len(),
        summary.skipped,
        cfg.output.display(),
        todo.len(),
        progress::fmt_duration(progress.eta())
    ));

    // A failure right at the start (a broken httperf) or twice in a row stops the sweep; one
    // failure in a sweep that works (a run that hung) is skipped so that hours of runs go on.
    let mut last_failed = false;
    for (i, run) in todo.iter().enumerate() {
        if i > 0 && !cfg.pause.is_zero() {
            progress.pausing(cfg.pause);
            shutdown.sleep(cfg.pause);
        }
        if shutdown.requested() {
            summary.interrupted = true;
            break;
        }
        let args = cfg.args_for(run);
        let which = || format!("rate {}/s run {}: ", fmt_rate(run.rate), run.run);
        if let Some(target) = target.filter(|_| load.is_local()) {
            wait_for_client_ports(target, &args, &progress, shutdown);
            if shutdown.requested() {
                summary.interrupted = true;
                break;
            }
        }
        observer
            .before_run(run)
            .map_err(|error| SweepError::Observer {
                rate: fmt_rate(run.rate),
                run: run.run,
                error,
            })?;
        progress.run_started(run, cfg.repeat);
        let output = match load
            .run(&args, shutdown)
            .and_then(HttperfOutput::refused_entirely)
        {
            Ok(o) => o,
            Err(e) => {
                observer.run_abandoned(run);
                progress.run_abandoned();
                if let HttperfError::Interrupted { .. } = e {
                    summary.interrupted = true;
                    break;
                }
                if let Some(dir) = &cfg.save_raw
                    && (e.raw_output().is_some() || !e.client_outputs().is_empty())
                {
                    let none = RawOutput::default();
                    let raw = e.raw_output().unwrap_or(&none);
                    save_raw(dir, cfg, run, raw, e.client_outputs())?;
                }
                if summary.written == 0 || last_failed || e.is_usage() || e.is_fatal() {
                    return Err(SweepError::Httperf {
                        context: which(),
                        error: e,
                    });
                }
                progress.warn(&format!(
                    "{}{e}; skipped (not written: the same command run again does it again)",
                    which()
                ));
                summary.failed.push(FailedRun {
                    rate: fmt_rate(run.rate),
                    run: run.run,
                    error: e.to_string(),
                });
                last_failed = true;
                continue;
            }
        };
        last_failed = false;
        if let Some(dir) = &cfg.save_raw {
            save_raw(dir, cfg, run, &output.raw, &output.clients)?;
        }
        let validity = Validity::assess(
            &output.report,
            args.checkable_request_rate(),
            &cfg.thresholds,
        );
        let result = RunResult {
            run: (*run).clone(),
            args,
            output,
            validity,
        };
        let extra_cells = observer
            .after_run(&result)
            .map_err(|error| SweepError::Observer {
                rate: fmt_rate(run.rate),
                run: run.run,
                error,
            })?;
        let mut row = vec![
            cfg.time_format.format(result.output.started_at),
            cfg.label.clone(),
            cfg.base.tls.cell().to_owned(),
            run.reply_size.map(|s| s.to_string()).unwrap_or_default(),
            fmt_rate(run.rate),
            run.run.to_string(),
        ];
        row.extend(result.output.report.to_cells());
        row.extend(validity.to_cells());
        row.extend(extra_cells);
        csv.append_rows([row])?;
        summary.written += 1;
        for w in validity.warnings(&result.output.report, &cfg.thresholds) {
            progress.warn(&format!("{}{w}", which()));
        }
        if validity.valid == Some(false) {
            summary.flagged += 1;
        }
        progress.run_finished(
            run,
            &cfg.label,
            &result.output.report,
            result.output.wall,
            summary.skipped + summary.written,
        );
    }
    progress.finish();
    Ok(summary)
}

/// Brings a sweep file of an older layout (one that lacks only columns lbbench has added
/// since, [`added_column_default`]) to `header` before a sweep appends to it: its rows get
/// the added columns, the original is kept beside it as `<file>.before-<columns>`, and the
/// file is replaced atomically. Returns what was done, for the user. A file of any other
/// layout is left for the appender, which refuses it and names both headers.
fn migrate_older_layout(path: &Path, header: &[String]) -> Result<Option<String>, SweepError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return Ok(None),
    };
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let found: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(first_line)
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if found.is_empty() || found == header {
        return Ok(None);
    }
    let added: Vec<&str> = header
        .iter()
        .filter(|h| !found.contains(h))
        .map(String::as_str)
        .collect();
    if added.is_empty() || added.iter().any(|c| added_column_default(c).is_none()) {
        return Ok(None);
    }
    let Ok(text) = common::csvfile::with_added_columns(&bytes, header, added_column_default) else {
        return Ok(None);
    };
    let io = |what: String| {
        move |error: std::io::Error| {
            SweepError::Csv(CsvFileError::Io {
                op: "cannot migrate",
                path: PathBuf::from(what),
                error,
            })
        }
    };
    let backup = PathBuf::from(format!(
        "{}.before-{}",
        path.display(),
        added.join("-").replace('_', "-")
    ));
    // The original is kept, never overwritten.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&backup)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .map_err(io(backup.display().to_string()))?;
    common::atomic::write(path, &text).map_err(io(path.display().to_string()))?;
    Ok(Some(format!(
        "{}: written by an older lbbench, without the columns {}; added them to its rows \
         ({} = {} for every run in it) and kept the original as {}",
        path.display(),
        added.join(", "),
        added[0],
        added_column_default(added[0])
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "empty".into()),
        backup.display()
    )))
}

/// Waits while the client's ports towards `target` are short (see [`ports::wait_for_ports`]).
fn wait_for_client_ports(
    target: std::net::SocketAddrV4,
    args: &HttperfArgs,
    progress: &Progress,
    shutdown: &Shutdown,
) {
    ports::wait_for_ports(target, args.rate, args.num_conns, shutdown, &mut |m| {
        progress.note(m)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_report_defaults() {
        let cfg = SweepConfig::seed("balance1");
        assert_eq!(cfg.output, PathBuf::from("perf_balance1_combined.csv"));
        assert_eq!(cfg.plan().len(), 60);
        let last = cfg.plan().pop().unwrap();
        let args = cfg.args_for(&last);
        assert_eq!(
            args.to_args(),
            [
                "--hog",
                "--timeout=5",
                "--server=balance1",
                "--port=80",
                "--uri=/perf.php?sleep=0.2",
                "--rate=2000",
                "--num-conns=120000",
                "--num-calls=1"
            ]
        );
        check_config(&cfg).unwrap();
    }

    #[test]
    fn header_layout() {
        let h = header(&["lb_cpu_pct".to_owned()]);
        assert_eq!(
            h[..6],
            [
                "timestamp",
                "server",
                "tls",
                "reply_size",
                "target_rate",
                "run"
            ]
        );
        assert_eq!(h[6], "command");
        assert_eq!(h.last().unwrap(), "lb_cpu_pct");
        assert_eq!(
            h.len(),
            6 + Report::COLUMNS.len() + Validity::COLUMNS.len() + 1
        );
        let mut sorted = h.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), h.len(), "column names are unique");
    }

    #[test]
    fn bad_settings_are_usage_errors() {
        let mut cfg = SweepConfig::seed("b");
        cfg.repeat = 0;
        assert!(check_config(&cfg).unwrap_err().is_usage());
        let mut cfg = SweepConfig::seed("b");
        cfg.duration_s = 0.0;
        assert!(check_config(&cfg).unwrap_err().is_usage());
        // Absurd numbers are refused before anything is planned or allocated.
        let mut cfg = SweepConfig::seed("b");
        cfg.repeat = u32::MAX;
        let err = check_config(&cfg).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("--repeat"),
            "{err}"
        );
        let mut cfg = SweepConfig::seed("b");
        cfg.rates = vec![100.0; 1000];
        cfg.repeat = 1000;
        assert!(
            check_config(&cfg)
                .unwrap_err()
                .to_string()
                .contains("1000000 runs")
        );
        let mut cfg = SweepConfig::seed("b");
        cfg.duration_s = 1e19;
        assert!(check_config(&cfg).unwrap_err().is_usage());
        let mut cfg = SweepConfig::seed("b");
        cfg.pause = Duration::MAX;
        assert!(
            check_config(&cfg)
                .unwrap_err()
                .to_string()
                .contains("--pause")
        );
        let mut cfg = SweepConfig::seed("b");
        cfg.base.extra = vec!["--num-conns=5".into()];
        let err = check_config(&cfg).unwrap_err();
        assert!(
            err.is_usage() && err.to_string().contains("--num-conns"),
            "{err}"
        );
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(default_output("10.0.0.1"), "perf_10.0.0.1_combined.csv");
        assert_eq!(default_output("a/b c"), "perf_a_b_c_combined.csv");
        let mut run = PlannedRun {
            index: 0,
            rate: 2.5,
            reply_size: None,
            run: 3,
        };
        assert_eq!(
            raw_path(Path::new("/d"), "haproxy", Tls::Off, &run),
            PathBuf::from("/d/haproxy_r2.5_3.txt")
        );
        run.reply_size = Some(1024);
        assert_eq!(
            raw_path(Path::new("/d"), "haproxy", Tls::On, &run),
            PathBuf::from("/d/haproxy_tls_s1024_r2.5_3.txt")
        );
    }
}
