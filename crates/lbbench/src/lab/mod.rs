//! The lab on one machine: benchmark backends and the balancers in front of them, all on
//! 127.0.0.1, all started and stopped by lbbench (chapter 2 of the lab report, where they
//! were four VMs).
//!
//! - [`Balancer`]: HAProxy, Pound or nginx. Each one's config is generated from an askama
//!   template ([`haproxy`], [`pound`], [`nginx`]), checked by the program itself
//!   (`haproxy -c`, `pound -c`, `nginx -t`), and run in the foreground as a
//!   [`Supervised`](common::process::Supervised) child on its own free port with its own temp
//!   dir ([`Balancer::start`] → [`RunningBalancer`]).
//! - [`Fleet`]: N `lbbench backend` processes (the report's `perf.php`).
//! - [`procs`]: the process tree of a balancer, from `/proc`, for CPU sampling.
//!
//! Everything started here is stopped by PID when its handle is dropped (also on an error or
//! after Ctrl-C), and the sockets and pid files it leaves behind are removed.

pub mod experiment;
pub mod fleet;
pub mod haproxy;
pub mod info;
pub mod nginx;
pub mod pound;
pub mod procs;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::Shutdown;
use common::process::{SpawnOptions, Supervised};

pub use fleet::{BackendProcess, BackendStatus, Fleet, FleetOptions};

