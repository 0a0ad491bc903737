//! Where the OpenStack credentials come from, resolved the way the `openstack` CLI does.
//!
//! Layers, lowest first; a value set in a higher layer wins:
//! 1. defaults (`auth_type: password`, `interface: public`, user and project domain
//!    `default` when a name is given without a domain);
//! 2. one file: the `clouds.yaml` entry named by `--os-cloud` or `OS_CLOUD` (deep-merged
//!    with the same entry of `secure.yaml`), or the lab report's `openstack.cfg` (`[main]`
//!    USERNAME, PASSWORD, AUTH_URL, TENANT_NAME), or the only cloud of `clouds.yaml`;
//! 3. the `OS_*` variables of an openrc file;
//! 4. command-line flags.
//!
//! `clouds.yaml` is searched in `OS_CLIENT_CONFIG_FILE`, `./`, `$XDG_CONFIG_HOME/openstack`
//! (or `~/.config/openstack`), `~/.config/openstack`, `/etc/xdg/openstack`,
//! `/etc/openstack`; the first file found wins (files are not merged with each other).
//! `secure.yaml` is searched in the same places (`OS_CLIENT_SECURE_FILE` first).
//!
//! Everything reads an explicit [`Env`] (variables, home, working directory), never the
//! process environment directly, so resolution is testable.
//!
//! One file per input: `clouds_yaml.rs` (clouds.yaml and secure.yaml), `openstack_cfg.rs`
//! (the lab report's file), `environment.rs` (`OS_*` variables, and [`Env`]), `flags.rs`
//! ([`Overrides`]); `merge.rs` layers them ([`resolve`]) into an [`OpenStackConfig`].

mod clouds_yaml;
mod environment;
mod flags;
mod merge;
mod openstack_cfg;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::Secret;

pub use environment::Env;
pub use flags::Overrides;
pub use merge::{is_configured, normalize_auth_url, resolve};

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// By id (`default`).
    Id(String),
    /// By name (`Default`).
    Name(String),
}

/// A user, by id or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// By id.
    Id(String),
    /// By name within a domain.
    Name {
        /// The user's name.
        name: String,
        domain: DomainRef,
    },
}

/// The project a password token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// By id.
    Id(String),
    /// By name within a domain.
    Name {
        /// The project's name.
        name: String,
        domain: DomainRef,
    },
}

/// How to authenticate with Keystone v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// Password, scoped to a project.
    Password {
        user: UserRef,
        password: Secret,
        project: ProjectRef,
    },
    /// An application credential (scoped to its own project; no scope may be sent).
    ApplicationCredential {
        /// The credential, by id, or by name with its user.
        credential: AppCredRef,
        secret: Secret,
    },
}

/// An application credential, by id or by name (names are per user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredRef {
    /// By id.
    Id(String),
    /// By name, with its owner.
    Name {
        /// The credential's name.
        name: String,
        user: UserRef,
    },
}

/// Which endpoints of the catalog to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `public` (the default).
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// Parses `public`, `internal`, `admin` (and the legacy `publicURL` forms).
    pub fn parse(s: &str) -> Option<Interface> {
        match s.to_ascii_lowercase().trim_end_matches("url") {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }

    /// As the catalog spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// Skip certificate verification (`--insecure`, `verify: false`). Off by default.
    pub insecure: bool,
    /// A CA bundle (PEM) to trust instead of the built-in roots.
    pub cacert: Option<PathBuf>,
    /// A client certificate (PEM).
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
}

/// A fully resolved OpenStack configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenStackConfig {
    /// Where it came from, for messages (`clouds.yaml cloud "mycloud" (/path)`, ...).
    pub source: String,
    /// Keystone's URL, ending in `/v3`.
    pub auth_url: String,
    /// How to authenticate.
    pub auth: AuthMethod,
    /// The region, if one is set.
    pub region: Option<String>,
    /// The endpoint interface.
    pub interface: Interface,
    pub tls: TlsOptions,
    /// The Nova microversion to request (`2.1` if unset).
    pub compute_api_version: Option<String>,
}

