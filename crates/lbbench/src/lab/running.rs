//! A balancer's life in the lab: started on its own port with its own temp dir, waited for
//! until a request through it reaches a backend, checked while it runs, and stopped with
//! everything it left behind (its other processes, sockets and pid files, its run dir).

use std::fs::{self, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Shutdown;
use common::process::Supervised;

use super::limits::{connection_budget, fd_limit, spawn_options};
use super::logs::log_tail;
use super::{Balancer, ConfigSpec, LabError, LabTls, Upstream, procs};

/// How a balancer is started.
#[derive(Debug, Clone)]
pub struct BalancerOptions {
    /// The program; `None` looks for it (see [`Balancer::locate`]).
    pub program: Option<PathBuf>,
    /// The address it listens on (127.0.0.1 unless the lab runs across hosts).
    pub bind: Ipv4Addr,
    /// The port; `None` picks a free one.
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
    /// Terminate TLS with the lab's certificate (see [`LabTls`]); `None` serves plain HTTP.
    pub tls: Option<LabTls>,
}

impl Default for BalancerOptions {
    fn default() -> Self {
        BalancerOptions {
            program: None,
            bind: Ipv4Addr::LOCALHOST,
            port: None,
            work_dir: None,
            request_log: false,
            max_connections: 4096,
            ready_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl Balancer {
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
            // Absolute: nginx reads a relative -c (and paths in its config) from its prefix,
            // the run dir, and Pound relative paths from /etc.
            Some(d) => {
                fs::create_dir_all(d)
                    .map_err(LabError::io(format!("cannot create {}", d.display())))?;
                std::path::absolute(d)
                    .map_err(LabError::io(format!("cannot resolve {}", d.display())))?
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
                None => common::net::free_port_on(IpAddr::V4(opts.bind))
                    .map_err(LabError::io(format!("no free port on {}", opts.bind)))?,
            };
            let spec = ConfigSpec {
                listen: SocketAddr::new(IpAddr::V4(opts.bind), port),
                upstreams: upstreams.to_vec(),
                run_dir: run_dir.path().to_owned(),
                work_dir: work_dir.clone(),
                request_log: opts.request_log,
                max_connections: connection_budget(opts.max_connections, fd_limit()),
                tls: opts.tls.as_ref().map(|t| t.pem_path().to_owned()),
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
                tls: opts.tls.clone(),
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
    tls: Option<LabTls>,
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

    /// Its base URL, `http://ADDRESS:PORT/` (`https://` when it terminates TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// The lab's TLS material when it terminates TLS.
    pub fn tls(&self) -> Option<&LabTls> {
        self.tls.as_ref()
    }

    /// `GET path` through it (over TLS when it terminates TLS, trusting only the lab's
    /// authority).
    pub fn get(&self, path: &str, timeout: Duration) -> io::Result<common::net::HttpReply> {
        match &self.tls {
            Some(tls) => tls.https_get(self.addr, path, timeout),
            None => common::net::http_get(self.addr, path, timeout),
        }
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
            let last = match self.get("/", Duration::from_secs(1)) {
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
