//! The layers merged, lowest first (see [`super`]), and the result checked and built into
//! an [`OpenStackConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::clouds_yaml::{clouds_of, load_cloud, load_cloud_if_single, read_structured};
use super::environment::{Env, env_values};
use super::flags::Overrides;
use super::openstack_cfg::load_openstack_cfg;
use super::{
    AppCredRef, AuthMethod, DomainRef, Interface, Layer, OpenStackConfig, ProjectRef, TlsOptions,
    UserRef,
};
use crate::cloud::CloudError;
use crate::cloud::openstack::Secret;

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
    // Keystone v2.0 is gone (removed in Queens); the lab report's AUTH_URL often ends in /v2.0.
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
}
