//! An HAProxy of our own: the embedded mode of `webscaler run`, and the tests' HAProxy.
//!
//! It runs in master-worker mode (`haproxy -W -S master.sock,mode,600 -f main.cfg -f
//! backends.cfg -p haproxy.pid`) with everything in one directory (one directory per
//! instance):
//!
//! | file | what |
//! |---|---|
//! | `main.cfg` | `global` (admin socket mode 0600 `level admin` `expose-fd listeners`, `noreuseport`, `server-state-file`), `defaults` (`load-server-state-from-file global`), the frontend, an optional stats listener |
//! | `backends.cfg` | the generated backend file ([`super::BackendFile`]), kept in step with the runtime state |
//! | `servers.state` | every server's state as `show servers state` gives it, kept current by the [`Haproxy`] client: what a new HAProxy starts from |
//! | `admin.sock`, `master.sock` | the runtime API and the master CLI, mode 0600 |
//! | `haproxy.pid` | the master's pid |
//! | `haproxy.log` | HAProxy's own output (notices and alerts, not requests) |
//!
//! **It is never in the control loop's way.** HAProxy is started in a session of its own,
//! marked with `WEBSCALER_HAPROXY=<its directory>` ([`MARKER`]) in its environment, and
//! nothing stops it when webscaler exits, crashes or is killed: it keeps serving.
//! [`HaproxyProcess::start`] first looks for the HAProxy of the directory (the marked
//! process that leads its process group: the master) and *adopts* it, as it is, through its
//! sockets: no restart, no rebind. Only if `main.cfg` changed (another frontend or stats
//! address) is it reloaded through the master CLI, which hands the listeners over to the new
//! worker. An HAProxy that answers on our socket without being ours is never touched: that
//! is an error naming the socket.
//!
//! **A dead HAProxy is started again** ([`HaproxyProcess::ensure_running`], called before
//! every tick): from `backends.cfg` and `servers.state`, so every server comes back with
//! its administrative state (drain stays drain) and its last health (a server that was up
//! takes traffic at once). Servers in maintenance (joining, or being removed) are left out
//! of the backend file: HAProxy would restore them in maintenance with their checks paused,
//! so they are added again at run time instead, and join as any new server does.
//!
//! [`HaproxyProcess::stop`] and [`shut_down`] are the explicit teardown (`webscaler down`):
//! a soft stop (SIGUSR1: the listeners close at once, connections finish), then SIGTERM and
//! SIGKILL to its process group; its sockets and pid file are removed.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use common::process::{SpawnOptions, find_marked, group_has_live_members, has_marker, is_alive};
use common::wait::poll_until;
use rustix::process::Signal;

use super::Haproxy;
use super::backend_file::{BackendFile, BackendServer, ServerOptions, render_backend};
use super::reload::ReloadMethod;
use super::socket::Socket;
use crate::balancer::BackendName;

/// The environment variable that marks an embedded HAProxy's processes (master and
/// workers): its directory.
pub const MARKER: &str = "WEBSCALER_HAPROXY";

/// The files of an HAProxy of our own, all in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
    /// `main.cfg`.
    pub main_cfg: PathBuf,
    /// `backends.cfg`, the generated backend file.
    pub backends_cfg: PathBuf,
    /// `servers.state`, the servers' states for the next start.
    pub state_file: PathBuf,
    /// `admin.sock`.
    pub admin: PathBuf,
    /// `master.sock`.
    pub master: PathBuf,
    /// `haproxy.pid`.
    pub pid_file: PathBuf,
    /// `haproxy.log`.
    pub log: PathBuf,
}

impl Paths {
    /// The files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Paths {
        let dir = dir.into();
        Paths {
            main_cfg: dir.join("main.cfg"),
            backends_cfg: dir.join("backends.cfg"),
            state_file: dir.join("servers.state"),
            admin: dir.join("admin.sock"),
            master: dir.join("master.sock"),
            pid_file: dir.join("haproxy.pid"),
            log: dir.join("haproxy.log"),
            dir,
        }
    }
}

