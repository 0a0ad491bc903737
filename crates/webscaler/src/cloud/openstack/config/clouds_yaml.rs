//! `clouds.yaml` (deep-merged with `secure.yaml`): one cloud's entry as a layer.

use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

use super::environment::Env;
use super::{KNOWN_KEYS, Layer, canonical};
use crate::cloud::CloudError;

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn read_structured(path: &Path) -> Result<Value, CloudError> {
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

pub(super) fn clouds_of(path: &Path, v: &Value) -> Result<Map<String, Value>, CloudError> {
    match v.get("clouds") {
        Some(Value::Object(m)) => Ok(m.clone()),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(CloudError::config(format!(
            "{}: `clouds` must be a map of cloud names",
            path.display()
        ))),
    }
}

pub(super) fn load_cloud(env: &Env, name: Option<&String>) -> Result<(String, Layer), CloudError> {
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

pub(super) fn load_cloud_if_single(env: &Env) -> Result<Option<(String, Layer)>, CloudError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
