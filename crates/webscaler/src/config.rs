//! The configuration file of `webscaler run` and `webscaler status` (TOML; `etc/webscaler.toml`
//! documents every key).
//!
//! Precedence, lowest first: the built-in defaults, this file, `WEBSCALER_*` variables, flags.
//! Every key is optional; an unknown key, a wrong type or a bad value is an error that names
//! the file and the key, so a typo never silently falls back to a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::balancer::Metric;
use crate::cli::cloud::Provider;
use crate::rate::{Threshold, Tolerance};

/// A duration written as text (`"5s"`, `"1m30s"`, `"500ms"`) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Duration::from_secs(n)),
            Raw::Float(x) => Duration::try_from_secs_f64(x)
                .map_err(|_| format!("invalid duration {x} (seconds must be ≥ 0)")),
            Raw::Text(s) => common::time::parse_duration(&s),
        };
        parsed.map(Dur).map_err(serde::de::Error::custom)
    }
}

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

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Time between ticks.
    pub interval: Option<Dur>,
    /// `default` or `seed`.
    pub policy: Option<String>,
    /// Requests per second one server takes.
    pub threshold: Option<Threshold>,
    /// Servers at least.
    pub min: Option<u32>,
    /// Servers at most (besides the cloud's quota).
    pub max: Option<u32>,
    /// The tolerance band.
    pub tolerance: Option<Tolerance>,
    /// The stabilization window of scale-down.
    pub scale_down_window: Option<Dur>,
    /// Backends removed at most per tick.
    pub max_remove_per_tick: Option<u32>,
    /// Hold scale-down while a backend boots.
    pub hold_down_while_pending: Option<bool>,
    /// The predictive mode.
    pub predictive: Option<bool>,
    /// How far back the predictive mode fits the trend.
    pub predictive_history: Option<Dur>,
    /// How far ahead it reads the trend.
    pub predictive_lead: Option<Dur>,
    /// Stopped backends kept.
    pub warm_pool: Option<u32>,
    /// `sessions` or `requests`.
    pub metric: Option<Metric>,
    /// How long a drain may take.
    pub drain_timeout: Option<Dur>,
    /// How long a new backend may take to pass its first check.
    pub check_timeout: Option<Dur>,
    /// How long creations hold after a quota error.
    pub quota_retry: Option<Dur>,
    /// The CSV file.
    pub output: Option<PathBuf>,
    /// Write dates in UTC.
    pub utc: Option<bool>,
    /// The state directory.
    pub state_dir: Option<PathBuf>,
    /// `[haproxy]`.
    #[serde(default)]
    pub haproxy: HaproxyFile,
    /// `[cloud]`.
    #[serde(default)]
    pub cloud: CloudFile,
}

/// `[haproxy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyFile {
    /// `auto`, `embedded` or `system`.
    pub mode: Option<HaproxyMode>,
    /// Embedded: the frontend's address.
    pub frontend: Option<SocketAddr>,
    /// Embedded: a stats page's address.
    pub stats: Option<SocketAddr>,
    /// System: the admin socket.
    pub socket: Option<PathBuf>,
    /// System: the master socket.
    pub master_socket: Option<PathBuf>,
    /// The backend.
    pub backend: Option<String>,
    /// System: the generated backend file.
    pub backend_file: Option<PathBuf>,
    /// System: every config file HAProxy loads.
    pub config: Option<Vec<PathBuf>>,
    /// System: the reload command of the fallback.
    pub reload_command: Option<String>,
    /// The backends' port when the cloud gives none.
    pub backend_port: Option<u16>,
    /// The haproxy binary.
    pub program: Option<PathBuf>,
    /// Time between health checks.
    pub check_inter: Option<Dur>,
    /// Passed checks to go up.
    pub check_rise: Option<u32>,
    /// Failed checks to go down.
    pub check_fall: Option<u32>,
    /// How fast idle server connections are closed.
    pub pool_purge_delay: Option<Dur>,
    /// Socket connect and read timeout.
    pub socket_timeout: Option<Dur>,
}

