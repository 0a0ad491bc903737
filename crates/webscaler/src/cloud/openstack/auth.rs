//! Keystone v3: the token request, the token and its catalog, endpoint selection, and the
//! [`Session`] every service call goes through (token caching and renewal, re-auth on a
//! 401, retries with backoff on 5xx and timeouts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Secret;
use super::config::{
    AppCredRef, AuthMethod, DomainRef, Interface, OpenStackConfig, ProjectRef, UserRef,
};
use super::http::{Reply, Transport};
use crate::cloud::CloudError;

/// The body of `POST /v3/auth/tokens` for this method. Application credentials carry no
/// `scope` (Keystone refuses one: "Application credentials cannot request a scope.").
pub fn token_request(method: &AuthMethod) -> Value {
    fn domain(d: &DomainRef) -> Value {
        match d {
            DomainRef::Id(id) => json!({ "id": id }),
            DomainRef::Name(n) => json!({ "name": n }),
        }
    }
    fn user(u: &UserRef) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        match u {
            UserRef::Id(id) => {
                m.insert("id".into(), json!(id));
            }
            UserRef::Name { name, domain: d } => {
                m.insert("name".into(), json!(name));
                m.insert("domain".into(), domain(d));
            }
        }
        m
    }
    match method {
        AuthMethod::Password {
            user: u,
            password,
            project,
        } => {
            let mut pu = user(u);
            pu.insert("password".into(), json!(password.expose()));
            let project = match project {
                ProjectRef::Id(id) => json!({ "id": id }),
                ProjectRef::Name { name, domain: d } => {
                    json!({ "name": name, "domain": domain(d) })
                }
            };
            json!({
                "auth": {
                    "identity": { "methods": ["password"], "password": { "user": pu } },
                    "scope": { "project": project }
                }
            })
        }
        AuthMethod::ApplicationCredential { credential, secret } => {
            let ac = match credential {
                AppCredRef::Id(id) => json!({ "id": id, "secret": secret.expose() }),
                AppCredRef::Name { name, user: u } => {
                    json!({ "name": name, "user": Value::Object(user(u)), "secret": secret.expose() })
                }
            };
            json!({
                "auth": {
                    "identity": { "methods": ["application_credential"], "application_credential": ac }
                }
            })
        }
    }
}

/// One endpoint of the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region's id (newer Keystone).
    #[serde(default)]
    pub region_id: Option<String>,
    /// The region (older name of the same).
    #[serde(default)]
    pub region: Option<String>,
    pub url: String,
}

/// One service of the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Service {
    /// `compute`, `image`, `network`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    token: TokenInner,
}

#[derive(Debug, Deserialize)]
struct TokenInner {
    expires_at: String,
    #[serde(default)]
    catalog: Vec<Service>,
    #[serde(default)]
    project: Option<IdOnly>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// A token as Keystone issued it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token (from `X-Subject-Token`).
    pub value: Secret,
    /// When Keystone says it expires.
    pub expires_at: DateTime<Utc>,
    /// The service catalog: each service's endpoints, by interface and region.
    pub catalog: Vec<Service>,
    /// The project it is scoped to.
    pub project_id: Option<String>,
    /// When we renew it (ahead of expiry).
    refresh_at: Instant,
}

/// Parses the token body (`{"token": {...}}`) and its `X-Subject-Token` header.
pub fn parse_token(subject_token: &str, body: &[u8]) -> Result<Token, String> {
    let b: TokenBody = serde_json::from_slice(body).map_err(|e| format!("bad token body: {e}"))?;
    let expires_at = crate::cloud::parse_cloud_time(&b.token.expires_at)
        .ok_or_else(|| format!("bad expires_at {:?}", b.token.expires_at))?;
    let valid_for = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    // Renew a quarter of the lifetime before expiry, at most 5 minutes before.
    let margin = (valid_for / 4).min(Duration::from_secs(300));
    Ok(Token {
        value: Secret::new(subject_token),
        expires_at,
        catalog: b.token.catalog,
        project_id: b.token.project.map(|p| p.id),
        refresh_at: Instant::now() + (valid_for - margin),
    })
}

