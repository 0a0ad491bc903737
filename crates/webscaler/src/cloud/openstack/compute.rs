//! Nova: servers (list, create, start, stop, delete), flavors, and `/limits`.
//!
//! The client speaks microversion 2.1 unless `compute_api_version` asks for another, and
//! parses every shape the samples show: flavor as `{id, links}` (2.1) or embedded (2.47),
//! partial records from down cells (2.69: no name, status `UNKNOWN`), naive timestamps.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Api, Retry, Session, fault_message};
use super::http::{Reply, encode_query, query_of};
use crate::cloud::{Address, Backend, CloudError, Limit, Status, parse_cloud_time};

/// A server as `GET /servers/detail` returns it (only the fields we use).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Server {
    pub id: String,
    /// Its name (missing in down-cell records).
    #[serde(default)]
    pub name: Option<String>,
    /// Its status (missing: unknown).
    #[serde(default)]
    pub status: Option<String>,
    /// Addresses per network.
    #[serde(default)]
    pub addresses: Option<BTreeMap<String, Vec<ServerAddress>>>,
    /// Creation time.
    #[serde(default)]
    pub created: Option<String>,
    /// What Nova is doing to it.
    #[serde(default, rename = "OS-EXT-STS:task_state")]
    pub task_state: Option<String>,
    /// The fault of a server in `ERROR`.
    #[serde(default)]
    pub fault: Option<Fault>,
}

/// One address of a server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ServerAddress {
    pub addr: String,
    /// 4 or 6.
    #[serde(default)]
    pub version: Option<u8>,
    /// `fixed` or `floating`.
    #[serde(default, rename = "OS-EXT-IPS:type")]
    pub kind: Option<String>,
}

/// The fault of a server in `ERROR`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Fault {
    #[serde(default)]
    pub message: Option<String>,
}

impl Server {
    /// The address the balancer should use: a fixed IPv4 on `network` when given, else any
    /// fixed IPv4, else any IPv4, else any address.
    pub fn address(&self, network: Option<&str>) -> Option<std::net::IpAddr> {
        let addrs = self.addresses.as_ref()?;
        let all: Vec<(&String, &ServerAddress)> = addrs
            .iter()
            .flat_map(|(net, list)| list.iter().map(move |a| (net, a)))
            .collect();
        let v4 = |a: &ServerAddress| a.version.unwrap_or(4) == 4 && !a.addr.contains(':');
        let fixed = |a: &ServerAddress| a.kind.as_deref().is_none_or(|k| k == "fixed");
        let pick = all
            .iter()
            .find(|(n, a)| Some(n.as_str()) == network && fixed(a) && v4(a))
            .or_else(|| all.iter().find(|(_, a)| fixed(a) && v4(a)))
            .or_else(|| all.iter().find(|(_, a)| v4(a)))
            .or_else(|| all.first());
        pick.and_then(|(_, a)| a.addr.parse().ok())
    }

