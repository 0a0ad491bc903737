//! `webscaler run`: the scaling loop on the drift-free ticker, and the settings it shares
//! with `webscaler status`.
//!
//! Settings come from the built-in defaults, then the TOML file (`--config`), then
//! `WEBSCALER_*` variables, then flags. With no cloud configured the local provider is used
//! and webscaler starts and owns its own HAProxy (the embedded mode: one command gives an
//! auto-scaled web service on a fresh machine); with a cloud it attaches to the system's
//! HAProxy through its admin socket.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Args;
use common::cli::UsageError;
use common::csvfile::CsvAppender;
use common::shutdown::Shutdown;
use common::ticker::Ticker;
use common::time::{TimeFormat, format_duration, parse_duration};
use serde::{Deserialize, Serialize};

use crate::balancer::{BackendName, Metric};
use crate::cli::cloud::{Provider, ProviderArgs};
use crate::clock::SystemClock;
use crate::cloud::Naming;
use crate::cloud::openstack::config::Env;
use crate::config::{FileConfig, HaproxyMode};
use crate::controller::{self, Controller, HEADER, TickReport};
use crate::haproxy::process::{EmbeddedConfig, HaproxyProcess};
use crate::haproxy::{
    BackendFile, DEFAULT_ADMIN_SOCKET, Haproxy, ReloadMethod, ServerOptions, Socket,
};
use crate::policy::{self, DefaultPolicy, Policy, PolicyKind, Predictive, SeedConfig, SeedPolicy};
use crate::rate::{Threshold, Tolerance};

/// The embedded HAProxy's default frontend.
pub const DEFAULT_FRONTEND: &str = "127.0.0.1:8080";
/// The default tick interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The file in the state directory that the running instance keeps its last tick in.
pub const STATUS_FILE: &str = "status.json";
/// The lock file of the running instance in the state directory.
pub const LOCK_FILE: &str = "webscaler.lock";

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    s.parse()
}

fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let t = Threshold::parse(s).map_err(|e| e.to_string())?;
    Ok(t)
}

fn parse_tolerance(s: &str) -> Result<Tolerance, String> {
    Tolerance::parse(s).map_err(|e| e.to_string())
}

/// The scaling settings `run`, `status` and `simulate` share: the tick, the policy and its
/// settings, the warm pool. Flags, then `WEBSCALER_*` variables, then the configuration
/// file's keys of the same names.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Time between ticks [default: 5s].
    #[arg(long, env = "WEBSCALER_INTERVAL", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// The policy: default, or seed (the lab report's algorithm, a round every 60 s)
    /// [default: default].
    #[arg(long, env = "WEBSCALER_POLICY", value_parser = parse_policy)]
    pub policy: Option<PolicyKind>,
    /// Requests per second one server takes [default: 10].
    #[arg(long, env = "WEBSCALER_THRESHOLD", value_parser = parse_threshold)]
    pub threshold: Option<Threshold>,
    /// Servers kept at least [default: 2].
    #[arg(long, env = "WEBSCALER_MIN", value_name = "N")]
    pub min: Option<u32>,
    /// Servers at most, besides the cloud's quota [default: the quota].
    #[arg(long, env = "WEBSCALER_MAX", value_name = "N")]
    pub max: Option<u32>,
    /// Release a server only when one fewer would keep this share of the threshold spare
    /// [default: 0.1].
    #[arg(long, env = "WEBSCALER_TOLERANCE", value_parser = parse_tolerance)]
    pub tolerance: Option<Tolerance>,
    /// Scale down only after the recommendation stayed lower this long [default: 60s].
    #[arg(long, env = "WEBSCALER_SCALE_DOWN_WINDOW", value_parser = parse_duration)]
    pub scale_down_window: Option<Duration>,
    /// Backends removed at most per tick [default: no limit].
    #[arg(long, env = "WEBSCALER_MAX_REMOVE_PER_TICK", value_name = "N")]
    pub max_remove_per_tick: Option<u32>,
    /// Hold scale-down while a backend is booting or joining [default: true].
    #[arg(long, env = "WEBSCALER_HOLD_DOWN_WHILE_PENDING", value_name = "BOOL")]
    pub hold_down_while_pending: Option<bool>,
    /// Scale up ahead of a sustained rise of the rate; `--predictive false` turns it off
    /// [default: true].
    #[arg(
        long,
        env = "WEBSCALER_PREDICTIVE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub predictive: Option<bool>,
    /// Predictive: how far back the trend is fitted [default: 120s].
    #[arg(long, value_parser = parse_duration)]
    pub predictive_history: Option<Duration>,
    /// Predictive: how far ahead it is read [default: 120s].
    #[arg(long, value_parser = parse_duration)]
    pub predictive_lead: Option<Duration>,
    /// Stopped backends kept for a fast start; more are deleted [default: 1].
    #[arg(long, env = "WEBSCALER_WARM_POOL", value_name = "N")]
    pub warm_pool: Option<u32>,
}

