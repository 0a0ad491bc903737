//! What `webscaler status` shows ([`Snapshot`]): the backends as the cloud and HAProxy
//! report them, joined by name with the role the controller gives each, and the rate and
//! servers needed.
//!
//! Against a running `webscaler run` (found through its [`StatusFile`]) it uses that
//! instance's HAProxy socket, backend and naming, and its last tick's rate and `needed`.
//! Without one, it reads HAProxy itself (the embedded one of the state directory, or the
//! system's) and measures the rate over a window. An HAProxy that does not answer is not an
//! error: the snapshot then has the cloud's side alone, and says why HAProxy's is missing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::StatusFile;
use crate::balancer::{BackendName, Balancer, BalancerView};
use crate::cloud::openstack::config::Env;
use crate::cloud::{CloudError, Naming, Quota};
use crate::controller::view::{ClassifyConfig, Counts, Member, Memory, classify};
use crate::haproxy::{Haproxy, Socket};
use crate::rate::meter::{RateMeter, Sample};
use crate::settings::{Settings, SettingsError};

/// The backends and the rate at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The state directory looked in.
    pub state_dir: PathBuf,
    /// The running `webscaler run`, if any.
    pub running: Option<StatusFile>,
    /// Requests per second: the running instance's last tick's, or measured.
    pub rate: Option<f64>,
    /// Servers needed at that rate.
    pub needed: Option<u32>,
    /// Whether the rate was measured here over the window (else read from the last tick).
    pub measured: bool,
    pub counts: Counts,
    /// The cloud's quota, if it could be read.
    pub quota: Option<Quota>,
    /// Every backend: the cloud's and HAProxy's view side by side, with its role.
    pub members: Vec<Member>,
    /// Why HAProxy's side is missing, if it is (`None`: HAProxy answered).
    pub haproxy_error: Option<String>,
}

/// Why no snapshot could be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The settings cannot be used (or the provider cannot be opened).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The cloud could not list its backends.
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl SnapshotError {
    /// Whether the error is bad input (exit status 2), rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        match self {
            SnapshotError::Settings(e) => e.is_bad_input(),
            SnapshotError::Cloud(e) => matches!(e, CloudError::Config { .. }),
        }
    }
}

impl Snapshot {
    /// Takes a snapshot with `settings` in `env`; without a running instance the rate is
    /// measured over `window` (this sleeps that long).
    pub fn take(
        settings: &Settings,
        env: &Env,
        window: Duration,
    ) -> Result<Snapshot, SnapshotError> {
        let provider = settings.cloud.provider(env);
        let state_dir = settings.cloud.state_dir(env);
        let running = StatusFile::running(&state_dir);
        let h = &settings.haproxy;
        // A running instance's own socket, backend and naming win over the settings given
        // here.
        let mut classify_cfg = ClassifyConfig {
            naming: settings.controller.naming.clone(),
            backend_port: settings.controller.backend_port,
            check_timeout: settings.controller.check_timeout,
        };
        let ha: Haproxy = match &running {
            Some(s) => {
                classify_cfg.naming = Naming::new(&s.prefix);
                classify_cfg.backend_port = s.backend_port;
                let backend = BackendName::new(&s.backend).unwrap_or_else(|_| h.backend.clone());
                Haproxy::new(h.timeouts(Socket::admin(&s.admin_socket)), backend)
            }
            None if h.embedded(provider) => h.embedded_client(&state_dir),
            None => h.system_client()?,
        };
        let cloud = settings.cloud.open(env)?;
        let backends = cloud.list()?;
        let quota = cloud.quota().ok();
        let metric = settings.controller.metric;
        let (view, haproxy_error) = match ha.observe(metric) {
            Ok(v) => (Some(v), None),
            Err(e) => (
                None,
                Some(if running.is_none() && h.embedded(provider) {
                    format!(
                        "the embedded HAProxy of {} does not answer ({e})",
                        state_dir.display()
                    )
                } else {
                    format!("cannot read HAProxy's backend {}: {e}", ha.backend())
                }),
            ),
        };
        let members = classify(
            &backends,
            view.as_ref().unwrap_or(&BalancerView::default()),
            &Memory::default(),
            Duration::ZERO,
            &classify_cfg,
        );
        let counts = Counts::of(&members);

        let (rate, needed, measured) = match (&running, &view) {
            (Some(s), _) => (s.last.rate, s.last.needed, false),
            (None, None) => (None, None, false),
            (None, Some(view)) => {
                let origin = Instant::now();
                let sample = |v: &BalancerView| Sample {
                    counter: v.counter,
                    at: origin.elapsed(),
                    uptime_sec: v.uptime_sec,
                    pid: v.pid,
                };
                let mut meter = RateMeter::new();
                let _ = meter.update(sample(view));
                std::thread::sleep(window);
                match ha.observe(metric).ok().map(|v| meter.update(sample(&v))) {
                    Some(Ok(r)) => {
                        let cap = quota.as_ref().and_then(|q| q.backends(counts.instances));
                        (
                            Some(r.rate.to_f64()),
                            Some(settings.policy.config.needed(r.rate, cap)),
                            true,
                        )
                    }
                    _ => (None, None, true),
                }
            }
        };
        Ok(Snapshot {
            state_dir,
            running,
            rate,
            needed,
            measured,
            counts,
            quota,
            members,
            haproxy_error,
        })
    }
}
