//! The cloud provider's settings, resolved ([`CloudSettings`]), and the provider they open.

use std::path::PathBuf;
use std::time::Duration;

use common::process::split_words;
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
    /// Local: the address the backends listen on and HAProxy reaches them at.
    pub backend_host: std::net::IpAddr,
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
    /// The layer's `[cloud]` keys over the defaults, checked: the prefix (HAProxy's name
    /// characters: backend names become server names and log file names), the command
    /// template's words, a relative state directory made absolute, the HTTP timeout.
    pub fn resolve(c: &CloudLayer) -> Result<CloudSettings, SettingsError> {
        let invalid = |m: String| SettingsError::Invalid(m);
        let prefix = c
            .prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        check_prefix(&prefix)?;
        let command = c
            .command
            .clone()
            .unwrap_or_else(|| local::DEFAULT_COMMAND.to_owned());
        match split_words(&command) {
            Ok(w) if w.is_empty() => {
                return Err(invalid("--command (cloud.command) is empty".into()));
            }
            Ok(_) => {}
            Err(e) => return Err(invalid(format!("--command (cloud.command): {e}"))),
        }
        let state_dir = match &c.state_dir {
            Some(d) if d.as_os_str().is_empty() => {
                return Err(invalid("--state-dir (state_dir) is empty".into()));
            }
            Some(d) => Some(absolute(d)?),
            None => None,
        };
        let http_timeout = c.http_timeout.unwrap_or(Duration::from_secs(30));
        super::at_least(
            "http-timeout",
            "cloud.http_timeout",
            http_timeout,
            Duration::from_secs(1),
            "",
        )?;
        let mut openstack = Overrides {
            cloud: c.os_cloud.clone(),
            openstack_cfg: c.openstack_cfg.clone(),
            ..c.openstack.clone()
        };
        openstack.set("region_name", c.os_region_name.clone());
        Ok(CloudSettings {
            provider: c.provider,
            prefix,
            state_dir,
            command,
            boot_delay: c.boot_delay.unwrap_or(Duration::ZERO),
            backend_host: c.backend_host.unwrap_or(local::DEFAULT_HOST),
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
            http_timeout,
        })
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

    /// The state directory of the local provider and of `webscaler run`, absolute (the
    /// embedded HAProxy runs in it, and the markers of its processes name it).
    pub fn state_dir(&self, env: &Env) -> PathBuf {
        let dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| local::default_state_dir(|k| env.vars.get(k).cloned()));
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// Opens the provider.
    pub fn open(&self, env: &Env) -> Result<Box<dyn Cloud + Send + Sync>, SettingsError> {
        match self.provider(env) {
            Provider::Local => {
                let opts = LocalOptions {
                    state_dir: self.state_dir(env),
                    command: self.command.clone(),
                    prefix: self.prefix.clone(),
                    boot_delay: self.boot_delay,
                    grace: self.grace,
                    max_backends: self.max_backends,
                    host: self.backend_host,
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

/// A relative path made absolute against the current directory.
fn absolute(p: &std::path::Path) -> Result<PathBuf, SettingsError> {
    std::path::absolute(p).map_err(|e| {
        SettingsError::Invalid(format!(
            "--state-dir (state_dir) {}: cannot make it absolute: {e}",
            p.display()
        ))
    })
}

/// A backend name prefix: not empty, and only HAProxy's name characters (letters, digits,
/// `.`, `_`, `-`), so that `<prefix><n>` is a server name and a log file name, never a path.
pub fn check_prefix(prefix: &str) -> Result<(), SettingsError> {
    let bad =
        |why: String| SettingsError::Invalid(format!("--prefix (cloud.prefix) {prefix:?}: {why}"));
    if prefix.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !crate::balancer::names::is_name_char(*c))
    {
        return Err(bad(format!(
            "{c:?} is not allowed (only letters, digits, '.', '_' and '-')"
        )));
    }
    // Room for the number in a server name.
    let max = crate::balancer::names::MAX_NAME_LEN - 20;
    if prefix.len() > max {
        return Err(bad(format!("longer than {max} characters")));
    }
    if prefix.chars().all(|c| c == '.') {
        return Err(bad("only dots".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_haproxy_names_and_never_paths() {
        for ok in ["node-", "web_", "a", "n.1-"] {
            check_prefix(ok).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("a;b", "';' is not allowed"),
            ("a\nb", "'\\n' is not allowed"),
            ("../x", "'/' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("..", "only dots"),
        ] {
            let e = check_prefix(bad).unwrap_err().to_string();
            assert!(e.starts_with("--prefix (cloud.prefix) "), "{e}");
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_relative_state_dir_is_made_absolute() {
        let s = CloudSettings::resolve(&CloudLayer {
            state_dir: Some("rel/state".into()),
            ..CloudLayer::default()
        })
        .unwrap();
        let dir = s.state_dir.unwrap();
        assert!(dir.is_absolute());
        assert_eq!(dir, std::env::current_dir().unwrap().join("rel/state"));
    }

    #[test]
    fn a_command_that_cannot_be_split_is_refused() {
        let e = CloudSettings::resolve(&CloudLayer {
            command: Some("lbbench 'backend".into()),
            ..CloudLayer::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--command (cloud.command): "), "{e}");
    }
}