/// The policy settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Time between ticks.
    pub interval: Duration,
    /// Which policy.
    pub kind: PolicyKind,
    /// The default policy's settings (the seed policy uses threshold, min and max).
    pub config: policy::Config,
    /// Stopped backends kept.
    pub warm_pool: u32,
}

impl PolicyArgs {
    /// Flags and variables over the file over the defaults.
    pub fn resolve(&self, file: &FileConfig) -> Result<PolicySettings> {
        let d = |flag: Option<Duration>, f: Option<crate::config::Dur>, def: Duration| {
            flag.or(f.map(|x| x.0)).unwrap_or(def)
        };
        let interval = d(self.interval, file.interval, DEFAULT_INTERVAL);
        if interval.is_zero() {
            return Err(usage("the interval must be longer than 0"));
        }
        let kind = match (self.policy, &file.policy) {
            (Some(p), _) => p,
            (None, Some(p)) => p.parse().map_err(|e| usage(format!("policy: {e}")))?,
            (None, None) => PolicyKind::Default,
        };
        let defaults = policy::Config::default();
        let on = self
            .predictive
            .or(file.predictive)
            .unwrap_or(defaults.predictive.is_some());
        let predictive = on.then(|| Predictive {
            history: d(
                self.predictive_history,
                file.predictive_history,
                Predictive::default().history,
            ),
            lead: d(
                self.predictive_lead,
                file.predictive_lead,
                Predictive::default().lead,
            ),
            ..Predictive::default()
        });
        let config = policy::Config {
            threshold: self
                .threshold
                .or(file.threshold)
                .unwrap_or(defaults.threshold),
            min: self.min.or(file.min).unwrap_or(defaults.min),
            max: self.max.or(file.max),
            tolerance: self
                .tolerance
                .or(file.tolerance)
                .unwrap_or(defaults.tolerance),
            scale_down_window: d(
                self.scale_down_window,
                file.scale_down_window,
                defaults.scale_down_window,
            ),
            max_remove_per_tick: self.max_remove_per_tick.or(file.max_remove_per_tick),
            hold_down_while_pending: self
                .hold_down_while_pending
                .or(file.hold_down_while_pending)
                .unwrap_or(defaults.hold_down_while_pending),
            predictive,
        };
        config.validate().map_err(usage)?;
        Ok(PolicySettings {
            interval,
            kind,
            config,
            warm_pool: self
                .warm_pool
                .or(file.warm_pool)
                .unwrap_or(controller::Config::default().warm_pool),
        })
    }
}

impl PolicySettings {
    /// A fresh policy of this kind. The seed policy's quota is `max`, else `quota`.
    pub fn build(&self, quota: u32) -> Box<dyn Policy> {
        let pc = self.config;
        match self.kind {
            PolicyKind::Default => Box::new(DefaultPolicy::new(pc)),
            PolicyKind::Seed => Box::new(SeedPolicy::new(SeedConfig {
                threshold: pc.threshold,
                min_backends: pc.min,
                quota: pc.max.unwrap_or(quota),
                ..SeedConfig::default()
            })),
        }
    }
}

