//! HAProxy's settings, resolved ([`HaproxySettings`]), and the clients they give: the
//! system's HAProxy (`run` and `status` with a cloud, and every `webscaler haproxy` command)
//! or the embedded one of a state directory.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::split_words;
use serde::Deserialize;

use super::HaproxyLayer;
use super::SettingsError;
use super::cloud::Provider;
use crate::balancer::BackendName;
use crate::haproxy::process::Paths;
use crate::haproxy::{
    BackendFile, DEFAULT_ADMIN_SOCKET, Haproxy, ReloadMethod, ServerOptions, Socket,
};

/// The embedded HAProxy's default frontend.
pub const DEFAULT_FRONTEND: &str = "127.0.0.1:8080";

/// The reload command of the fallback when there is no master socket.
pub const DEFAULT_RELOAD_COMMAND: &str = "systemctl reload haproxy";
/// The shortest health-check interval (HAProxy takes 1 ms, which only churns).
pub const MIN_CHECK_INTER: Duration = Duration::from_millis(100);
/// The shortest socket timeout.
pub const MIN_SOCKET_TIMEOUT: Duration = Duration::from_millis(100);

/// Where HAProxy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HaproxyMode {
    /// Embedded when the provider is local and no socket is given, else system.
    Auto,
    /// Start and own an HAProxy (config and sockets in the state directory).
    Embedded,
    /// Attach to a running HAProxy through its admin socket.
    System,
}

impl fmt::Display for HaproxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HaproxyMode::Auto => "auto",
            HaproxyMode::Embedded => "embedded",
            HaproxyMode::System => "system",
        })
    }
}

/// HAProxy's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxySettings {
    pub mode: HaproxyMode,
    /// Embedded: where the frontends listen, one HAProxy each (at least one).
    pub frontends: Vec<SocketAddr>,
    /// Embedded: a stats page at `http://ADDR/stats` (the first HAProxy's).
    pub stats: Option<SocketAddr>,
    /// System: the admin sockets, one per HAProxy instance (none:
    /// [`DEFAULT_ADMIN_SOCKET`]).
    pub sockets: Vec<PathBuf>,
    /// System: the master sockets, which reload: none, or one per admin socket.
    pub master_sockets: Vec<PathBuf>,
    /// The HAProxy backend the servers are in.
    pub backend: BackendName,
    /// System: the generated backend files to keep in step: none, or one per admin socket.
    pub backend_files: Vec<PathBuf>,
    /// System: every config file HAProxy loads, in order (the backend file is checked in
    /// its place among them).
    pub configs: Vec<PathBuf>,
    /// System: the reload command of the fallback, split into words as `sh` does (`None`:
    /// [`DEFAULT_RELOAD_COMMAND`]).
    pub reload_command: Option<Vec<String>>,
    /// System: HAProxy's `server-state-file` (loaded with `load-server-state-from-file
    /// global`), which webscaler keeps current so a reload or restart keeps every server's
    /// state: none, or one per admin socket. (The embedded HAProxy has its own in its
    /// directory.)
    pub server_state_files: Vec<PathBuf>,
    /// The haproxy binary (embedded: the one started; system: the one of `haproxy -c`).
    pub program: PathBuf,
    /// Health checks and idle connections of the servers.
    pub check: ServerOptions,
    /// Socket read timeout (and connect timeout, up to 5 s).
    pub socket_timeout: Duration,
}

impl HaproxySettings {
    /// The layer's `[haproxy]` keys over the defaults, checked.
    pub fn resolve(h: &HaproxyLayer) -> Result<HaproxySettings, SettingsError> {
        let invalid = |e: String| SettingsError::Invalid(e);
        let backend = h.backend.as_deref().unwrap_or("nodes");
        let backend = BackendName::new(backend).map_err(|e| invalid(format!("backend: {e}")))?;
        let d = ServerOptions::default();
        let check = ServerOptions {
            inter: h.check_inter.unwrap_or(d.inter),
            rise: h.check_rise.unwrap_or(d.rise),
            fall: h.check_fall.unwrap_or(d.fall),
            pool_purge_delay: h.pool_purge_delay.unwrap_or(d.pool_purge_delay),
        };
        check.validate().map_err(|e| invalid(e.to_string()))?;
        super::at_least(
            "check-inter",
            "haproxy.check_inter",
            check.inter,
            MIN_CHECK_INTER,
            "",
        )?;
        let socket_timeout = h.socket_timeout.unwrap_or(Duration::from_secs(10));
        super::at_least(
            "socket-timeout",
            "haproxy.socket_timeout",
            socket_timeout,
            MIN_SOCKET_TIMEOUT,
            "",
        )?;
        let reload_command = match &h.reload_command {
            Some(c) => {
                let argv = split_words(c).map_err(|e| {
                    invalid(format!("--reload-command (haproxy.reload_command): {e}"))
                })?;
                if argv.is_empty() {
                    return Err(invalid(
                        "--reload-command (haproxy.reload_command) is empty".into(),
                    ));
                }
                Some(argv)
            }
            None => None,
        };
        let frontends = match &h.frontend {
            Some(f) if !f.is_empty() => f.clone(),
            _ => vec![
                DEFAULT_FRONTEND
                    .parse()
                    .map_err(|e| invalid(format!("frontend: {e}")))?,
            ],
        };
        if let Some(twice) = frontends
            .iter()
            .enumerate()
            .find_map(|(i, f)| frontends[..i].contains(f).then_some(f))
        {
            return Err(invalid(format!(
                "--frontend (haproxy.frontend) {twice} is given twice: one HAProxy per address"
            )));
        }
        let sockets = h.socket.clone().unwrap_or_default();
        let per_socket = |flag: &str, key: &str, v: &Option<Vec<PathBuf>>| {
            let v = v.clone().unwrap_or_default();
            if v.len() > 1 && v.len() != sockets.len().max(1) || v.len() == 1 && sockets.len() > 1 {
                return Err(invalid(format!(
                    "{flag} ({key}) is given {} time(s) for {} --socket (haproxy.socket): give one per socket, in the same order, or none",
                    v.len(),
                    sockets.len().max(1)
                )));
            }
            Ok(v)
        };
        let backend_files = per_socket("--backend-file", "haproxy.backend_file", &h.backend_file)?;
        let master_sockets =
            per_socket("--master-socket", "haproxy.master_socket", &h.master_socket)?;
        let server_state_files = per_socket(
            "--server-state-file",
            "haproxy.server_state_file",
            &h.server_state_file,
        )?;
        Ok(HaproxySettings {
            mode: h.mode.unwrap_or(HaproxyMode::Auto),
            frontends,
            stats: h.stats,
            sockets,
            master_sockets,
            backend,
            backend_files,
            configs: h.config.clone().unwrap_or_default(),
            reload_command,
            server_state_files,
            program: h
                .program
                .clone()
                .unwrap_or_else(|| PathBuf::from("haproxy")),
            check,
            socket_timeout,
        })
    }

