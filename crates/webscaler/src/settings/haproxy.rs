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
    /// Embedded: where the frontend listens.
    pub frontend: SocketAddr,
    /// Embedded: a stats page at `http://ADDR/stats`.
    pub stats: Option<SocketAddr>,
    /// System: the admin socket (`None`: [`DEFAULT_ADMIN_SOCKET`]).
    pub socket: Option<PathBuf>,
    /// System: the master socket, which reloads.
    pub master_socket: Option<PathBuf>,
    /// The HAProxy backend the servers are in.
    pub backend: BackendName,
    /// System: the generated backend file to keep in step.
    pub backend_file: Option<PathBuf>,
    /// System: every config file HAProxy loads, in order (the backend file is checked in
    /// its place among them).
    pub configs: Vec<PathBuf>,
    /// System: the reload command of the fallback, split into words as `sh` does (`None`:
    /// [`DEFAULT_RELOAD_COMMAND`]).
    pub reload_command: Option<Vec<String>>,
    /// System: HAProxy's `server-state-file` (loaded with `load-server-state-from-file
    /// global`), which webscaler keeps current so a reload or restart keeps every server's
    /// state. (The embedded HAProxy has its own in its directory.)
    pub server_state_file: Option<PathBuf>,
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
        let frontend = match h.frontend {
            Some(f) => f,
            None => DEFAULT_FRONTEND
                .parse()
                .map_err(|e| invalid(format!("frontend: {e}")))?,
        };
        Ok(HaproxySettings {
            mode: h.mode.unwrap_or(HaproxyMode::Auto),
            frontend,
            stats: h.stats,
            socket: h.socket.clone(),
            master_socket: h.master_socket.clone(),
            backend,
            backend_file: h.backend_file.clone(),
            configs: h.config.clone().unwrap_or_default(),
            reload_command,
            server_state_file: h.server_state_file.clone(),
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
            HaproxyMode::Auto => provider == Provider::Local && self.socket.is_none(),
        }
    }

    /// The embedded HAProxy's directory in the state directory.
    pub fn embedded_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("haproxy")
    }

    /// `socket` with the configured timeouts.
    pub fn timeouts(&self, socket: Socket) -> Socket {
        socket.with_timeout(self.socket_timeout)
    }

    /// A client for the system's HAProxy: the admin socket (or the default one), the master
    /// socket to reload, the backend file to keep in step, and the reload command when
    /// there is no master socket.
    pub fn system_client(&self) -> Result<Haproxy, SettingsError> {
        let admin = Socket::admin(
            self.socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET)),
        );
        self.client_on(self.timeouts(admin))
    }

    /// As [`HaproxySettings::system_client`], except that with a master socket and no admin
    /// socket the runtime API is reached through the master's first worker (what the
    /// `webscaler haproxy` commands do).
    pub fn operator_client(&self) -> Result<Haproxy, SettingsError> {
        match (&self.socket, &self.master_socket) {
            (None, Some(m)) => self.client_on(self.timeouts(Socket::master(m))),
            _ => self.system_client(),
        }
    }

    fn client_on(&self, admin: Socket) -> Result<Haproxy, SettingsError> {
        let mut ha = Haproxy::new(admin, self.backend.clone())
            .with_check(self.check)
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        if let Some(m) = &self.master_socket
            && ha.master().is_none()
        {
            ha = ha.with_master(self.timeouts(Socket::master(m)));
        }
        if let Some(f) = &self.backend_file {
            ha = ha.with_backend_file(
                BackendFile::new(f)
                    .with_config_files(self.configs.clone())
                    .with_haproxy(&self.program),
            );
        }
        if let Some(f) = &self.server_state_file {
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
