//! What the scaler needs from a cloud: the [`Cloud`] trait, the [`Backend`]s it lists, their
//! [`Status`], the [`Quota`] left, typed [`CloudError`]s, and the naming of backends.
//!
//! Two providers implement the trait: [`local::LocalCloud`] (each backend a process on
//! 127.0.0.1, the embedded default) and [`openstack::OpenStack`] (Keystone v3 + Nova over
//! HTTP). Backends are the instances whose name starts with the configured prefix (`node-`
//! by default, as in the lab report); they are listed in natural order (`node-2` before
//! `node-10`), and new ones continue the sequence (the lab report's `get_instance_number`).

pub mod local;
pub mod openstack;

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

/// The default name prefix of backends (the lab report's `node-1`, `node-2`, ...).
pub const DEFAULT_PREFIX: &str = "node-";

/// What the scaler needs from a cloud. Object-safe and synchronous: every call returns when
/// the cloud has accepted (or refused) the request, without waiting for the instance to
/// reach its new state; the next [`Cloud::list`] shows the progress (`BUILD` → `ACTIVE`,
/// `ACTIVE` → `SHUTOFF`).
pub trait Cloud {
    /// A short name of the provider, for logs (`local`, `openstack`).
    fn provider(&self) -> &'static str;

    /// The backends (instances whose name has the prefix), in natural order of name.
    fn list(&self) -> Result<Vec<Backend>, CloudError>;

    /// Creates `count` backends in parallel, named after the highest existing number
    /// (`node-4`, `node-5`, ... when `node-3` is the highest). The outer error means nothing
    /// was attempted (e.g. the listing or the image lookup failed); otherwise there is one
    /// [`Creation`] per name, each with its own result (some may hit the quota).
    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError>;

    /// Starts a stopped (`SHUTOFF`) backend. [`CloudError::Transitional`] if the cloud
    /// refuses because the backend is busy (building, stopping): skip it, retry next tick.
    fn start(&self, backend: &Backend) -> Result<(), CloudError>;

    /// Stops a running backend, keeping it (a warm instance that starts again quickly).
    /// [`CloudError::Transitional`] as for [`Cloud::start`].
    fn stop(&self, backend: &Backend) -> Result<(), CloudError>;

    /// Deletes a backend for good.
    fn delete(&self, backend: &Backend) -> Result<(), CloudError>;

    /// The quota: instances used, the limit, and how many more backends fit.
    fn quota(&self) -> Result<Quota, CloudError>;

    /// What the provider did on its own since the last call, one line each, for the log
    /// (the local provider: a backend adopted after a killed run, a process killed after
    /// the grace). None by default.
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<C: Cloud + ?Sized> Cloud for Box<C> {
    fn provider(&self) -> &'static str {
        (**self).provider()
    }
    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        (**self).list()
    }
    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        (**self).create(count)
    }
    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        (**self).start(backend)
    }
    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        (**self).stop(backend)
    }
    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        (**self).delete(backend)
    }
    fn quota(&self) -> Result<Quota, CloudError> {
        (**self).quota()
    }
    fn take_notes(&self) -> Vec<String> {
        (**self).take_notes()
    }
}

/// One backend instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// Its name (`node-3`).
    pub name: String,
    /// The cloud's id (a Nova UUID; `local-N` for the local provider).
    pub id: String,
    pub status: Status,
    /// Where it answers: an IP (OpenStack: the port is the balancer's business) or an
    /// `ip:port` (local provider). `None` while the cloud has not assigned one.
    pub address: Option<Address>,
    /// When the instance was created.
    pub created: Option<DateTime<Utc>>,
    /// What the cloud is doing to it right now, if anything (Nova's `task_state`, e.g.
    /// `powering-off`, while the status still reads `ACTIVE`).
    pub task: Option<String>,
}

impl Backend {
    /// Running and not being stopped or deleted: the backend can serve.
    pub fn is_running(&self) -> bool {
        self.status == Status::Active && self.task.is_none()
    }
}

/// A backend's address: an IP, with a port when the provider decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    pub ip: IpAddr,
    /// The port, for providers that run several backends on one host (local).
    pub port: Option<u16>,
}