/// `[cloud]`: the provider's settings (credentials belong in clouds.yaml, not here).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFile {
    /// `local` or `openstack`.
    pub provider: Option<Provider>,
    /// The backends' name prefix.
    pub prefix: Option<String>,
    /// The state directory (also the top-level `state_dir`).
    pub state_dir: Option<PathBuf>,
    /// Local: the backend command.
    pub command: Option<String>,
    /// Local: the imitated boot time.
    pub boot_delay: Option<Dur>,
    /// Local: the quota.
    pub max_backends: Option<u64>,
    /// Local: SIGTERM to SIGKILL.
    pub grace: Option<Dur>,
    /// OpenStack: the cloud of clouds.yaml.
    pub os_cloud: Option<String>,
    /// OpenStack: the seed's credentials file.
    pub openstack_cfg: Option<PathBuf>,
    /// OpenStack: the region.
    pub os_region_name: Option<String>,
    /// OpenStack: the image of new backends.
    pub image: Option<String>,
    /// OpenStack: the flavor.
    pub flavor: Option<String>,
    /// OpenStack: the network.
    pub network: Option<String>,
    /// OpenStack: the keypair.
    pub key_name: Option<String>,
    /// OpenStack: security groups.
    pub security_groups: Option<Vec<String>>,
    /// OpenStack: the cloud-init user data.
    pub user_data: Option<PathBuf>,
    /// OpenStack: the HTTP timeout.
    pub http_timeout: Option<Dur>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid (TOML syntax, an unknown key, a bad value).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// toml's message (line, column and key), on one line.
        message: String,
    },
}

impl FileConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the text of a file; the error is one line.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let mut cfg: FileConfig = toml::from_str(text).map_err(|e| {
            e.to_string()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('|') && *l != "^")
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        if let (Some(a), Some(b)) = (&cfg.state_dir, &cfg.cloud.state_dir)
            && a != b
        {
            return Err(format!(
                "state_dir ({}) and cloud.state_dir ({}) differ; give one",
                a.display(),
                b.display()
            ));
        }
        if cfg.cloud.state_dir.is_none() {
            cfg.cloud.state_dir.clone_from(&cfg.state_dir);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_shipped_file_parses() {
        // etc/webscaler.toml has every key commented out; uncommented, it must parse.
        let shipped = include_str!("../../../etc/webscaler.toml");
        let uncommented: String = shipped
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = FileConfig::parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(cfg.interval, Some(Dur(Duration::from_secs(5))));
        assert_eq!(cfg.threshold, Some(Threshold::SEED));
        assert_eq!(cfg.min, Some(2));
        assert_eq!(cfg.warm_pool, Some(1));
        assert_eq!(cfg.metric, Some(Metric::Sessions));
        assert_eq!(
            cfg.haproxy.frontend,
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(cfg.haproxy.mode, Some(HaproxyMode::Auto));
        assert_eq!(cfg.cloud.provider, Some(Provider::Local));
        assert_eq!(cfg.cloud.prefix.as_deref(), Some("node-"));
        // Every key is documented: uncommented, nothing is left unset.
        let all = format!("{cfg:?}");
        assert!(
            !all.contains("None"),
            "a key missing from etc/webscaler.toml: {all}"
        );
        // And the file as shipped (all commented out) is empty.
        assert_eq!(FileConfig::parse(shipped).unwrap(), FileConfig::default());
    }

    #[test]
    fn durations_are_text_or_seconds() {
        let c = FileConfig::parse(
            "interval = \"1m30s\"\nscale_down_window = 90\ndrain_timeout = 0.5\n",
        )
        .unwrap();
        assert_eq!(c.interval, Some(Dur(Duration::from_secs(90))));
        assert_eq!(c.scale_down_window, Some(Dur(Duration::from_secs(90))));
        assert_eq!(c.drain_timeout, Some(Dur(Duration::from_millis(500))));
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = FileConfig::parse("interval = \"5 parsecs\"\n").unwrap_err();
        assert!(e.contains("interval") && e.contains("5 parsecs"), "{e}");
        let e = FileConfig::parse("thresold = 10\n").unwrap_err();
        assert!(e.contains("thresold") && e.contains("line 1"), "{e}");
        let e = FileConfig::parse("[haproxy]\nfrontend = \"localhost\"\n").unwrap_err();
        assert!(e.contains("frontend"), "{e}");
        let e = FileConfig::parse("threshold = -3\n").unwrap_err();
        assert!(e.contains("threshold"), "{e}");
        let e = FileConfig::parse("metric = \"bytes\"\n").unwrap_err();
        assert!(e.contains("bytes"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_state_dir_is_one_setting() {
        let c = FileConfig::parse("state_dir = \"/var/lib/webscaler\"\n").unwrap();
        assert_eq!(
            c.cloud.state_dir.as_deref(),
            Some(Path::new("/var/lib/webscaler"))
        );
        assert!(
            FileConfig::parse("state_dir = \"/a\"\n[cloud]\nstate_dir = \"/b\"\n")
                .unwrap_err()
                .contains("differ")
        );
    }
}
