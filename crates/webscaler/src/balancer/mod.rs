//! What the controller needs from a load balancer: the [`Balancer`] trait.
//!
//! One call observes everything a tick needs (the backend's cumulative counter with the
//! identity of the process that counted, and every server with its administrative state,
//! health and sessions); the others change one server each and **never wait**: adding puts a
//! server in maintenance with its health checks on, and a later tick makes it ready once the
//! balancer's own check has passed; draining only stops new traffic, and a later tick sees
//! the sessions reach zero; removing makes one attempt and reports [`Removal::Busy`] when
//! the balancer still holds connections. So a tick never blocks on a boot, a check or a
//! drain, and the balancer's own states carry the lifecycle across ticks (and across a crash
//! of the controller).
//!
//! Implementations: [`crate::haproxy::Haproxy`] (the runtime API) and the simulated
//! balancer of [`crate::simulation::world`].

use std::fmt;

use serde::Serialize;

use crate::rate::meter::Counter;

pub mod metric;
pub mod names;
pub mod several;

pub use metric::Metric;
pub use names::{BackendName, InvalidValue, ServerAddr, ServerName};

/// A server's administrative state: what the operator (or the controller) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Admin {
    /// Takes traffic when its check passes.
    Ready,
    /// No new traffic; current sessions finish.
    Drain,
    /// No traffic at all (a new server waiting for its check, or one being removed).
    Maint,
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admin::Ready => "ready",
            Admin::Drain => "drain",
            Admin::Maint => "maint",
        })
    }
}

/// One server as the balancer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerView {
    pub name: String,
    /// Its address, when it is one the balancer can be given back (`IP:port`).
    pub addr: Option<ServerAddr>,
    /// Ready, drain or maint.
    pub admin: Admin,
    /// Whether health checks run on it.
    pub checks_enabled: bool,
    /// Whether its checks have passed often enough that it is up as soon as it is ready
    /// (HAProxy: the last check passed and the health counter reached `rise`).
    pub healthy: bool,
    /// Whether it takes new load-balanced traffic now (HAProxy: `UP` or `no check`): the
    /// lab report's "active servers in HAProxy".
    pub takes_traffic: bool,
    /// Current sessions.
    pub sessions: u64,
    /// The state and last check in words, for logs (`UP, L7OK`).
    pub detail: String,
}

/// What the balancer reports at one tick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BalancerView {
    /// The backend's cumulative counter for the metric.
    pub counter: u64,
    /// The pid of the process that counted (a change means the counter restarted).
    pub pid: Option<u32>,
    /// That process's uptime in whole seconds.
    pub uptime_sec: Option<u64>,
    /// The backend's servers, in the balancer's order.
    pub servers: Vec<ServerView>,
    /// Several balancer instances ([`several::Several`]): which answered and what each
    /// counted; `None` for one balancer (then `counter`, `pid` and `uptime_sec` are its own).
    pub instances: Option<InstancesSeen>,
}

/// What several balancer instances gave at one tick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct InstancesSeen {
    /// How many there are.
    pub total: u32,
    /// How many answered.
    pub answering: u32,
    /// Servers taking traffic in every instance that answered (the CSV's `haactive`).
    pub taking_traffic: u32,
    /// The counters of the instances in step (`counter` is their sum); one that answered
    /// but was being brought in step is not counted this tick.
    pub counters: Vec<Counter>,
}

impl BalancerView {
    /// The counters to measure the rate from: one per instance that counts (a lone
    /// balancer's own).
    pub fn counters(&self) -> Vec<Counter> {
        match &self.instances {
            Some(i) => i.counters.clone(),
            None => vec![Counter {
                source: 0,
                value: self.counter,
                pid: self.pid,
                uptime_sec: self.uptime_sec,
            }],
        }
    }

    /// Servers taking traffic (the CSV's `haactive`; with several instances, in all of
    /// those that answered).
    pub fn taking_traffic(&self) -> u32 {
        match &self.instances {
            Some(i) => i.taking_traffic,
            None => self.servers.iter().filter(|s| s.takes_traffic).count() as u32,
        }
    }
}

/// What one removal attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The server is gone.
    Removed,
    /// The balancer still holds connections to it; it stays in maintenance, try again later.
    Busy(String),
    /// There was no such server.
    AlreadyGone,
}

/// What the controller needs from a load balancer (see the module documentation). Methods
/// take `&self`: a client is a handle (a socket path; a shared simulated world).
pub trait Balancer {
    /// Why a call failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The backend's counter for `metric` and its servers.
    fn observe(&self, metric: Metric) -> Result<BalancerView, Self::Error>;

    /// Adds a server in maintenance with its health checks on; idempotent (a server that
    /// exists with this address just gets its checks enabled). Does not wait.
    fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), Self::Error>;

    /// Lets a server take traffic.
    fn ready(&self, name: &ServerName) -> Result<(), Self::Error>;

    /// Stops new traffic to a server; its sessions finish. Does not wait.
    fn drain(&self, name: &ServerName) -> Result<(), Self::Error>;

    /// One attempt at removing a server (maintenance, then delete).
    fn remove(&self, name: &ServerName) -> Result<Removal, Self::Error>;

    /// Puts a server in maintenance (no traffic at all), keeping it.
    fn maint(&self, name: &ServerName) -> Result<(), Self::Error>;

    /// What happened since the last call that is worth a log line (an instance of several
    /// that stopped answering, or was brought back in step). None by default.
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// How many instances this balancer is, when it is several (the CSV then has the
    /// `instances` column); `None` for one.
    fn instances(&self) -> Option<u32> {
        None
    }

    /// The kind of `error` in one lowercase word, for the metrics (`socket`, `refused`);
    /// `error` unless the implementation tells kinds apart.
    fn error_kind(error: &Self::Error) -> &'static str {
        let _ = error;
        "error"
    }
}