/// Errors of the lab. Each names the program, file or address involved.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `--balancers` named something other than haproxy, pound or nginx.
    #[error("unknown balancer {0:?} (known: haproxy, pound, nginx)")]
    UnknownBalancer(String),
    /// The balancer's program is not installed.
    #[error("{what}: install the Debian package {package} (scripts/setup.sh installs it{note})")]
    NotInstalled {
        /// What was looked for, and where.
        what: String,
        /// The Debian package that has it.
        package: &'static str,
        /// Anything special about the package.
        note: &'static str,
    },
    /// The program ran but its version could not be read.
    #[error("cannot read the version of {program}: {detail}")]
    Version {
        /// The program.
        program: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The generated config was rejected by the program's own check.
    #[error("{program} rejected the generated config {config}: {detail}")]
    InvalidConfig {
        /// The program.
        program: String,
        /// The config file.
        config: PathBuf,
        /// The program's own message.
        detail: String,
    },
    /// A path cannot be written into a config file safely.
    #[error("cannot use {0:?} in a config file: {1}")]
    BadPath(PathBuf, &'static str),
    /// A backend name that cannot go into a config.
    #[error("bad backend name {0:?}: only letters, digits, '-', '_' and '.' are allowed")]
    BadName(String),
    /// A balancer was to be started without backends.
    #[error("no backends to balance")]
    NoBackends,
    /// A config template failed to render.
    #[error("cannot render the {program} config: {source}")]
    Template {
        /// The program.
        program: &'static str,
        /// The template error.
        source: askama::Error,
    },
    /// A process exited while it was being started.
    #[error("{name} exited while starting ({status}): {log}")]
    Exited {
        /// What was started.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// A process did not get ready in time.
    #[error("{name} did not {what} within {waited:?}: {log}")]
    NotReady {
        /// What was started.
        name: String,
        /// What it did not do.
        what: String,
        /// How long it was given.
        waited: Duration,
        /// The end of its log, or the last error.
        log: String,
    },
    /// Processes were still running after the stop.
    #[error("{name}: processes still running after the stop: {pids:?}")]
    Leftover {
        /// What was stopped.
        name: String,
        /// Those still running.
        pids: Vec<u32>,
    },
    /// Shutdown was requested (Ctrl-C or SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }
}

/// One of the load balancers the lab compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Balancer {
    /// HAProxy (master-worker, `balance roundrobin`).
    Haproxy,
    /// Pound 4 (`Balancer iwrr`).
    Pound,
    /// nginx (a round-robin `upstream`).
    Nginx,
}

impl Balancer {
    /// All of them, in the order the lab runs them.
    pub const ALL: [Balancer; 3] = [Balancer::Haproxy, Balancer::Pound, Balancer::Nginx];

    /// Its lower-case name, as in `--balancers` and file names.
    pub fn name(self) -> &'static str {
        self.flavor().name()
    }

    /// Parses a comma-separated list (`haproxy,pound,nginx`): order kept, duplicates dropped.
    pub fn parse_list(list: &str) -> Result<Vec<Balancer>, LabError> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim) {
            let b = item.parse()?;
            if !out.contains(&b) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The Debian package with its program.
    pub fn package(self) -> &'static str {
        self.flavor().package()
    }

    pub(crate) fn flavor(self) -> &'static dyn Flavor {
        match self {
            Balancer::Haproxy => &haproxy::Haproxy,
            Balancer::Pound => &pound::Pound,
            Balancer::Nginx => &nginx::Nginx,
        }
    }

    /// Finds the program: `program` if given (it must exist), else its name in `PATH`, then in
    /// the sbin directories (which a non-root `PATH` often lacks). A missing program is a
    /// [`LabError::NotInstalled`] that names the Debian package.
    pub fn locate(self, program: Option<&Path>) -> Result<PathBuf, LabError> {
        let f = self.flavor();
        let not_installed = |what: String| LabError::NotInstalled {
            what,
            package: f.package(),
            note: f.package_note(),
        };
        if let Some(p) = program {
            return if is_executable(p) {
                Ok(p.to_owned())
            } else if p.exists() {
                Err(not_installed(format!(
                    "{} is not an executable file",
                    p.display()
                )))
            } else {
                Err(not_installed(format!(
                    "{} not found: {} does not exist",
                    self.name(),
                    p.display()
                )))
            };
        }
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .chain(f.extra_dirs())
        {
            if !dirs.iter().any(|x| x == Path::new(d)) {
                dirs.push(PathBuf::from(d));
            }
        }
        dirs.iter()
            .map(|d| d.join(f.name()))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                not_installed(format!(
                    "{} not found (looked in PATH and {})",
                    f.name(),
                    ["/usr/local/sbin", "/usr/sbin", "/sbin"]
                        .iter()
                        .chain(f.extra_dirs())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Its version (`2.6.12-1+deb12u4`, `4.16`, `1.22.1`), from `haproxy -v`, `pound -V` or
    /// `nginx -v`.
    pub fn version(self, program: &Path) -> Result<String, LabError> {
        let f = self.flavor();
        let out = f
            .version_command(program)
            .stdin(Stdio::null())
            .output()
            .map_err(LabError::io(format!("cannot run {}", program.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        f.parse_version(&stdout, &stderr)
            .ok_or_else(|| LabError::Version {
                program: program.to_owned(),
                detail: format!(
                    "no version in its output ({}): {}",
                    out.status,
                    first_lines(&format!("{stdout}{stderr}"), 3)
                ),
            })
    }

    /// The config file for `spec`, rendered from the balancer's template.
    pub fn render_config(self, spec: &ConfigSpec) -> Result<String, LabError> {
        spec.validate()?;
        let mut text = self
            .flavor()
            .render(spec)
            .map_err(|source| LabError::Template {
                program: self.name(),
                source,
            })?;
        // askama drops the template's final newline; HAProxy insists on one.
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// Checks `config` with the program itself (`haproxy -c`, `pound -c`, `nginx -t`); its
    /// own message if it is rejected.
    pub fn check_config(
        self,
        program: &Path,
        config: &Path,
        run_dir: &Path,
    ) -> Result<(), LabError> {
        let f = self.flavor();
        f.prepare(run_dir).map_err(LabError::io(format!(
            "cannot prepare {}",
            run_dir.display()
        )))?;
        let out = f
            .check_command(program, config, run_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(LabError::io(format!("cannot run {}", program.display())))?;
        f.after_check(run_dir);
        if out.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        Err(LabError::InvalidConfig {
            program: format!("{} {}", f.name(), f.check_flag()),
            config: config.to_owned(),
            detail: problem_lines(&text),
        })
    }

    /// Starts the balancer in front of `upstreams`: renders and checks its config, runs it
    /// in the foreground under supervision, and waits until a request through it reaches a
    /// backend (`GET /` answers `It works!`). Ctrl-C (`shutdown`) interrupts the wait.
    pub fn start(
        self,
        upstreams: &[Upstream],
        opts: &BalancerOptions,
        shutdown: &Shutdown,
    ) -> Result<RunningBalancer, LabError> {
        let f = self.flavor();
        let program = self.locate(opts.program.as_deref())?;
        let version = self.version(&program)?;
        let run_dir = tempfile::Builder::new()
            .prefix(&format!("lbbench-{}-", self.name()))
            .tempdir()
            .map_err(LabError::io("cannot create a temp dir"))?;
        let work_dir = match &opts.work_dir {
            Some(d) => {
                fs::create_dir_all(d)
                    .map_err(LabError::io(format!("cannot create {}", d.display())))?;
                d.clone()
            }
            None => run_dir.path().to_owned(),
        };
        let config_path = work_dir.join(f.config_file_name());
        let log_path = work_dir.join(format!("{}.log", self.name()));
        // A port picked here may be taken by someone else before the balancer binds it; then
        // it fails at once ("Address already in use") and another port is tried.
        let attempts = if opts.port.is_some() { 1 } else { 3 };
        let mut last_err = None;
        for _ in 0..attempts {
            if shutdown.requested() {
                return Err(LabError::Interrupted);
            }
            let port = match opts.port {
                Some(p) => p,
                None => common::net::free_port().map_err(LabError::io("no free port"))?,
            };
            let spec = ConfigSpec {
                listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                upstreams: upstreams.to_vec(),
                run_dir: run_dir.path().to_owned(),
                work_dir: work_dir.clone(),
                request_log: opts.request_log,
                max_connections: connection_budget(opts.max_connections, fd_limit()),
            };
            let text = self.render_config(&spec)?;
            fs::write(&config_path, text).map_err(LabError::io(format!(
                "cannot write {}",
                config_path.display()
            )))?;
            self.check_config(&program, &config_path, run_dir.path())?;
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(LabError::io(format!("cannot open {}", log_path.display())))?;
            let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
            let mut cmd = f.run_command(&program, &config_path, run_dir.path());
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().map_err(LabError::io("log file"))?)
                .stderr(log);
            let process = Supervised::spawn_with(self.name(), &mut cmd, &spawn_options())
                .map_err(LabError::io(format!("cannot start {}", program.display())))?;
            let mut running = RunningBalancer {
                kind: self,
                max_connections: spec.max_connections,
                program: program.clone(),
                version: version.clone(),
                addr: spec.listen,
                config_path: config_path.clone(),
                log_path: log_path.clone(),
                runtime_files: f.runtime_files(run_dir.path()),
                run_dir: None,
                process: Some(process),
            };
            match running.wait_ready(opts.ready_timeout, shutdown, log_start) {
                Ok(()) => {
                    running.run_dir = Some(run_dir);
                    return Ok(running);
                }
                Err(e) => {
                    let retry = opts.port.is_none()
                        && matches!(&e, LabError::Exited { log, .. } if log.contains("in use"));
                    // Stops it and removes what it left in the run dir.
                    drop(running);
                    if !retry {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or(LabError::Interrupted))
    }
}

impl fmt::Display for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Balancer {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Balancer, LabError> {
        Balancer::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| LabError::UnknownBalancer(s.to_owned()))
    }
}

/// A backend behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in the config (`node-1`): letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
}

/// What a balancer's config is generated from.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// Where the balancer listens.
    pub listen: SocketAddr,
    /// The backends, in order.
    pub upstreams: Vec<Upstream>,
    /// The balancer's private dir: control sockets, pid files, temp files.
    pub run_dir: PathBuf,
    /// Where its config and logs go (the run dir unless the lab keeps them).
    pub work_dir: PathBuf,
    /// Whether to log every request (off for benchmarks: errors are always logged).
    pub request_log: bool,
    /// The most client connections it should serve at once.
    pub max_connections: u32,
}

#[cfg(test)]
impl ConfigSpec {
    /// A spec for the config tests: `backends` upstreams `node-1`… on 127.0.0.1:18081…, the
    /// balancer on 127.0.0.1:`port`, everything in `dir`, no request log.
    pub(crate) fn example(port: u16, backends: u16, dir: &str, max_connections: u32) -> Self {
        ConfigSpec {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            upstreams: (1..=backends)
                .map(|i| Upstream {
                    name: format!("node-{i}"),
                    addr: SocketAddr::from(([127, 0, 0, 1], 18080 + i)),
                })
                .collect(),
            run_dir: dir.into(),
            work_dir: dir.into(),
            request_log: false,
            max_connections,
        }
    }
}

impl ConfigSpec {
    fn validate(&self) -> Result<(), LabError> {
        config_path_str(&self.run_dir)?;
        config_path_str(&self.work_dir)?;
        // sun_path holds 108 bytes, with the NUL; leave room for the socket's file name.
        if self.run_dir.as_os_str().len() > 80 {
            return Err(LabError::BadPath(
                self.run_dir.clone(),
                "too long for a Unix socket path (TMPDIR is too deep)",
            ));
        }
        if self.upstreams.is_empty() {
            return Err(LabError::NoBackends);
        }
        for u in &self.upstreams {
            if u.name.is_empty()
                || !u
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(LabError::BadName(u.name.clone()));
            }
        }
        Ok(())
    }
}

/// `path` as a string that can go between double quotes in any of the three config
/// languages: no quote, backslash, `$` (HAProxy and nginx expand variables), or control
/// character.
pub fn config_path_str(path: &Path) -> Result<&str, LabError> {
    let s = path
        .to_str()
        .ok_or_else(|| LabError::BadPath(path.to_owned(), "not UTF-8"))?;
    if s.chars()
        .any(|c| c == '"' || c == '\\' || c == '$' || c.is_control())
    {
        return Err(LabError::BadPath(
            path.to_owned(),
            "it contains a quote, a backslash, '$' or a control character",
        ));
    }
    Ok(s)
}

/// How a balancer is started.
#[derive(Debug, Clone)]
pub struct BalancerOptions {
    /// The program; `None` looks for it (see [`Balancer::locate`]).
    pub program: Option<PathBuf>,
    /// The port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Where to keep the config and the log after the stop; `None` keeps them in the
    /// balancer's temp dir, removed at the stop.
    pub work_dir: Option<PathBuf>,
    /// Whether to log every request.
    pub request_log: bool,
    /// The most client connections at once (HAProxy `maxconn`, Pound `WorkerMaxCount`,
    /// nginx `worker_connections` / 2); lowered to what the file descriptor limit allows.
    pub max_connections: u32,
    /// How long it may take to answer through to a backend.
    pub ready_timeout: Duration,
}

impl Default for BalancerOptions {
    fn default() -> Self {
        BalancerOptions {
            program: None,
            port: None,
            work_dir: None,
            request_log: false,
            max_connections: 4096,
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// What differs between the balancers; one implementation per module.
pub(crate) trait Flavor: Sync {
    /// The program name (`haproxy`).
    fn name(&self) -> &'static str;
    /// The Debian package.
    fn package(&self) -> &'static str;
    /// A note on the package for the "not installed" message.
    fn package_note(&self) -> &'static str {
        ""
    }
    /// Where to look for the program besides `PATH` and the sbin directories.
    fn extra_dirs(&self) -> &'static [&'static str] {
        &[]
    }
    /// The config file's name.
    fn config_file_name(&self) -> &'static str;
    /// Renders the config.
    fn render(&self, spec: &ConfigSpec) -> askama::Result<String>;
    /// The check option, for messages (`-c`).
    fn check_flag(&self) -> &'static str;
    /// The command that checks a config.
    fn check_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command;
    /// Creates what the program expects to exist in its run dir.
    fn prepare(&self, _run_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }
    /// Cleans up what the check left behind.
    fn after_check(&self, _run_dir: &Path) {}
    /// The command that runs the balancer in the foreground.
    fn run_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command;
    /// The command that prints the version.
    fn version_command(&self, program: &Path) -> Command;
    /// The version in that command's output.
    fn parse_version(&self, stdout: &str, stderr: &str) -> Option<String>;
    /// The sockets and pid files it may leave in its run dir.
    fn runtime_files(&self, run_dir: &Path) -> Vec<PathBuf>;
    /// How many processes it runs once it is up (main process included).
    fn process_count(&self) -> usize;
}

/// A balancer running in the foreground under supervision. Dropping it stops it (see
/// [`RunningBalancer::stop`]).
#[derive(Debug)]
pub struct RunningBalancer {
    kind: Balancer,
    max_connections: u32,
    program: PathBuf,
    version: String,
    addr: SocketAddr,
    config_path: PathBuf,
    log_path: PathBuf,
    runtime_files: Vec<PathBuf>,
    run_dir: Option<tempfile::TempDir>,
    process: Option<Supervised>,
}

/// How a balancer stopped.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The main process's exit status.
    pub status: Option<ExitStatus>,
    /// The processes it had when it was stopped (all gone now).
    pub pids: Vec<u32>,
}

impl RunningBalancer {
    /// Which balancer.
    pub fn kind(&self) -> Balancer {
        self.kind
    }

    /// The connection limit in its config: [`BalancerOptions::max_connections`], or less if
    /// the file descriptor limit allows less (see [`connection_budget`]).
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The program that runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Its version (see [`Balancer::version`]).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Its config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Its log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Its private dir (sockets, pid file), removed at the stop.
    pub fn run_dir(&self) -> Option<&Path> {
        self.run_dir.as_ref().map(|d| d.path())
    }

    /// The sockets and pid files it may create (all removed at the stop).
    pub fn runtime_files(&self) -> &[PathBuf] {
        &self.runtime_files
    }

    /// The main process (HAProxy's and nginx's master, Pound's only process).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Supervised::pid)
    }

    /// All its processes now, main process first: the ones whose CPU the lab samples.
    pub fn pids(&self) -> Vec<u32> {
        self.pid().map(procs::tree).unwrap_or_default()
    }

    /// Whether its main process still runs; an error with the end of its log if it has
    /// exited.
    pub fn check_alive(&mut self) -> Result<(), LabError> {
        let name = self.kind.name().to_owned();
        let Some(p) = self.process.as_mut() else {
            return Err(LabError::Io {
                what: format!("{name} was stopped"),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        match p.try_status() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(LabError::Exited {
                name,
                status,
                log: log_tail(&self.log_path, 0, 5),
            }),
            Err(e) => Err(LabError::io(format!("cannot check {name}"))(e)),
        }
    }

    fn wait_ready(
        &mut self,
        timeout: Duration,
        shutdown: &Shutdown,
        log_start: u64,
    ) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if shutdown.requested() {
                return Err(LabError::Interrupted);
            }
            if let Err(e) = self.check_alive() {
                return Err(match e {
                    LabError::Exited { name, status, .. } => LabError::Exited {
                        name,
                        status,
                        log: log_tail(&self.log_path, log_start, 5),
                    },
                    e => e,
                });
            }
            let last = match common::net::http_get(self.addr, "/", Duration::from_secs(1)) {
                // Up, and all its workers forked (the lab samples the CPU of each of them).
                Ok(r) if r.status == 200 && r.body.contains("It works!") => {
                    let n = self.pids().len();
                    if n == self.kind.flavor().process_count() {
                        return Ok(());
                    }
                    format!(
                        "{n} of its {} processes",
                        self.kind.flavor().process_count()
                    )
                }
                Ok(r) => format!("GET / answered {}: {:.80}", r.status, r.body),
                Err(e) => format!("GET /: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(LabError::NotReady {
                    name: format!("{} on {}", self.kind, self.addr),
                    what: "answer through to a backend".into(),
                    waited: timeout,
                    log: format!("{last}; log: {}", log_tail(&self.log_path, log_start, 5)),
                });
            }
            shutdown.sleep(Duration::from_millis(20));
        }
    }

    /// Stops it: SIGTERM to the main process (SIGKILL after a grace period), then any of its
    /// other processes still running are stopped by PID, then its sockets, pid files and
    /// run dir are removed. Fails if a process survived.
    pub fn stop(mut self) -> Result<Stopped, LabError> {
        self.shutdown()
    }

    /// Stops everything and removes everything, even after a failure on the way; the first
    /// failure is returned.
    fn shutdown(&mut self) -> Result<Stopped, LabError> {
        let name = self.kind.name().to_owned();
        let mut first_err = None;
        let mut result = Stopped {
            status: None,
            pids: Vec::new(),
        };
        if let Some(mut p) = self.process.take() {
            let ids: Vec<procs::ProcessId> = procs::tree(p.pid())
                .into_iter()
                .filter_map(procs::ProcessId::of)
                .collect();
            result.pids = ids.iter().map(|i| i.pid).collect();
            match p.stop() {
                Ok(s) => result.status = Some(s),
                Err(e) => first_err = Some(LabError::io(format!("cannot stop {name}"))(e)),
            }
            let left = stop_leftovers(&ids);
            if !left.is_empty() {
                first_err.get_or_insert(LabError::Leftover {
                    name: name.clone(),
                    pids: left,
                });
            }
        }
        for f in &self.runtime_files {
            match fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err
                        .get_or_insert(LabError::io(format!("cannot remove {}", f.display()))(e));
                }
            }
        }
        if let Some(d) = self.run_dir.take() {
            let path = d.path().to_owned();
            if let Err(e) = d.close() {
                first_err
                    .get_or_insert(LabError::io(format!("cannot remove {}", path.display()))(e));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }
}

impl Drop for RunningBalancer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Waits (up to 5 s) for the processes of a stopped tree to go, then stops by PID those
/// that did not (a worker orphaned by a master that was killed). Returns the ones that
/// still run.
pub(crate) fn stop_leftovers(ids: &[procs::ProcessId]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ids.iter().any(procs::ProcessId::is_running) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for id in ids.iter().filter(|i| i.is_running()) {
        let _ = common::process::terminate(id.pid, Duration::from_secs(2));
    }
    ids.iter()
        .filter(|i| i.is_running())
        .map(|i| i.pid)
        .collect()
}

/// The hard limit on open files (`RLIMIT_NOFILE`), which each child gets as its soft limit.
pub fn fd_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX)
}

/// The connection limit for a balancer: `wanted`, or less if `fd_limit` descriptors cannot
/// hold that many. Each proxied connection takes two descriptors (client and server side),
/// plus a few for listeners, sockets and logs. HAProxy refuses to start when its `maxconn`
/// needs more descriptors than the hard limit allows, so the limit is applied to all three
/// alike.
pub fn connection_budget(wanted: u32, fd_limit: u64) -> u32 {
    let fits = fd_limit.saturating_sub(64) / 2;
    wanted.min(u32::try_from(fits).unwrap_or(u32::MAX)).max(1)
}

/// How the lab starts its children: each in its own process group, so a Ctrl-C in the
/// terminal reaches only lbbench, which then stops everything in order; SIGTERM when
/// lbbench dies (even by SIGKILL or a second Ctrl-C), so nothing is left behind; and the
/// soft limit on open files raised to the hard limit, so that all three balancers (and the
/// backends) can use the same number of descriptors, whether or not they raise it
/// themselves.
///
/// Linux sends the parent-death signal when the *thread* that started the child ends, so
/// children must be started from a thread that outlives them (the main thread, or the test's
/// own thread, which owns and drops them).
pub(crate) fn spawn_options() -> SpawnOptions {
    SpawnOptions::isolated()
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last `n` non-empty lines of `path` from byte `from` on, joined with " | ".
pub(crate) fn log_tail(path: &Path, from: u64, n: usize) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        // At most the last 16 KiB.
        f.seek(SeekFrom::Start(from.max(len.saturating_sub(16 * 1024))))?;
        let mut raw = Vec::new();
        f.read_to_end(&mut raw)?;
        text = String::from_utf8_lossy(&raw).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("(cannot read {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("(nothing in {})", path.display());
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The lines of a check's output that say what is wrong (HAProxy's `[ALERT]`s, nginx's
/// `[emerg]`, Pound's `file:line: message`), or all of it if none stands out.
fn problem_lines(text: &str) -> String {
    let bad: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.contains("[ALERT]")
                || l.contains("[emerg]")
                || l.contains("error")
                || l.contains("unrecognized")
                || l.contains("unknown")
        })
        .collect();
    if bad.is_empty() {
        first_lines(text, 5)
    } else {
        bad.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_balancer_lists() {
        assert_eq!(
            Balancer::parse_list("haproxy,pound").unwrap(),
            vec![Balancer::Haproxy, Balancer::Pound]
        );
        assert_eq!(
            Balancer::parse_list(" nginx , HAProxy,nginx").unwrap(),
            vec![Balancer::Nginx, Balancer::Haproxy]
        );
        let e = Balancer::parse_list("haproxy,varnish").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown balancer \"varnish\" (known: haproxy, pound, nginx)"
        );
        assert!(Balancer::parse_list("").is_err());
        assert_eq!(Balancer::Pound.to_string(), "pound");
    }

    #[test]
    fn the_connection_budget_fits_the_descriptors() {
        assert_eq!(connection_budget(4096, 1_048_576), 4096);
        assert_eq!(connection_budget(4096, 4096), 2016);
        assert_eq!(connection_budget(4096, 20_000), 4096);
        assert_eq!(connection_budget(4096, 10), 1);
        assert_eq!(connection_budget(100, u64::MAX), 100);
    }

    #[test]
    fn specs_are_checked_before_rendering() {
        let spec = ConfigSpec {
            listen: "127.0.0.1:18080".parse().unwrap(),
            upstreams: vec![Upstream {
                name: "node-1".into(),
                addr: "127.0.0.1:18081".parse().unwrap(),
            }],
            run_dir: "/tmp/lbbench-x".into(),
            work_dir: "/tmp/lbbench-x".into(),
            request_log: false,
            max_connections: 100,
        };
        for b in Balancer::ALL {
            assert!(b.render_config(&spec).unwrap().ends_with('\n'));
            let mut bad = spec.clone();
            bad.upstreams[0].name = "node 1; evil".into();
            assert!(matches!(b.render_config(&bad), Err(LabError::BadName(_))));
            let mut bad = spec.clone();
            bad.upstreams.clear();
            assert!(matches!(b.render_config(&bad), Err(LabError::NoBackends)));
            let mut bad = spec.clone();
            bad.work_dir = "/tmp/x\"y".into();
            assert!(matches!(b.render_config(&bad), Err(LabError::BadPath(..))));
            let mut bad = spec.clone();
            bad.run_dir = PathBuf::from(format!("/tmp/{}", "d".repeat(90)));
            assert!(matches!(b.render_config(&bad), Err(LabError::BadPath(..))));
        }
    }

    #[test]
    fn config_paths_must_be_quotable() {
        assert_eq!(
            config_path_str(Path::new("/tmp/a b/c")).unwrap(),
            "/tmp/a b/c"
        );
        for bad in ["/tmp/a\"b", "/tmp/a\\b", "/tmp/$HOME", "/tmp/a\nb"] {
            assert!(config_path_str(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn problem_lines_pick_the_complaints() {
        let haproxy = "[NOTICE]   (1) : haproxy version is 2.6.12\n\
                       [ALERT]    (1) : config : [x.cfg:2] : unknown keyword 'chek'\n\
                       [ALERT]    (1) : config : Fatal errors found in configuration.\n";
        assert_eq!(
            problem_lines(haproxy),
            "[ALERT]    (1) : config : [x.cfg:2] : unknown keyword 'chek' | \
             [ALERT]    (1) : config : Fatal errors found in configuration."
        );
        assert_eq!(
            problem_lines("just this\n\nand that"),
            "just this | and that"
        );
    }

    #[test]
    fn log_tail_reads_the_end_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        fs::write(&p, "old\nline 1\n\nline 2\nline 3\n").unwrap();
        assert_eq!(log_tail(&p, 0, 2), "line 2 | line 3");
        assert_eq!(log_tail(&p, 4, 10), "line 1 | line 2 | line 3");
        assert!(log_tail(&dir.path().join("none"), 0, 2).starts_with("(cannot read"));
    }
}