/// The settings `run` and `status` share: the configuration file, the policy and HAProxy.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// The TOML configuration file (etc/webscaler.toml documents every key).
    #[arg(long, env = "WEBSCALER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The tick, the policy and its settings.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The counter: sessions (stot, as the seed) or requests (req_tot) [default: sessions].
    #[arg(long, env = "WEBSCALER_METRIC", value_enum)]
    pub metric: Option<Metric>,
    /// A draining backend is stopped at 0 sessions, or after this long [default: 60s].
    #[arg(long, env = "WEBSCALER_DRAIN_TIMEOUT", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// A new backend not passing its check after this long is replaced [default: 10m].
    #[arg(long, env = "WEBSCALER_CHECK_TIMEOUT", value_parser = parse_duration)]
    pub check_timeout: Option<Duration>,
    /// After a quota error, retry creating after this long if the quota does not change
    /// [default: 5m].
    #[arg(long, env = "WEBSCALER_QUOTA_RETRY", value_parser = parse_duration)]
    pub quota_retry: Option<Duration>,
    /// CSV dates in UTC (RFC 3339) instead of the seed's local time.
    #[arg(long, env = "WEBSCALER_UTC")]
    pub utc: bool,

    /// HAProxy: auto (embedded with the local provider and no --socket), embedded, or
    /// system [default: auto].
    #[arg(long = "haproxy", env = "WEBSCALER_HAPROXY", value_enum)]
    pub haproxy_mode: Option<HaproxyMode>,
    /// Embedded: where the frontend listens [default: 127.0.0.1:8080].
    #[arg(long, env = "WEBSCALER_FRONTEND")]
    pub frontend: Option<SocketAddr>,
    /// Embedded: a stats page at http://ADDR/stats.
    #[arg(long, env = "WEBSCALER_STATS")]
    pub stats: Option<SocketAddr>,
    /// System: HAProxy's admin socket [default: /var/run/haproxy/admin.sock].
    #[arg(long, env = "WEBSCALER_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// System: HAProxy's master socket (for the reload fallback).
    #[arg(long, env = "WEBSCALER_MASTER_SOCKET", value_name = "PATH")]
    pub master_socket: Option<PathBuf>,
    /// The HAProxy backend [default: nodes].
    #[arg(long, env = "WEBSCALER_BACKEND")]
    pub backend: Option<String>,
    /// System: the generated backend file to keep in step.
    #[arg(long, value_name = "PATH")]
    pub backend_file: Option<PathBuf>,
    /// System: every config file HAProxy loads, in order (repeat).
    #[arg(long = "haproxy-config", value_name = "PATH")]
    pub haproxy_configs: Vec<PathBuf>,
    /// System: the reload command of the fallback [default: systemctl reload haproxy].
    #[arg(long)]
    pub reload_command: Option<String>,
    /// The backends' port when the cloud gives only an IP [default: 80].
    #[arg(long, value_name = "PORT")]
    pub backend_port: Option<u16>,
    /// The haproxy binary [default: haproxy].
    #[arg(long, value_name = "PATH")]
    pub haproxy_bin: Option<PathBuf>,
    /// Time between health checks [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub check_inter: Option<Duration>,
    /// Passed checks to go up [default: 2].
    #[arg(long)]
    pub check_rise: Option<u32>,
    /// Failed checks to go down [default: 3].
    #[arg(long)]
    pub check_fall: Option<u32>,
    /// How fast HAProxy closes idle server connections [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub pool_purge_delay: Option<Duration>,
    /// HAProxy socket connect and read timeout [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub socket_timeout: Option<Duration>,
}

/// HAProxy's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxySettings {
    /// Auto, embedded or system.
    pub mode: HaproxyMode,
    /// Embedded: the frontend.
    pub frontend: SocketAddr,
    /// Embedded: the stats page.
    pub stats: Option<SocketAddr>,
    /// System: the admin socket (`None`: the default).
    pub socket: Option<PathBuf>,
    /// System: the master socket.
    pub master_socket: Option<PathBuf>,
    /// The backend.
    pub backend: BackendName,
    /// System: the backend file.
    pub backend_file: Option<PathBuf>,
    /// System: the config files.
    pub configs: Vec<PathBuf>,
    /// System: the reload command.
    pub reload_command: Option<String>,
    /// The haproxy binary.
    pub program: PathBuf,
    /// Server options.
    pub check: ServerOptions,
    /// Socket timeout.
    pub socket_timeout: Duration,
}

/// Everything `run` needs besides the provider, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between ticks.
    pub interval: Duration,
    /// Which policy.
    pub policy: PolicyKind,
    /// The default policy's settings (the seed policy uses threshold, min and max).
    pub policy_config: policy::Config,
    /// The controller's settings.
    pub controller: controller::Config,
    /// The CSV file.
    pub output: Option<PathBuf>,
    /// HAProxy.
    pub haproxy: HaproxySettings,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError::new(e.to_string()).into()
}

