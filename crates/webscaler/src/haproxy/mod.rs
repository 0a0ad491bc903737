//! webscaler's HAProxy side: the runtime API over the admin socket, statistics, the
//! reload-safe request rate, the server lifecycle without reloads, and the generated backend
//! file that keeps a restart in step with the runtime state.
//!
//! - [`socket`]: the Unix-socket client (admin socket and master CLI).
//! - [`stats`], [`info`], [`state`]: parsers for `show stat`, `show info`, `show servers state`.
//! - [`lifecycle`]: add, drain, remove, ready, maint ([`Haproxy`] methods).
//! - [`backend_file`]: the askama-rendered backend section, installed only after `haproxy -c`.
//! - [`reload`]: the fallback when the runtime API cannot do it (master CLI or a command).
//!
//! [`Haproxy`] ties them together for one HAProxy instance and one backend; that is what the
//! scaling loop and the `webscaler haproxy` commands use.

pub mod backend_file;
pub mod balancer;
pub mod info;
pub mod lifecycle;
pub mod process;
pub mod reload;
pub mod socket;
pub mod state;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::balancer::{BackendName, InvalidValue, Metric, ServerAddr, ServerName};
use crate::rate::meter::Sample;

pub use backend_file::{
    BackendFile, BackendFileError, BackendServer, Installed, ServerOptions, render_backend,
};
pub use info::Info;
pub use lifecycle::{AddOutcome, AddStep, ChangeMethod, DrainOutcome, RemoveOutcome, RemoveStep};

pub use reload::{ReloadError, ReloadMethod};
pub use socket::{DEFAULT_ADMIN_SOCKET, Socket, SocketError, SocketKind};
pub use state::ServerState;
pub use stats::{StatRow, StatTable, Status};

/// Anything that went wrong with HAProxy. Messages name the socket, backend, server or file.
#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    /// The socket failed (connect, timeout, read).
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// A value was refused before it reached HAProxy.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// HAProxy answered a command with something other than success.
    #[error("HAProxy socket {socket}: {command:?} failed: {reply}")]
    Reply {
        socket: PathBuf,
        command: String,
        /// HAProxy's answer (trimmed).
        reply: String,
    },
    /// A reply could not be parsed.
    #[error("HAProxy socket {socket}: {message}")]
    Parse {
        socket: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// The backend does not exist.
    #[error("HAProxy socket {socket}: no backend named {backend:?}")]
    NoSuchBackend { socket: PathBuf, backend: String },
    /// The server does not exist.
    #[error("HAProxy socket {socket}: no server {backend}/{server}")]
    NoSuchServer {
        socket: PathBuf,
        backend: String,
        server: String,
    },
    /// A server of that name exists with another address.
    #[error(
        "HAProxy socket {socket}: server {backend}/{server} already exists with address {existing}, not {wanted}"
    )]
    AddressMismatch {
        socket: PathBuf,
        backend: String,
        server: String,
        /// Its current address.
        existing: String,
        /// The address asked for.
        wanted: String,
    },
    /// The server did not pass its health check in time; it stays in maintenance.
    #[error(
        "server {backend}/{server} did not pass its health check within {waited:?} (last check: {last}); it stays in maintenance"
    )]
    CheckTimeout {
        backend: String,
        server: String,
        /// How long it waited.
        waited: Duration,
        /// The last check status and description.
        last: String,
    },
    /// `del server` kept failing because connections remain; the server stays in maintenance.
    #[error(
        "server {backend}/{server} still has connections after {waited:?}; it stays in maintenance: {reply}"
    )]
    RemoveTimeout {
        backend: String,
        server: String,
        /// How long it retried.
        waited: Duration,
        /// HAProxy's last answer.
        reply: String,
    },
    /// The runtime API refused a command (HAProxy too old, or the socket's level too low)
    /// and no backend file is configured to fall back to a reload.
    #[error(
        "HAProxy socket {socket}: {command:?} was refused ({reply}), and there is no backend file to fall back to a reload"
    )]
    Refused {
        socket: PathBuf,
        command: String,
        /// HAProxy's answer.
        reply: String,
    },
    /// A shutdown was requested while waiting.
    #[error("interrupted while {0}")]
    Cancelled(String),
    /// The backend file could not be written or was rejected.
    #[error(transparent)]
    BackendFile(#[from] BackendFileError),
    /// The fallback reload failed.
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// The server state file could not be written.
    #[error("cannot write the server state file {}: {source}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HaproxyError {
    /// Whether the error is bad input (a refused name or address): a usage error for a CLI.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, HaproxyError::Invalid(_))
    }

    /// The kind of error in one lowercase word (a metrics label): `socket` (HAProxy does not
    /// answer), `reply` (it answered with an error), `refused` (the runtime API refused and
    /// no reload could), and so on.
    pub fn kind(&self) -> &'static str {
        match self {
            HaproxyError::Socket(_) => "socket",
            HaproxyError::Invalid(_) => "invalid",
            HaproxyError::Reply { .. } => "reply",
            HaproxyError::Parse { .. } => "parse",
            HaproxyError::NoSuchBackend { .. } => "no_backend",
            HaproxyError::NoSuchServer { .. } => "no_server",
            HaproxyError::AddressMismatch { .. } => "address_mismatch",
            HaproxyError::CheckTimeout { .. } => "check_timeout",
            HaproxyError::RemoveTimeout { .. } => "remove_timeout",
            HaproxyError::Refused { .. } => "refused",
            HaproxyError::Cancelled(_) => "cancelled",
            HaproxyError::BackendFile(_) => "backend_file",
            HaproxyError::Reload(_) => "reload",
            HaproxyError::StateFile { .. } => "state_file",
        }
    }
}