/// How to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Where its files live (made absolute on start: the marker names it).
    pub dir: PathBuf,
    /// Where the frontend listens (`127.0.0.1:8080` for `webscaler run`).
    pub frontend: SocketAddr,
    /// An optional stats page (`/stats`).
    pub stats: Option<SocketAddr>,
    /// The backend the frontend sends to.
    pub backend: BackendName,
    /// Health-check and idle-connection options of the servers.
    pub check: ServerOptions,
    /// The admin socket's level (`admin`; the tests use `operator` to refuse `add server`).
    pub level: String,
    /// The haproxy binary.
    pub haproxy: PathBuf,
    /// Servers written to the backend file when there is none yet.
    pub initial_servers: Vec<BackendServer>,
    /// How long to wait for it to answer on both sockets.
    pub start_timeout: Duration,
    /// After SIGUSR1 (soft stop), how long it may take to finish its connections before
    /// SIGTERM (and, 5 s later, SIGKILL).
    pub stop_grace: Duration,
}

impl EmbeddedConfig {
    /// The defaults: backend `nodes`, the default check options, `level admin`, `haproxy`
    /// from `PATH`, no stats page.
    pub fn new(dir: impl Into<PathBuf>, frontend: SocketAddr) -> EmbeddedConfig {
        EmbeddedConfig {
            dir: dir.into(),
            frontend,
            stats: None,
            backend: BackendName::default(),
            check: ServerOptions::default(),
            level: "admin".to_owned(),
            haproxy: PathBuf::from("haproxy"),
            initial_servers: Vec::new(),
            start_timeout: Duration::from_secs(20),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// Starting or stopping our HAProxy failed. Every message names a file, socket or address.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A file operation failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The program could not be started.
    #[error("cannot start HAProxy ({haproxy}): {source} (scripts/setup.sh installs it)")]
    Spawn {
        /// The binary.
        haproxy: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Its frontend address is taken.
    #[error("HAProxy cannot listen on {addr}: the address is in use (choose another --frontend)")]
    AddressInUse { addr: SocketAddr },
    /// It exited while starting.
    #[error("HAProxy exited at start ({status}); its log {log} says: {tail}")]
    Exited {
        /// How it exited.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The end of the log.
        tail: String,
    },
    /// It did not answer in time.
    #[error("HAProxy did not answer on {socket} within {waited:?}; its log {log} says: {tail}")]
    NotAnswering {
        socket: PathBuf,
        /// How long it waited.
        waited: Duration,
        /// The log file.
        log: PathBuf,
        /// The end of the log.
        tail: String,
    },
    /// Another HAProxy, not ours, answers on our socket.
    #[error(
        "an HAProxy that this webscaler did not start answers on {socket} (it lacks the {MARKER} marker of {dir}); stop it or use another state directory"
    )]
    Foreign { socket: PathBuf, dir: PathBuf },
    /// The new `main.cfg` was refused, or the reload that applies it failed.
    #[error("cannot apply the new {path} to the running HAProxy: {message}")]
    Reconfigure {
        /// `main.cfg`.
        path: PathBuf,
        /// HAProxy's words.
        message: String,
    },
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> ProcessError + 'a {
    move |source| ProcessError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The main config: `global` (admin socket, `noreuseport`, notices to stderr, the server
/// state file), `defaults` (which load it), the frontend and an optional stats listener.
/// The backend section comes from the generated backend file.
pub fn main_config(
    paths: &Paths,
    level: &str,
    frontend: SocketAddr,
    stats: Option<SocketAddr>,
    backend: &BackendName,
) -> String {
    let mut s = format!(
        "# Generated by webscaler for its own HAProxy; rewritten when its settings change.
global
    stats socket {admin} mode 600 level {level} expose-fd listeners
    stats timeout 30s
    noreuseport
    log stderr format raw local0 notice
    # Every server's state, kept current by webscaler: a restarted HAProxy starts from it.
    server-state-file {state}
defaults
    mode http
    log global
    load-server-state-from-file global
    # A connection refused by a server that just died is tried again on another one.
    retries 3
    option redispatch 1
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout queue 30s
frontend fe_http
    bind {frontend}
    default_backend {backend}
",
        admin = paths.admin.display(),
        state = paths.state_file.display(),
    );
    if let Some(stats) = stats {
        s.push_str(&format!(
            "listen stats
    bind {stats}
    stats enable
    stats uri /stats
"
        ));
    }
    s
}

/// The last lines of a log, on one line, for error messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let t = lines[start..].join(" | ");
    if t.is_empty() {
        "(nothing)".to_owned()
    } else {
        t
    }
}

/// How [`HaproxyProcess::start`] got its HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// None ran: a new one was started.
    Started,
    /// The one a previous run left was adopted as it was: no restart, no rebind.
    Adopted,
    /// Adopted, and reloaded through the master CLI because `main.cfg` changed (the new
    /// worker takes the listeners over).
    Reloaded,
    /// One of ours ran but did not answer: it was stopped and a new one started.
    Replaced {
        /// The old master's pid.
        old: u32,
    },
}

/// What [`HaproxyProcess::ensure_running`] repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// The master that died.
    pub old: u32,
    /// How it ended, in words (`exited with status 137`, `is gone`).
    pub how: String,
    /// The new master.
    pub new: u32,
}