impl SettingsArgs {
    /// The configuration file's content (empty without `--config`).
    pub fn file(&self) -> Result<FileConfig> {
        match &self.config {
            Some(p) => FileConfig::load(p).map_err(usage),
            None => Ok(FileConfig::default()),
        }
    }

    /// Flags and variables over the file over the defaults. `prefix` is the provider's.
    pub fn resolve(
        &self,
        file: &FileConfig,
        output: Option<PathBuf>,
        prefix: &str,
    ) -> Result<Settings> {
        let d = |flag: Option<Duration>, f: Option<crate::config::Dur>, def: Duration| {
            flag.or(f.map(|x| x.0)).unwrap_or(def)
        };
        let PolicySettings {
            interval,
            kind: policy,
            config: policy_config,
            warm_pool,
        } = self.policy.resolve(file)?;
        let cdef = controller::Config::default();
        let h = &file.haproxy;
        let backend = self
            .backend
            .clone()
            .or_else(|| h.backend.clone())
            .unwrap_or_else(|| "nodes".to_owned());
        let backend = BackendName::new(&backend).map_err(|e| usage(format!("backend: {e}")))?;
        let check = ServerOptions {
            inter: d(
                self.check_inter,
                h.check_inter,
                ServerOptions::default().inter,
            ),
            rise: self
                .check_rise
                .or(h.check_rise)
                .unwrap_or(ServerOptions::default().rise),
            fall: self
                .check_fall
                .or(h.check_fall)
                .unwrap_or(ServerOptions::default().fall),
            pool_purge_delay: d(
                self.pool_purge_delay,
                h.pool_purge_delay,
                ServerOptions::default().pool_purge_delay,
            ),
        };
        check.validate().map_err(usage)?;
        let frontend = match self.frontend.or(h.frontend) {
            Some(f) => f,
            None => DEFAULT_FRONTEND
                .parse()
                .map_err(|e| usage(format!("frontend: {e}")))?,
        };
        let configs = if self.haproxy_configs.is_empty() {
            h.config.clone().unwrap_or_default()
        } else {
            self.haproxy_configs.clone()
        };
        let controller = controller::Config {
            metric: self.metric.or(file.metric).unwrap_or(cdef.metric),
            naming: Naming::new(prefix),
            backend_port: self
                .backend_port
                .or(h.backend_port)
                .unwrap_or(cdef.backend_port),
            warm_pool,
            drain_timeout: d(self.drain_timeout, file.drain_timeout, cdef.drain_timeout),
            check_timeout: d(self.check_timeout, file.check_timeout, cdef.check_timeout),
            quota_retry: d(self.quota_retry, file.quota_retry, cdef.quota_retry),
            time_format: TimeFormat::from_utc_flag(self.utc || file.utc == Some(true)),
        };
        Ok(Settings {
            interval,
            policy,
            policy_config,
            controller,
            output: output.or_else(|| file.output.clone()),
            haproxy: HaproxySettings {
                mode: self.haproxy_mode.or(h.mode).unwrap_or(HaproxyMode::Auto),
                frontend,
                stats: self.stats.or(h.stats),
                socket: self.socket.clone().or_else(|| h.socket.clone()),
                master_socket: self
                    .master_socket
                    .clone()
                    .or_else(|| h.master_socket.clone()),
                backend,
                backend_file: self.backend_file.clone().or_else(|| h.backend_file.clone()),
                configs,
                reload_command: self
                    .reload_command
                    .clone()
                    .or_else(|| h.reload_command.clone()),
                program: self
                    .haproxy_bin
                    .clone()
                    .or_else(|| h.program.clone())
                    .unwrap_or_else(|| PathBuf::from("haproxy")),
                check,
                socket_timeout: d(
                    self.socket_timeout,
                    h.socket_timeout,
                    Duration::from_secs(10),
                ),
            },
        })
    }
}