/// The URL of a service in the catalog for this interface and region (`region_id` or the
/// older `region`). Without a region, the first endpoint of the interface is taken.
pub fn select_endpoint(
    catalog: &[Service],
    kind: &str,
    interface: Interface,
    region: Option<&str>,
) -> Result<String, CloudError> {
    let services: Vec<&Service> = catalog.iter().filter(|s| s.kind == kind).collect();
    if services.is_empty() {
        let kinds: Vec<&str> = catalog.iter().map(|s| s.kind.as_str()).collect();
        return Err(CloudError::NotFound {
            what: format!(
                "a {kind} service in the catalog (it has: {})",
                kinds.join(", ")
            ),
        });
    }
    let found = services
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| Interface::parse(&e.interface) == Some(interface))
        .find(|e| {
            region
                .is_none_or(|r| e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r))
        });
    found
        .map(|e| e.url.trim_end_matches('/').to_owned())
        .ok_or_else(|| CloudError::NotFound {
            what: format!(
                "a {} endpoint of {kind}{}",
                interface.as_str(),
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ),
        })
}

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// The first delay; it doubles each time.
    pub base_delay: Duration,
    /// The longest delay (also caps a server's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `n + 1` (n ≥ 1).
    pub fn delay(&self, n: u32) -> Duration {
        let f = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(f).min(self.max_delay)
    }
}

/// Which service a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Nova, at the catalog URL (`.../v2.1[/project]`).
    Compute,
    /// Glance v2 (`<root>/v2`).
    Image,
    /// Glance's root (its `next` links are `/v2/images?marker=...`).
    ImageRoot,
    /// Neutron v2.0 (`<root>/v2.0`).
    Network,
}

/// Whether a failed request may simply be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Retry on 5xx, timeouts and 429.
    Yes,
    /// Never resend (creation: the caller checks by name first).
    No,
}

/// An authenticated session: the token (renewed before expiry and after a 401) and the
/// endpoints, shared by all threads.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    auth_url: String,
    method: AuthMethod,
    interface: Interface,
    region: Option<String>,
    microversion: Option<String>,
    retry: RetryPolicy,
    token: Mutex<Option<Arc<Token>>>,
    auths: AtomicU64,
}

impl Session {
    /// A session for this configuration (nothing is sent yet).
    pub fn new(
        cfg: &OpenStackConfig,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Result<Session, CloudError> {
        Ok(Session {
            transport: Transport::new(&cfg.tls, timeout)?,
            auth_url: cfg.auth_url.clone(),
            method: cfg.auth.clone(),
            interface: cfg.interface,
            region: cfg.region.clone(),
            microversion: cfg.compute_api_version.clone(),
            retry,
            token: Mutex::new(None),
            auths: AtomicU64::new(0),
        })
    }

    /// How many tokens were requested so far.
    pub fn authentications(&self) -> u64 {
        self.auths.load(Ordering::Relaxed)
    }

    /// The Nova microversion sent, if any.
    pub(crate) fn microversion(&self) -> Option<&str> {
        self.microversion.as_deref()
    }

    /// A valid token: the cached one, or a new one when it is due for renewal.
    pub fn token(&self) -> Result<Arc<Token>, CloudError> {
        let mut slot = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        let t = Arc::new(self.authenticate()?);
        *slot = Some(t.clone());
        Ok(t)
    }

    fn invalidate(&self, used: &Arc<Token>) {
        let mut slot = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, used)) {
            *slot = None;
        }
    }

    fn authenticate(&self) -> Result<Token, CloudError> {
        let url = format!("{}/auth/tokens", self.auth_url);
        let body = token_request(&self.method);
        let what = format!("POST {url}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.auths.fetch_add(1, Ordering::Relaxed);
            let r = self.transport.send("POST", &url, &[], Some(&body));
            let retryable = match &r {
                Err(e) => e.transient,
                Ok(r) => is_retryable_status(r.status),
            };
            if retryable && attempt < self.retry.max_attempts {
                std::thread::sleep(self.retry.delay(attempt));
                continue;
            }
            let r = r.map_err(|e| transport_error(&what, attempt, e))?;
            return match r.status {
                200 | 201 => {
                    let subject = r.header("X-Subject-Token").ok_or_else(|| CloudError::Api {
                        what: what.clone(),
                        status: r.status,
                        message: "no X-Subject-Token header in the reply".into(),
                    })?;
                    parse_token(subject, &r.body).map_err(|message| CloudError::Api {
                        what,
                        status: r.status,
                        message,
                    })
                }
                401 | 403 => Err(CloudError::Auth {
                    message: format!("{} ({})", keystone_message(&r), self.auth_url),
                }),
                s if is_retryable_status(s) => Err(CloudError::Transient {
                    what,
                    attempts: attempt,
                    message: format!("HTTP {s}: {}", keystone_message(&r)),
                }),
                s => Err(CloudError::Api {
                    what,
                    status: s,
                    message: keystone_message(&r),
                }),
            };
        }
    }

    /// The base URL of a service.
    pub(crate) fn base_url(&self, token: &Token, api: Api) -> Result<String, CloudError> {
        let kind = match api {
            Api::Compute => "compute",
            Api::Image | Api::ImageRoot => "image",
            Api::Network => "network",
        };
        let url = select_endpoint(&token.catalog, kind, self.interface, self.region.as_deref())?;
        Ok(match api {
            Api::Compute => url,
            Api::Image => format!("{}/v2", url.trim_end_matches("/v2")),
            Api::ImageRoot => url.trim_end_matches("/v2").to_owned(),
            Api::Network => format!("{}/v2.0", url.trim_end_matches("/v2.0")),
        })
    }

    /// Sends `method` to `path` under the service's base URL, with the token (re-auth once
    /// on a 401) and, if `retry` allows, retries with backoff on 5xx, 429 and timeouts.
    /// Any other status is returned for the caller to interpret.
    pub(crate) fn call(
        &self,
        method: &str,
        api: Api,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Reply, CloudError> {
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            attempt += 1;
            let token = self.token()?;
            let url = format!("{}{}", self.base_url(&token, api)?, path);
            let what = format!("{method} {url}");
            let mv;
            let mut headers: Vec<(&str, &str)> = vec![("X-Auth-Token", token.value.expose())];
            if let (Api::Compute, Some(v)) = (api, self.microversion.as_deref()) {
                mv = format!("compute {v}");
                headers.push(("OpenStack-API-Version", &mv));
                headers.push(("X-OpenStack-Nova-API-Version", v));
            }
            let r = self.transport.send(method, &url, &headers, body);
            let may_retry = retry == Retry::Yes && attempt < self.retry.max_attempts;
            match r {
                Err(e) if e.transient && may_retry => {
                    std::thread::sleep(self.retry.delay(attempt));
                }
                Err(e) => return Err(transport_error(&what, attempt, e)),
                Ok(r) if r.status == 401 && !reauthed => {
                    // Expired or revoked: get a new token and send again (once).
                    self.invalidate(&token);
                    reauthed = true;
                    attempt -= 1;
                }
                Ok(r) if r.status == 401 => {
                    return Err(CloudError::Auth {
                        message: format!("{what}: {}", keystone_message(&r)),
                    });
                }
                Ok(r) if r.status == 429 && may_retry => {
                    let wait = r
                        .header("Retry-After")
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| self.retry.delay(attempt));
                    std::thread::sleep(wait.min(self.retry.max_delay));
                }
                Ok(r) if is_retryable_status(r.status) && may_retry => {
                    std::thread::sleep(self.retry.delay(attempt));
                }
                Ok(r) if is_retryable_status(r.status) && retry == Retry::Yes => {
                    return Err(CloudError::Transient {
                        what,
                        attempts: attempt,
                        message: format!("HTTP {}: {}", r.status, fault_message(&r)),
                    });
                }
                Ok(r) => return Ok(r),
            }
        }
    }
}

