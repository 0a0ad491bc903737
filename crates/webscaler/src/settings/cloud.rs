//! The cloud provider's settings, resolved ([`CloudSettings`]), and the provider they open.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{CloudLayer, SettingsError};
use crate::cloud::local::{self, LocalCloud, LocalOptions};
use crate::cloud::openstack::config::{self as osconfig, Env, Overrides};
use crate::cloud::openstack::{OpenStack, OpenStackOptions, ServerSpec};
use crate::cloud::{Cloud, DEFAULT_PREFIX};

/// The cloud-init script sent as `user_data` when none is configured: the lab report's
/// `etc/clouddata.txt` (installs Apache; its default page says "It works!").
pub const DEFAULT_CLOUD_INIT: &str = include_str!("../../../../etc/clouddata.txt");

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Local processes on 127.0.0.1.
    Local,
    /// OpenStack (Keystone v3 + Nova).
    Openstack,
}

impl Provider {
    /// `local` or `openstack`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Local => "local",
            Provider::Openstack => "openstack",
        }
    }
}

/// The provider's settings, resolved (the provider itself and the state directory also
/// depend on the environment: [`CloudSettings::provider`], [`CloudSettings::state_dir`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudSettings {
    /// The provider asked for (`None`: OpenStack if a cloud is configured, else local).
    pub provider: Option<Provider>,
    /// The backends' name prefix.
    pub prefix: String,
    /// The state directory asked for (`None`: the XDG state directory).
    pub state_dir: Option<PathBuf>,
    /// Local: the command of a backend.
    pub command: String,
    /// Local: how long a backend takes to "boot".
    pub boot_delay: Duration,
    /// Local: how many backends may exist (`None`: unlimited).
    pub max_backends: Option<u64>,
    /// Local: from SIGTERM to SIGKILL.
    pub grace: Duration,
    /// OpenStack: the highest layer of its configuration (`--os-*` flags and the file's
    /// `os_cloud`, `openstack_cfg` and `os_region_name`).
    pub openstack: Overrides,
    /// OpenStack: what new backends are made of (the user data is read when opening).
    pub server: ServerSpec,
    /// OpenStack: the user data file (`None`: [`DEFAULT_CLOUD_INIT`]).
    pub user_data: Option<PathBuf>,
    /// OpenStack: the timeout of one HTTP request.
    pub http_timeout: Duration,
}

impl CloudSettings {
    /// The layer's `[cloud]` keys over the defaults.
    pub fn resolve(c: &CloudLayer) -> CloudSettings {
        let mut openstack = Overrides {
            cloud: c.os_cloud.clone(),
            openstack_cfg: c.openstack_cfg.clone(),
            ..c.openstack.clone()
        };
        openstack.set("region_name", c.os_region_name.clone());
        CloudSettings {
            provider: c.provider,
            prefix: c
                .prefix
                .clone()
                .unwrap_or_else(|| DEFAULT_PREFIX.to_owned()),
            state_dir: c.state_dir.clone(),
            command: c
                .command
                .clone()
                .unwrap_or_else(|| local::DEFAULT_COMMAND.to_owned()),
            boot_delay: c.boot_delay.unwrap_or(Duration::ZERO),
            max_backends: match c.max_backends.unwrap_or(local::DEFAULT_MAX_BACKENDS) {
                0 => None,
                n => Some(n),
            },
            grace: c.grace.unwrap_or(Duration::from_secs(5)),
            openstack,
            server: ServerSpec {
                image: c.image.clone(),
                flavor: c.flavor.clone(),
                network: c.network.clone(),
                key_name: c.key_name.clone(),
                security_groups: c.security_groups.clone().unwrap_or_default(),
                user_data: None,
            },
            user_data: c.user_data.clone(),
            http_timeout: c.http_timeout.unwrap_or(Duration::from_secs(30)),
        }
    }

    /// The provider in this environment: the one asked for, else OpenStack if a cloud is
    /// configured (a named cloud, `OS_AUTH_URL`, an `openstack.cfg`), else local.
    pub fn provider(&self, env: &Env) -> Provider {
        self.provider.unwrap_or_else(|| {
            if osconfig::is_configured(env, &self.openstack) {
                Provider::Openstack
            } else {
                Provider::Local
            }
        })
    }

    /// The state directory of the local provider and of `webscaler run`.
    pub fn state_dir(&self, env: &Env) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| local::default_state_dir(|k| env.vars.get(k).cloned()))
    }

    /// Opens the provider.
    pub fn open(&self, env: &Env) -> Result<Box<dyn Cloud + Send + Sync>, SettingsError> {
        if self.prefix.is_empty() {
            return Err(SettingsError::Invalid("--prefix must not be empty".into()));
        }
        match self.provider(env) {
            Provider::Local => {
                let opts = LocalOptions {
                    state_dir: self.state_dir(env),
                    command: self.command.clone(),
                    prefix: self.prefix.clone(),
                    boot_delay: self.boot_delay,
                    grace: self.grace,
                    max_backends: self.max_backends,
                };
                Ok(Box::new(LocalCloud::new(opts)?))
            }
            Provider::Openstack => {
                let cfg = osconfig::resolve(env, &self.openstack)?;
                let user_data = match &self.user_data {
                    Some(p) => std::fs::read(p).map_err(|source| SettingsError::UserData {
                        path: p.clone(),
                        source,
                    })?,
                    None => DEFAULT_CLOUD_INIT.as_bytes().to_vec(),
                };
                let opts = OpenStackOptions {
                    prefix: self.prefix.clone(),
                    server: ServerSpec {
                        user_data: Some(user_data),
                        ..self.server.clone()
                    },
                    timeout: self.http_timeout,
                    ..OpenStackOptions::default()
                };
                Ok(Box::new(OpenStack::new(&cfg, opts)?))
            }
        }
    }

    /// What the settings resolve to, without contacting the cloud (`webscaler cloud config`):
    /// for OpenStack, the resolved configuration with its secrets redacted.
    pub fn to_json(&self, env: &Env) -> Result<Value, SettingsError> {
        Ok(match self.provider(env) {
            Provider::Local => serde_json::json!({
                "provider": "local",
                "state_dir": self.state_dir(env).display().to_string(),
                "command": self.command,
                "prefix": self.prefix,
            }),
            Provider::Openstack => {
                let cfg = osconfig::resolve(env, &self.openstack)?;
                let mut v = cfg.to_redacted_json();
                if let Value::Object(m) = &mut v {
                    m.insert("provider".into(), "openstack".into());
                    m.insert("prefix".into(), self.prefix.clone().into());
                }
                v
            }
        })
    }
}
