//! The process environment as resolution sees it ([`Env`]), and its `OS_*` variables as
//! a layer (an openrc file's).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{KNOWN_KEYS, canonical};

/// The process environment as configuration resolution sees it.
#[derive(Clone, Default)]
pub struct Env {
    /// Environment variables.
    pub vars: BTreeMap<String, String>,
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

    pub(super) fn var(&self, k: &str) -> Option<&str> {
        self.vars
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn search_dirs(&self) -> Vec<PathBuf> {
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

    pub(super) fn find_file(&self, explicit_var: &str, stem: &str) -> Option<PathBuf> {
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

/// The `OS_*` variables by canonical key (a legacy alias never overrides its modern form).
pub(super) fn env_values(env: &Env) -> BTreeMap<String, String> {
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
