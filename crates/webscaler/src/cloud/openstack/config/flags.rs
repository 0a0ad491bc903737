//! The command line's `--os-*` settings ([`Overrides`]), the highest layer.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Settings given on the command line (`--os-*`), the highest layer. Keys are the
/// canonical names (`auth_url`, `username`, `project_name`, `region_name`, ...).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--os-cloud`.
    pub cloud: Option<String>,
    /// `--openstack-cfg`: the lab report's credentials file.
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

/// Whether a value is a secret, never printed.
pub(super) fn is_secret_key(k: &str) -> bool {
    matches!(k, "password" | "application_credential_secret" | "token")
}
