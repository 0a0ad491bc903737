//! The OpenStack provider: Keystone v3 + Nova (+ Glance v2 and Neutron for the lookups)
//! over HTTP with ureq, no SDK.
//!
//! - [`config`]: credentials resolved like the `openstack` CLI (clouds.yaml, secure.yaml,
//!   `OS_*`, flags; the lab report's `openstack.cfg`).
//! - [`auth`]: tokens, the catalog, and the [`auth::Session`] that retries and re-authenticates.
//! - [`compute`], [`image`], [`network`]: the calls.
//!
//! Image, flavor and network are looked up by exact name once and cached. Creation sends
//! `POST /servers` once per attempt; after a failure that may have reached Nova (5xx,
//! timeout) it looks for a server of that name before posting again, so a retry never makes
//! a duplicate.

pub mod auth;
pub mod compute;
pub mod config;
mod http;
pub mod image;
pub mod network;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;

use self::auth::{RetryPolicy, Session};
use self::compute::{CreateRequest, Flavor, Server};
use self::config::OpenStackConfig;
use crate::cloud::{Backend, Cloud, CloudError, Creation, Naming, Quota, Status, sort_backends};

/// The largest `user_data` Nova accepts, base64-encoded.
pub const MAX_USER_DATA: usize = 65535;

/// A secret (password, application-credential secret, token): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What new backends are made of: names (or ids) of the image, flavor and network, and the
/// rest of the create request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSpec {
    /// Image name (or id).
    pub image: Option<String>,
    /// Flavor name (or id).
    pub flavor: Option<String>,
    /// Network name (or id); none lets Nova choose.
    pub network: Option<String>,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    /// The cloud-init script (`etc/clouddata.txt`), sent base64-encoded as `user_data`.
    pub user_data: Option<Vec<u8>>,
}

/// Settings of the OpenStack provider besides the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenStackOptions {
    /// The name prefix of backends.
    pub prefix: String,
    /// What new backends are made of.
    pub server: ServerSpec,
    /// Retries on 5xx and timeouts.
    pub retry: RetryPolicy,
    /// The timeout of one HTTP request.
    pub timeout: Duration,
    /// How many creations run at once.
    pub max_parallel: usize,
}

impl Default for OpenStackOptions {
    fn default() -> Self {
        OpenStackOptions {
            prefix: crate::cloud::DEFAULT_PREFIX.to_owned(),
            server: ServerSpec::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            max_parallel: 8,
        }
    }
}

/// The OpenStack provider. See the module documentation.
#[derive(Debug)]
pub struct OpenStack {
    session: Session,
    opts: OpenStackOptions,
    naming: Naming,
    user_data_b64: Option<String>,
    image: Mutex<Option<String>>,
    flavor: Mutex<Option<Flavor>>,
    network: Mutex<Option<String>>,
}