impl Settings {
    /// The settings in effect, one `key = value` line each (`run --check-config`).
    pub fn describe(&self, provider: Provider, args: &ProviderArgs, state_dir: &Path) -> String {
        let p = &self.policy_config;
        let c = &self.controller;
        let h = &self.haproxy;
        let dur = |d: Duration| format!("\"{}\"", format_duration(d));
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
        let path =
            |v: &Option<PathBuf>| opt(v.as_ref().map(|p| format!("{:?}", p.display().to_string())));
        let mut lines = vec![
            format!("interval = {}", dur(self.interval)),
            format!("policy = \"{}\"", self.policy),
            format!("threshold = {}", p.threshold),
            format!("min = {}", p.min),
            format!("max = {}", opt(p.max.map(|m| m.to_string()))),
            format!("tolerance = {}", p.tolerance),
            format!("scale_down_window = {}", dur(p.scale_down_window)),
            format!(
                "max_remove_per_tick = {}",
                opt(p.max_remove_per_tick.map(|m| m.to_string()))
            ),
            format!("hold_down_while_pending = {}", p.hold_down_while_pending),
            format!("predictive = {}", p.predictive.is_some()),
            format!("warm_pool = {}", c.warm_pool),
            format!("metric = \"{}\"", c.metric),
            format!("drain_timeout = {}", dur(c.drain_timeout)),
            format!("check_timeout = {}", dur(c.check_timeout)),
            format!("quota_retry = {}", dur(c.quota_retry)),
            format!("output = {}", path(&self.output)),
            format!("utc = {}", c.time_format == TimeFormat::Utc),
            format!("state_dir = {:?}", state_dir.display().to_string()),
        ];
        let embedded = h.embedded(provider);
        lines.extend([
            format!(
                "haproxy.mode = \"{}\"",
                if embedded { "embedded" } else { "system" }
            ),
            format!("haproxy.frontend = \"{}\"", h.frontend),
            format!(
                "haproxy.stats = {}",
                opt(h.stats.map(|s| format!("\"{s}\"")))
            ),
            format!("haproxy.socket = {}", path(&h.socket)),
            format!("haproxy.master_socket = {}", path(&h.master_socket)),
            format!("haproxy.backend = \"{}\"", h.backend),
            format!("haproxy.backend_file = {}", path(&h.backend_file)),
            format!("haproxy.backend_port = {}", c.backend_port),
            format!("haproxy.program = {:?}", h.program.display().to_string()),
            format!("haproxy.check_inter = {}", dur(h.check.inter)),
            format!("haproxy.check_rise = {}", h.check.rise),
            format!("haproxy.check_fall = {}", h.check.fall),
            format!(
                "haproxy.pool_purge_delay = {}",
                dur(h.check.pool_purge_delay)
            ),
            format!(
                "cloud.provider = \"{}\"",
                match provider {
                    Provider::Local => "local",
                    Provider::Openstack => "openstack",
                }
            ),
            format!("cloud.prefix = \"{}\"", args.prefix()),
        ]);
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }
}

impl HaproxySettings {
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

    /// `s` with the configured socket timeout (and a connect timeout of at most 5 s).
    pub(crate) fn timeouts(&self, s: Socket) -> Socket {
        let t = self.socket_timeout;
        s.with_timeouts(t.min(Duration::from_secs(5)), t)
    }

    /// A client for the system's HAProxy.
    pub fn system_client(&self) -> Result<Haproxy> {
        let socket = self.timeouts(Socket::admin(
            self.socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET)),
        ));
        let mut ha = Haproxy::new(socket, self.backend.clone())
            .with_check(self.check)
            .map_err(usage)?;
        if let Some(m) = &self.master_socket {
            ha = ha.with_master(self.timeouts(Socket::master(m)));
        }
        if let Some(f) = &self.backend_file {
            ha = ha.with_backend_file(
                BackendFile::new(f)
                    .with_config_files(self.configs.clone())
                    .with_haproxy(&self.program),
            );
        }
        if ha.master().is_none() {
            let argv: Vec<String> = self
                .reload_command
                .as_deref()
                .unwrap_or("systemctl reload haproxy")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if argv.is_empty() {
                return Err(usage("the reload command is empty"));
            }
            ha = ha.with_reload(ReloadMethod::Command(argv));
        }
        Ok(ha)
    }

    /// A client for the embedded HAProxy of `state_dir` (running or not).
    pub fn embedded_client(&self, state_dir: &Path) -> Haproxy {
        let paths = crate::haproxy::process::Paths::new(Self::embedded_dir(state_dir));
        Haproxy::new(
            self.timeouts(Socket::admin(&paths.admin)),
            self.backend.clone(),
        )
        .with_master(self.timeouts(Socket::master(&paths.master)))
    }
}