    /// As a [`Backend`].
    pub fn to_backend(&self, network: Option<&str>) -> Backend {
        Backend {
            name: self.name.clone().unwrap_or_default(),
            id: self.id.clone(),
            status: self
                .status
                .as_deref()
                .map_or(Status::Unknown, Status::parse),
            address: self.address(network).map(|ip| Address { ip, port: None }),
            created: self.created.as_deref().and_then(parse_cloud_time),
            task: self.task_state.clone().filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Link {
    href: String,
    #[serde(default)]
    rel: String,
}

fn next_query(links: &Option<Vec<Link>>) -> Option<String> {
    links
        .as_ref()?
        .iter()
        .find(|l| l.rel == "next")
        .and_then(|l| query_of(&l.href).map(str::to_owned))
}

#[derive(Debug, Deserialize)]
struct ServersPage {
    servers: Vec<Server>,
    #[serde(default)]
    servers_links: Option<Vec<Link>>,
}

/// Fails on a non-2xx reply, mapping the status to the error the controller acts on.
pub(crate) fn check(what: &str, r: &Reply) -> Result<(), CloudError> {
    if (200..300).contains(&r.status) {
        return Ok(());
    }
    let message = fault_message(r);
    Err(match r.status {
        403 | 413 if message.to_ascii_lowercase().contains("quota exceeded") => {
            CloudError::QuotaExceeded { message }
        }
        404 => CloudError::NotFound {
            what: format!("{what}: {message}"),
        },
        s => CloudError::Api {
            what: what.to_owned(),
            status: s,
            message,
        },
    })
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, r: &Reply) -> Result<T, CloudError> {
    r.json().map_err(|message| CloudError::Api {
        what: what.to_owned(),
        status: r.status,
        message,
    })
}

/// All servers whose name starts with `prefix` (the API's name filter is a regular
/// expression, so the exact test is done here), following `servers_links` pages.
pub(crate) fn list_servers(session: &Session, prefix: &str) -> Result<Vec<Server>, CloudError> {
    let mut out = Vec::new();
    let first = format!(
        "name={}",
        encode_query(&format!("^{}", regex_escape(prefix)))
    );
    let mut query = first;
    let mut seen = std::collections::HashSet::new();
    loop {
        let path = format!("/servers/detail?{query}");
        let r = session.call("GET", Api::Compute, &path, None, Retry::Yes)?;
        check("GET /servers/detail", &r)?;
        let page: ServersPage = decode("GET /servers/detail", &r)?;
        let n = page.servers.len();
        out.extend(
            page.servers
                .into_iter()
                .filter(|s| s.name.as_deref().is_some_and(|n| n.starts_with(prefix))),
        );
        match next_query(&page.servers_links) {
            Some(q) if n > 0 && seen.insert(q.clone()) => query = q,
            _ => break,
        }
    }
    Ok(out)
}

/// `GET /servers/{id}`.
pub(crate) fn get_server(session: &Session, id: &str) -> Result<Server, CloudError> {
    let what = format!("GET /servers/{id}");
    let r = session.call(
        "GET",
        Api::Compute,
        &format!("/servers/{id}"),
        None,
        Retry::Yes,
    )?;
    check(&what, &r)?;
    #[derive(Deserialize)]
    struct One {
        server: Server,
    }
    Ok(decode::<One>(&what, &r)?.server)
}

/// Escapes regular-expression metacharacters (for Nova's `name=` filter).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a new server is made of (ids already looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub name: String,
    pub image_id: String,
    pub flavor_id: String,
    /// Network id; none = Nova's choice (2.1) or `"auto"` (2.37+).
    pub network_id: Option<String>,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    /// `user_data`, already base64.
    pub user_data_b64: Option<String>,
}

/// Whether microversion `v` (`2.37`, `2.latest`) is at least 2.`minor`.
pub(crate) fn microversion_at_least(v: Option<&str>, minor: u32) -> bool {
    match v {
        None => false,
        Some(v) if v.ends_with("latest") => true,
        Some(v) => v
            .split_once('.')
            .and_then(|(_, m)| m.parse::<u32>().ok())
            .is_some_and(|m| m >= minor),
    }
}

/// The body of `POST /servers`.
pub fn create_body(req: &CreateRequest, microversion: Option<&str>) -> Value {
    let mut server = serde_json::Map::new();
    server.insert("name".into(), json!(req.name));
    server.insert("imageRef".into(), json!(req.image_id));
    server.insert("flavorRef".into(), json!(req.flavor_id));
    match &req.network_id {
        Some(n) => {
            server.insert("networks".into(), json!([{ "uuid": n }]));
        }
        None if microversion_at_least(microversion, 37) => {
            server.insert("networks".into(), json!("auto"));
        }
        None => {}
    }
    if let Some(k) = &req.key_name {
        server.insert("key_name".into(), json!(k));
    }
    if !req.security_groups.is_empty() {
        let groups: Vec<Value> = req
            .security_groups
            .iter()
            .map(|g| json!({ "name": g }))
            .collect();
        server.insert("security_groups".into(), Value::Array(groups));
    }
    if let Some(u) = &req.user_data_b64 {
        server.insert("user_data".into(), json!(u));
    }
    json!({ "server": server })
}

/// `POST /servers`, sent once: the caller decides about retries (after checking by name).
/// Returns the new server's id.
pub(crate) fn post_server(session: &Session, body: &Value) -> Result<String, CloudError> {
    let r = session.call("POST", Api::Compute, "/servers", Some(body), Retry::No)?;
    if matches!(r.status, 500 | 502 | 503 | 504) {
        return Err(CloudError::Transient {
            what: "POST /servers".into(),
            attempts: 1,
            message: format!("HTTP {}: {}", r.status, fault_message(&r)),
        });
    }
    check("POST /servers", &r)?;
    #[derive(Deserialize)]
    struct Created {
        server: IdOnly,
    }
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    Ok(decode::<Created>("POST /servers", &r)?.server.id)
}

/// `POST /servers/{id}/action` with `{"os-start": null}` or `{"os-stop": null}`. A 409
/// (or 400) means the server is busy: [`CloudError::Transitional`].
pub(crate) fn action(
    session: &Session,
    id: &str,
    name: &str,
    action: &'static str,
) -> Result<(), CloudError> {
    let body = json!({ action: null });
    let what = format!("{action} {name}");
    let r = session.call(
        "POST",
        Api::Compute,
        &format!("/servers/{id}/action"),
        Some(&body),
        Retry::Yes,
    )?;
    if matches!(r.status, 409 | 400) {
        return Err(CloudError::Transitional {
            name: name.to_owned(),
            action: if action == "os-start" {
                "started"
            } else {
                "stopped"
            },
            message: fault_message(&r),
        });
    }
    check(&what, &r)
}

/// `DELETE /servers/{id}`.
pub(crate) fn delete(session: &Session, id: &str, name: &str) -> Result<(), CloudError> {
    let r = session.call(
        "DELETE",
        Api::Compute,
        &format!("/servers/{id}"),
        None,
        Retry::Yes,
    )?;
    if r.status == 409 {
        return Err(CloudError::Transitional {
            name: name.to_owned(),
            action: "deleted",
            message: fault_message(&r),
        });
    }
    check(&format!("delete {name}"), &r)
}

/// A flavor (from `/flavors/detail`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    /// Virtual CPUs.
    #[serde(default)]
    pub vcpus: Option<u64>,
    /// RAM in MiB.
    #[serde(default)]
    pub ram: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct FlavorsPage {
    flavors: Vec<Flavor>,
    #[serde(default)]
    flavors_links: Option<Vec<Link>>,
}

/// The flavor named exactly `name` (all pages of `/flavors/detail` are read: the name
/// filter is a regular expression in Nova, and unknown before 2.102 on older clouds).
pub(crate) fn find_flavor(session: &Session, name: &str) -> Result<Flavor, CloudError> {
    let mut all = Vec::new();
    let mut path = "/flavors/detail".to_owned();
    let mut seen = std::collections::HashSet::new();
    loop {
        let r = session.call("GET", Api::Compute, &path, None, Retry::Yes)?;
        check("GET /flavors/detail", &r)?;
        let page: FlavorsPage = decode("GET /flavors/detail", &r)?;
        let n = page.flavors.len();
        all.extend(page.flavors);
        match next_query(&page.flavors_links) {
            Some(q) if n > 0 && seen.insert(q.clone()) => path = format!("/flavors/detail?{q}"),
            _ => break,
        }
    }
    super::pick_exact("flavor", name, all, |f| &f.name, |f| &f.id)
}

/// Nova's `/limits` (`absolute` part).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AbsoluteLimits {
    /// Instance quota (-1 = unlimited).
    pub max_total_instances: i64,
    /// Instances in use.
    #[serde(default)]
    pub total_instances_used: i64,
    /// Core quota.
    #[serde(default)]
    pub max_total_cores: Option<i64>,
    /// Cores in use.
    #[serde(default)]
    pub total_cores_used: Option<i64>,
    /// RAM quota in MiB.
    #[serde(default, rename = "maxTotalRAMSize")]
    pub max_total_ram_size: Option<i64>,
    /// RAM in use.
    #[serde(default, rename = "totalRAMUsed")]
    pub total_ram_used: Option<i64>,
}

/// Parses a `/limits` body.
pub fn parse_limits(body: &[u8]) -> Result<AbsoluteLimits, String> {
    #[derive(Deserialize)]
    struct L {
        limits: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        absolute: AbsoluteLimits,
    }
    serde_json::from_slice::<L>(body)
        .map(|l| l.limits.absolute)
        .map_err(|e| format!("bad /limits reply: {e}"))
}

pub(crate) fn get_limits(session: &Session) -> Result<AbsoluteLimits, CloudError> {
    let r = session.call("GET", Api::Compute, "/limits", None, Retry::Yes)?;
    check("GET /limits", &r)?;
    parse_limits(&r.body).map_err(|message| CloudError::Api {
        what: "GET /limits".into(),
        status: r.status,
        message,
    })
}

/// A limit from Nova's numbers (`-1` = unlimited).
pub(crate) fn limit(max: i64, used: i64) -> Limit {
    Limit {
        used: used.max(0) as u64,
        max: (max >= 0).then_some(max as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_follow_the_microversion() {
        let req = CreateRequest {
            name: "node-1".into(),
            image_id: "img".into(),
            flavor_id: "1".into(),
            network_id: None,
            key_name: Some("k".into()),
            security_groups: vec!["web".into()],
            user_data_b64: Some("IyE=".into()),
        };
        let b = create_body(&req, None);
        assert!(b["server"].get("networks").is_none());
        assert_eq!(b["server"]["security_groups"], json!([{"name": "web"}]));
        assert_eq!(
            create_body(&req, Some("2.37"))["server"]["networks"],
            "auto"
        );
        assert_eq!(
            create_body(&req, Some("2.latest"))["server"]["networks"],
            "auto"
        );
        let with_net = CreateRequest {
            network_id: Some("n1".into()),
            ..req
        };
        assert_eq!(
            create_body(&with_net, Some("2.1"))["server"]["networks"],
            json!([{"uuid": "n1"}])
        );
        assert!(!microversion_at_least(Some("2.36"), 37));
        assert!(microversion_at_least(Some("2.100"), 37));
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(regex_escape("node-"), "node-");
        assert_eq!(regex_escape("a.b*"), "a\\.b\\*");
    }

    #[test]
    fn addresses_prefer_fixed_ipv4_on_the_network() {
        let s: Server = serde_json::from_value(json!({
            "id": "x",
            "addresses": {
                "a": [{"addr": "fe80::1", "version": 6}, {"addr": "10.0.0.9", "version": 4, "OS-EXT-IPS:type": "fixed"}],
                "b": [{"addr": "172.16.0.4", "version": 4, "OS-EXT-IPS:type": "floating"},
                      {"addr": "192.168.0.7", "version": 4, "OS-EXT-IPS:type": "fixed"}]
            }
        }))
        .unwrap();
        assert_eq!(s.address(Some("b")).unwrap().to_string(), "192.168.0.7");
        assert_eq!(s.address(None).unwrap().to_string(), "10.0.0.9");
        let b = s.to_backend(None);
        assert_eq!(b.status, Status::Unknown);
        assert_eq!(b.name, "");
    }

    #[test]
    fn limits_minus_one_is_unlimited() {
        assert_eq!(limit(-1, 3).left(), None);
        assert_eq!(limit(10, 3).left(), Some(7));
    }
}