impl OpenStackConfig {
    /// The resolved settings as flat JSON, with secrets shown as `<redacted>`: what
    /// `webscaler cloud config --json` prints. Only the fields that take part in
    /// authentication appear: a user given by id has no domain, a project given by id none
    /// either (Keystone ignores them, as keystoneauth does).
    pub fn to_redacted_json(&self) -> Value {
        fn domain(m: &mut Map<String, Value>, prefix: &str, d: &DomainRef) {
            let (k, v) = match d {
                DomainRef::Id(v) => (format!("{prefix}_domain_id"), v),
                DomainRef::Name(v) => (format!("{prefix}_domain_name"), v),
            };
            m.insert(k, Value::String(v.clone()));
        }
        fn user(m: &mut Map<String, Value>, u: &UserRef) {
            match u {
                UserRef::Id(id) => {
                    m.insert("user_id".into(), Value::String(id.clone()));
                }
                UserRef::Name { name, domain: d } => {
                    m.insert("username".into(), Value::String(name.clone()));
                    domain(m, "user", d);
                }
            }
        }
        let redacted = || Value::String("<redacted>".into());
        let mut m = Map::new();
        m.insert("source".into(), Value::String(self.source.clone()));
        m.insert("auth_url".into(), Value::String(self.auth_url.clone()));
        match &self.auth {
            AuthMethod::Password {
                user: u, project, ..
            } => {
                m.insert("auth_type".into(), Value::String("password".into()));
                user(&mut m, u);
                m.insert("password".into(), redacted());
                match project {
                    ProjectRef::Id(id) => {
                        m.insert("project_id".into(), Value::String(id.clone()));
                    }
                    ProjectRef::Name { name, domain: d } => {
                        m.insert("project_name".into(), Value::String(name.clone()));
                        domain(&mut m, "project", d);
                    }
                }
            }
            AuthMethod::ApplicationCredential { credential, .. } => {
                m.insert(
                    "auth_type".into(),
                    Value::String("v3applicationcredential".into()),
                );
                match credential {
                    AppCredRef::Id(id) => {
                        m.insert(
                            "application_credential_id".into(),
                            Value::String(id.clone()),
                        );
                    }
                    AppCredRef::Name { name, user: u } => {
                        m.insert(
                            "application_credential_name".into(),
                            Value::String(name.clone()),
                        );
                        user(&mut m, u);
                    }
                }
                m.insert("application_credential_secret".into(), redacted());
            }
        }
        let opt = |v: Option<String>| v.map(Value::String).unwrap_or(Value::Null);
        let path = |p: &Option<PathBuf>| opt(p.as_ref().map(|p| p.display().to_string()));
        m.insert("region_name".into(), opt(self.region.clone()));
        m.insert(
            "interface".into(),
            Value::String(self.interface.as_str().into()),
        );
        m.insert("verify".into(), Value::Bool(!self.tls.insecure));
        m.insert("cacert".into(), path(&self.tls.cacert));
        m.insert("cert".into(), path(&self.tls.cert));
        m.insert("key".into(), path(&self.tls.key));
        m.insert(
            "compute_api_version".into(),
            opt(self.compute_api_version.clone()),
        );
        Value::Object(m)
    }
}

/// One layer of settings: canonical key → value, plus a cloud's `regions` list.
#[derive(Debug, Default)]
struct Layer {
    values: BTreeMap<String, String>,
    regions: Vec<String>,
}

impl Layer {
    fn new() -> Layer {
        Layer::default()
    }
}

const KNOWN_KEYS: &[&str] = &[
    "auth_url",
    "auth_type",
    "username",
    "user_id",
    "password",
    "project_name",
    "project_id",
    "user_domain_name",
    "user_domain_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "default_domain",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "region_name",
    "interface",
    "identity_api_version",
    "compute_api_version",
    "cacert",
    "cert",
    "key",
    "insecure",
    "verify",
];

/// Maps an alias to its canonical key.
fn canonical(key: &str) -> &str {
    match key {
        "tenant_name" => "project_name",
        "tenant_id" => "project_id",
        "endpoint_type" => "interface",
        "os_cacert" => "cacert",
        k => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_parse() {
        assert_eq!(Interface::parse("publicURL"), Some(Interface::Public));
        assert_eq!(Interface::parse("internal"), Some(Interface::Internal));
        assert_eq!(Interface::parse("x"), None);
    }
}