/// `webscaler run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Settings shared with `status`.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The CSV file, one row per tick (default: named after the start time as the seed's,
    /// e.g. 2014-09-28T1549--webscaler.csv, in the current directory).
    #[arg(short = 'o', long, env = "WEBSCALER_OUTPUT", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Check the configuration, print the settings in effect and exit (nothing is started).
    #[arg(long)]
    pub check_config: bool,
    /// The cloud provider.
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// What the running instance writes to `status.json` after each tick (for `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    /// The pid of `webscaler run`.
    pub pid: u32,
    /// When it started.
    pub started: String,
    /// The provider.
    pub provider: String,
    /// `embedded` or `system`.
    pub haproxy: String,
    /// The admin socket it uses.
    pub admin_socket: PathBuf,
    /// The HAProxy backend it manages.
    pub backend: String,
    /// The backends' name prefix.
    pub prefix: String,
    /// The backends' port when the cloud gives none.
    pub backend_port: u16,
    /// The embedded frontend, if embedded.
    pub frontend: Option<SocketAddr>,
    /// The CSV file.
    pub csv: PathBuf,
    /// The policy.
    pub policy: String,
    /// Requests per second per server.
    pub threshold: String,
    /// The minimum.
    pub min: u32,
    /// The maximum, if set.
    pub max: Option<u32>,
    /// The last tick's CSV row.
    pub last: controller::Record,
    /// The capacity the last decision aimed for.
    pub target: Option<u32>,
}

/// The exclusive lock of the running instance on its state directory.
#[derive(Debug)]
struct RunLock {
    _file: File,
}

impl RunLock {
    fn acquire(state_dir: &Path) -> Result<RunLock> {
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "another webscaler run (pid {}) uses the state directory {}; stop it or give another --state-dir",
                    pid.trim(),
                    state_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(RunLock { _file: file })
    }
}