impl Address {
    /// The socket address to reach, with `default_port` when the provider gives none.
    pub fn socket_addr(&self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}", SocketAddr::new(self.ip, p)),
            None => write!(f, "{}", self.ip),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A server status as Nova reports it (`api-ref/source/servers.inc`), open to values this
/// version does not know ([`Status::Other`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// Running.
    Active,
    /// Being created.
    Build,
    /// Stopped; starts again with `start`.
    Shutoff,
    /// Failed.
    Error,
    /// Deleted (still listed for a moment).
    Deleted,
    /// Soft reboot in progress.
    Reboot,
    /// Hard reboot in progress.
    HardReboot,
    /// Being rebuilt.
    Rebuild,
    /// Being resized or migrated.
    Resize,
    /// Resized, waiting for confirmation.
    VerifyResize,
    /// Resize being reverted.
    RevertResize,
    /// Live migration in progress.
    Migrating,
    /// Password being reset.
    Password,
    /// Paused in memory.
    Paused,
    /// Suspended to disk.
    Suspended,
    /// In rescue mode.
    Rescue,
    /// Shelved.
    Shelved,
    /// Shelved and removed from its host.
    ShelvedOffloaded,
    /// Soft-deleted (restorable).
    SoftDeleted,
    /// Unknown to Nova (e.g. a server in a down cell).
    Unknown,
    /// A status this version does not know, as reported.
    Other(String),
}

impl Status {
    /// Parses a status (case-insensitive); unknown values are kept in [`Status::Other`].
    pub fn parse(s: &str) -> Status {
        match s.to_ascii_uppercase().as_str() {
            "ACTIVE" => Status::Active,
            "BUILD" | "BUILDING" => Status::Build,
            "SHUTOFF" => Status::Shutoff,
            "ERROR" => Status::Error,
            "DELETED" => Status::Deleted,
            "REBOOT" => Status::Reboot,
            "HARD_REBOOT" => Status::HardReboot,
            "REBUILD" => Status::Rebuild,
            "RESIZE" => Status::Resize,
            "VERIFY_RESIZE" => Status::VerifyResize,
            "REVERT_RESIZE" => Status::RevertResize,
            "MIGRATING" => Status::Migrating,
            "PASSWORD" => Status::Password,
            "PAUSED" => Status::Paused,
            "SUSPENDED" => Status::Suspended,
            "RESCUE" => Status::Rescue,
            "SHELVED" => Status::Shelved,
            "SHELVED_OFFLOADED" => Status::ShelvedOffloaded,
            "SOFT_DELETED" => Status::SoftDeleted,
            "UNKNOWN" => Status::Unknown,
            _ => Status::Other(s.to_owned()),
        }
    }

    /// The status as Nova spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Active => "ACTIVE",
            Status::Build => "BUILD",
            Status::Shutoff => "SHUTOFF",
            Status::Error => "ERROR",
            Status::Deleted => "DELETED",
            Status::Reboot => "REBOOT",
            Status::HardReboot => "HARD_REBOOT",
            Status::Rebuild => "REBUILD",
            Status::Resize => "RESIZE",
            Status::VerifyResize => "VERIFY_RESIZE",
            Status::RevertResize => "REVERT_RESIZE",
            Status::Migrating => "MIGRATING",
            Status::Password => "PASSWORD",
            Status::Paused => "PAUSED",
            Status::Suspended => "SUSPENDED",
            Status::Rescue => "RESCUE",
            Status::Shelved => "SHELVED",
            Status::ShelvedOffloaded => "SHELVED_OFFLOADED",
            Status::SoftDeleted => "SOFT_DELETED",
            Status::Unknown => "UNKNOWN",
            Status::Other(s) => s,
        }
    }

    /// On its way to another state (building, rebooting, resizing, migrating...): wait.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            Status::Build
                | Status::Reboot
                | Status::HardReboot
                | Status::Rebuild
                | Status::Resize
                | Status::RevertResize
                | Status::Migrating
                | Status::Password
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The result of creating one backend.
#[derive(Debug)]
pub struct Creation {
    /// The name it was given.
    pub name: String,
    /// The backend as the cloud reported it right after creation (usually `BUILD`), or
    /// why it failed.
    pub result: Result<Backend, CloudError>,
}

/// One quota: used and the limit (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// In use (stopped instances count: they keep their resources).
    pub used: u64,
    /// The limit; `None` means unlimited (Nova's `-1`).
    pub max: Option<u64>,
}

impl Limit {
    /// What is left (`None` = unlimited).
    pub fn left(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.used))
    }
}

/// The quota that caps how many backends can exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub instances: Limit,
    /// Virtual CPUs, when the cloud reports them.
    pub cores: Option<Limit>,
    /// RAM in MiB, when the cloud reports it.
    pub ram_mb: Option<Limit>,
    /// How many more backends can be created: the instance quota, and also the cores and
    /// RAM quotas divided by the configured flavor's size when it is known. `None` means
    /// unlimited.
    pub left: Option<u64>,
}

