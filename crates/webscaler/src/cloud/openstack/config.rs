//! Where the OpenStack credentials come from, resolved the way the `openstack` CLI does.
//!
//! Layers, lowest first; a value set in a higher layer wins:
//! 1. defaults (`auth_type: password`, `interface: public`, user and project domain
//!    `default` when a name is given without a domain);
//! 2. one file: the `clouds.yaml` entry named by `--os-cloud` or `OS_CLOUD` (deep-merged
//!    with the same entry of `secure.yaml`), or the seed's `openstack.cfg` (`[main]`
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

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Secret;
use crate::cloud::CloudError;

/// The process environment as configuration resolution sees it.
#[derive(Clone, Default)]
pub struct Env {
    /// Environment variables.
    pub vars: BTreeMap<String, String>,
    /// The home directory.
    pub home: Option<PathBuf>,
    /// The working directory (`./clouds.yaml`, `./etc/openstack.cfg`).
    pub cwd: PathBuf,
    /// System-wide directories searched last (`/etc/xdg/openstack`, `/etc/openstack`).
    pub system_dirs: Vec<PathBuf>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Variables may hold secrets (OS_PASSWORD): print names only.
        f.debug_struct("Env")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl Env {
    /// The real environment of this process.
    pub fn from_process() -> Env {
        let vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Env {
            home: vars.get("HOME").map(PathBuf::from),
            vars,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            system_dirs: vec![
                PathBuf::from("/etc/xdg/openstack"),
                PathBuf::from("/etc/openstack"),
            ],
        }
    }

    fn var(&self, k: &str) -> Option<&str> {
        self.vars
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.cwd.clone()];
        if let Some(x) = self.var("XDG_CONFIG_HOME") {
            dirs.push(Path::new(x).join("openstack"));
        }
        if let Some(h) = &self.home {
            dirs.push(h.join(".config/openstack"));
        }
        dirs.extend(self.system_dirs.iter().cloned());
        dirs.dedup();
        dirs
    }

    fn find_file(&self, explicit_var: &str, stem: &str) -> Option<PathBuf> {
        if let Some(p) = self.var(explicit_var) {
            let p = self.cwd.join(p);
            if p.is_file() {
                return Some(p);
            }
        }
        self.search_dirs().into_iter().find_map(|d| {
            ["yaml", "yml", "json"]
                .iter()
                .map(|ext| d.join(format!("{stem}.{ext}")))
                .find(|p| p.is_file())
        })
    }
}

/// Settings given on the command line (`--os-*`), the highest layer. Keys are the
/// canonical names (`auth_url`, `username`, `project_name`, `region_name`, ...).
#[derive(Clone, Default)]
pub struct Overrides {
    /// `--os-cloud`.
    pub cloud: Option<String>,
    /// `--openstack-cfg`: the seed's credentials file.
    pub openstack_cfg: Option<PathBuf>,
    /// Other settings by canonical key.
    pub values: BTreeMap<String, String>,
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("Overrides")
            .field("cloud", &self.cloud)
            .field("openstack_cfg", &self.openstack_cfg)
            .field("values", &values)
            .finish()
    }
}

impl Overrides {
    /// Sets a value if given.
    pub fn set(&mut self, key: &str, value: Option<String>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.values.insert(key.to_owned(), v);
        }
    }
}

fn is_secret_key(k: &str) -> bool {
    matches!(k, "password" | "application_credential_secret" | "token")
}

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
        /// Its domain.
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
        /// Its domain.
        domain: DomainRef,
    },
}