/// The one item whose name is exactly `name`; if none, the one whose id is `name`.
pub(crate) fn pick_exact<T>(
    kind: &str,
    name: &str,
    items: Vec<T>,
    name_of: impl Fn(&T) -> &str,
    id_of: impl Fn(&T) -> &str,
) -> Result<T, CloudError> {
    let (mut named, rest): (Vec<T>, Vec<T>) = items.into_iter().partition(|i| name_of(i) == name);
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => rest
            .into_iter()
            .find(|i| id_of(i) == name)
            .ok_or_else(|| CloudError::NotFound {
                what: format!("{kind} {name:?}"),
            }),
        n => Err(CloudError::config(format!(
            "{n} {kind}s are named {name:?} ({}); give the id instead",
            named.iter().map(id_of).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn cached<T: Clone>(
    slot: &Mutex<Option<T>>,
    lookup: impl FnOnce() -> Result<T, CloudError>,
) -> Result<T, CloudError> {
    let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = g.as_ref() {
        return Ok(v.clone());
    }
    let v = lookup()?;
    *g = Some(v.clone());
    Ok(v)
}

impl OpenStack {
    /// A provider for this configuration. Nothing is sent until the first call.
    pub fn new(cfg: &OpenStackConfig, opts: OpenStackOptions) -> Result<OpenStack, CloudError> {
        let user_data_b64 = opts
            .server
            .user_data
            .as_ref()
            .map(|d| base64::engine::general_purpose::STANDARD.encode(d));
        if let Some(u) = &user_data_b64
            && u.len() > MAX_USER_DATA
        {
            return Err(CloudError::config(format!(
                "user data is {} bytes in base64; Nova accepts at most {MAX_USER_DATA}",
                u.len()
            )));
        }
        Ok(OpenStack {
            session: Session::new(cfg, opts.retry, opts.timeout)?,
            naming: Naming::new(&opts.prefix),
            opts,
            user_data_b64,
            image: Mutex::new(None),
            flavor: Mutex::new(None),
            network: Mutex::new(None),
        })
    }

    /// The session (token state, for diagnostics and tests).
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn flavor(&self) -> Result<Flavor, CloudError> {
        let name =
            self.opts.server.flavor.as_deref().ok_or_else(|| {
                CloudError::config("no flavor given (--flavor, or WEBSCALER_FLAVOR)")
            })?;
        cached(&self.flavor, || compute::find_flavor(&self.session, name))
    }

    fn request_for(&self, name: &str) -> Result<CreateRequest, CloudError> {
        let spec = &self.opts.server;
        let image = spec
            .image
            .as_deref()
            .ok_or_else(|| CloudError::config("no image given (--image, or WEBSCALER_IMAGE)"))?;
        let image_id = cached(&self.image, || {
            image::find_image(&self.session, image).map(|i| i.id)
        })?;
        let flavor_id = self.flavor()?.id;
        let network_id = match spec.network.as_deref() {
            Some(n) => Some(cached(&self.network, || {
                network::find_network(&self.session, n).map(|n| n.id)
            })?),
            None => None,
        };
        Ok(CreateRequest {
            name: name.to_owned(),
            image_id,
            flavor_id,
            network_id,
            key_name: spec.key_name.clone(),
            security_groups: spec.security_groups.clone(),
            user_data_b64: self.user_data_b64.clone(),
        })
    }

    fn backend_of(&self, s: &Server) -> Backend {
        s.to_backend(self.opts.server.network.as_deref())
    }

    fn find_by_name(&self, name: &str) -> Result<Option<Server>, CloudError> {
        Ok(compute::list_servers(&self.session, name)?
            .into_iter()
            .find(|s| s.name.as_deref() == Some(name)))
    }

    fn create_one(&self, req: &CreateRequest) -> Result<Backend, CloudError> {
        let body = compute::create_body(req, self.session.microversion());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match compute::post_server(&self.session, &body) {
                Ok(id) => {
                    // The create reply is minimal; read the server once for its status.
                    return Ok(match compute::get_server(&self.session, &id) {
                        Ok(s) => self.backend_of(&s),
                        Err(_) => Backend {
                            name: req.name.clone(),
                            id,
                            status: Status::Build,
                            address: None,
                            created: None,
                            task: None,
                        },
                    });
                }
                Err(CloudError::Transient { message, .. }) => {
                    if attempt >= self.opts.retry.max_attempts {
                        return Err(CloudError::Transient {
                            what: format!("create {}", req.name),
                            attempts: attempt,
                            message,
                        });
                    }
                    std::thread::sleep(self.opts.retry.delay(attempt));
                    // The failed request may have reached Nova: never post twice.
                    if let Ok(Some(s)) = self.find_by_name(&req.name) {
                        return Ok(self.backend_of(&s));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Cloud for OpenStack {
    fn provider(&self) -> &'static str {
        "openstack"
    }

    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        let mut v: Vec<Backend> = compute::list_servers(&self.session, self.naming.prefix())?
            .iter()
            .filter(|s| s.name.as_deref().is_some_and(|n| self.naming.is_backend(n)))
            .map(|s| self.backend_of(s))
            .collect();
        sort_backends(&mut v);
        Ok(v)
    }

    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let existing = self.list()?;
        let names = self
            .naming
            .next_names(existing.iter().map(|b| b.name.as_str()), count);
        let requests = names
            .iter()
            .map(|n| self.request_for(n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut results: Vec<Option<Result<Backend, CloudError>>> =
            (0..count).map(|_| None).collect();
        for (chunk_req, chunk_out) in requests
            .chunks(self.opts.max_parallel.max(1))
            .zip(results.chunks_mut(self.opts.max_parallel.max(1)))
        {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunk_req
                    .iter()
                    .map(|r| s.spawn(move || self.create_one(r)))
                    .collect();
                for (h, out) in handles.into_iter().zip(chunk_out.iter_mut()) {
                    *out =
                        Some(h.join().unwrap_or_else(|_| {
                            Err(CloudError::config("a creation thread panicked"))
                        }));
                }
            });
        }
        Ok(names
            .into_iter()
            .zip(results)
            .map(|(name, result)| Creation {
                name,
                result: result.unwrap_or_else(|| Err(CloudError::config("not attempted"))),
            })
            .collect())
    }

    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        compute::action(&self.session, &backend.id, &backend.name, "os-start")
    }

    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        compute::action(&self.session, &backend.id, &backend.name, "os-stop")
    }

    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        compute::delete(&self.session, &backend.id, &backend.name)
    }

    fn quota(&self) -> Result<Quota, CloudError> {
        let l = compute::get_limits(&self.session)?;
        let instances = compute::limit(l.max_total_instances, l.total_instances_used);
        let cores = l
            .max_total_cores
            .map(|m| compute::limit(m, l.total_cores_used.unwrap_or(0)));
        let ram_mb = l
            .max_total_ram_size
            .map(|m| compute::limit(m, l.total_ram_used.unwrap_or(0)));
        let mut left = instances.left();
        // With a known flavor, the cores and RAM quotas cap the count too.
        if self.opts.server.flavor.is_some()
            && let Ok(f) = self.flavor()
        {
            for (lim, per) in [(cores, f.vcpus), (ram_mb, f.ram)] {
                if let (Some(lim), Some(per)) = (lim, per.filter(|&p| p > 0))
                    && let Some(rest) = lim.left()
                {
                    let n = rest / per;
                    left = Some(left.map_or(n, |l| l.min(n)));
                }
            }
        }
        Ok(Quota {
            instances,
            cores,
            ram_mb,
            left,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn exact_names_win_then_ids() {
        let items = || vec![("a", "1"), ("ab", "2"), ("ab", "3")];
        assert_eq!(
            pick_exact("x", "a", items(), |i| i.0, |i| i.1).unwrap(),
            ("a", "1")
        );
        assert_eq!(
            pick_exact("x", "2", items(), |i| i.0, |i| i.1).unwrap(),
            ("ab", "2")
        );
        assert!(matches!(
            pick_exact("x", "zz", items(), |i| i.0, |i| i.1),
            Err(CloudError::NotFound { .. })
        ));
        let e = pick_exact("x", "ab", items(), |i| i.0, |i| i.1).unwrap_err();
        assert!(e.to_string().contains("2 xs are named"), "{e}");
    }
}