impl Quota {
    /// The backends this quota allows in all when `ours` exist: ours and the ones that still
    /// fit ([`Quota::left`]); `None` when unlimited. What the policy's maximum is capped by.
    pub fn backends(&self, ours: u32) -> Option<u32> {
        self.left
            .map(|l| u32::try_from(u64::from(ours).saturating_add(l)).unwrap_or(u32::MAX))
    }
}

/// Why a cloud call failed. The variants are what the controller acts on.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The quota is exhausted: hold scaling up and log it once.
    #[error("quota exceeded: {message}")]
    QuotaExceeded {
        /// The cloud's message (`Quota exceeded for instances: ...`).
        message: String,
    },
    /// The backend is in a state where the action is refused (Nova's 409, or 400): skip it
    /// and try again next tick.
    #[error("{name} cannot be {action} now: {message}")]
    Transitional {
        /// The backend.
        name: String,
        /// `started`, `stopped` or `deleted`.
        action: &'static str,
        /// The cloud's message.
        message: String,
    },
    /// No such backend, image, flavor or network.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The cloud failed temporarily (5xx, timeout, connection refused) and retries did not
    /// help: try again later.
    #[error("{what} failed after {attempts} attempt(s): {message}")]
    Transient {
        /// The request.
        what: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// Authentication failed (bad credentials, expired application credential).
    #[error("authentication failed: {message}")]
    Auth {
        /// Keystone's message.
        message: String,
    },
    /// The configuration is incomplete or wrong (bad clouds.yaml, missing image name...).
    #[error("{message}")]
    Config {
        /// What is wrong, naming the input.
        message: String,
    },
    /// The cloud refused the request for another reason.
    #[error("{what}: HTTP {status}: {message}")]
    Api {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The cloud's message.
        message: String,
    },
    /// A local failure (state file, process).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl CloudError {
    /// The kind of error in one lowercase word (a metrics label): `quota_exceeded`,
    /// `transitional`, `not_found`, `transient`, `auth`, `config`, `api` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            CloudError::QuotaExceeded { .. } => "quota_exceeded",
            CloudError::Transitional { .. } => "transitional",
            CloudError::NotFound { .. } => "not_found",
            CloudError::Transient { .. } => "transient",
            CloudError::Auth { .. } => "auth",
            CloudError::Config { .. } => "config",
            CloudError::Api { .. } => "api",
            CloudError::Io { .. } => "io",
        }
    }

    /// Worth retrying on a later tick without changing anything (transient or transitional).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudError::Transient { .. } | CloudError::Transitional { .. }
        )
    }

    /// A configuration error with this message.
    pub fn config(message: impl Into<String>) -> CloudError {
        CloudError::Config {
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> CloudError {
        CloudError::Io {
            context: context.into(),
            source,
        }
    }
}

/// How backends are named: a prefix and a number (`node-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    prefix: String,
}

impl Default for Naming {
    fn default() -> Self {
        Naming::new(DEFAULT_PREFIX)
    }
}

impl Naming {
    /// Names `<prefix><n>`.
    pub fn new(prefix: &str) -> Naming {
        Naming {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether an instance with this name is one of our backends.
    pub fn is_backend(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
    }

    /// The number of a backend's name (`node-12` → 12), if it has one.
    pub fn number(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(&self.prefix)?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }

    /// The names of `count` new backends: numbers after the highest in use (1 when there
    /// is none), as the lab report's `get_instance_number(next=True)`.
    pub fn next_names<'a>(
        &self,
        existing: impl IntoIterator<Item = &'a str>,
        count: usize,
    ) -> Vec<String> {
        let next = existing
            .into_iter()
            .filter_map(|n| self.number(n))
            .max()
            .map_or(1, |m| m.saturating_add(1));
        (0..count as u64)
            .map(|i| format!("{}{}", self.prefix, next.saturating_add(i)))
            .collect()
    }
}

/// Natural order of names: digit runs compare as numbers, so `node-2` < `node-10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                // Compare numerically without overflow: strip leading zeros, then length,
                // then digits; equal values with more leading zeros sort later.
                let ta = trim_zeros(na);
                let tb = trim_zeros(nb);
                let ord = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then_with(|| da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z..]
}

/// Sorts backends in natural order of name (ties by id, so the order is total).
pub fn sort_backends(backends: &mut [Backend]) {
    backends.sort_by(|a, b| natural_cmp(&a.name, &b.name).then_with(|| a.id.cmp(&b.id)));
}

