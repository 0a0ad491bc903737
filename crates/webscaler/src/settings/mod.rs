//! webscaler's settings, one way for every command: the built-in defaults, then the TOML
//! file (`--config`), then the `WEBSCALER_*` variables, then the flags.
//!
//! Each source is a [`Layer`] (every key optional, in the shape of the file): [`file`](mod@file) reads
//! the file's; the command line builds one from its flags (clap reads each flag's
//! `WEBSCALER_*` variable when the flag is absent, so flags win over variables); the higher
//! goes [`Layer::over`] the lower, and the resolvers fill what is still unset with the
//! defaults and check the result, with errors that name the setting:
//!
//! - [`Settings`]: everything `webscaler run` and `webscaler status` use;
//! - [`PolicySettings`] ([`policy`]), [`HaproxySettings`] ([`haproxy`]) and
//!   [`CloudSettings`] ([`cloud`]): the parts, which `simulate`, `haproxy` and `cloud` use
//!   on their own;
//! - [`Settings::describe`]: the settings in effect, as `run --check-config` prints them.

pub mod cloud;
mod describe;
pub mod file;
pub mod haproxy;
mod layer;
pub mod policy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::time::TimeFormat;

use crate::cloud::{CloudError, Naming};
use crate::controller;

pub use cloud::{CloudSettings, Provider};
pub use file::ConfigError;
pub use haproxy::{HaproxyMode, HaproxySettings};
pub use layer::{CloudLayer, HaproxyLayer, Layer};
pub use policy::PolicySettings;

/// The default tick interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest tick interval: a tick reads HAProxy three times, lists the cloud and writes
/// a CSV row and a status file; faster than this it only churns.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How many health checks at `rise` a new server gets, at least, before `check_timeout`
/// declares it failed.
pub const CHECK_TIMEOUT_CHECKS: u32 = 3;

/// `value` of the setting (`--flag`, `key` in the file) must be at least `min`; `why` says
/// where the bound comes from.
pub(crate) fn at_least(
    flag: &str,
    key: &str,
    value: Duration,
    min: Duration,
    why: &str,
) -> Result<(), SettingsError> {
    if value >= min {
        return Ok(());
    }
    let fmt = common::time::format_duration;
    Err(SettingsError::Invalid(format!(
        "--{flag} ({key}) {} is too short: at least {}{}",
        fmt(value),
        fmt(min),
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        }
    )))
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value that cannot be used; the message names the setting.
    #[error("{0}")]
    Invalid(String),
    /// The configuration file could not be read or parsed.
    #[error(transparent)]
    File(#[from] ConfigError),
    /// The provider could not be configured or opened.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// A history file could not be read or used.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// The user data file could not be read.
    #[error("cannot read user data {}", path.display())]
    UserData {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SettingsError {
    /// Whether the error is bad input (exit status 2), rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        match self {
            SettingsError::Invalid(_) | SettingsError::File(_) | SettingsError::History(_) => true,
            SettingsError::Cloud(e) => matches!(e, CloudError::Config { .. }),
            SettingsError::UserData { .. } => false,
        }
    }
}

/// The configuration file's layer (empty without a file).
pub fn load_file(path: Option<&Path>) -> Result<Layer, SettingsError> {
    Ok(match path {
        Some(p) => file::load(p)?,
        None => Layer::default(),
    })
}

impl Layer {
    /// Time between ticks (at least [`MIN_INTERVAL`]).
    pub fn interval(&self) -> Result<Duration, SettingsError> {
        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        at_least("interval", "interval", interval, MIN_INTERVAL, "")?;
        Ok(interval)
    }

    /// Stopped backends kept for a fast start.
    pub fn warm_pool(&self) -> u32 {
        self.warm_pool
            .unwrap_or(controller::Config::default().warm_pool)
    }

    /// The CSV `date` format: the lab report's local time, or UTC.
    pub fn time_format(&self) -> TimeFormat {
        TimeFormat::from_utc_flag(self.utc == Some(true))
    }
}

/// Everything `webscaler run` and `webscaler status` use, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time between ticks.
    pub interval: Duration,
    pub policy: PolicySettings,
    pub controller: controller::Config,
    /// `run`'s CSV file (`None`: named after the start time).
    pub output: Option<PathBuf>,
    /// Where `run` serves `/metrics` (`None`: nowhere).
    pub metrics: Option<std::net::SocketAddr>,
    pub haproxy: HaproxySettings,
    pub cloud: CloudSettings,
}

impl Settings {
    /// The layer (all sources already merged) over the defaults, checked: every value,
    /// and the durations against their lower bounds (errors name the flag and the key).
    pub fn resolve(layer: &Layer) -> Result<Settings, SettingsError> {
        let interval = layer.interval()?;
        let policy = PolicySettings::resolve(layer)?;
        let haproxy = HaproxySettings::resolve(&layer.haproxy)?;
        let cloud = CloudSettings::resolve(&layer.cloud)?;
        let d = controller::Config::default();
        let drain_timeout = layer.drain_timeout.unwrap_or(d.drain_timeout);
        at_least(
            "drain-timeout",
            "drain_timeout",
            drain_timeout,
            interval,
            "one interval: a drain is looked at once a tick",
        )?;
        let quota_retry = layer.quota_retry.unwrap_or(d.quota_retry);
        at_least(
            "quota-retry",
            "quota_retry",
            quota_retry,
            interval,
            "one interval",
        )?;
        // A new server is added on one tick, checked `rise` times, and readied on another.
        let check = haproxy.check;
        let check_timeout = layer.check_timeout.unwrap_or(d.check_timeout);
        at_least(
            "check-timeout",
            "check_timeout",
            check_timeout,
            check.inter * check.rise.saturating_mul(CHECK_TIMEOUT_CHECKS) + interval * 2,
            &format!(
                "{CHECK_TIMEOUT_CHECKS} × check rise {} × check interval {} + 2 × interval {}",
                check.rise,
                common::time::format_duration(check.inter),
                common::time::format_duration(interval)
            ),
        )?;
        let controller = controller::Config {
            metric: layer.metric.unwrap_or(d.metric),
            naming: Naming::new(&cloud.prefix),
            backend_port: layer.haproxy.backend_port.unwrap_or(d.backend_port),
            warm_pool: layer.warm_pool(),
            drain_timeout,
            check_timeout,
            quota_retry,
            time_format: layer.time_format(),
        };
        Ok(Settings {
            interval,
            policy,
            controller,
            output: layer.output.clone(),
            metrics: layer.metrics,
            haproxy,
            cloud,
        })
    }
}