/// How to authenticate with Keystone v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// Password, scoped to a project.
    Password {
        /// The user.
        user: UserRef,
        /// The password.
        password: Secret,
        /// The project.
        project: ProjectRef,
    },
    /// An application credential (scoped to its own project; no scope may be sent).
    ApplicationCredential {
        /// The credential, by id, or by name with its user.
        credential: AppCredRef,
        /// The secret.
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
        /// Its user.
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
    /// TLS.
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

/// Whether any OpenStack configuration is present (a named cloud, `OS_AUTH_URL`, an
/// `openstack.cfg` given or in `./etc/`): the test for choosing the OpenStack provider
/// over the local one when no provider is named.
pub fn is_configured(env: &Env, ov: &Overrides) -> bool {
    ov.cloud.is_some()
        || ov.openstack_cfg.is_some()
        || ov.values.contains_key("auth_url")
        || env.var("OS_CLOUD").is_some()
        || env.var("OS_AUTH_URL").is_some()
        || env.cwd.join("etc/openstack.cfg").is_file()
}

/// Resolves the configuration. See the module documentation for the order.
pub fn resolve(env: &Env, ov: &Overrides) -> Result<OpenStackConfig, CloudError> {
    let env_layer = env_values(env);
    let cloud_name = ov
        .cloud
        .clone()
        .or_else(|| env.var("OS_CLOUD").map(str::to_owned));
    // Without a named cloud, OS_* auth variables form their own cloud (openstacksdk's
    // "envvars"), and clouds.yaml is not read.
    let env_has_auth = env_layer.keys().any(|k| {
        !matches!(
            k.as_str(),
            "region_name" | "interface" | "cacert" | "cert" | "key" | "insecure"
        )
    });
    let (source, file_layer) = if let Some(name) = &cloud_name {
        load_cloud(env, Some(name))?
    } else if let Some(p) = &ov.openstack_cfg {
        load_openstack_cfg(&env.cwd.join(p))?
    } else if env_has_auth {
        ("OS_* variables".to_owned(), Layer::new())
    } else if let Some(found) = load_cloud_if_single(env)? {
        found
    } else if env.cwd.join("etc/openstack.cfg").is_file() {
        load_openstack_cfg(&env.cwd.join("etc/openstack.cfg"))?
    } else if let Some(path) = env.find_file("OS_CLIENT_CONFIG_FILE", "clouds") {
        // Several clouds (one would have been taken above) and nothing else configured.
        let names: Vec<String> = clouds_of(&path, &read_structured(&path)?)?
            .keys()
            .cloned()
            .collect();
        if names.len() > 1 && !ov.values.contains_key("auth_url") {
            return Err(CloudError::config(format!(
                "{}: several clouds ({}); choose one with --os-cloud or OS_CLOUD",
                path.display(),
                names.join(", ")
            )));
        }
        ("flags".to_owned(), Layer::new())
    } else {
        ("OS_* variables and flags".to_owned(), Layer::new())
    };

    let mut v = file_layer.values;
    v.extend(env_layer);
    for (k, val) in &ov.values {
        v.insert(k.clone(), val.clone());
    }
    let regions = file_layer.regions;
    build(source, &v, &regions)
}

/// A layer of settings: canonical key → value, plus a cloud's `regions` list.
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

fn env_values(env: &Env) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in &env.vars {
        let Some(rest) = k.strip_prefix("OS_") else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        let key = canonical(&key);
        if KNOWN_KEYS.contains(&key) && !matches!(key, "verify") {
            // A legacy alias never overrides its modern form.
            if key != rest.to_ascii_lowercase() && out.contains_key(key) {
                continue;
            }
            out.insert(key.to_owned(), v.clone());
        }
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn read_structured(path: &Path) -> Result<Value, CloudError> {
    let text = fs::read_to_string(path)
        .map_err(|e| CloudError::io(format!("cannot read {}", path.display()), e))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    let v: Result<Value, String> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
    };
    v.map_err(|e| CloudError::config(format!("{}: {e}", path.display())))
}

/// Deep-merges `over` into `base` (maps merge key by key; anything else is replaced).
fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn clouds_of(path: &Path, v: &Value) -> Result<Map<String, Value>, CloudError> {
    match v.get("clouds") {
        Some(Value::Object(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(CloudError::config(format!(
            "{}: `clouds` must be a map of cloud names",
            path.display()
        ))),
    }
}

fn load_cloud(env: &Env, name: Option<&String>) -> Result<(String, Layer), CloudError> {
    let path = env.find_file("OS_CLIENT_CONFIG_FILE", "clouds").ok_or_else(|| {
        CloudError::config(format!(
            "cloud {:?} requested, but no clouds.yaml found (searched OS_CLIENT_CONFIG_FILE and {})",
            name.map_or("", |s| s.as_str()),
            env.search_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let mut doc = read_structured(&path)?;
    let mut from = format!("{}", path.display());
    if let Some(sp) = env.find_file("OS_CLIENT_SECURE_FILE", "secure") {
        let secure = read_structured(&sp)?;
        deep_merge(&mut doc, secure);
        from = format!("{from} + {}", sp.display());
    }
    let clouds = clouds_of(&path, &doc)?;
    let (name, entry) = match name {
        Some(n) => (
            n.clone(),
            clouds.get(n).cloned().ok_or_else(|| {
                CloudError::config(format!(
                    "{}: no cloud named {n:?} (clouds: {})",
                    path.display(),
                    clouds.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?,
        ),
        None => match clouds.len() {
            1 => clouds
                .into_iter()
                .next()
                .ok_or_else(|| CloudError::config("no cloud"))?,
            _ => {
                return Err(CloudError::config(format!(
                    "{}: several clouds; choose one with --os-cloud or OS_CLOUD",
                    path.display()
                )));
            }
        },
    };
    let layer = cloud_entry_layer(&path, &name, &entry)?;
    Ok((format!("clouds.yaml cloud {name:?} ({from})"), layer))
}

fn load_cloud_if_single(env: &Env) -> Result<Option<(String, Layer)>, CloudError> {
    let Some(path) = env.find_file("OS_CLIENT_CONFIG_FILE", "clouds") else {
        return Ok(None);
    };
    let doc = read_structured(&path)?;
    if clouds_of(&path, &doc)?.len() == 1 {
        load_cloud(env, None).map(Some)
    } else {
        Ok(None)
    }
}

fn cloud_entry_layer(path: &Path, name: &str, entry: &Value) -> Result<Layer, CloudError> {
    let bad =
        |what: &str| CloudError::config(format!("{}: cloud {name:?}: {what}", path.display()));
    let obj = entry.as_object().ok_or_else(|| bad("must be a map"))?;
    let mut layer = Layer::new();
    if (obj.contains_key("profile") || obj.contains_key("cloud"))
        && obj
            .get("auth")
            .and_then(|a| a.get("auth_url"))
            .is_none_or(|v| v.is_null())
    {
        return Err(bad(
            "vendor profiles (clouds-public.yaml) are not supported; give auth.auth_url",
        ));
    }
    // Top-level keys first, then `auth:` (which wins for auth keys).
    for (k, v) in obj {
        let key = canonical(k);
        // `default_domain` of a cloud entry never counts in the openstack CLI: its
        // --os-default-domain (OS_DEFAULT_DOMAIN, else `default`) always overrides it.
        if k == "auth" || k == "regions" || key == "default_domain" {
            continue;
        }
        if key == "verify" {
            match v {
                Value::Bool(b) => {
                    layer.values.insert("insecure".into(), (!b).to_string());
                }
                Value::String(s) => {
                    // `verify: /path/ca.pem` is a CA bundle, as in requests.
                    layer.values.insert("cacert".into(), s.clone());
                }
                _ => return Err(bad("verify must be true, false or a path")),
            }
            continue;
        }
        if KNOWN_KEYS.contains(&key)
            && let Some(s) = scalar(v)
        {
            layer.values.insert(key.to_owned(), s);
        }
    }
    if let Some(auth) = obj.get("auth") {
        let auth = auth.as_object().ok_or_else(|| bad("auth must be a map"))?;
        for (k, v) in auth {
            let key = canonical(k);
            if KNOWN_KEYS.contains(&key)
                && let Some(s) = scalar(v)
            {
                layer.values.insert(key.to_owned(), s);
            }
        }
    }
    if let Some(r) = obj.get("regions") {
        let list = r.as_array().ok_or_else(|| bad("regions must be a list"))?;
        for item in list {
            match item {
                Value::String(s) => layer.regions.push(s.clone()),
                Value::Object(m) => match m.get("name").and_then(Value::as_str) {
                    Some(n) => layer.regions.push(n.to_owned()),
                    None => return Err(bad("a region in regions has no name")),
                },
                _ => return Err(bad("regions must list names")),
            }
        }
    }
    // As openstacksdk's loader (`_get_known_regions`): with a `regions` list, the first is
    // the default and the entry's own region_name is ignored; without one, region_name is
    // the cloud's only region, so OS_REGION_NAME or --os-region-name must name it too.
    if layer.regions.is_empty() {
        if let Some(r) = layer.values.get("region_name") {
            layer.regions.push(r.clone());
        }
    } else {
        layer.values.remove("region_name");
    }
    Ok(layer)
}

/// Reads the seed's `etc/openstack.cfg`: an INI file whose `[main]` section has USERNAME,
/// PASSWORD, AUTH_URL and TENANT_NAME (API_VERSION is read and ignored: the client speaks
/// Nova 2.1). Other `OS_*`-style keys are accepted too (PROJECT_NAME, USER_DOMAIN_NAME,
/// REGION_NAME, CACERT, ...).
fn load_openstack_cfg(path: &Path) -> Result<(String, Layer), CloudError> {
    let text = fs::read_to_string(path)
        .map_err(|e| CloudError::io(format!("cannot read {}", path.display()), e))?;
    let values = parse_openstack_cfg(&text)
        .map_err(|e| CloudError::config(format!("{}: {e}", path.display())))?;
    Ok((
        format!("{}", path.display()),
        Layer {
            values,
            regions: Vec::new(),
        },
    ))
}

/// Parses the `[main]` section of an `openstack.cfg` into canonical keys.
pub(crate) fn parse_openstack_cfg(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut section = String::new();
    let mut saw_main = false;
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[') {
            let s = s
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: bad section header {line:?}", n + 1))?;
            section = s.trim().to_ascii_lowercase();
            saw_main |= section == "main";
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .ok_or_else(|| format!("line {}: expected KEY = VALUE, got {line:?}", n + 1))?;
        if section != "main" {
            continue;
        }
        let k = k.trim().to_ascii_lowercase();
        let k = k.strip_prefix("os_").unwrap_or(&k);
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        let key = canonical(k);
        if key == "api_version" {
            continue;
        }
        if KNOWN_KEYS.contains(&key) {
            out.insert(key.to_owned(), v.to_owned());
        } else {
            return Err(format!(
                "line {}: unknown key {}",
                n + 1,
                k.to_ascii_uppercase()
            ));
        }
    }
    if !saw_main {
        return Err("no [main] section".into());
    }
    Ok(out)
}

fn truthy(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Turns `http://host:5000`, `.../v2.0` or `.../v3/` into the v3 root `.../v3`.
pub fn normalize_auth_url(url: &str) -> Result<String, CloudError> {
    let u = url.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(CloudError::config(format!(
            "auth_url {url:?} must start with http:// or https://"
        )));
    }
    // Keystone v2.0 is gone (removed in Queens); the seed's AUTH_URL often ends in /v2.0.
    let base = u
        .strip_suffix("/v2.0")
        .or_else(|| u.strip_suffix("/v3"))
        .unwrap_or(u);
    Ok(format!("{base}/v3"))
}

fn build(
    source: String,
    v: &BTreeMap<String, String>,
    regions: &[String],
) -> Result<OpenStackConfig, CloudError> {
    let get = |k: &str| v.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let missing = |what: &str| {
        CloudError::config(format!(
            "OpenStack configuration from {source}: {what} is missing"
        ))
    };
    let auth_url = normalize_auth_url(get("auth_url").ok_or_else(|| missing("auth_url"))?)?;
    if let Some(ver) = get("identity_api_version")
        && !(ver == "3" || ver.starts_with("3."))
    {
        return Err(CloudError::config(format!(
            "identity_api_version {ver}: only Keystone v3 is supported"
        )));
    }
    let default_domain = || {
        get("domain_id")
            .or(get("default_domain"))
            .map(|d| DomainRef::Id(d.to_owned()))
            .or_else(|| get("domain_name").map(|d| DomainRef::Name(d.to_owned())))
            .unwrap_or_else(|| DomainRef::Id("default".into()))
    };
    let user_domain = get("user_domain_id")
        .map(|d| DomainRef::Id(d.to_owned()))
        .or_else(|| get("user_domain_name").map(|d| DomainRef::Name(d.to_owned())))
        .unwrap_or_else(default_domain);
    let project_domain = get("project_domain_id")
        .map(|d| DomainRef::Id(d.to_owned()))
        .or_else(|| get("project_domain_name").map(|d| DomainRef::Name(d.to_owned())))
        .unwrap_or_else(default_domain);
    let user = get("user_id")
        .map(|u| UserRef::Id(u.to_owned()))
        .or_else(|| {
            get("username").map(|n| UserRef::Name {
                name: n.to_owned(),
                domain: user_domain.clone(),
            })
        });
    let auth_type = get("auth_type")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| {
            // A documented deviation from openstacksdk: application-credential variables
            // without OS_AUTH_TYPE mean an application credential, not a broken password auth.
            if get("application_credential_secret").is_some() && get("password").is_none() {
                "v3applicationcredential".into()
            } else {
                "password".into()
            }
        });
    let auth = match auth_type.as_str() {
        "password" | "v3password" => {
            let user = user.ok_or_else(|| missing("username or user_id"))?;
            let password = get("password").ok_or_else(|| missing("password"))?;
            let project = get("project_id")
                .map(|p| ProjectRef::Id(p.to_owned()))
                .or_else(|| {
                    get("project_name").map(|n| ProjectRef::Name {
                        name: n.to_owned(),
                        domain: project_domain.clone(),
                    })
                })
                .ok_or_else(|| missing("project_name or project_id (TENANT_NAME)"))?;
            AuthMethod::Password {
                user,
                password: Secret::new(password),
                project,
            }
        }
        "v3applicationcredential" | "applicationcredential" | "application_credential" => {
            let secret = get("application_credential_secret")
                .ok_or_else(|| missing("application_credential_secret"))?;
            let credential = if let Some(id) = get("application_credential_id") {
                AppCredRef::Id(id.to_owned())
            } else if let Some(name) = get("application_credential_name") {
                AppCredRef::Name {
                    name: name.to_owned(),
                    user: user.ok_or_else(|| {
                        missing("username or user_id (needed with application_credential_name)")
                    })?,
                }
            } else {
                return Err(missing(
                    "application_credential_id or application_credential_name",
                ));
            };
            AuthMethod::ApplicationCredential {
                credential,
                secret: Secret::new(secret),
            }
        }
        other => {
            return Err(CloudError::config(format!(
                "auth_type {other:?} is not supported (use password or v3applicationcredential)"
            )));
        }
    };
    let region = match get("region_name") {
        Some(r) => {
            if !regions.is_empty() && !regions.iter().any(|x| x == r) {
                return Err(CloudError::config(format!(
                    "region {r:?} is not one of the cloud's regions ({})",
                    regions.join(", ")
                )));
            }
            Some(r.to_owned())
        }
        None => regions.first().cloned(),
    };
    let interface = match get("interface") {
        Some(i) => Interface::parse(i).ok_or_else(|| {
            CloudError::config(format!(
                "interface {i:?}: expected public, internal or admin"
            ))
        })?,
        None => Interface::Public,
    };
    let tls = TlsOptions {
        insecure: get("insecure").is_some_and(truthy),
        cacert: get("cacert").map(PathBuf::from),
        cert: get("cert").map(PathBuf::from),
        key: get("key").map(PathBuf::from),
    };
    Ok(OpenStackConfig {
        source,
        auth_url,
        auth,
        region,
        interface,
        tls,
        compute_api_version: get("compute_api_version").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_urls_are_normalized_to_v3() {
        for (i, o) in [
            ("http://k:5000", "http://k:5000/v3"),
            ("http://k:5000/", "http://k:5000/v3"),
            ("http://k:5000/v3/", "http://k:5000/v3"),
            ("https://k/identity", "https://k/identity/v3"),
            ("http://k:5000/v2.0", "http://k:5000/v3"),
        ] {
            assert_eq!(normalize_auth_url(i).unwrap(), o);
        }
        assert!(normalize_auth_url("k:5000").is_err());
    }

    #[test]
    fn seed_openstack_cfg_parses() {
        let v = parse_openstack_cfg(
            "[main]\nAPI_VERSION = 2\nUSERNAME=s171201\nPASSWORD = 'p=w'\nAUTH_URL = http://k:5000/v2.0\nTENANT_NAME: MS016A\n# c\n[other]\nX = y\n",
        )
        .unwrap();
        assert_eq!(v["username"], "s171201");
        assert_eq!(v["password"], "p=w");
        assert_eq!(v["project_name"], "MS016A");
        assert_eq!(v["auth_url"], "http://k:5000/v2.0");
        assert!(parse_openstack_cfg("USERNAME=x\n").is_err());
        assert!(
            parse_openstack_cfg("[main]\nFOO=1\n")
                .unwrap_err()
                .contains("FOO")
        );
        assert!(
            parse_openstack_cfg("[main]\njunk\n")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn interfaces_parse() {
        assert_eq!(Interface::parse("publicURL"), Some(Interface::Public));
        assert_eq!(Interface::parse("internal"), Some(Interface::Internal));
        assert_eq!(Interface::parse("x"), None);
    }

    #[test]
    fn deep_merge_merges_maps() {
        let mut a =
            serde_json::json!({"clouds": {"c": {"auth": {"username": "u", "auth_url": "x"}}}});
        deep_merge(
            &mut a,
            serde_json::json!({"clouds": {"c": {"auth": {"password": "p", "auth_url": "y"}}}}),
        );
        assert_eq!(
            a,
            serde_json::json!({"clouds": {"c": {"auth": {"username": "u", "password": "p", "auth_url": "y"}}}})
        );
    }
}
