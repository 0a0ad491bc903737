//! What `webscaler status` shows ([`Snapshot`]): the backends as the cloud and HAProxy
//! report them, joined by name with the role the controller gives each, and the rate and
//! servers needed.
//!
//! Against a running `webscaler run` (found through its [`StatusFile`]) it uses that
//! instance's HAProxy socket, backend and naming, and its last tick's rate and `needed`.
//! Without one, it reads HAProxy itself (the embedded one of the state directory, or the
//! system's) and measures the rate over a window.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::StatusFile;
use crate::balancer::{BackendName, Balancer, BalancerView};
use crate::cloud::openstack::config::Env;
use crate::cloud::{CloudError, Naming, Quota};
use crate::controller::view::{ClassifyConfig, Counts, Member, Memory, classify};
use crate::haproxy::{Haproxy, HaproxyError, Socket};
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
    /// The embedded HAProxy of the state directory does not answer: nothing runs there.
    #[error("no webscaler run is using {} (its HAProxy does not answer)", state_dir.display())]
    NotRunning {
        state_dir: PathBuf,
        #[source]
        source: Box<HaproxyError>,
    },
    /// HAProxy could not be read.
    #[error("cannot read HAProxy's backend {backend}")]
    Haproxy {
        backend: String,
        #[source]
        source: Box<HaproxyError>,
    },
    /// HAProxy could not be read a second time, to measure the rate.
    #[error(transparent)]
    Measure(Box<HaproxyError>),
}

impl SnapshotError {
    /// Whether the error is bad input (exit status 2), rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        match self {
            SnapshotError::Settings(e) => e.is_bad_input(),
            SnapshotError::Cloud(e) => matches!(e, CloudError::Config { .. }),
            _ => false,
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
        let view = ha.observe(metric).map_err(|e| {
            if running.is_none() && h.embedded(provider) {
                SnapshotError::NotRunning {
                    state_dir: state_dir.clone(),
                    source: Box::new(e),
                }
            } else {
                SnapshotError::Haproxy {
                    backend: h.backend.to_string(),
                    source: Box::new(e),
                }
            }
        })?;
        let members = classify(
            &backends,
            &view,
            &Memory::default(),
            Duration::ZERO,
            &classify_cfg,
        );
        let counts = Counts::of(&members);

        let (rate, needed, measured) = match &running {
            Some(s) => (s.last.rate, s.last.needed, false),
            None => {
                let origin = Instant::now();
                let sample = |v: &BalancerView| Sample {
                    counter: v.counter,
                    at: origin.elapsed(),
                    uptime_sec: v.uptime_sec,
                    pid: v.pid,
                };
                let mut meter = RateMeter::new();
                let _ = meter.update(sample(&view));
                std::thread::sleep(window);
                let second = ha
                    .observe(metric)
                    .map_err(|e| SnapshotError::Measure(Box::new(e)))?;
                match meter.update(sample(&second)) {
                    Ok(r) => {
                        let cap = quota.as_ref().and_then(|q| q.backends(counts.instances));
                        (
                            Some(r.rate.to_f64()),
                            Some(settings.policy.config.needed(r.rate, cap)),
                            true,
                        )
                    }
                    Err(_) => (None, None, true),
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
        })
    }
}
