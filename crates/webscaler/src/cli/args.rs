//! The flags several commands share, and the settings layer each group gives
//! ([`crate::settings`] resolves them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use common::cli::UsageError;
use common::time::parse_duration;

use crate::balancer::Metric;
use crate::policy::PolicyKind;
use crate::rate::{Threshold, Tolerance};
use crate::settings::policy::{HpaLayer, TargetTrackingLayer};
use crate::settings::{self, CloudLayer, HaproxyLayer, HaproxyMode, Layer, Provider};

fn parse_policy(s: &str) -> Result<PolicyKind, String> {
    s.parse()
}

fn parse_threshold(s: &str) -> Result<Threshold, String> {
    Threshold::parse(s).map_err(|e| e.to_string())
}

fn parse_tolerance(s: &str) -> Result<Tolerance, String> {
    Tolerance::parse(s).map_err(|e| e.to_string())
}

/// The scaling settings `run`, `status` and `simulate` share: the tick, the policy and its
/// settings, the warm pool.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Time between ticks [default: 5s].
    #[arg(long, env = "WEBSCALER_INTERVAL", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// The policy: default; lab-report (the lab report's algorithm, a round every 60 s; `seed`
    /// is accepted too); the references hpa (Kubernetes' HPA) and target-tracking (AWS target tracking); oracle
    /// (clairvoyant, `simulate` only) [default: default].
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
    /// [default: 0: no band].
    #[arg(long, env = "WEBSCALER_TOLERANCE", value_parser = parse_tolerance)]
    pub tolerance: Option<Tolerance>,
    /// Scale down only after the recommendation stayed lower this long [default: 60s].
    #[arg(long, env = "WEBSCALER_SCALE_DOWN_WINDOW", value_parser = parse_duration)]
    pub scale_down_window: Option<Duration>,
    /// The window after a regretted scale-down; each scale-down that sticks halves the excess
    /// again. No longer than --scale-down-window: a fixed window [default: 5m, or the window
    /// if longer].
    #[arg(long, value_parser = parse_duration)]
    pub scale_down_window_max: Option<Duration>,
    /// A scale-down is regretted when more servers than it kept are asked for within this
    /// long [default: 2m].
    #[arg(long, value_parser = parse_duration)]
    pub scale_down_regret: Option<Duration>,
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
    /// Earlier runs' CSV files or traces: the default policy learns a seasonal baseline
    /// (rate by time of day, or day of week) and keeps at least what it expects; less than
    /// a day of history does nothing.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub history: Vec<PathBuf>,
    /// History: how far ahead the floor looks [default: 120s].
    #[arg(long, value_parser = parse_duration)]
    pub history_lead: Option<Duration>,

    /// HPA: no change while rate / (serving × threshold) is within 1 ± this [default: 0.1].
    #[arg(long, value_parser = parse_tolerance, help_heading = "Reference policy hpa")]
    pub hpa_tolerance: Option<Tolerance>,
    /// HPA: time between syncs [default: 15s].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy hpa")]
    pub hpa_sync_period: Option<Duration>,
    /// HPA: scale down to the highest recommendation of this window [default: 5m].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy hpa")]
    pub hpa_downscale_window: Option<Duration>,
    /// HPA: scale up to the lowest recommendation of this window [default: 0s].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy hpa")]
    pub hpa_upscale_window: Option<Duration>,
    /// HPA: servers added at most per period (the Pods policy) [default: 4].
    #[arg(long, value_name = "N", help_heading = "Reference policy hpa")]
    pub hpa_scale_up_pods: Option<u32>,
    /// HPA: percent added at most per period (the Percent policy; the larger wins) [default: 100].
    #[arg(long, value_name = "PERCENT", help_heading = "Reference policy hpa")]
    pub hpa_scale_up_percent: Option<u32>,
    /// HPA: the scale-up policies' period [default: 15s].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy hpa")]
    pub hpa_scale_up_period: Option<Duration>,
    /// HPA: percent removed at most per period [default: 100].
    #[arg(long, value_name = "PERCENT", help_heading = "Reference policy hpa")]
    pub hpa_scale_down_percent: Option<u32>,
    /// HPA: the scale-down policy's period [default: 15s].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy hpa")]
    pub hpa_scale_down_period: Option<Duration>,

    /// Target tracking: the metric's period [default: 1m].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy target-tracking")]
    pub tt_period: Option<Duration>,
    /// Target tracking: periods above the target before scaling out [default: 3].
    #[arg(
        long,
        value_name = "N",
        help_heading = "Reference policy target-tracking"
    )]
    pub tt_scale_out_periods: Option<u32>,
    /// Target tracking: periods below the target before scaling in [default: 15].
    #[arg(
        long,
        value_name = "N",
        help_heading = "Reference policy target-tracking"
    )]
    pub tt_scale_in_periods: Option<u32>,
    /// Target tracking: how far below the target the metric must be to scale in [default: 0.1].
    #[arg(long, value_parser = parse_tolerance, help_heading = "Reference policy target-tracking")]
    pub tt_scale_in_margin: Option<Tolerance>,
    /// Target tracking: instance warm-up, during which a new server does not count [default: 5m].
    #[arg(long, value_parser = parse_duration, help_heading = "Reference policy target-tracking")]
    pub tt_warmup: Option<Duration>,
}

