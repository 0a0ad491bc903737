//! An HAProxy of our own: the embedded mode of `webscaler run`, and the tests' HAProxy.
//!
//! It runs in master-worker mode (`haproxy -W -S master.sock,mode,600 -f main.cfg -f
//! backends.cfg -p haproxy.pid`) with everything in one directory:
//!
//! | file | what |
//! |---|---|
//! | `main.cfg` | `global` (admin socket mode 0600 `level admin` `expose-fd listeners`, `noreuseport`), `defaults`, the frontend, an optional stats listener |
//! | `backends.cfg` | the generated backend file ([`super::BackendFile`]), kept in step with the runtime state |
//! | `admin.sock`, `master.sock` | the runtime API and the master CLI, mode 0600 |
//! | `haproxy.pid` | the master's pid |
//! | `haproxy.log` | HAProxy's own output (notices and alerts, not requests) |
//!
//! HAProxy leaves its sockets and pid file behind when it exits, and a webscaler that was
//! killed leaves its HAProxy running (it keeps serving meanwhile). [`HaproxyProcess::start`]
//! therefore first cleans up after a previous run: an HAProxy whose pid file is ours and
//! whose command line names our `main.cfg` is soft-stopped (SIGUSR1: it releases the
//! listeners at once and finishes its connections), then killed if it lingers; stale sockets
//! and the pid file are removed. An HAProxy that answers on our socket but is not recorded
//! as ours is never touched: that is an error naming the socket.
//!
//! The backend file is kept across runs: a restarted HAProxy comes up with the servers the
//! previous one had, and the controller reconciles them with the cloud on its first tick.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::process::{Supervised, cmdline, is_alive, terminate};
use common::wait::poll_until;
use rustix::process::Signal;

use super::Haproxy;
use super::backend_file::{BackendFile, BackendServer, ServerOptions, render_backend};
use super::socket::Socket;
use crate::balancer::BackendName;

/// The files of an HAProxy of our own, all in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
    /// `main.cfg`.
    pub main_cfg: PathBuf,
    /// `backends.cfg`, the generated backend file.
    pub backends_cfg: PathBuf,
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
    /// Where its files live.
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
    /// Another HAProxy, not recorded as ours, answers on our socket.
    #[error(
        "an HAProxy that this webscaler did not start answers on {socket} (no matching {pid_file}); stop it or use another state directory"
    )]
    Foreign { socket: PathBuf, pid_file: PathBuf },
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> ProcessError + 'a {
    move |source| ProcessError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The main config: `global` (admin socket, `noreuseport`, notices to stderr), `defaults`,
