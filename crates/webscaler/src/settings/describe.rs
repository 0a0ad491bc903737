//! The settings in effect, one `key = value` line each in the file's spelling
//! (`webscaler run --check-config`).

use std::path::PathBuf;
use std::time::Duration;

use common::time::{TimeFormat, format_duration};

use super::Settings;
use crate::cloud::openstack::config::Env;

impl Settings {
    /// The settings in effect in `env`, one `key = value` line each.
    pub fn describe(&self, env: &Env) -> String {
        let p = &self.policy.config;
        let (hp, tt) = (&self.policy.hpa, &self.policy.target_tracking);
        let c = &self.controller;
        let h = &self.haproxy;
        let provider = self.cloud.provider(env);
        let state_dir = self.cloud.state_dir(env);
        let dur = |d: Duration| format!("\"{}\"", format_duration(d));
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
        let path =
            |v: &Option<PathBuf>| opt(v.as_ref().map(|p| format!("{:?}", p.display().to_string())));
        // One value as a string, several as an array (both read back), none as `none`.
        let list = |v: Vec<String>| match v.as_slice() {
            [] => "none".to_owned(),
            [one] => format!("{one:?}"),
            _ => format!(
                "[{}]",
                v.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let paths = |v: &[PathBuf]| list(v.iter().map(|p| p.display().to_string()).collect());
        let lines = [
            format!("interval = {}", dur(self.interval)),
            format!("policy = \"{}\"", self.policy.kind),
            format!("threshold = {}", p.threshold),
            format!("min = {}", p.min),
            format!("max = {}", opt(p.max.map(|m| m.to_string()))),
            format!("tolerance = {}", p.tolerance),
            format!("scale_down_window = {}", dur(p.scale_down_window)),
            format!("scale_down_window_max = {}", dur(p.scale_down_window_max)),
            format!("scale_down_regret = {}", dur(p.scale_down_regret)),
            format!(
                "max_remove_per_tick = {}",
                opt(p.max_remove_per_tick.map(|m| m.to_string()))
            ),
            format!("hold_down_while_pending = {}", p.hold_down_while_pending),
            format!("predictive = {}", p.predictive.is_some()),
            format!(
                "history = [{}]",
                self.policy
                    .history
                    .iter()
                    .map(|h| format!("{:?}", h.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("history_lead = {}", dur(self.policy.history_lead)),
            format!("warm_pool = {}", c.warm_pool),
            format!("metric = \"{}\"", c.metric),
            format!("drain_timeout = {}", dur(c.drain_timeout)),
            format!("check_timeout = {}", dur(c.check_timeout)),
            format!("quota_retry = {}", dur(c.quota_retry)),
            format!("output = {}", path(&self.output)),
            format!(
                "metrics = {}",
                opt(self.metrics.map(|a| format!("\"{a}\"")))
            ),
            format!("utc = {}", c.time_format == TimeFormat::Utc),
            format!("state_dir = {:?}", state_dir.display().to_string()),
            format!(
                "haproxy.mode = \"{}\"",
                if h.embedded(provider) {
                    "embedded"
                } else {
                    "system"
                }
            ),
            format!(
                "haproxy.frontend = {}",
                list(h.frontends.iter().map(|f| f.to_string()).collect())
            ),
            format!(
                "haproxy.stats = {}",
                opt(h.stats.map(|s| format!("\"{s}\"")))
            ),
            format!("haproxy.socket = {}", paths(&h.sockets)),
            format!("haproxy.master_socket = {}", paths(&h.master_sockets)),
            format!("haproxy.backend = \"{}\"", h.backend),
            format!("haproxy.backend_file = {}", paths(&h.backend_files)),
            format!(
                "haproxy.server_state_file = {}",
                paths(&h.server_state_files)
            ),
            format!("haproxy.backend_port = {}", c.backend_port),
            format!("haproxy.program = {:?}", h.program.display().to_string()),
            format!("haproxy.check_inter = {}", dur(h.check.inter)),
            format!("haproxy.check_rise = {}", h.check.rise),
            format!("haproxy.check_fall = {}", h.check.fall),
            format!(
                "haproxy.pool_purge_delay = {}",
                dur(h.check.pool_purge_delay)
            ),
            format!("cloud.provider = \"{}\"", provider.as_str()),
            format!("cloud.prefix = \"{}\"", self.cloud.prefix),
            format!("hpa.tolerance = {}", hp.tolerance),
            format!("hpa.sync_period = {}", dur(hp.sync_period)),
            format!("hpa.upscale_window = {}", dur(hp.upscale_window)),
            format!("hpa.downscale_window = {}", dur(hp.downscale_window)),
            format!("hpa.scale_up_pods = {}", hp.scale_up_pods),
            format!("hpa.scale_up_percent = {}", hp.scale_up_percent),
            format!("hpa.scale_up_period = {}", dur(hp.scale_up_period)),
            format!("hpa.scale_down_percent = {}", hp.scale_down_percent),
            format!("hpa.scale_down_period = {}", dur(hp.scale_down_period)),
            format!("target_tracking.period = {}", dur(tt.period)),
            format!(
                "target_tracking.scale_out_periods = {}",
                tt.scale_out_periods
            ),
            format!("target_tracking.scale_in_periods = {}", tt.scale_in_periods),
            format!("target_tracking.scale_in_margin = {}", tt.scale_in_margin),
            format!("target_tracking.warmup = {}", dur(tt.warmup)),
        ];
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }
}
