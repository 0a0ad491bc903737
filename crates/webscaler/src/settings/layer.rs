//! A layer of settings: every key optional, in the shape of the TOML file (top-level keys,
//! `[haproxy]`, `[cloud]`). The file is one layer ([`super::file`]); the flags, with the
//! `WEBSCALER_*` variables clap reads for them, are another; [`Layer::over`] puts one over
//! the other, and [`super::Settings`] fills what is still unset with the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::cloud::Provider;
use super::haproxy::HaproxyMode;
use super::policy::{HpaLayer, TargetTrackingLayer};
use crate::balancer::Metric;
use crate::cloud::openstack::config::Overrides;
use crate::policy::PolicyKind;
use crate::rate::{Threshold, Tolerance};

/// A duration written as text (`"5s"`, `"1m30s"`, `"500ms"`) or a number of seconds.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
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
    parsed.map(Some).map_err(serde::de::Error::custom)
}

/// One value, or an array of them (`socket = "/run/a.sock"` or `socket = ["/run/a.sock",
/// "/run/b.sock"]`).
pub(super) fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(Some(match Raw::deserialize(d)? {
        Raw::One(t) => vec![t],
        Raw::Many(v) => v,
    }))
}

/// `high.x = high.x.or(low.x)` for each field named.
macro_rules! fill {
    ($high:ident, $low:ident: $($field:ident),+ $(,)?) => {
        $( if $high.$field.is_none() { $high.$field = $low.$field; } )+
    };
}

/// The top-level keys, the policy's and the controller's (etc/webscaler.toml documents
/// each).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Time between ticks.
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Duration>,
    pub policy: Option<PolicyKind>,
    /// Requests per second one server takes.
    pub threshold: Option<Threshold>,
    /// Servers kept at least.
    pub min: Option<u32>,
    /// Servers at most, besides the cloud's quota.
    pub max: Option<u32>,
    pub tolerance: Option<Tolerance>,
    #[serde(default, deserialize_with = "duration")]
    pub scale_down_window: Option<Duration>,
    /// The longest the adaptive window grows to.
    #[serde(default, deserialize_with = "duration")]
    pub scale_down_window_max: Option<Duration>,
    /// How soon a scale-down undone counts as regretted.
    #[serde(default, deserialize_with = "duration")]
    pub scale_down_regret: Option<Duration>,
    pub max_remove_per_tick: Option<u32>,
    /// Hold scale-down while a backend boots.
    pub hold_down_while_pending: Option<bool>,
    /// Scale up ahead of a sustained rise.
    pub predictive: Option<bool>,
    /// How far back the predictive mode fits the trend.
    #[serde(default, deserialize_with = "duration")]
    pub predictive_history: Option<Duration>,
    /// How far ahead it reads the trend.
    #[serde(default, deserialize_with = "duration")]
    pub predictive_lead: Option<Duration>,
    /// Earlier runs' CSV files or traces the seasonal floor learns from.
    pub history: Option<Vec<PathBuf>>,
    /// How far ahead the seasonal floor looks.
    #[serde(default, deserialize_with = "duration")]
    pub history_lead: Option<Duration>,
    /// Stopped backends kept for a fast start.
    pub warm_pool: Option<u32>,
    pub metric: Option<Metric>,
    /// How long a drain may take.
    #[serde(default, deserialize_with = "duration")]
    pub drain_timeout: Option<Duration>,
    /// How long a new backend may take to pass its first check.
    #[serde(default, deserialize_with = "duration")]
    pub check_timeout: Option<Duration>,
    /// How long creations hold after a quota error.
    #[serde(default, deserialize_with = "duration")]
    pub quota_retry: Option<Duration>,
    /// The CSV file of `run`.
    pub output: Option<PathBuf>,
    /// Where `run` serves `/metrics` for Prometheus (off when unset).
    pub metrics: Option<SocketAddr>,
    /// CSV dates in UTC.
    pub utc: Option<bool>,
    /// The state directory (the file's top-level spelling of `cloud.state_dir`).
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub haproxy: HaproxyLayer,
    #[serde(default)]
    pub cloud: CloudLayer,
    /// The HPA reference policy's settings.
    #[serde(default)]
    pub hpa: HpaLayer,
    /// The target-tracking reference policy's settings.
    #[serde(default)]
    pub target_tracking: TargetTrackingLayer,
}