/// The running HAProxy of our own. It is not stopped when dropped (it outlives webscaler);
/// [`HaproxyProcess::stop`] stops it.
#[derive(Debug)]
pub struct HaproxyProcess {
    config: EmbeddedConfig,
    paths: Paths,
    /// The master's pid.
    master: u32,
    /// The master, when this process started it (to reap it).
    child: Option<Child>,
    start: Start,
}

impl HaproxyProcess {
    /// The HAProxy of `config.dir`: the running one, adopted (reloaded if `main.cfg`
    /// changed), or a new one (see the module documentation). Waits until both sockets
    /// answer.
    pub fn start(mut config: EmbeddedConfig) -> Result<HaproxyProcess, ProcessError> {
        fs::create_dir_all(&config.dir).map_err(io_err(&config.dir, "create the directory"))?;
        config.dir =
            fs::canonicalize(&config.dir).map_err(io_err(&config.dir, "resolve the directory"))?;
        let paths = Paths::new(&config.dir);
        let main = main_config(
            &paths,
            &config.level,
            config.frontend,
            config.stats,
            &config.backend,
        );
        let mut replaced = None;
        if let Some(master) = find_master(&paths.dir) {
            let answers = poll_until(
                "HAProxy to answer",
                config.start_timeout.min(Duration::from_secs(5)),
                Duration::from_millis(20),
                || answers(&paths).then_some(()),
            )
            .is_ok();
            if answers {
                let mut p = HaproxyProcess {
                    config,
                    paths,
                    master,
                    child: None,
                    start: Start::Adopted,
                };
                if fs::read_to_string(&p.paths.main_cfg).ok().as_deref() != Some(main.as_str()) {
                    p.reconfigure(&main)?;
                    p.start = Start::Reloaded;
                }
                return Ok(p);
            }
            // Ours, but broken: replaced.
            stop_group(master, Duration::ZERO, &paths, || {});
            replaced = Some(master);
        }
        for s in [&paths.admin, &paths.master] {
            if s.exists()
                && Socket::admin(s)
                    .with_timeouts(Duration::from_millis(500), Duration::from_secs(2))
                    .command("show info")
                    .is_ok()
            {
                return Err(ProcessError::Foreign {
                    socket: s.clone(),
                    dir: paths.dir.clone(),
                });
            }
        }
        remove_runtime_files(&paths);
        fs::write(&paths.main_cfg, &main).map_err(io_err(&paths.main_cfg, "write"))?;
        if !paths.backends_cfg.exists() {
            fs::write(
                &paths.backends_cfg,
                render_backend(&config.backend, &config.initial_servers, &config.check),
            )
            .map_err(io_err(&paths.backends_cfg, "write"))?;
        }
        let (master, child) = spawn(&config, &paths)?;
        Ok(HaproxyProcess {
            config,
            paths,
            master,
            child: Some(child),
            start: replaced.map_or(Start::Started, |old| Start::Replaced { old }),
        })
    }