/// Writes `status.json` atomically.
fn write_status(state_dir: &Path, status: &StatusFile) -> Result<()> {
    let path = state_dir.join(STATUS_FILE);
    let text = serde_json::to_string_pretty(status)? + "\n";
    common::atomic::write(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The seed's file name: `<start time>--webscaler.csv` (`2014-09-28T1549--webscaler.csv`).
pub fn default_csv_name(start: chrono::DateTime<chrono::Local>) -> PathBuf {
    PathBuf::from(format!("{}--webscaler.csv", start.format("%Y-%m-%dT%H%M")))
}

fn log(line: &str) {
    eprintln!("{} webscaler: {line}", TimeFormat::Local.now());
}

/// Runs `webscaler run` with the process environment.
pub fn run(args: RunArgs) -> Result<()> {
    let env = Env::from_process();
    let file = args.settings.file()?;
    let mut provider_args = args.provider.clone();
    provider_args.fill_from(&file.cloud);
    let settings = args
        .settings
        .resolve(&file, args.output.clone(), provider_args.prefix())?;
    let provider = provider_args.provider(&env);
    let state_dir = provider_args.state_dir(&env);
    if args.check_config {
        let mut out = std::io::stdout().lock();
        out.write_all(
            settings
                .describe(provider, &provider_args, &state_dir)
                .as_bytes(),
        )?;
        return Ok(());
    }
    fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    let _lock = RunLock::acquire(&state_dir)?;
    let cloud = provider_args.open(&env)?;
    let shutdown = Shutdown::install().context("cannot install the signal handlers")?;

    // HAProxy: our own, or the system's.
    let h = &settings.haproxy;
    let embedded = h.embedded(provider);
    let mut process = None;
    let haproxy = if embedded {
        let mut cfg = EmbeddedConfig::new(HaproxySettings::embedded_dir(&state_dir), h.frontend);
        cfg.stats = h.stats;
        cfg.backend = h.backend.clone();
        cfg.check = h.check;
        cfg.haproxy = h.program.clone();
        let p = HaproxyProcess::start(cfg)?;
        if let Some(old) = p.replaced() {
            log(&format!(
                "stopped the HAProxy (pid {old}) a previous run left behind"
            ));
        }
        let client = p.haproxy();
        process = Some(p);
        client
    } else {
        let ha = h.system_client()?;
        ha.stats().with_context(|| {
            format!(
                "cannot use HAProxy's backend {} (is HAProxy running, and is --socket its admin socket at level admin?)",
                h.backend
            )
        })?;
        ha
    };
    let admin_socket = haproxy.socket().path().to_path_buf();

    let start = chrono::Local::now();
    let csv_path = settings
        .output
        .clone()
        .unwrap_or_else(|| default_csv_name(start));
    let mut csv = CsvAppender::open(&csv_path, &HEADER)?;

    let pc = settings.policy_config;
    let policy = PolicySettings {
        interval: settings.interval,
        kind: settings.policy,
        config: pc,
        warm_pool: settings.controller.warm_pool,
    }
    .build(SeedConfig::default().quota);
    log(&format!(
        "{} provider ({}), {} HAProxy ({}), every {}, policy {} (threshold {}, min {}, max {}, scale-down window {}, predictive {}), warm pool {}; CSV {}",
        cloud.provider(),
        state_dir.display(),
        if embedded { "embedded" } else { "system" },
        match &process {
            Some(p) => format!("frontend {}, pid {}", h.frontend, p.pid()),
            None => admin_socket.display().to_string(),
        },
        format_duration(settings.interval),
        settings.policy,
        pc.threshold,
        pc.min,
        pc.max
            .map_or_else(|| "the quota".to_owned(), |m| m.to_string()),
        format_duration(pc.scale_down_window),
        if pc.predictive.is_some() { "on" } else { "off" },
        settings.controller.warm_pool,
        csv_path.display()
    ));

    let clock = SystemClock::new();
    let mut ticker = Ticker::starting_at(clock.origin(), settings.interval);
    let mut c = Controller::new(cloud, haproxy, clock, policy, settings.controller.clone());
    let mut status = StatusFile {
        pid: std::process::id(),
        started: TimeFormat::Utc.format(start.with_timezone(&Utc)),
        provider: c.cloud().provider().to_owned(),
        haproxy: if embedded { "embedded" } else { "system" }.to_owned(),
        admin_socket,
        backend: h.backend.to_string(),
        prefix: settings.controller.naming.prefix().to_owned(),
        backend_port: settings.controller.backend_port,
        frontend: embedded.then_some(h.frontend),
        csv: csv_path.clone(),
        policy: settings.policy.to_string(),
        threshold: pc.threshold.to_string(),
        min: pc.min,
        max: pc.max,
        last: controller::Record {
            diffpt: None,
            haactive: 0,
            active: 0,
            epoch: 0,
            acu: None,
            date: String::new(),
            diff: None,
            needed: None,
            pending: 0,
            stopped: 0,
            action: "starting".to_owned(),
            rate: None,
        },
        target: None,
    };
    let result = (|| -> Result<()> {
        while let Some(tick) = ticker.wait(&shutdown) {
            if tick.skipped > 0 {
                log(&format!(
                    "warning: {} tick(s) skipped: the last tick took longer than the interval",
                    tick.skipped
                ));
            }
            let report: TickReport = c.tick();
            csv.append_records(std::slice::from_ref(&report.record))
                .with_context(|| format!("cannot append to {}", csv_path.display()))?;
            log(&report.log_line());
            for e in &report.events {
                log(&e.to_string());
            }
            status.last = report.record.clone();
            status.target = report.decision.as_ref().map(|d| d.target);
            if let Err(e) = write_status(&state_dir, &status) {
                log(&format!("warning: {e:#}"));
            }
            if let Some(p) = process.as_mut()
                && let Some(st) = p.exited()
            {
                bail!(
                    "the embedded HAProxy exited ({st}); its log says: {}",
                    p.log_tail()
                );
            }
        }
        Ok(())
    })();
    let _ = fs::remove_file(state_dir.join(STATUS_FILE));
    if let Some(p) = process.take() {
        log("stopping the embedded HAProxy");
        if let Err(e) = p.stop() {
            log(&format!("warning: cannot stop HAProxy: {e}"));
        }
    }
    if result.is_ok() {
        log(&format!(
            "stopped after {} tick(s); CSV {}",
            c.ticks(),
            csv_path.display()
        ));
    }
    result
}