fn is_retryable_status(s: u16) -> bool {
    matches!(s, 500 | 502 | 503 | 504)
}

pub(crate) fn transport_error(
    what: &str,
    attempts: u32,
    e: super::http::TransportError,
) -> CloudError {
    if e.transient {
        CloudError::Transient {
            what: what.to_owned(),
            attempts,
            message: e.message,
        }
    } else {
        CloudError::Api {
            what: what.to_owned(),
            status: 0,
            message: e.message,
        }
    }
}

/// Keystone's `{"error": {"message": ...}}`, or the body.
fn keystone_message(r: &Reply) -> String {
    r.json::<Value>()
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| r.text())
}

/// The message of an OpenStack error body in any of its shapes: Nova's
/// `{"<faultName>": {"code", "message"}}`, Keystone's `{"error": {...}}`, Neutron's
/// `{"NeutronError": {"message"}}`; else the body text.
pub(crate) fn fault_message(r: &Reply) -> String {
    if let Ok(Value::Object(m)) = r.json::<Value>() {
        for v in m.values() {
            if let Some(msg) = v.get("message").and_then(Value::as_str) {
                return msg.to_owned();
            }
        }
        if let Some(msg) = m.get("message").and_then(Value::as_str) {
            return msg.to_owned();
        }
    }
    r.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert_eq!(p.delay(4), Duration::from_millis(500));
        assert_eq!(p.delay(40), Duration::from_millis(500));
    }

    #[test]
    fn fault_messages_are_found_in_every_shape() {
        let reply = |body: &str| Reply {
            status: 403,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            fault_message(&reply(
                r#"{"forbidden": {"code": 403, "message": "Quota exceeded"}}"#
            )),
            "Quota exceeded"
        );
        assert_eq!(
            fault_message(&reply(
                r#"{"NeutronError": {"type": "X", "message": "m", "detail": ""}}"#
            )),
            "m"
        );
        assert_eq!(
            fault_message(&reply("<html>oops</html>")),
            "<html>oops</html>"
        );
    }
}