/// `[haproxy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyLayer {
    pub mode: Option<HaproxyMode>,
    /// Embedded: where the frontend listens (several: one HAProxy each).
    #[serde(default, deserialize_with = "one_or_many")]
    pub frontend: Option<Vec<SocketAddr>>,
    /// Embedded: a stats page's address.
    pub stats: Option<SocketAddr>,
    /// System: the admin socket (several: one per HAProxy instance driven).
    #[serde(default, deserialize_with = "one_or_many")]
    pub socket: Option<Vec<PathBuf>>,
    /// System: the master socket (for the reload fallback), one per admin socket.
    #[serde(default, deserialize_with = "one_or_many")]
    pub master_socket: Option<Vec<PathBuf>>,
    /// The HAProxy backend the servers are in.
    pub backend: Option<String>,
    /// System: the generated backend file to keep in step, one per admin socket.
    #[serde(default, deserialize_with = "one_or_many")]
    pub backend_file: Option<Vec<PathBuf>>,
    /// System: every config file HAProxy loads, in order.
    pub config: Option<Vec<PathBuf>>,
    /// System: the reload command of the fallback.
    pub reload_command: Option<String>,
    /// System: HAProxy's `server-state-file`, kept current by webscaler, one per admin
    /// socket.
    #[serde(default, deserialize_with = "one_or_many")]
    pub server_state_file: Option<Vec<PathBuf>>,
    /// The backends' port when the cloud gives only an IP.
    pub backend_port: Option<u16>,
    /// The haproxy binary.
    pub program: Option<PathBuf>,
    /// Time between health checks.
    #[serde(default, deserialize_with = "duration")]
    pub check_inter: Option<Duration>,
    /// Passed checks to go up.
    pub check_rise: Option<u32>,
    /// Failed checks to go down.
    pub check_fall: Option<u32>,
    /// How fast HAProxy closes idle server connections.
    #[serde(default, deserialize_with = "duration")]
    pub pool_purge_delay: Option<Duration>,
    /// Socket connect and read timeout.
    #[serde(default, deserialize_with = "duration")]
    pub socket_timeout: Option<Duration>,
}

/// `[cloud]`: the provider's settings (credentials belong in clouds.yaml, not here).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudLayer {
    pub provider: Option<Provider>,
    /// The backends' name prefix.
    pub prefix: Option<String>,
    /// The state directory (local backends, the embedded HAProxy, `run`'s lock and status).
    pub state_dir: Option<PathBuf>,
    /// Local: the backend command.
    pub command: Option<String>,
    /// Local: the imitated boot time.
    #[serde(default, deserialize_with = "duration")]
    pub boot_delay: Option<Duration>,
    /// Local: the address the backends listen on and HAProxy reaches them at.
    pub backend_host: Option<std::net::IpAddr>,
    /// Local: how many backends may exist (0: unlimited).
    pub max_backends: Option<u64>,
    /// Local: from SIGTERM to SIGKILL.
    #[serde(default, deserialize_with = "duration")]
    pub grace: Option<Duration>,
    /// OpenStack: the cloud of clouds.yaml.
    pub os_cloud: Option<String>,
    /// OpenStack: the lab report's credentials file.
    pub openstack_cfg: Option<PathBuf>,
    /// OpenStack: the region.
    pub os_region_name: Option<String>,
    /// OpenStack: the image of new backends.
    pub image: Option<String>,
    /// OpenStack: the flavor of new backends.
    pub flavor: Option<String>,
    /// OpenStack: the network of new backends.
    pub network: Option<String>,
    /// OpenStack: the keypair of new backends.
    pub key_name: Option<String>,
    /// OpenStack: the security groups of new backends.
    pub security_groups: Option<Vec<String>>,
    /// OpenStack: the cloud-init user data of new backends.
    pub user_data: Option<PathBuf>,
    /// OpenStack: the timeout of one HTTP request.
    #[serde(default, deserialize_with = "duration")]
    pub http_timeout: Option<Duration>,
    /// OpenStack: the other `--os-*` flags (never in the file).
    #[serde(skip)]
    pub openstack: Overrides,
}