impl PolicyArgs {
    /// The flags (and their variables) as a layer.
    pub fn layer(&self) -> Layer {
        Layer {
            interval: self.interval,
            policy: self.policy,
            threshold: self.threshold,
            min: self.min,
            max: self.max,
            tolerance: self.tolerance,
            scale_down_window: self.scale_down_window,
            scale_down_window_max: self.scale_down_window_max,
            scale_down_regret: self.scale_down_regret,
            max_remove_per_tick: self.max_remove_per_tick,
            hold_down_while_pending: self.hold_down_while_pending,
            predictive: self.predictive,
            predictive_history: self.predictive_history,
            predictive_lead: self.predictive_lead,
            warm_pool: self.warm_pool,
            history: (!self.history.is_empty()).then(|| self.history.clone()),
            history_lead: self.history_lead,
            hpa: HpaLayer {
                tolerance: self.hpa_tolerance,
                sync_period: self.hpa_sync_period,
                upscale_window: self.hpa_upscale_window,
                downscale_window: self.hpa_downscale_window,
                scale_up_pods: self.hpa_scale_up_pods,
                scale_up_percent: self.hpa_scale_up_percent,
                scale_up_period: self.hpa_scale_up_period,
                scale_down_percent: self.hpa_scale_down_percent,
                scale_down_period: self.hpa_scale_down_period,
            },
            target_tracking: TargetTrackingLayer {
                period: self.tt_period,
                scale_out_periods: self.tt_scale_out_periods,
                scale_in_periods: self.tt_scale_in_periods,
                scale_in_margin: self.tt_scale_in_margin,
                warmup: self.tt_warmup,
            },
            ..Layer::default()
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
    /// The counter: sessions (stot, as the lab report) or requests (req_tot) [default: sessions].
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
    /// CSV dates in UTC (RFC 3339) instead of the lab report's local time.
    #[arg(long, env = "WEBSCALER_UTC")]
    pub utc: bool,

    /// HAProxy: auto (embedded with the local provider and no --socket), embedded, or
    /// system [default: auto].
    #[arg(long = "haproxy", env = "WEBSCALER_HAPROXY", value_enum)]
    pub haproxy_mode: Option<HaproxyMode>,
    /// Embedded: where the frontend listens [default: 127.0.0.1:8080]; repeat to run one
    /// HAProxy per address, all driven in step.
    #[arg(long, env = "WEBSCALER_FRONTEND")]
    pub frontend: Vec<SocketAddr>,
    /// Embedded: a stats page at http://ADDR/stats.
    #[arg(long, env = "WEBSCALER_STATS")]
    pub stats: Option<SocketAddr>,
    /// System: HAProxy's admin socket, a path or ipv4@ADDR:PORT (TCP) [default:
    /// /var/run/haproxy/admin.sock]; repeat to drive several HAProxy instances in step.
    #[arg(long, env = "WEBSCALER_SOCKET", value_name = "PATH")]
    pub socket: Vec<PathBuf>,
    /// System: HAProxy's master socket (for the reload fallback); with several --socket,
    /// one per socket, in the same order.
    #[arg(long, env = "WEBSCALER_MASTER_SOCKET", value_name = "PATH")]
    pub master_socket: Vec<PathBuf>,
    /// The HAProxy backend [default: nodes].
    #[arg(long, env = "WEBSCALER_BACKEND")]
    pub backend: Option<String>,
    /// System: the generated backend file to keep in step; with several --socket, one per
    /// socket, in the same order.
    #[arg(long, value_name = "PATH")]
    pub backend_file: Vec<PathBuf>,
    /// System: every config file HAProxy loads, in order (repeat).
    #[arg(long = "haproxy-config", value_name = "PATH")]
    pub haproxy_configs: Vec<PathBuf>,
    /// System: the reload command of the fallback [default: systemctl reload haproxy].
    #[arg(long)]
    pub reload_command: Option<String>,
    /// System: HAProxy's server-state-file (loaded with load-server-state-from-file
    /// global), kept current so that a reload or restart keeps every server's state; with
    /// several --socket, one per socket, in the same order.
    #[arg(long, value_name = "PATH")]
    pub server_state_file: Vec<PathBuf>,
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

impl SettingsArgs {
    /// The configuration file's layer (empty without `--config`).
    pub fn file(&self) -> Result<Layer> {
        settings::load_file(self.config.as_deref()).map_err(super::settings_error)
    }

    /// The flags (and their variables) as a layer.
    pub fn layer(&self) -> Layer {
        Layer {
            metric: self.metric,
            drain_timeout: self.drain_timeout,
            check_timeout: self.check_timeout,
            quota_retry: self.quota_retry,
            utc: self.utc.then_some(true),
            haproxy: HaproxyLayer {
                mode: self.haproxy_mode,
                frontend: some(&self.frontend),
                stats: self.stats,
                socket: some(&self.socket),
                master_socket: some(&self.master_socket),
                backend: self.backend.clone(),
                backend_file: some(&self.backend_file),
                config: (!self.haproxy_configs.is_empty()).then(|| self.haproxy_configs.clone()),
                reload_command: self.reload_command.clone(),
                server_state_file: some(&self.server_state_file),
                backend_port: self.backend_port,
                program: self.haproxy_bin.clone(),
                check_inter: self.check_inter,
                check_rise: self.check_rise,
                check_fall: self.check_fall,
                pool_purge_delay: self.pool_purge_delay,
                socket_timeout: self.socket_timeout,
            },
            ..self.policy.layer()
        }
    }
}

/// A repeated flag as a layer's key: unset when not given.
fn some<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The provider and its settings.
#[derive(Debug, Clone, Args)]
pub struct ProviderArgs {
    /// The provider [default: openstack if a cloud is configured (--os-cloud, OS_CLOUD,
    /// OS_AUTH_URL, --openstack-cfg or ./etc/openstack.cfg), else local].
    #[arg(long, value_enum, env = "WEBSCALER_PROVIDER", global = true)]
    pub provider: Option<Provider>,

    /// Name prefix of the backends [default: node-].
    #[arg(long, global = true)]
    pub prefix: Option<String>,

    /// Local: where the state file and backend logs live [default:
    /// $XDG_STATE_HOME/webscaler or ~/.local/state/webscaler].
    #[arg(long, env = "WEBSCALER_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Local: the command of a backend; {port}, {name}, {id} and {host} are replaced
    /// [default: lbbench backend --port {port} --name {name}].
    #[arg(long, env = "WEBSCALER_BACKEND_COMMAND", global = true)]
    pub command: Option<String>,

    /// Local: seconds a backend takes to "boot", imitating a cloud [default: 0].
    #[arg(long, global = true, value_name = "SECS")]
    pub boot_delay: Option<f64>,

    /// Local: the address the backends listen on and HAProxy reaches them at (give the
    /// command `--bind {host}`) [default: 127.0.0.1].
    #[arg(long, global = true, value_name = "IP")]
    pub backend_host: Option<std::net::IpAddr>,

    /// Local: how many backends may exist (running or stopped); 0 = unlimited [default: 20].
    #[arg(long, global = true, value_name = "N")]
    pub max_backends: Option<u64>,

    /// Local: seconds between SIGTERM and SIGKILL when stopping a backend [default: 5].
    #[arg(long, global = true, value_name = "SECS")]
    pub grace: Option<f64>,

    /// OpenStack: the cloud of clouds.yaml to use (or OS_CLOUD).
    #[arg(long, global = true, value_name = "NAME")]
    pub os_cloud: Option<String>,
    /// OpenStack: the lab report's credentials file ([main] USERNAME, PASSWORD, AUTH_URL, TENANT_NAME).
    #[arg(long, global = true, value_name = "FILE")]
    pub openstack_cfg: Option<PathBuf>,
    /// OpenStack: Keystone URL (or OS_AUTH_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub os_auth_url: Option<String>,
    /// OpenStack: password or v3applicationcredential (or OS_AUTH_TYPE).
    #[arg(long, global = true, value_name = "TYPE")]
    pub os_auth_type: Option<String>,
    /// OpenStack: user name (or OS_USERNAME).
    #[arg(long, global = true)]
    pub os_username: Option<String>,
    /// OpenStack: user id (or OS_USER_ID).
    #[arg(long, global = true)]
    pub os_user_id: Option<String>,
    /// OpenStack: password (or OS_PASSWORD; better in secure.yaml than on a command line).
    #[arg(long, global = true, hide_env_values = true)]
    pub os_password: Option<String>,
    /// OpenStack: project name (or OS_PROJECT_NAME, OS_TENANT_NAME).
    #[arg(long, global = true)]
    pub os_project_name: Option<String>,
    /// OpenStack: project id (or OS_PROJECT_ID).
    #[arg(long, global = true)]
    pub os_project_id: Option<String>,
    /// OpenStack: the user's domain name (or OS_USER_DOMAIN_NAME).
    #[arg(long, global = true)]
    pub os_user_domain_name: Option<String>,
    /// OpenStack: the user's domain id (or OS_USER_DOMAIN_ID).
    #[arg(long, global = true)]
    pub os_user_domain_id: Option<String>,
    /// OpenStack: the project's domain name (or OS_PROJECT_DOMAIN_NAME).
    #[arg(long, global = true)]
    pub os_project_domain_name: Option<String>,
    /// OpenStack: the project's domain id (or OS_PROJECT_DOMAIN_ID).
    #[arg(long, global = true)]
    pub os_project_domain_id: Option<String>,
    /// OpenStack: application credential id (or OS_APPLICATION_CREDENTIAL_ID).
    #[arg(long, global = true)]
    pub os_application_credential_id: Option<String>,
    /// OpenStack: application credential name (or OS_APPLICATION_CREDENTIAL_NAME).
    #[arg(long, global = true)]
    pub os_application_credential_name: Option<String>,
    /// OpenStack: application credential secret (or OS_APPLICATION_CREDENTIAL_SECRET).
    #[arg(long, global = true)]
    pub os_application_credential_secret: Option<String>,
    /// OpenStack: region (or OS_REGION_NAME).
    #[arg(long, global = true)]
    pub os_region_name: Option<String>,
    /// OpenStack: endpoint interface, public, internal or admin (or OS_INTERFACE).
    #[arg(long, global = true)]
    pub os_interface: Option<String>,
    /// OpenStack: CA bundle to verify TLS with (or OS_CACERT, `cacert` in clouds.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_cacert: Option<PathBuf>,
    /// OpenStack: client certificate (or OS_CERT).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_cert: Option<PathBuf>,
    /// OpenStack: client key (or OS_KEY).
    #[arg(long, global = true, value_name = "FILE")]
    pub os_key: Option<PathBuf>,
    /// OpenStack: do not verify TLS certificates (or OS_INSECURE).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// OpenStack: Nova microversion to request, e.g. 2.37 [default: 2.1].
    #[arg(long, global = true, value_name = "VERSION")]
    pub os_compute_api_version: Option<String>,

    /// OpenStack: image of new backends, by name or id (or WEBSCALER_IMAGE).
    #[arg(long, env = "WEBSCALER_IMAGE", global = true)]
    pub image: Option<String>,
    /// OpenStack: flavor of new backends (or WEBSCALER_FLAVOR).
    #[arg(long, env = "WEBSCALER_FLAVOR", global = true)]
    pub flavor: Option<String>,
    /// OpenStack: network of new backends (or WEBSCALER_NETWORK).
    #[arg(long, env = "WEBSCALER_NETWORK", global = true)]
    pub network: Option<String>,
    /// OpenStack: keypair of new backends (or WEBSCALER_KEY_NAME).
    #[arg(long, env = "WEBSCALER_KEY_NAME", global = true)]
    pub key_name: Option<String>,
    /// OpenStack: security group of new backends (repeatable).
    #[arg(long = "security-group", global = true, value_name = "NAME")]
    pub security_groups: Vec<String>,
    /// OpenStack: cloud-init user data of new backends [default: the built-in
    /// etc/clouddata.txt].
    #[arg(long, global = true, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// OpenStack: seconds before one HTTP request times out [default: 30].
    #[arg(long, global = true, value_name = "SECS")]
    pub http_timeout: Option<f64>,
}

/// A number of seconds from a flag.
pub(crate) fn secs(what: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        UsageError::new(format!("{what} must be a number of seconds ≥ 0, got {v}")).into()
    })
}

impl ProviderArgs {
    /// The flags (and their variables) as a layer.
    pub fn layer(&self) -> Result<CloudLayer> {
        let secs = |what, v: Option<f64>| v.map(|v| secs(what, v)).transpose();
        let mut o = crate::cloud::openstack::config::Overrides::default();
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        o.set("auth_url", self.os_auth_url.clone());
        o.set("auth_type", self.os_auth_type.clone());
        o.set("username", self.os_username.clone());
        o.set("user_id", self.os_user_id.clone());
        o.set("password", self.os_password.clone());
        o.set("project_name", self.os_project_name.clone());
        o.set("project_id", self.os_project_id.clone());
        o.set("user_domain_name", self.os_user_domain_name.clone());
        o.set("user_domain_id", self.os_user_domain_id.clone());
        o.set("project_domain_name", self.os_project_domain_name.clone());
        o.set("project_domain_id", self.os_project_domain_id.clone());
        o.set(
            "application_credential_id",
            self.os_application_credential_id.clone(),
        );
        o.set(
            "application_credential_name",
            self.os_application_credential_name.clone(),
        );
        o.set(
            "application_credential_secret",
            self.os_application_credential_secret.clone(),
        );
        o.set("interface", self.os_interface.clone());
        o.set("cacert", path(&self.os_cacert));
        o.set("cert", path(&self.os_cert));
        o.set("key", path(&self.os_key));
        if self.insecure {
            o.set("insecure", Some("true".into()));
        }
        o.set("compute_api_version", self.os_compute_api_version.clone());
        Ok(CloudLayer {
            provider: self.provider,
            prefix: self.prefix.clone(),
            state_dir: self.state_dir.clone(),
            command: self.command.clone(),
            boot_delay: secs("--boot-delay", self.boot_delay)?,
            backend_host: self.backend_host,
            max_backends: self.max_backends,
            grace: secs("--grace", self.grace)?,
            os_cloud: self.os_cloud.clone(),
            openstack_cfg: self.openstack_cfg.clone(),
            os_region_name: self.os_region_name.clone(),
            image: self.image.clone(),
            flavor: self.flavor.clone(),
            network: self.network.clone(),
            key_name: self.key_name.clone(),
            security_groups: (!self.security_groups.is_empty())
                .then(|| self.security_groups.clone()),
            user_data: self.user_data.clone(),
            http_timeout: secs("--http-timeout", self.http_timeout)?,
            openstack: o,
        })
    }
}
