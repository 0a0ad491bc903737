//! A fake OpenStack (Keystone v3, Nova, Glance v2, Neutron) on 127.0.0.1 for the tests.
//!
//! It answers with the official API samples of `tests/fixtures/openstack/` (ids, names,
//! statuses and URLs patched), keeps state (`BUILD` turns `ACTIVE` after a few polls,
//! `os-stop` goes through `powering-off` to `SHUTOFF`), returns the token in
//! `X-Subject-Token` with a 201, checks every request body against the API reference (the
//! OpenAPI request schemas plus the rules the services enforce in code), and injects the
//! official error shapes. Every request is recorded; every contract violation too (tests
//! assert there is none).
//!
//! URL layout: `/<zone>/compute/v2.1/<project>`, `/<zone>/image`, `/<zone>/network/`,
//! where the zone names the catalog entry (`r1pub`, `r1int`, `r1adm`, `r2pub`), so a test
//! can see which endpoint the client chose. Keystone is at `/identity`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::schema;

/// The project of the sample token.
pub const PROJECT_ID: &str = "a6944d763bf64ee6a275f1263fae0352";
/// The image the tests boot (added to Glance's sample list).
pub const IMAGE_NAME: &str = "ubuntu-24.04";
pub const IMAGE_ID: &str = "5f1f7b32-8a0e-4a52-9a11-2f5d3c7a9e01";
/// Neutron sample network `net1`.
pub const NETWORK_NAME: &str = "net1";
pub const NETWORK_ID: &str = "d32019d3-bc6e-4319-9c1d-6722fc136a22";
/// Nova sample flavor `m1.tiny` (id 1; `m1.tiny.specs` also exists).
pub const FLAVOR_NAME: &str = "m1.tiny";
pub const FLAVOR_ID: &str = "1";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An injected failure: the next `count` requests matching `method` and containing
/// `path_part` get `status` with `body`. With `after`, the request is carried out first
/// and only the reply is lost (a create that happened, whose 202 never arrived).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_part: &'static str,
    pub status: u16,
    pub body: Value,
    pub count: u32,
    pub after: bool,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub status: String,
    pub task: Option<String>,
    /// Polls left before the pending transition (status, task) happens.
    pub pending: Option<(u32, String)>,
    pub ip: String,
    pub created: String,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
}

/// What the fake knows and does.
#[derive(Debug)]
pub struct World {
    pub base: String,
    pub requests: Vec<Recorded>,
    pub violations: Vec<String>,
    pub tokens: Vec<(String, chrono::DateTime<Utc>)>,
    pub token_ttl: chrono::Duration,
    pub user_name: String,
    pub user_domain: String,
    pub password: String,
    pub project_name: String,
    pub app_cred_id: String,
    pub app_cred_secret: String,
    pub servers: Vec<Server>,
    pub next_ip: u32,
    pub max_instances: i64,
    pub build_polls: u32,
    pub page_size: usize,
    pub faults: VecDeque<Fault>,
    pub expected_user_data: Option<Vec<u8>>,
    pub unauthorized_replies: u32,
}