impl Layer {
    /// `self` over `lower`: each key of `self`, else `lower`'s.
    pub fn over(mut self, lower: Layer) -> Layer {
        let l = lower;
        fill!(self, l: interval, policy, threshold, min, max, tolerance, scale_down_window,
            scale_down_window_max, scale_down_regret, max_remove_per_tick, hold_down_while_pending, predictive, predictive_history,
            predictive_lead, history, history_lead, warm_pool, metric, drain_timeout,
            check_timeout, quota_retry, output, metrics, utc, state_dir);
        self.haproxy = self.haproxy.over(l.haproxy);
        self.cloud = self.cloud.over(l.cloud);
        self.hpa = self.hpa.over(l.hpa);
        self.target_tracking = self.target_tracking.over(l.target_tracking);
        self
    }
}

impl HaproxyLayer {
    /// `self` over `lower`: each key of `self`, else `lower`'s.
    pub fn over(mut self, lower: HaproxyLayer) -> HaproxyLayer {
        let l = lower;
        fill!(self, l: mode, frontend, stats, socket, master_socket, backend, backend_file,
            config, reload_command, server_state_file, backend_port, program, check_inter, check_rise, check_fall,
            pool_purge_delay, socket_timeout);
        self
    }
}

impl HpaLayer {
    /// `self` over `lower`: each key of `self`, else `lower`'s.
    pub fn over(mut self, lower: HpaLayer) -> HpaLayer {
        let l = lower;
        fill!(self, l: tolerance, sync_period, upscale_window, downscale_window, scale_up_pods,
            scale_up_percent, scale_up_period, scale_down_percent, scale_down_period);
        self
    }
}

impl TargetTrackingLayer {
    /// `self` over `lower`: each key of `self`, else `lower`'s.
    pub fn over(mut self, lower: TargetTrackingLayer) -> TargetTrackingLayer {
        let l = lower;
        fill!(self, l: period, scale_out_periods, scale_in_periods, scale_in_margin, warmup);
        self
    }
}

impl CloudLayer {
    /// `self` over `lower`: each key of `self`, else `lower`'s (the `--os-*` flags are only
    /// ever in the highest layer).
    pub fn over(mut self, lower: CloudLayer) -> CloudLayer {
        let l = lower;
        fill!(self, l: provider, prefix, state_dir, command, boot_delay, backend_host, max_backends, grace,
            os_cloud, openstack_cfg, os_region_name, image, flavor, network, key_name,
            security_groups, user_data, http_timeout);
        if self.openstack == Overrides::default() {
            self.openstack = l.openstack;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_wins_key_by_key() {
        let high = Layer {
            min: Some(1),
            haproxy: HaproxyLayer {
                check_rise: Some(5),
                ..HaproxyLayer::default()
            },
            ..Layer::default()
        };
        let low = Layer {
            min: Some(3),
            max: Some(9),
            haproxy: HaproxyLayer {
                check_rise: Some(4),
                check_fall: Some(6),
                ..HaproxyLayer::default()
            },
            cloud: CloudLayer {
                prefix: Some("web-".into()),
                ..CloudLayer::default()
            },
            ..Layer::default()
        };
        let l = high.over(low);
        assert_eq!((l.min, l.max), (Some(1), Some(9)));
        assert_eq!(
            (l.haproxy.check_rise, l.haproxy.check_fall),
            (Some(5), Some(6))
        );
        assert_eq!(l.cloud.prefix.as_deref(), Some("web-"));
        assert_eq!(l.interval, None);
    }
}