/// the frontend and an optional stats listener. The backend section comes from the
/// generated backend file.
pub fn main_config(
    admin: &Path,
    level: &str,
    frontend: SocketAddr,
    stats: Option<SocketAddr>,
    backend: &BackendName,
) -> String {
    let mut s = format!(
        "# Generated by webscaler for its own HAProxy; rewritten at every start.
global
    stats socket {admin} mode 600 level {level} expose-fd listeners
    stats timeout 30s
    noreuseport
    log stderr format raw local0 notice
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout queue 30s
frontend fe_http
    bind {frontend}
    default_backend {backend}
",
        admin = admin.display()
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

/// A running HAProxy of our own, stopped (soft stop, then by PID) and cleaned up when
/// [`HaproxyProcess::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct HaproxyProcess {
    config: EmbeddedConfig,
    paths: Paths,
    child: Option<Supervised>,
    /// A stale HAProxy of a previous run that was stopped on start, if any.
    replaced: Option<u32>,
}

impl HaproxyProcess {
    /// Cleans up after a previous run (see the module docs), writes `main.cfg` (and
    /// `backends.cfg` if there is none), starts HAProxy and waits until both sockets answer.
    pub fn start(config: EmbeddedConfig) -> Result<HaproxyProcess, ProcessError> {
        let paths = Paths::new(&config.dir);
        fs::create_dir_all(&paths.dir).map_err(io_err(&paths.dir, "create the directory"))?;
        let replaced = clean_stale(&paths)?;
        fs::write(
            &paths.main_cfg,
            main_config(
                &paths.admin,
                &config.level,
                config.frontend,
                config.stats,
                &config.backend,
            ),
        )
        .map_err(io_err(&paths.main_cfg, "write"))?;
        if !paths.backends_cfg.exists() {
            fs::write(
                &paths.backends_cfg,
                render_backend(&config.backend, &config.initial_servers, &config.check),
            )
            .map_err(io_err(&paths.backends_cfg, "write"))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.log)
            .map_err(io_err(&paths.log, "open"))?;
        let log2 = log.try_clone().map_err(io_err(&paths.log, "open"))?;
        let log_start = fs::metadata(&paths.log).map(|m| m.len()).unwrap_or(0);
        let mut child = Supervised::spawn(
            "haproxy",
            Command::new(&config.haproxy)
                .arg("-W")
                .arg("-S")
                .arg(format!("{},mode,600", paths.master.display()))
                .arg("-f")
                .arg(&paths.main_cfg)
                .arg("-f")
                .arg(&paths.backends_cfg)
                .arg("-p")
                .arg(&paths.pid_file)
                .current_dir(&paths.dir)
                // Its own process group: a Ctrl-C on the terminal reaches webscaler only,
                // which then soft-stops HAProxy after its current tick.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2),
        )
        .map_err(|source| ProcessError::Spawn {
            haproxy: config.haproxy.clone(),
            source,
        })?
        .with_grace(Duration::from_secs(5));
        let admin = Socket::admin(&paths.admin);
        let master = Socket::master(&paths.master);
        let ready = poll_until(
            "HAProxy to answer",
            config.start_timeout,
            Duration::from_millis(20),
            || {
                if let Ok(Some(status)) = child.try_status() {
                    return Some(Err(status));
                }
                let a = admin.command("show info").ok()?;
                let m = master.command("show proc").ok()?;
                (a.contains("Pid:") && m.contains("worker")).then_some(Ok(()))
            },
        );
        let new_log = || {
            let text = fs::read(&paths.log).unwrap_or_default();
            let from = usize::try_from(log_start).unwrap_or(0).min(text.len());
            String::from_utf8_lossy(&text[from..]).into_owned()
        };
        match ready {
            Ok(Ok(())) => Ok(HaproxyProcess {
                config,
                paths,
                child: Some(child),
                replaced,
            }),
            Ok(Err(status)) => {
                remove_files(&paths);
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
                let _ = child.stop();
                remove_files(&paths);
                Err(ProcessError::NotAnswering {
                    socket: paths.admin.clone(),
                    waited: config.start_timeout,
                    log: paths.log.clone(),
                    tail: tail(&paths.log),
                })
            }
        }
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
        self.child.as_ref().map_or(0, Supervised::pid)
    }

    /// The pid of a previous run's HAProxy that was stopped on start, if there was one.
    pub fn replaced(&self) -> Option<u32> {
        self.replaced
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

    /// A client for it: admin socket, master socket (reloads), the backend file and the
    /// check options.
    pub fn haproxy(&self) -> Haproxy {
        Haproxy::new(self.admin_socket(), self.config.backend.clone())
            .with_master(self.master_socket())
            .with_check(self.config.check)
            // Validated when the backend file was rendered; the defaults are valid.
            .unwrap_or_else(|_| Haproxy::new(self.admin_socket(), self.config.backend.clone()))
            .with_backend_file(self.backend_file())
    }

    /// Whether it has exited (it should not while we run), and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_status().ok().flatten())
    }

    /// The end of its log, on one line.
    pub fn log_tail(&self) -> String {
        tail(&self.paths.log)
    }

    /// Stops it: SIGUSR1 (soft stop: the listeners close at once, connections finish), up
    /// to the grace period, then SIGTERM and SIGKILL by PID; then removes its sockets and
    /// pid file. The config files stay.
    pub fn stop(mut self) -> io::Result<Option<ExitStatus>> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let _ = child.signal(Signal::USR1);
        let status = match child.wait_timeout(self.config.stop_grace)? {
            Some(s) => s,
            None => child.stop()?,
        };
        remove_files(&self.paths);
        Ok(Some(status))
    }
}

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

fn remove_files(paths: &Paths) {
    for f in [&paths.admin, &paths.master, &paths.pid_file] {
        let _ = fs::remove_file(f);
    }
}

/// Whether `pid` is an HAProxy started with our `main.cfg`.
fn is_ours(pid: u32, paths: &Paths) -> bool {
    let main = paths.main_cfg.to_string_lossy();
    cmdline(pid).is_some_and(|argv| {
        argv.first()
            .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == "haproxy"))
            && argv.iter().any(|a| *a == main)
    })
}

/// Cleans up after a previous run in `paths.dir`: stops an HAProxy of ours that is still
/// running (found through the pid file and checked by its command line), and removes the
/// stale sockets and pid file. Returns the pid it stopped, if any. An HAProxy that answers
/// on our admin socket but is not ours is [`ProcessError::Foreign`].
pub fn clean_stale(paths: &Paths) -> Result<Option<u32>, ProcessError> {
    let recorded = fs::read_to_string(&paths.pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let mut stopped = None;
    if let Some(pid) = recorded.filter(|&p| is_alive(p) && is_ours(p, paths)) {
        // Soft stop first: it closes its listeners at once and finishes its connections.
        let _ = common::process::signal_pid(pid, Signal::USR1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        terminate(pid, Duration::from_secs(5))
            .map_err(io_err(&paths.pid_file, "stop the HAProxy it names"))?;
        stopped = Some(pid);
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
                pid_file: paths.pid_file.clone(),
            });
        }
    }
    remove_files(paths);
    Ok(stopped)
}