pub struct FakeOpenStack {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn sample(path: &str) -> Value {
    let p = super::fixture(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fault(name: &str, code: u16, message: &str) -> Value {
    json!({ name: { "code": code, "message": message } })
}

fn keystone_401(message: &str) -> Value {
    json!({"error": {"code": 401, "title": "Unauthorized", "message": message}})
}

impl FakeOpenStack {
    pub fn start() -> FakeOpenStack {
        FakeOpenStack::start_with(None)
    }

    /// The same over HTTPS with this certificate chain and key (PEM).
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> FakeOpenStack {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        FakeOpenStack::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> FakeOpenStack {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let world = Arc::new(Mutex::new(World {
            base: format!("{scheme}://{addr}"),
            requests: Vec::new(),
            violations: Vec::new(),
            tokens: Vec::new(),
            token_ttl: chrono::Duration::hours(1),
            user_name: "s171201".into(),
            user_domain: "Default".into(),
            password: "correct horse".into(),
            project_name: "admin".into(),
            app_cred_id: "423f19a4ac1e4f48bbb4180756e6eb6c".into(),
            app_cred_secret: "rEaqvJka48mpv".into(),
            servers: Vec::new(),
            next_ip: 10,
            max_instances: 10,
            build_polls: 2,
            page_size: 1000,
            faults: VecDeque::new(),
            expected_user_data: None,
            unauthorized_replies: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let world = world.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    let world = world.clone();
                    let tls = tls.clone();
                    std::thread::spawn(move || match tls {
                        None => serve(conn, world),
                        Some(cfg) => {
                            let Ok(server) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(server, conn), world)
                        }
                    });
                }
            });
        }
        FakeOpenStack { addr, world, stop }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn auth_url(&self) -> String {
        format!("{}/identity", self.world().base)
    }

    pub fn inject(&self, f: Fault) {
        self.world().faults.push_back(f);
    }

    /// Requests whose method is `method` and whose path contains `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.world()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.world().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.world().violations.clone()
    }

    /// Adds a server directly (as if made by someone else).
    pub fn add_server(&self, name: &str, status: &str) -> String {
        let mut w = self.world();
        let id = new_id(&format!("{}{}", name, w.servers.len()));
        let ip = format!("10.0.0.{}", w.next_ip);
        w.next_ip += 1;
        w.servers.push(Server {
            id: id.clone(),
            name: name.into(),
            status: status.into(),
            task: None,
            pending: None,
            ip,
            created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            key_name: None,
            security_groups: vec!["default".into()],
        });
        id
    }

    /// Makes every issued token invalid (as a revocation or a Keystone restart would).
    pub fn revoke_tokens(&self) {
        self.world().tokens.clear();
    }
}

fn new_id(seed: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    Utc::now().timestamp_nanos_opt().hash(&mut h);
    let a = h.finish();
    a.hash(&mut h);
    let b = h.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request<S: Read>(r: &mut BufReader<S>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn reply(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: Some(body),
    }
}

fn empty(status: u16) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: None,
    }
}

fn serve<S: Read + Write>(conn: S, world: Arc<Mutex<World>>) {
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        let resp = {
            let mut w = world.lock().unwrap_or_else(|e| e.into_inner());
            handle(&mut w, &req)
        };
        let body = resp
            .body
            .as_ref()
            .map(|b| serde_json::to_vec_pretty(b).unwrap())
            .unwrap_or_default();
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            resp.status,
            body.len()
        );
        if resp.body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // The whole request has been read: writing through the reader's stream is safe.
        let out = r.get_mut();
        if out.write_all(head.as_bytes()).is_err()
            || out.write_all(&body).is_err()
            || out.flush().is_err()
        {
            return;
        }
    }
}

fn query_param(q: &str, k: &str) -> Option<String> {
    q.split('&').find_map(|kv| {
        let (a, b) = kv.split_once('=')?;
        (a == k).then(|| percent_decode(b))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(w: &mut World, req: &Request) -> Response {
    let body: Option<Value> = if req.body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => Some(v),
            Err(e) => {
                w.violations.push(format!(
                    "{} {}: body is not JSON: {e}",
                    req.method, req.path
                ));
                None
            }
        }
    };
    let resp = route(w, req, body.as_ref());
    if resp.status == 401 {
        w.unauthorized_replies += 1;
    }
    w.requests.push(Recorded {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body,
        status: resp.status,
    });
    resp
}

fn header<'a>(req: &'a Request, n: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(n))
        .map(|(_, v)| v.as_str())
}

fn route(w: &mut World, req: &Request, body: Option<&Value>) -> Response {
    // Injected faults first.
    let fault_idx = w
        .faults
        .iter()
        .position(|f| f.method == req.method && req.path.contains(f.path_part));
    let mut after_fault = None;
    if let Some(i) = fault_idx {
        let f = w.faults[i].clone();
        if f.count <= 1 {
            w.faults.remove(i);
        } else {
            w.faults[i].count -= 1;
        }
        if f.after {
            after_fault = Some(f);
        } else {
            let mut r = reply(f.status, f.body.clone());
            if f.status == 429 || f.status == 413 {
                r.headers.push(("Retry-After".into(), "0".into()));
            }
            return r;
        }
    }
    if req.method == "GET"
        && let Some(r) = discovery(&w.base, &req.path)
    {
        return r;
    }
    let resp = if req.path == "/identity/v3/auth/tokens" && req.method == "POST" {
        keystone_tokens(w, body)
    } else {
        match authorized(w, req) {
            Err(r) => r,
            Ok(()) => service(w, req, body),
        }
    };
    match after_fault {
        Some(f) => reply(f.status, f.body),
        None => resp,
    }
}