/// Parses a timestamp as clouds write them: RFC 3339, or naive (taken as UTC, as Nova's
/// `launched_at` and Neutron's timestamps are).
pub fn parse_cloud_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_quota_allows_ours_and_what_still_fits() {
        let q = |left| Quota {
            instances: Limit { used: 9, max: None },
            cores: None,
            ram_mb: None,
            left,
        };
        assert_eq!(q(Some(4)).backends(3), Some(7));
        assert_eq!(q(None).backends(3), None);
        assert_eq!(q(Some(u64::MAX)).backends(3), Some(u32::MAX));
    }

    #[test]
    fn natural_order_puts_2_before_10() {
        let mut v = vec![
            "node-10", "node-2", "node-1", "node-foo", "node-02", "node-",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "node-", "node-1", "node-2", "node-02", "node-10", "node-foo"
            ]
        );
    }

    #[test]
    fn next_names_continue_the_sequence() {
        let n = Naming::default();
        assert_eq!(n.next_names([], 2), ["node-1", "node-2"]);
        assert_eq!(
            n.next_names(["node-3", "node-10", "node-x", "web-99"], 2),
            ["node-11", "node-12"]
        );
        assert_eq!(n.number("node-007"), Some(7));
        assert_eq!(n.number("node-"), None);
        assert_eq!(n.number("node-1a"), None);
        assert_eq!(n.number("web-1"), None);
        assert!(n.is_backend("node-x") && !n.is_backend("nod-1"));
        let web = Naming::new("web");
        assert_eq!(web.next_names(["web9", "web10"], 1), ["web11"]);
    }

    #[test]
    fn status_round_trips_and_keeps_unknown_values() {
        for s in [
            "ACTIVE",
            "BUILD",
            "SHUTOFF",
            "ERROR",
            "DELETED",
            "HARD_REBOOT",
            "SHELVED_OFFLOADED",
            "VERIFY_RESIZE",
            "UNKNOWN",
        ] {
            assert_eq!(Status::parse(s).as_str(), s);
        }
        assert_eq!(Status::parse("active"), Status::Active);
        assert_eq!(
            Status::parse("HIBERNATING"),
            Status::Other("HIBERNATING".into())
        );
        assert_eq!(Status::parse("HIBERNATING").to_string(), "HIBERNATING");
        assert!(Status::Build.is_transitional() && !Status::Shutoff.is_transitional());
    }

    #[test]
    fn addresses_print_with_or_without_port() {
        let a = Address {
            ip: "10.0.0.5".parse().unwrap(),
            port: None,
        };
        assert_eq!(a.to_string(), "10.0.0.5");
        assert_eq!(a.socket_addr(80).to_string(), "10.0.0.5:80");
        let b = Address {
            ip: "127.0.0.1".parse().unwrap(),
            port: Some(8081),
        };
        assert_eq!(b.to_string(), "127.0.0.1:8081");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"127.0.0.1:8081\"");
    }

    #[test]
    fn cloud_times_parse_leniently() {
        assert_eq!(
            parse_cloud_time("2013-09-03T04:01:32Z")
                .unwrap()
                .to_rfc3339(),
            "2013-09-03T04:01:32+00:00"
        );
        assert!(parse_cloud_time("2013-09-23T13:53:12.774549").is_some());
        assert!(parse_cloud_time("2016-03-08T20:19:41").is_some());
        assert!(parse_cloud_time("yesterday").is_none());
    }

    #[test]
    fn limits() {
        let l = Limit {
            used: 12,
            max: Some(10),
        };
        assert_eq!(l.left(), Some(0));
        assert_eq!(Limit { used: 3, max: None }.left(), None);
    }

    proptest! {
        #[test]
        fn natural_cmp_is_a_total_order_matching_numbers(a in 0u64..100_000, b in 0u64..100_000) {
            let (x, y) = (format!("node-{a}"), format!("node-{b}"));
            prop_assert_eq!(natural_cmp(&x, &y), a.cmp(&b));
            prop_assert_eq!(natural_cmp(&y, &x), b.cmp(&a));
        }

        #[test]
        fn natural_cmp_is_antisymmetric_on_any_strings(a in "[a-z0-9-]{0,8}", b in "[a-z0-9-]{0,8}") {
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            if natural_cmp(&a, &b) == Ordering::Equal {
                prop_assert_eq!(&a, &b);
            }
        }

        #[test]
        fn new_names_never_collide(nums in proptest::collection::vec(0u64..1000, 0..20), count in 0usize..10) {
            let n = Naming::default();
            let existing: Vec<String> = nums.iter().map(|i| format!("node-{i}")).collect();
            let new = n.next_names(existing.iter().map(String::as_str), count);
            prop_assert_eq!(new.len(), count);
            for name in &new {
                prop_assert!(!existing.contains(name));
                prop_assert!(n.number(name).unwrap() > nums.iter().copied().max().unwrap_or(0));
            }
        }
    }
}