/// A server as the operator sees it: `show stat`'s state, check and session counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    pub name: String,
    /// `IP:port`.
    pub addr: Option<String>,
    /// The state, typed.
    pub status: Status,
    /// The state as HAProxy wrote it (`UP 1/3`).
    pub status_text: String,
    /// The last check's result (`L7OK`, `L4CON`, ...).
    pub check_status: Option<String>,
    /// The last check's result in words.
    pub check_desc: Option<String>,
    /// Current sessions.
    pub scur: u64,
    /// Total sessions.
    pub stot: u64,
    pub weight: Option<u64>,
}

impl From<&StatRow> for Server {
    fn from(r: &StatRow) -> Server {
        Server {
            name: r.name.clone(),
            addr: r.addr.clone(),
            status: r.status.clone(),
            status_text: r.status_text.clone(),
            check_status: r.check_status.clone(),
            check_desc: r.check_desc.clone(),
            scur: r.scur.unwrap_or(0),
            stot: r.stot.unwrap_or(0),
            weight: r.weight,
        }
    }
}

/// One backend's `show stat` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendStats {
    /// The `BACKEND` row (totals, cumulative counters).
    pub backend: StatRow,
    /// The server rows, in HAProxy's order.
    pub servers: Vec<StatRow>,
}

impl BackendStats {
    /// One server's row.
    pub fn server(&self, name: &str) -> Option<&StatRow> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The servers that take load-balanced traffic now (`UP`, including `UP 1/3`, or
    /// `no check`): the lab report's "active servers in HAProxy" (`haactive`).
    pub fn active(&self) -> impl Iterator<Item = &StatRow> {
        self.servers.iter().filter(|s| s.status.takes_traffic())
    }
}

/// Defaults for waits.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One HAProxy instance and one of its backends: the runtime API, and optionally the backend
/// file to keep in step and how to reload.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use webscaler::balancer::{BackendName, Metric, ServerName};
/// use webscaler::haproxy::{Haproxy, Socket};
/// use webscaler::rate::meter::RateMeter;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shutdown = common::Shutdown::new()?;
/// let ha = Haproxy::new(Socket::admin("/run/haproxy/admin.sock"), BackendName::default());
/// let origin = Instant::now();
/// let mut meter = RateMeter::new();
/// let _first = meter.update(ha.sample(Metric::Sessions, origin)?);
/// let name = ServerName::new("node-4")?;
/// ha.add_server(&name, "192.0.2.4:80".parse()?, Instant::now() + Duration::from_secs(60), &shutdown)?;
/// ha.drain(&name, Instant::now() + Duration::from_secs(30), &shutdown)?;
/// ha.remove(&name, Instant::now() + Duration::from_secs(30), &shutdown)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Haproxy {
    socket: Socket,
    master: Option<Socket>,
    backend: BackendName,
    check: ServerOptions,
    poll_every: Duration,
    file: Option<BackendFile>,
    reload: Option<ReloadMethod>,
    state_file: Option<PathBuf>,
}

impl Haproxy {
    /// An instance reached through `socket` (an admin socket, or a master socket whose
    /// commands then go to the worker as `@1 …`), managing `backend`.
    pub fn new(socket: Socket, backend: BackendName) -> Haproxy {
        let master = (socket.kind() == SocketKind::Master).then(|| socket.clone());
        Haproxy {
            socket,
            master,
            backend,
            check: ServerOptions::default(),
            poll_every: DEFAULT_POLL_INTERVAL,
            file: None,
            reload: None,
            state_file: None,
        }
    }