/// A sample with its example host replaced (`http://openstack.example.com` → `to`).
fn rehosted(path: &str, from: &str, to: &str) -> Value {
    let text = sample(path).to_string().replace(from, to);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Version discovery, unauthenticated as in the real services: the documents SDKs such as
/// openstacksdk (keystoneauth) read before their first call. Keystone from openstacksdk's
/// discovery fixture (v3 only), Nova from its own version samples, Glance from
/// openstacksdk's image-version fixture; Neutron's root lists v2.0 (no sample exists).
fn discovery(base: &str, path: &str) -> Option<Response> {
    let p = path.trim_end_matches('/');
    if p == "/identity" || p == "/identity/v3" {
        let d = rehosted(
            "openstacksdk/discovery.json",
            "https://identity.example.com",
            &format!("{base}/identity"),
        );
        let v3 = d["versions"]["values"]
            .as_array()?
            .iter()
            .find(|v| v["id"].as_str().is_some_and(|i| i.starts_with("v3")))?
            .clone();
        return Some(if p == "/identity" {
            reply(300, json!({ "versions": { "values": [v3] } }))
        } else {
            reply(200, json!({ "version": v3 }))
        });
    }
    let rest = p.strip_prefix('/')?;
    let (zone, svc) = rest.split_once('/')?;
    let root = format!("{base}/{zone}");
    match svc {
        "compute" => Some(reply(
            200,
            rehosted(
                "nova/versions/versions-get-resp.json",
                "http://openstack.example.com",
                &format!("{root}/compute"),
            ),
        )),
        "compute/v2.1" => Some(reply(
            200,
            rehosted(
                "nova/versions/v21-version-get-resp.json",
                "http://openstack.example.com",
                &format!("{root}/compute"),
            ),
        )),
        "image" => Some(reply(
            300,
            rehosted(
                "openstacksdk/image-version.json",
                "http://image.example.com",
                &format!("{root}/image"),
            ),
        )),
        "network" => Some(reply(
            200,
            json!({"versions": [{"id": "v2.0", "status": "CURRENT",
                "links": [{"href": format!("{root}/network/v2.0/"), "rel": "self"}]}]}),
        )),
        _ => None,
    }
}

fn authorized(w: &mut World, req: &Request) -> Result<(), Response> {
    let now = Utc::now();
    let ok = header(req, "X-Auth-Token")
        .is_some_and(|t| w.tokens.iter().any(|(v, exp)| v == t && *exp > now));
    if ok {
        Ok(())
    } else {
        let mut r = reply(
            401,
            keystone_401("The request you have made requires authentication."),
        );
        r.headers.push((
            "WWW-Authenticate".into(),
            format!("Keystone uri=\"{}/identity\"", w.base),
        ));
        Err(r)
    }
}

fn violation(w: &mut World, msg: String) -> Response {
    w.violations.push(msg.clone());
    reply(400, fault("badRequest", 400, &msg))
}

fn keystone_tokens(w: &mut World, body: Option<&Value>) -> Response {
    let Some(body) = body else {
        return violation(w, "POST /v3/auth/tokens without a body".into());
    };
    if let Err(e) = schema::validate(&schema::load("AuthTokensPostRequest"), body) {
        return violation(w, format!("auth request: {e}"));
    }
    let methods = body["auth"]["identity"]["methods"].clone();
    let identity = &body["auth"]["identity"];
    let unauthorized = |w: &World| {
        let mut r = reply(
            401,
            keystone_401("The request you have made requires authentication."),
        );
        r.headers.push((
            "WWW-Authenticate".into(),
            format!("Keystone uri=\"{}/identity\"", w.base),
        ));
        r
    };
    let template = if methods == json!(["password"]) {
        let u = &identity["password"]["user"];
        let user_ok = (u["name"] == json!(w.user_name)
            && (u["domain"]["name"] == json!(w.user_domain)
                || u["domain"]["id"] == json!("default")))
            || u["id"] == json!("ee4dfb6e5540447cb3741905149d9b6e");
        if !user_ok || u["password"] != json!(w.password) {
            return unauthorized(w);
        }
        let p = &body["auth"]["scope"]["project"];
        let project_ok = p["id"] == json!(PROJECT_ID)
            || (p["name"] == json!(w.project_name)
                && (p["domain"]["id"] == json!("default")
                    || p["domain"]["name"] == json!("Default")));
        if !project_ok {
            return unauthorized(w);
        }
        sample("keystone/admin/auth-password-project-scoped-response.json")
    } else if methods == json!(["application_credential"]) {
        // keystone/auth/core.py: ApplicationCredentialAuthError.
        if body["auth"].get("scope").is_some() {
            w.violations
                .push("application credential auth sent a scope".into());
            return reply(
                401,
                keystone_401("Application credentials cannot request a scope."),
            );
        }
        let ac = &identity["application_credential"];
        let id_ok = ac["id"] == json!(w.app_cred_id)
            || (ac["name"] == json!("monitoring") && ac["user"].is_object());
        if !id_ok || ac["secret"] != json!(w.app_cred_secret) {
            return unauthorized(w);
        }
        sample("keystone/admin/auth-application-credential-response.json")
    } else {
        return violation(w, format!("unexpected auth methods {methods}"));
    };
    let mut token = template;
    let expires = Utc::now() + w.token_ttl;
    token["token"]["expires_at"] = json!(expires.to_rfc3339_opts(SecondsFormat::Micros, true));
    token["token"]["project"]["id"] = json!(PROJECT_ID);
    token["token"]["catalog"] = catalog(&w.base);
    let value = new_id("token").replace('-', "");
    w.tokens.push((value.clone(), expires));
    let mut r = reply(201, token);
    r.headers.push(("X-Subject-Token".into(), value));
    r
}

fn catalog(base: &str) -> Value {
    let ep = |zone: &str, interface: &str, region: &str, rest: &str| {
        json!({
            "id": new_id(zone),
            "interface": interface,
            "region": region,
            "region_id": region,
            "url": format!("{base}/{zone}/{rest}"),
        })
    };
    let service = |kind: &str, rest: &str| {
        json!({
            "type": kind,
            "id": new_id(kind),
            "name": kind,
            "endpoints": [
                ep("r1adm", "admin", "RegionOne", rest),
                ep("r1int", "internal", "RegionOne", rest),
                ep("r2pub", "public", "RegionTwo", rest),
                ep("r1pub", "public", "RegionOne", rest),
            ]
        })
    };
    json!([
        {"type": "identity", "id": "i", "name": "keystone", "endpoints": [
            {"id": "i1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
             "url": format!("{base}/identity")}
        ]},
        service("compute", &format!("compute/v2.1/{PROJECT_ID}")),
        // Glance and Neutron list their bare roots, as real catalogs do.
        service("image", "image"),
        service("network", "network/"),
    ])
}

/// The zone and the service path: `/r1pub/compute/v2.1/<p>/servers` → (`r1pub`, `compute`, `/servers`).
fn split_service(path: &str) -> Option<(&str, &str, String)> {
    let rest = path.strip_prefix('/')?;
    let (zone, rest) = rest.split_once('/')?;
    let (svc, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let rest = format!("/{rest}");
    let rest = match svc {
        "compute" => rest
            .strip_prefix(&format!("/v2.1/{PROJECT_ID}"))
            .map(str::to_owned)?,
        _ => rest,
    };
    Some((zone, svc, rest))
}

fn microversion(req: &Request) -> Option<(u32, u32)> {
    let v = header(req, "OpenStack-API-Version")?
        .strip_prefix("compute ")?
        .trim();
    let (a, b) = v.split_once('.')?;
    if b == "latest" {
        return Some((2, 104));
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn service(w: &mut World, req: &Request, body: Option<&Value>) -> Response {
    let Some((_zone, svc, rest)) = split_service(&req.path) else {
        return reply(404, fault("itemNotFound", 404, "no such path"));
    };
    let m = req.method.as_str();
    match (svc, m, rest.as_str()) {
        ("compute", "GET", "/servers/detail") => servers_detail(w, req),
        ("compute", "POST", "/servers") => create_server(w, req, body),
        ("compute", "GET", "/limits") => limits(w),
        ("compute", "GET", "/flavors/detail") => {
            reply(200, sample("nova/flavors/flavors-detail-resp.json"))
        }
        ("compute", _, p) if p.starts_with("/servers/") => {
            let rest = &p["/servers/".len()..];
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let id = id.to_owned();
            match (m, action) {
                ("GET", "") => match w.servers.iter().position(|s| s.id == id) {
                    Some(i) => {
                        poll(&mut w.servers[i]);
                        let mv = microversion(req);
                        let s = render(&w.base, &w.servers[i], mv);
                        reply(200, json!({ "server": s }))
                    }
                    None => not_found(&id),
                },
                ("DELETE", "") => match w.servers.iter().position(|s| s.id == id) {
                    Some(i) => {
                        w.servers.remove(i);
                        empty(204)
                    }
                    None => not_found(&id),
                },
                ("POST", "action") => server_action(w, &id, body),
                _ => reply(405, fault("badMethod", 405, "bad method")),
            }
        }
        ("image", "GET", "/v2/images") => images(w, req),
        ("network", "GET", "/v2.0/networks") => {
            let mut s = sample("neutron/networks/networks-list-response.json");
            // Neutron's name filter is exact.
            if let Some(n) = query_param(&req.query, "name") {
                let nets: Vec<Value> = s["networks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["name"] == json!(n))
                    .cloned()
                    .collect();
                s["networks"] = json!(nets);
            }
            reply(200, s)
        }
        _ => reply(
            404,
            fault(
                "itemNotFound",
                404,
                &format!("no route for {m} {}", req.path),
            ),
        ),
    }
}

fn not_found(id: &str) -> Response {
    reply(
        404,
        fault(
            "itemNotFound",
            404,
            &format!("Instance {id} could not be found."),
        ),
    )
}

fn images(w: &mut World, req: &Request) -> Response {
    let s = sample("glance/images-list-response.json");
    let mut all: Vec<Value> = s["images"].as_array().unwrap().clone();
    let mut ours = all[0].clone();
    ours["id"] = json!(IMAGE_ID);
    ours["name"] = json!(IMAGE_NAME);
    ours["self"] = json!(format!("/v2/images/{IMAGE_ID}"));
    ours["file"] = json!(format!("/v2/images/{IMAGE_ID}/file"));
    all.push(ours);
    // Glance's name filter is exact.
    if let Some(n) = query_param(&req.query, "name") {
        all.retain(|i| i["name"] == json!(n));
    }
    let marker = query_param(&req.query, "marker");
    let start = marker
        .and_then(|m| all.iter().position(|i| i["id"] == json!(m)).map(|p| p + 1))
        .unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(start).take(w.page_size).cloned().collect();
    let mut out = json!({ "images": page, "first": "/v2/images", "schema": "/v2/schemas/images" });
    if start + w.page_size < all.len() {
        let last = page.last().unwrap()["id"].as_str().unwrap().to_owned();
        let mut next = format!("/v2/images?marker={last}");
        if let Some(n) = query_param(&req.query, "name") {
            next.push_str(&format!("&name={n}"));
        }
        out["next"] = json!(next);
    }
    reply(200, out)
}

fn limits(w: &mut World) -> Response {
    let mut s = sample("nova/limits/limit-get-resp.json");
    let n = w.servers.len() as i64;
    let a = &mut s["limits"]["absolute"];
    a["maxTotalInstances"] = json!(w.max_instances);
    a["totalInstancesUsed"] = json!(n);
    a["totalCoresUsed"] = json!(n);
    a["totalRAMUsed"] = json!(n * 512);
    reply(200, s)
}

fn poll(s: &mut Server) {
    if let Some((left, target)) = s.pending.take() {
        if left <= 1 {
            s.status = target;
            s.task = None;
        } else {
            s.pending = Some((left - 1, target));
        }
    }
}

fn render(base: &str, s: &Server, mv: Option<(u32, u32)>) -> Value {
    let template = if mv.is_some_and(|v| v >= (2, 47)) {
        sample("nova/servers/v2.47/servers-details-resp.json")
    } else {
        sample("nova/servers/servers-details-resp.json")
    };
    let mut t = template["servers"][0].clone();
    t["id"] = json!(s.id);
    t["name"] = json!(s.name);
    t["status"] = json!(s.status);
    t["OS-EXT-STS:task_state"] = json!(s.task);
    t["OS-EXT-STS:vm_state"] = json!(match s.status.as_str() {
        "BUILD" => "building",
        "SHUTOFF" => "stopped",
        "ERROR" => "error",
        _ => "active",
    });
    t["created"] = json!(s.created);
    t["updated"] = json!(s.created);
    t["key_name"] = json!(s.key_name);
    t["security_groups"] = json!(
        s.security_groups
            .iter()
            .map(|g| json!({"name": g}))
            .collect::<Vec<_>>()
    );
    t["addresses"] = if s.status == "BUILD" {
        json!({})
    } else {
        json!({ NETWORK_NAME: [
            {"addr": s.ip, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}
        ]})
    };
    t["links"] = json!([
        {"href": format!("{base}/r1pub/compute/v2.1/{PROJECT_ID}/servers/{}", s.id), "rel": "self"}
    ]);
    t
}

fn servers_detail(w: &mut World, req: &Request) -> Response {
    let name_re = query_param(&req.query, "name")
        .map(|n| regex::Regex::new(&n).expect("the client sends a valid regex"));
    let marker = query_param(&req.query, "marker");
    let limit = query_param(&req.query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(w.page_size)
        .min(w.page_size);
    let matching: Vec<usize> = (0..w.servers.len())
        .filter(|&i| {
            name_re
                .as_ref()
                .is_none_or(|re| re.is_match(&w.servers[i].name))
        })
        .collect();
    let start = match &marker {
        Some(m) => match matching.iter().position(|&i| &w.servers[i].id == m) {
            Some(p) => p + 1,
            None => {
                return reply(
                    400,
                    fault("badRequest", 400, &format!("marker [{m}] not found")),
                );
            }
        },
        None => 0,
    };
    let page: Vec<usize> = matching.iter().skip(start).take(limit).copied().collect();
    let mv = microversion(req);
    let mut out = Vec::new();
    for &i in &page {
        poll(&mut w.servers[i]);
        out.push(render(&w.base, &w.servers[i], mv));
    }
    let mut body = json!({ "servers": out });
    if start + page.len() < matching.len() {
        let last = &w.servers[*page.last().unwrap()].id;
        // As in the sample: the link names another host (Nova behind a proxy); only its
        // query (limit, marker, and the original filters) is usable.
        let mut q = format!("limit={limit}&marker={last}");
        if let Some(n) = query_param(&req.query, "name") {
            q.push_str(&format!("&name={}", n.replace('^', "%5E")));
        }
        body["servers_links"] = json!([{
            "href": format!("http://openstack.example.com/v2.1/{PROJECT_ID}/servers/detail?{q}"),
            "rel": "next"
        }]);
    }
    reply(200, body)
}

fn create_server(w: &mut World, req: &Request, body: Option<&Value>) -> Response {
    let Some(body) = body else {
        return violation(w, "POST /servers without a body".into());
    };
    let mv = microversion(req).unwrap_or((2, 1));
    let schema_name = if mv >= (2, 57) {
        "ServersCreate_257"
    } else if mv >= (2, 37) {
        "ServersCreate_237"
    } else {
        "ServersCreate_21"
    };
    if let Err(e) = schema::validate(&schema::load(schema_name), body) {
        return violation(w, format!("create ({schema_name}): {e}"));
    }
    let s = &body["server"];
    // What the API reference requires beyond the schema, and what this cloud has.
    if s["imageRef"] != json!(IMAGE_ID) {
        return violation(w, format!("create: unknown imageRef {}", s["imageRef"]));
    }
    if s["flavorRef"] != json!(FLAVOR_ID) {
        return violation(w, format!("create: unknown flavorRef {}", s["flavorRef"]));
    }
    if s["networks"] != json!([{ "uuid": NETWORK_ID }]) {
        return violation(
            w,
            format!(
                "create: networks must be [{{uuid: {NETWORK_ID}}}], got {}",
                s["networks"]
            ),
        );
    }
    match s.get("user_data").and_then(Value::as_str) {
        None => return violation(w, "create: no user_data".into()),
        Some(u) => match base64::engine::general_purpose::STANDARD.decode(u) {
            Err(e) => return violation(w, format!("create: user_data is not base64: {e}")),
            Ok(d) => {
                if u.len() > 65535 {
                    return violation(w, "create: user_data longer than 65535".into());
                }
                if let Some(exp) = &w.expected_user_data
                    && &d != exp
                {
                    return violation(w, "create: user_data is not the expected script".into());
                }
            }
        },
    }
    let used = w.servers.len() as i64;
    if w.max_instances >= 0 && used >= w.max_instances {
        // nova/exception.py TooManyInstances, raised as HTTPForbidden.
        return reply(
            403,
            fault(
                "forbidden",
                403,
                &format!(
                    "Quota exceeded for instances: Requested 1, but already used {used} of {} instances",
                    w.max_instances
                ),
            ),
        );
    }
    let id = new_id(s["name"].as_str().unwrap_or(""));
    let ip = format!("10.0.0.{}", w.next_ip);
    w.next_ip += 1;
    w.servers.push(Server {
        id: id.clone(),
        name: s["name"].as_str().unwrap_or("").to_owned(),
        status: "BUILD".into(),
        task: Some("spawning".into()),
        pending: Some((w.build_polls, "ACTIVE".into())),
        ip,
        created: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        key_name: s["key_name"].as_str().map(str::to_owned),
        security_groups: s["security_groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec!["default".into()]),
    });
    let mut r = sample("nova/servers/server-create-resp.json");
    r["server"]["id"] = json!(id);
    let mut resp = reply(202, r);
    resp.headers.push((
        "Location".into(),
        format!("{}/r1pub/compute/v2.1/{PROJECT_ID}/servers/{id}", w.base),
    ));
    resp
}

fn server_action(w: &mut World, id: &str, body: Option<&Value>) -> Response {
    let Some(body) = body else {
        return violation(w, "action without a body".into());
    };
    let (action, schema_name, ok_from, task, target) = if body.get("os-start").is_some() {
        (
            "start",
            "ServersAction_Start",
            &["SHUTOFF"][..],
            "powering-on",
            "ACTIVE",
        )
    } else if body.get("os-stop").is_some() {
        (
            "stop",
            "ServersAction_Stop",
            &["ACTIVE", "ERROR"][..],
            "powering-off",
            "SHUTOFF",
        )
    } else {
        return violation(w, format!("unexpected action {body}"));
    };
    if let Err(e) = schema::validate(&schema::load(schema_name), body) {
        return violation(w, format!("{action}: {e}"));
    }
    let polls = w.build_polls;
    let Some(s) = w.servers.iter_mut().find(|s| s.id == id) else {
        return not_found(id);
    };
    if !ok_from.contains(&s.status.as_str()) || s.task.is_some() {
        // nova/api/openstack/common.py raise_http_conflict_for_instance_invalid_state.
        let vm_state = match s.status.as_str() {
            "BUILD" => "building",
            "SHUTOFF" => "stopped",
            _ => "active",
        };
        return reply(
            409,
            fault(
                "conflictingRequest",
                409,
                &format!("Cannot '{action}' instance {id} while it is in vm_state {vm_state}"),
            ),
        );
    }
    s.task = Some(task.into());
    s.pending = Some((polls, target.into()));
    empty(202)
}