    /// Writes the new `main.cfg` once `haproxy -c` accepts it, saves the servers' states and
    /// reloads through the master CLI.
    fn reconfigure(&self, main: &str) -> Result<(), ProcessError> {
        let err = |message: String| ProcessError::Reconfigure {
            path: self.paths.main_cfg.clone(),
            message,
        };
        BackendFile::new(&self.paths.main_cfg)
            .with_config_files(vec![
                self.paths.main_cfg.clone(),
                self.paths.backends_cfg.clone(),
            ])
            .with_haproxy(&self.config.haproxy)
            .install(main)
            .map_err(|e| err(e.to_string()))?;
        self.haproxy()
            .save_state()
            .map_err(|e| err(e.to_string()))?;
        ReloadMethod::Master(self.master_socket())
            .reload(std::time::Instant::now() + self.config.start_timeout)
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Starts HAProxy again, from its files, if it died (the master is gone); does nothing
    /// while it runs. Called before every tick.
    pub fn ensure_running(&mut self) -> Result<Option<Restarted>, ProcessError> {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if status.is_none() && is_alive(self.master) && has_marker_of(self.master, &self.paths) {
            return Ok(None);
        }
        let old = self.master;
        let how = status.map_or_else(|| "is gone".to_owned(), describe_exit);
        // Its workers go with the master; whatever is left of the group goes now.
        stop_group(old, Duration::ZERO, &self.paths, || {});
        remove_runtime_files(&self.paths);
        let (master, child) = spawn(&self.config, &self.paths)?;
        self.master = master;
        self.child = Some(child);
        Ok(Some(Restarted {
            old,
            how,
            new: master,
        }))
    }

    /// How it was found or started.
    pub fn how_started(&self) -> Start {
        self.start
    }

    /// Its files.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// How it was started.
    pub fn config(&self) -> &EmbeddedConfig {
        &self.config
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.master
    }

    /// The admin socket.
    pub fn admin_socket(&self) -> Socket {
        Socket::admin(&self.paths.admin)
    }

    /// The master socket.
    pub fn master_socket(&self) -> Socket {
        Socket::master(&self.paths.master)
    }

    /// The generated backend file, checked together with `main.cfg`.
    pub fn backend_file(&self) -> BackendFile {
        BackendFile::new(&self.paths.backends_cfg)
            .with_config_files(vec![
                self.paths.main_cfg.clone(),
                self.paths.backends_cfg.clone(),
            ])
            .with_haproxy(&self.config.haproxy)
    }

    /// A client for it: admin socket, master socket (reloads), the backend file, the server
    /// state file and the check options.
    pub fn haproxy(&self) -> Haproxy {
        Haproxy::new(self.admin_socket(), self.config.backend.clone())
            .with_master(self.master_socket())
            .with_check(self.config.check)
            // Validated when the backend file was rendered; the defaults are valid.
            .unwrap_or_else(|_| Haproxy::new(self.admin_socket(), self.config.backend.clone()))
            .with_backend_file(self.backend_file())
            .with_state_file(&self.paths.state_file)
    }

    /// The end of its log, on one line.
    pub fn log_tail(&self) -> String {
        tail(&self.paths.log)
    }

    /// Stops it (the explicit teardown): SIGUSR1 (soft stop: the listeners close at once,
    /// connections finish), up to the grace period, then SIGTERM and SIGKILL to its process
    /// group; then removes its sockets and pid file. The config files stay.
    pub fn stop(mut self) -> io::Result<Option<ExitStatus>> {
        let mut child = self.child.take();
        stop_group(self.master, self.config.stop_grace, &self.paths, || {
            if let Some(c) = child.as_mut() {
                let _ = c.try_wait();
            }
        });
        let status = match child.as_mut() {
            Some(c) => c.try_wait()?,
            None => None,
        };
        if is_alive(self.master) {
            return Err(io::Error::other(format!(
                "HAProxy (pid {}) is still alive after SIGKILL",
                self.master
            )));
        }
        Ok(status)
    }
}

/// Starts HAProxy in `paths.dir`, marked and detached, and waits until both sockets answer.
/// Returns the master's pid and its handle.
fn spawn(config: &EmbeddedConfig, paths: &Paths) -> Result<(u32, Child), ProcessError> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .map_err(io_err(&paths.log, "open"))?;
    let log2 = log.try_clone().map_err(io_err(&paths.log, "open"))?;
    let log_start = fs::metadata(&paths.log).map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(&config.haproxy);
    cmd.arg("-W")
        .arg("-S")
        .arg(format!("{},mode,600", paths.master.display()))
        .arg("-f")
        .arg(&paths.main_cfg)
        .arg("-f")
        .arg(&paths.backends_cfg)
        .arg("-p")
        .arg(&paths.pid_file)
        .current_dir(&paths.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // A session of its own: no signal of webscaler's terminal reaches it, and it outlives
    // webscaler; the marker says it is the HAProxy of this directory.
    SpawnOptions::detached()
        .marker(MARKER, &paths.dir)
        .apply(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        haproxy: config.haproxy.clone(),
        source,
    })?;
    let master = child.id();
    let ready = poll_until(
        "HAProxy to answer",
        config.start_timeout,
        Duration::from_millis(20),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(status));
            }
            answers(paths).then_some(Ok(()))
        },
    );
    let new_log = || {
        let text = fs::read(&paths.log).unwrap_or_default();
        let from = usize::try_from(log_start).unwrap_or(0).min(text.len());
        String::from_utf8_lossy(&text[from..]).into_owned()
    };
    match ready {
        Ok(Ok(())) => Ok((master, child)),
        Ok(Err(status)) => {
            stop_group(master, Duration::ZERO, paths, || {});
            remove_runtime_files(paths);
            let text = new_log();
            if text.contains("Address already in use") || text.contains("cannot bind socket") {
                return Err(ProcessError::AddressInUse {
                    addr: config.frontend,
                });
            }
            Err(ProcessError::Exited {
                status: status.to_string(),
                log: paths.log.clone(),
                tail: tail(&paths.log),
            })
        }
        Err(_) => {
            stop_group(master, Duration::ZERO, paths, || {
                let _ = child.try_wait();
            });
            remove_runtime_files(paths);
            Err(ProcessError::NotAnswering {
                socket: paths.admin.clone(),
                waited: config.start_timeout,
                log: paths.log.clone(),
                tail: tail(&paths.log),
            })
        }
    }
}