    /// Whether webscaler starts its own HAProxy with this provider.
    pub fn embedded(&self, provider: Provider) -> bool {
        match self.mode {
            HaproxyMode::Embedded => true,
            HaproxyMode::System => false,
            HaproxyMode::Auto => provider == Provider::Local && self.sockets.is_empty(),
        }
    }

    /// The first (or only) embedded frontend.
    pub fn frontend(&self) -> SocketAddr {
        self.frontends[0]
    }

    /// How many HAProxy instances `run` drives with this provider.
    pub fn instance_count(&self, provider: Provider) -> usize {
        if self.embedded(provider) {
            self.frontends.len()
        } else {
            self.sockets.len().max(1)
        }
    }

    /// The embedded HAProxy's directory in the state directory (the first instance's).
    pub fn embedded_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("haproxy")
    }

    /// The directory of embedded instance `i` (0 first): `haproxy`, then `haproxy.2`,
    /// `haproxy.3`, ... so that a single instance keeps today's files.
    pub fn embedded_dir_of(state_dir: &Path, i: usize) -> PathBuf {
        match i {
            0 => Self::embedded_dir(state_dir),
            _ => state_dir.join(format!("haproxy.{}", i + 1)),
        }
    }

    /// `socket` with the configured timeouts.
    pub fn timeouts(&self, socket: Socket) -> Socket {
        socket.with_timeout(self.socket_timeout)
    }

    /// A client for the system's HAProxy: the (first) admin socket (or the default one),
    /// its master socket to reload, its backend file to keep in step, and the reload
    /// command when there is no master socket.
    pub fn system_client(&self) -> Result<Haproxy, SettingsError> {
        let admin = Socket::admin(
            self.sockets
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET)),
        );
        self.client_on(self.timeouts(admin), 0)
    }

    /// A client per admin socket (each with its own master socket, backend file and server
    /// state file), with the names their log lines use.
    pub fn system_clients(&self) -> Result<Vec<(String, Haproxy)>, SettingsError> {
        if self.sockets.len() <= 1 {
            let c = self.system_client()?;
            return Ok(vec![(c.socket().path().display().to_string(), c)]);
        }
        self.sockets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let c = self.client_on(self.timeouts(Socket::admin(s)), i)?;
                Ok((s.display().to_string(), c))
            })
            .collect()
    }

    /// As [`HaproxySettings::system_client`], except that with a master socket and no admin
    /// socket the runtime API is reached through the master's first worker (what the
    /// `webscaler haproxy` commands do).
    pub fn operator_client(&self) -> Result<Haproxy, SettingsError> {
        match (self.sockets.first(), self.master_sockets.first()) {
            (None, Some(m)) => self.client_on(self.timeouts(Socket::master(m)), 0),
            _ => self.system_client(),
        }
    }

    /// The client on `admin` with the files of instance `i`.
    fn client_on(&self, admin: Socket, i: usize) -> Result<Haproxy, SettingsError> {
        let mut ha = Haproxy::new(admin, self.backend.clone())
            .with_check(self.check)
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        if let Some(m) = self.master_sockets.get(i)
            && ha.master().is_none()
        {
            ha = ha.with_master(self.timeouts(Socket::master(m)));
        }
        if let Some(f) = self.backend_files.get(i) {
            ha = ha.with_backend_file(
                BackendFile::new(f)
                    .with_config_files(self.configs.clone())
                    .with_haproxy(&self.program),
            );
        }
        if let Some(f) = self.server_state_files.get(i) {
            ha = ha.with_state_file(f);
        }
        if ha.master().is_none() {
            let argv = self.reload_command.clone().unwrap_or_else(|| {
                DEFAULT_RELOAD_COMMAND
                    .split(' ')
                    .map(str::to_owned)
                    .collect()
            });
            ha = ha.with_reload(ReloadMethod::Command(argv));
        }
        Ok(ha)
    }

    /// A client for the embedded HAProxy of `state_dir` (running or not).
    pub fn embedded_client(&self, state_dir: &Path) -> Haproxy {
        let paths = Paths::new(Self::embedded_dir(state_dir));
        Haproxy::new(
            self.timeouts(Socket::admin(&paths.admin)),
            self.backend.clone(),
        )
        .with_master(self.timeouts(Socket::master(&paths.master)))
    }
}