    /// The master CLI socket, for reloads.
    pub fn with_master(mut self, master: Socket) -> Haproxy {
        self.master = Some(master);
        self
    }

    /// The check options for added servers and the backend file.
    pub fn with_check(mut self, check: ServerOptions) -> Result<Haproxy, InvalidValue> {
        check.validate()?;
        self.check = check;
        Ok(self)
    }

    /// How often waits look at `show stat`.
    pub fn with_poll_interval(mut self, every: Duration) -> Haproxy {
        self.poll_every = every.max(Duration::from_millis(1));
        self
    }

    /// Keeps this backend file in step with the runtime state after every change, and uses
    /// it for the reload fallback.
    pub fn with_backend_file(mut self, file: BackendFile) -> Haproxy {
        self.file = Some(file);
        self
    }

    /// Keeps HAProxy's server state file (its `server-state-file`, loaded with
    /// `load-server-state-from-file global`) current: [`Haproxy::save_state`] after every
    /// change made through the [`crate::balancer::Balancer`] calls and before every reload,
    /// so a restarted or reloaded HAProxy starts with the servers' states.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Haproxy {
        self.state_file = Some(path.into());
        self
    }

    /// The server state file, if one is kept.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.state_file.as_deref()
    }

    /// Writes `show servers state` (every backend: the file is HAProxy's global one) to the
    /// server state file, atomically, if one is kept. Returns whether it wrote.
    pub fn save_state(&self) -> Result<bool, HaproxyError> {
        let Some(path) = &self.state_file else {
            return Ok(false);
        };
        let reply = self.command("show servers state")?;
        state::parse_servers_state(&reply).map_err(|e| self.parse_err(e))?;
        common::atomic::write(path, reply.as_bytes()).map_err(|source| {
            HaproxyError::StateFile {
                path: path.clone(),
                source,
            }
        })?;
        Ok(true)
    }

    /// Saves the servers' states, then reloads (the fallback of a refused change).
    fn reload(&self, deadline: Instant) -> Result<(), HaproxyError> {
        self.save_state()?;
        self.reload_method().reload(deadline)?;
        Ok(())
    }

    /// How to reload for the fallback (default: [`ReloadMethod::default_for`] the master
    /// socket).
    pub fn with_reload(mut self, method: ReloadMethod) -> Haproxy {
        self.reload = Some(method);
        self
    }

    /// The socket commands go to.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The master socket, if known.
    pub fn master(&self) -> Option<&Socket> {
        self.master.as_ref()
    }

    /// The backend.
    pub fn backend(&self) -> &BackendName {
        &self.backend
    }

    /// The backend file, if one is kept.
    pub fn backend_file(&self) -> Option<&BackendFile> {
        self.file.as_ref()
    }

    /// The reload method in effect.
    pub fn reload_method(&self) -> ReloadMethod {
        self.reload
            .clone()
            .unwrap_or_else(|| ReloadMethod::default_for(self.master.as_ref()))
    }

    /// Sends one runtime-API command and returns the reply.
    pub fn command(&self, command: &str) -> Result<String, HaproxyError> {
        Ok(self.socket.worker_command(command)?)
    }

    fn parse_err(&self, message: impl std::fmt::Display) -> HaproxyError {
        HaproxyError::Parse {
            socket: self.socket.path().to_path_buf(),
            message: message.to_string(),
        }
    }

    fn no_such_backend(&self) -> HaproxyError {
        HaproxyError::NoSuchBackend {
            socket: self.socket.path().to_path_buf(),
            backend: self.backend.to_string(),
        }
    }

    /// `show stat`: every proxy and server.
    pub fn stat_table(&self) -> Result<StatTable, HaproxyError> {
        let reply = self.command("show stat")?;
        stats::parse_show_stat(&reply).map_err(|e| self.parse_err(e))
    }

    /// `show stat <backend> -1 -1`: the backend row and its servers.
    pub fn stats(&self) -> Result<BackendStats, HaproxyError> {
        let reply = self.command(&format!("show stat {} -1 -1", self.backend))?;
        if reply.trim() == "No such proxy." {
            return Err(self.no_such_backend());
        }
        let table = stats::parse_show_stat(&reply).map_err(|e| self.parse_err(e))?;
        let backend = table
            .backend(self.backend.as_str())
            .cloned()
            .ok_or_else(|| self.no_such_backend())?;
        let servers = table.servers(self.backend.as_str()).cloned().collect();
        Ok(BackendStats { backend, servers })
    }

    /// The backend's servers: state, check, sessions.
    pub fn servers(&self) -> Result<Vec<Server>, HaproxyError> {
        Ok(self.stats()?.servers.iter().map(Server::from).collect())
    }

    /// `show info`.
    pub fn info(&self) -> Result<Info, HaproxyError> {
        let reply = self.command("show info")?;
        info::parse_show_info(&reply).map_err(|e| self.parse_err(e))
    }

    /// `show servers state <backend>`.
    pub fn servers_state(&self) -> Result<Vec<ServerState>, HaproxyError> {
        let reply = self.command(&format!("show servers state {}", self.backend))?;
        if reply.trim() == "Can't find backend." {
            return Err(self.no_such_backend());
        }
        state::parse_servers_state(&reply).map_err(|e| self.parse_err(e))
    }

    /// One sample of the backend's cumulative counter for the rate: `show info` (pid and
    /// uptime, to recognise reloads), then `show stat`, timed on the monotonic clock as the
    /// time since `origin` (any fixed instant; use the same one for every sample of a meter).
    pub fn sample(&self, metric: Metric, origin: Instant) -> Result<Sample, HaproxyError> {
        let info = self.info()?;
        let before = Instant::now();
        let stats = self.stats()?;
        let after = Instant::now();
        let counter = self.counter_of(metric, &stats)?;
        Ok(Sample {
            counter,
            at: (before + (after - before) / 2).saturating_duration_since(origin),
            uptime_sec: Some(info.uptime_sec),
            pid: Some(info.pid),
        })
    }

    /// The backend row's counter for `metric`.
    pub(crate) fn counter_of(
        &self,
        metric: Metric,
        stats: &BackendStats,
    ) -> Result<u64, HaproxyError> {
        let row = &stats.backend;
        let counter = match metric {
            Metric::Sessions => row.stot,
            Metric::Requests => row.req_tot,
        };
        counter.ok_or_else(|| {
            self.parse_err(format!(
                "show stat: backend {} has no {} value",
                self.backend,
                metric.column()
            ))
        })
    }

    /// The servers HAProxy has now, as backend-file entries: all but those in maintenance.
    /// A restarted HAProxy would restore a server in maintenance with its checks paused, so
    /// one that joins (or is being removed) is left out of the file, and is added again at
    /// run time.
    pub fn backend_servers(&self) -> Result<Vec<BackendServer>, HaproxyError> {
        self.file_servers(&self.servers_state()?)
    }

    /// The backend-file entries of `states` (this backend's servers not in maintenance).
    fn file_servers(&self, states: &[ServerState]) -> Result<Vec<BackendServer>, HaproxyError> {
        states
            .iter()
            .filter(|s| s.backend == self.backend.as_str() && !s.admin_state.maint())
            .map(|s| {
                // HAProxy allows names (`:`) and addresses (FQDNs, none) the file does not.
                let unusable = |e: InvalidValue| {
                    self.parse_err(format!(
                        "server {}/{} cannot be written to the backend file: {e}",
                        self.backend, s.name
                    ))
                };
                Ok(BackendServer {
                    name: ServerName::new(&s.name).map_err(unusable)?,
                    addr: ServerAddr::new(&s.socket_addr()).map_err(unusable)?,
                })
            })
            .collect()
    }

    /// The backend file for the servers HAProxy has now.
    pub fn render_backend_file(&self) -> Result<String, HaproxyError> {
        Ok(render_backend(
            &self.backend,
            &self.backend_servers()?,
            &self.check,
        ))
    }

    /// Brings the files a restarted HAProxy starts from up to date with what it has now,
    /// from one `show servers state`: the backend file (if kept; installed only when it
    /// changes) and the server state file (if kept). The loop calls it after every change
    /// and every tick.
    pub fn persist(&self) -> Result<(), HaproxyError> {
        if self.file.is_none() && self.state_file.is_none() {
            return Ok(());
        }
        let reply = self.command("show servers state")?;
        let states = state::parse_servers_state(&reply).map_err(|e| self.parse_err(e))?;
        if let Some(file) = &self.file {
            let text = render_backend(&self.backend, &self.file_servers(&states)?, &self.check);
            file.install(&text)?;
        }
        if let Some(path) = &self.state_file {
            common::atomic::write(path, reply.as_bytes()).map_err(|source| {
                HaproxyError::StateFile {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Rewrites the backend file (if one is kept) to hold exactly the servers HAProxy has
    /// now. `None` when no file is kept.
    pub fn sync_backend_file(&self) -> Result<Option<Installed>, HaproxyError> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let text = self.render_backend_file()?;
        Ok(Some(file.install(&text)?))
    }
}