/// Whether both sockets answer and the master has a worker.
fn answers(paths: &Paths) -> bool {
    let quick = |s: Socket| s.with_timeouts(Duration::from_millis(500), Duration::from_secs(2));
    let admin = quick(Socket::admin(&paths.admin)).command("show info");
    let master = quick(Socket::master(&paths.master)).command("show proc");
    matches!((admin, master), (Ok(a), Ok(m)) if a.contains("Pid:") && m.contains("worker"))
}

fn has_marker_of(pid: u32, paths: &Paths) -> bool {
    has_marker(pid, MARKER, &paths.dir.to_string_lossy())
}

/// The master of the HAProxy of `dir`: the marked process that leads its process group (it
/// was started in a session of its own; its workers are in its group).
pub fn find_master(dir: &Path) -> Option<u32> {
    let dir = dir.to_string_lossy();
    find_marked(MARKER)
        .into_iter()
        .find(|m| m.value == dir && m.pid == m.pgid)
        .map(|m| m.pid)
}

/// The masters of the embedded HAProxys under `state_dir` (one per instance directory), as
/// (pid, directory).
pub fn find_masters_under(state_dir: &Path) -> Vec<(u32, PathBuf)> {
    let prefix = format!("{}/", state_dir.display());
    find_marked(MARKER)
        .into_iter()
        .filter(|m| m.pid == m.pgid && m.value.starts_with(&prefix))
        .map(|m| (m.pid, PathBuf::from(m.value)))
        .collect()
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Stops the process group of `master`: SIGUSR1 (soft stop) and up to `grace` for it to
/// finish its connections, then SIGTERM, 5 s, SIGKILL; then removes the sockets and pid
/// file. `reap` is called while waiting (for a master that is our child).
fn stop_group(master: u32, grace: Duration, paths: &Paths, mut reap: impl FnMut()) {
    let gone = |reap: &mut dyn FnMut(), timeout: Duration| {
        poll_until(
            "HAProxy to exit",
            timeout,
            Duration::from_millis(20),
            || {
                reap();
                (!is_alive(master) && !group_has_live_members(master)).then_some(())
            },
        )
        .is_ok()
    };
    if !grace.is_zero() && is_alive(master) {
        let _ = common::process::signal_pid(master, Signal::USR1);
        if gone(&mut reap, grace) {
            remove_runtime_files(paths);
            return;
        }
    }
    let _ = common::process::terminate_group(master, Duration::from_secs(5), &mut reap);
    remove_runtime_files(paths);
}

/// Stops the HAProxy of `dir` if one runs (soft stop, up to `grace`, then SIGTERM and
/// SIGKILL), and removes its runtime files, the generated backend file and the server state
/// file: nothing of it is left but `main.cfg` and its log. Returns the master's pid if one
/// ran.
pub fn shut_down(dir: &Path, grace: Duration) -> Result<Option<u32>, ProcessError> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let paths = Paths::new(&dir);
    let master = find_master(&dir);
    if let Some(m) = master {
        stop_group(m, grace, &paths, || {});
        if is_alive(m) || group_has_live_members(m) {
            return Err(ProcessError::Io {
                path: paths.pid_file.clone(),
                action: "stop the HAProxy it names",
                source: io::Error::other(format!("pid {m} is still alive after SIGKILL")),
            });
        }
    }
    remove_runtime_files(&paths);
    for f in [&paths.backends_cfg, &paths.state_file] {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(f, "remove")(e)),
        }
    }
    Ok(master)
}

fn remove_runtime_files(paths: &Paths) {
    for f in [&paths.admin, &paths.master, &paths.pid_file] {
        let _ = fs::remove_file(f);
    }
}
