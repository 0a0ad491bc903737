//! The lab report's `etc/openstack.cfg` as a layer.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{KNOWN_KEYS, Layer, canonical};
use crate::cloud::CloudError;

/// Reads the lab report's `etc/openstack.cfg`: an INI file whose `[main]` section has USERNAME,
/// PASSWORD, AUTH_URL and TENANT_NAME (API_VERSION is read and ignored: the client speaks
/// Nova 2.1). Other `OS_*`-style keys are accepted too (PROJECT_NAME, USER_DOMAIN_NAME,
/// REGION_NAME, CACERT, ...).
pub(super) fn load_openstack_cfg(path: &Path) -> Result<(String, Layer), CloudError> {
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
pub(super) fn parse_openstack_cfg(text: &str) -> Result<BTreeMap<String, String>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
