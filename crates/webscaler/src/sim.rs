//! A simulated cloud, balancer and clock on one shared world: what the controller runs
//! against in its tests and in `webscaler simulate`, with no sleeping (a day-long trace takes
//! well under a second).
//!
//! - [`SimClock`]: the world's time, moved only by [`Sim::advance`]; the wall clock starts
//!   at the seed's first timestamp (2014-09-28 15:49:58 UTC).
//! - [`SimCloud`] ([`Cloud`]): backends that take `boot_delay` from create to ACTIVE,
//!   `start_delay` from start to ACTIVE (status SHUTOFF with task `powering-on` meanwhile),
//!   `stop_delay` from stop to SHUTOFF (ACTIVE with task `powering-off`), `delete_delay`
//!   to disappear (task `deleting`); an instance quota that counts stopped backends as
//!   Nova's does; Nova's answers to a busy backend ([`CloudError::Transitional`]).
//! - [`SimBalancer`] ([`Balancer`]): HAProxy's server states. An added server is in MAINT
//!   with checks on; its check passes `check_delay` after both it was added and its backend
//!   became ACTIVE (HAProxy's `rise × inter`); a ready server takes traffic while its check
//!   passes; a draining server keeps sessions for `drain_time`. The backend's counter is the
//!   requests of a [`Trace`] so far, and restarts from 0 with a new pid on
//!   [`Sim::reload_balancer`].
//! - Faults (each refused creation is logged in [`Sim::calls`] as `refused create NAME`): [`Sim::fail_backend`] (ERROR), [`Sim::set_quota`], [`Sim::reject_creates`]
//!   (the cloud refuses creations over a quota it did not report), [`Sim::busy_next`] (the
//!   next start, stop or delete answers 409), and [`Sim::crash_after`]: the n-th change
//!   from now takes effect and then panics with [`SimCrash`], as a controller killed right
//!   after a call would leave things.
//!
//! Everything is deterministic; handles are cheap clones of one `Rc<RefCell<_>>` (one
//! thread).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::balancer::{
    Admin, Balancer, BalancerView, Metric, Removal, ServerAddr, ServerName, ServerView,
};
use crate::clock::Clock;
use crate::cloud::{
    Address, Backend, Cloud, CloudError, Creation, Limit, Naming, Quota, Status, natural_cmp,
};
use crate::trace::Trace;

/// The simulated world's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// From create to ACTIVE.
    pub boot_delay: Duration,
    /// From start (of a stopped backend) to ACTIVE.
    pub start_delay: Duration,
    /// From stop to SHUTOFF.
    pub stop_delay: Duration,
    /// From delete to gone.
    pub delete_delay: Duration,
    /// From added (with checks on) and ACTIVE to passing the balancer's check.
    pub check_delay: Duration,
    /// How long a draining server keeps sessions.
    pub drain_time: Duration,
    /// Instances the cloud allows (stopped ones count); `None`: unlimited.
    pub quota: Option<u32>,
    /// The backends' name prefix.
    pub prefix: String,
    /// Backends running and ready in the balancer at time 0.
    pub initial: u32,
}

impl Default for SimConfig {
    /// 80-s boots and starts, 10-s stops, instant deletes, 2-s checks
    /// (`rise 2`, `inter 1s`), instant drains, the seed's quota of 13, prefix `node-`,
    /// nothing running at 0.
    fn default() -> SimConfig {
        SimConfig {
            boot_delay: Duration::from_secs(80),
            start_delay: Duration::from_secs(80),
            stop_delay: Duration::from_secs(10),
            delete_delay: Duration::ZERO,
            check_delay: Duration::from_secs(2),
            drain_time: Duration::ZERO,
            quota: Some(13),
            prefix: crate::cloud::DEFAULT_PREFIX.to_owned(),
            initial: 0,
        }
    }
}

/// The payload of a simulated crash ([`Sim::crash_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCrash;

/// A refused balancer call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulated balancer: {0}")]
pub struct SimError(pub String);

#[derive(Debug, Clone)]
struct SimBackend {
    name: String,
    id: String,
    ip: IpAddr,
    status: Status,
    task: Option<&'static str>,
    /// The pending transition: when, and to what (`None`: gone).
    until: Option<(Duration, Option<Status>)>,
    running_since: Option<Duration>,
    created: Duration,
}

#[derive(Debug, Clone)]
struct SimServer {
    name: String,
    addr: ServerAddr,
    admin: Admin,
    checks_since: Option<Duration>,
    drain_since: Option<Duration>,
    /// Up from the start (the initial steady state).
    preheated: bool,
}

/// What the `busy_next` fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudCall {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `delete`.
    Delete,
}

#[derive(Debug)]
struct World {
    now: Duration,
    config: SimConfig,
    naming: Naming,
    trace: Trace,
    counter_base: u64,
    pid: u32,
    started: Duration,
    backends: Vec<SimBackend>,
    servers: Vec<SimServer>,
    next_id: u64,
    reject_creates: bool,
    busy: Vec<CloudCall>,
    crash_after: Option<u64>,
    calls: Vec<String>,
}

impl World {
    fn settle(&mut self) {
        let now = self.now;
        let mut gone = Vec::new();
        for b in &mut self.backends {
            if let Some((t, next)) = b.until.clone()
                && t <= now
            {
                b.until = None;
                b.task = None;
                match next {
                    Some(s) => {
                        if s == Status::Active {
                            b.running_since = Some(t);
                        } else {
                            b.running_since = None;
                        }
                        b.status = s;
                    }
                    None => gone.push(b.id.clone()),
                }
            }
        }
        self.backends.retain(|b| !gone.contains(&b.id));
    }

    fn backend_at(&self, addr: ServerAddr) -> Option<&SimBackend> {
        self.backends.iter().find(|b| b.ip == addr.ip())
    }

    fn healthy(&self, s: &SimServer) -> bool {
        let Some(b) = self.backend_at(s.addr) else {
            return false;
        };
        if b.status != Status::Active || b.task.is_some() {
            return false;
        }
        if s.preheated {
            return true;
        }
        match (s.checks_since, b.running_since) {
            (Some(c), Some(r)) => self.now >= c.max(r) + self.config.check_delay,
            _ => false,
        }
    }

    fn sessions(&self, s: &SimServer) -> u64 {
        match (s.admin, s.drain_since) {
            (Admin::Drain, Some(d)) if self.now < d + self.config.drain_time => 1,
            _ => 0,
        }
    }

    fn list(&self) -> Vec<Backend> {
        let mut v: Vec<Backend> = self
            .backends
            .iter()
            .map(|b| Backend {
                name: b.name.clone(),
                id: b.id.clone(),
                status: b.status.clone(),
                address: Some(Address {
                    ip: b.ip,
                    port: None,
                }),
                created: Some(wall(b.created)),
                task: b.task.map(str::to_owned),
            })
            .collect();
        v.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        v
    }

    fn view(&self) -> Vec<ServerView> {
        self.servers
            .iter()
            .map(|s| {
                let healthy = self.healthy(s);
                ServerView {
                    name: s.name.clone(),
                    addr: Some(s.addr),
                    admin: s.admin,
                    checks_enabled: s.checks_since.is_some() || s.preheated,
                    healthy,
                    takes_traffic: s.admin == Admin::Ready && healthy,
                    sessions: self.sessions(s),
                    detail: format!("{}, {}", s.admin, if healthy { "L7OK" } else { "L4CON" }),
                }
            })
            .collect()
    }

    fn new_backend(
        &mut self,
        name: String,
        status: Status,
        until: Option<(Duration, Option<Status>)>,
    ) -> SimBackend {
        let n = self.next_id;
        self.next_id += 1;
        let ip = IpAddr::V4(Ipv4Addr::new(10, (n / 250) as u8, 0, (n % 250) as u8 + 1));
        SimBackend {
            name,
            id: format!("sim-{n}"),
            ip,
            running_since: (status == Status::Active).then_some(self.now),
            status,
            task: None,
            until,
            created: self.now,
        }
    }

    /// Counts a change; `true` if it is the one to crash after.
    fn change(&mut self, what: String) -> bool {
        self.calls.push(what);
        match &mut self.crash_after {
            Some(0) | None => false,
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.crash_after = None;
                    true
                } else {
                    false
                }
            }
        }
    }
}

fn wall(t: Duration) -> DateTime<Utc> {
    // The seed's first line (listing 1.7): 2014-09-28 15:49:58.
    let origin = Utc
        .with_ymd_and_hms(2014, 9, 28, 15, 49, 58)
        .single()
        .unwrap_or_default();
    origin + chrono::Duration::from_std(t).unwrap_or(chrono::Duration::MAX)
}

/// The shared simulated world; [`Sim::cloud`], [`Sim::balancer`] and [`Sim::clock`] are
/// handles to it.
#[derive(Debug, Clone)]
pub struct Sim {
    world: Rc<RefCell<World>>,
}

/// Panics with [`SimCrash`] (after the `RefCell` borrow is released).
fn crash_if(crash: bool) {
    if crash {
        std::panic::panic_any(SimCrash);
    }
}

impl Sim {
    /// A world at time 0 whose balancer counts the requests of `trace`.
    pub fn new(config: SimConfig, trace: Trace) -> Sim {
        let mut w = World {
            now: Duration::ZERO,
            naming: Naming::new(&config.prefix),
            config,
            trace,
            counter_base: 0,
            pid: 1,
            started: Duration::ZERO,
            backends: Vec::new(),
            servers: Vec::new(),
            next_id: 1,
            reject_creates: false,
            busy: Vec::new(),
            crash_after: None,
            calls: Vec::new(),
        };
        let names = w.naming.next_names([], w.config.initial as usize);
        for name in names {
            let b = w.new_backend(name.clone(), Status::Active, None);
            let addr = ServerAddr::from_socket_addr(SocketAddr::new(b.ip, 80))
                .unwrap_or_else(|_| unreachable!("10.x.y.z:80 is a valid address"));
            w.backends.push(b);
            w.servers.push(SimServer {
                name,
                addr,
                admin: Admin::Ready,
                checks_since: Some(Duration::ZERO),
                drain_since: None,
                preheated: true,
            });
        }
        Sim {
            world: Rc::new(RefCell::new(w)),
        }
    }

    /// The cloud.
    pub fn cloud(&self) -> SimCloud {
        SimCloud { sim: self.clone() }
    }

    /// The balancer.
    pub fn balancer(&self) -> SimBalancer {
        SimBalancer { sim: self.clone() }
    }

    /// The clock.
    pub fn clock(&self) -> SimClock {
        SimClock { sim: self.clone() }
    }

    /// The time.
    pub fn now(&self) -> Duration {
        self.world.borrow().now
    }

    /// Moves time forward.
    pub fn advance(&self, dt: Duration) {
        let mut w = self.world.borrow_mut();
        w.now += dt;
        w.settle();
    }

    /// When the next change that happens by itself is due (a boot, start, stop or delete
    /// completing, a check passing, a drain ending), if any is still ahead: a caller that
    /// wants every change of the supply and the cost between two ticks advances to it.
    pub fn next_transition(&self) -> Option<Duration> {
        let w = self.world.borrow();
        let now = w.now;
        let backends = w
            .backends
            .iter()
            .filter_map(|b| b.until.as_ref().map(|u| u.0));
        let checks = w.servers.iter().filter_map(|s| {
            let b = w.backend_at(s.addr)?;
            Some(s.checks_since?.max(b.running_since?) + w.config.check_delay)
        });
        let drains = w
            .servers
            .iter()
            .filter_map(|s| s.drain_since.map(|d| d + w.config.drain_time));
        backends
            .chain(checks)
            .chain(drains)
            .filter(|&t| t > now)
            .min()
    }

    /// The balancer restarts: a new pid, the counter from 0.
    pub fn reload_balancer(&self) {
        let mut w = self.world.borrow_mut();
        w.counter_base = w.trace.requests_until(w.now);
        w.pid += 1;
        w.started = w.now;
    }

    /// A backend goes into ERROR.
    pub fn fail_backend(&self, name: &str) {
        let mut w = self.world.borrow_mut();
        if let Some(b) = w.backends.iter_mut().find(|b| b.name == name) {
            b.status = Status::Error;
            b.task = None;
            b.until = None;
            b.running_since = None;
        }
    }

    /// Changes the instance quota.
    pub fn set_quota(&self, quota: Option<u32>) {
        self.world.borrow_mut().config.quota = quota;
    }

    /// Whether every creation is refused as over quota, whatever the quota report says.
    pub fn reject_creates(&self, reject: bool) {
        self.world.borrow_mut().reject_creates = reject;
    }

    /// The next call of this kind answers that the backend is busy (Nova's 409).
    pub fn busy_next(&self, call: CloudCall) {
        self.world.borrow_mut().busy.push(call);
    }

    /// The `n`-th change from now (a create, start, stop, delete, or balancer add, ready,
    /// drain, remove; `n` ≥ 1) takes effect and then panics with [`SimCrash`].
    pub fn crash_after(&self, n: u64) {
        self.world.borrow_mut().crash_after = Some(n.max(1));
    }

    /// The changes made so far, one phrase each (`create node-3`, `drain node-2`).
    pub fn calls(&self) -> Vec<String> {
        self.world.borrow().calls.clone()
    }

    /// The cloud's backends now.
    pub fn backends(&self) -> Vec<Backend> {
        self.world.borrow().list()
    }

    /// The balancer's servers now.
    pub fn servers(&self) -> Vec<ServerView> {
        self.world.borrow().view()
    }

    /// Servers taking traffic now (the supply).
    pub fn serving(&self) -> u32 {
        let mut w = self.world.borrow_mut();
        w.settle();
        let w = &*w;
        w.servers
            .iter()
            .filter(|s| s.admin == Admin::Ready && w.healthy(s))
            .count() as u32
    }

    /// Backends that cost money now: every one but the stopped ones.
    pub fn paid(&self) -> u32 {
        let mut w = self.world.borrow_mut();
        w.settle();
        w.backends
            .iter()
            .filter(|b| !(b.status == Status::Shutoff && b.task.is_none()))
            .count() as u32
    }

    fn busy(&self, call: CloudCall) -> bool {
        let mut w = self.world.borrow_mut();
        match w.busy.iter().position(|c| *c == call) {
            Some(i) => {
                w.busy.remove(i);
                true
            }
            None => false,
        }
    }
}

/// The simulated clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    sim: Sim,
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.sim.now()
    }
    fn wall(&self) -> DateTime<Utc> {
        wall(self.sim.now())
    }
}

/// The simulated cloud.
#[derive(Debug, Clone)]
pub struct SimCloud {
    sim: Sim,
}

fn transitional(name: &str, action: &'static str, why: &str) -> CloudError {
    CloudError::Transitional {
        name: name.to_owned(),
        action,
        message: why.to_owned(),
    }
}

impl SimCloud {
    fn act(
        &self,
        backend: &Backend,
        call: CloudCall,
        f: impl FnOnce(&mut World, usize) -> Result<(), CloudError>,
    ) -> Result<(), CloudError> {
        let verb = match call {
            CloudCall::Start => "started",
            CloudCall::Stop => "stopped",
            CloudCall::Delete => "deleted",
        };
        if self.sim.busy(call) {
            return Err(transitional(&backend.name, verb, "simulated 409"));
        }
        let crash = {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            let i = w
                .backends
                .iter()
                .position(|b| b.id == backend.id)
                .ok_or_else(|| CloudError::NotFound {
                    what: format!("backend {} ({})", backend.name, backend.id),
                })?;
            f(&mut w, i)?;
            w.change(format!(
                "{} {}",
                match call {
                    CloudCall::Start => "start",
                    CloudCall::Stop => "stop",
                    CloudCall::Delete => "delete",
                },
                backend.name
            ))
        };
        crash_if(crash);
        Ok(())
    }
}

impl Cloud for SimCloud {
    fn provider(&self) -> &'static str {
        "sim"
    }

    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        Ok(w.list())
    }

    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        let mut out = Vec::new();
        let mut crash = false;
        {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            let names = w
                .naming
                .next_names(w.backends.iter().map(|b| b.name.as_str()), count);
            for name in names {
                let full = w
                    .config
                    .quota
                    .is_some_and(|q| w.backends.len() >= q as usize);
                if full || w.reject_creates {
                    w.calls.push(format!("refused create {name} (quota)"));
                    out.push(Creation {
                        name,
                        result: Err(CloudError::QuotaExceeded {
                            message: format!(
                                "Quota exceeded for instances: Requested 1, but already used {} of {} instances",
                                w.backends.len(),
                                w.config.quota.map_or_else(|| "?".into(), |q| q.to_string())
                            ),
                        }),
                    });
                    continue;
                }
                let until = Some((w.now + w.config.boot_delay, Some(Status::Active)));
                let b = w.new_backend(name.clone(), Status::Build, until);
                w.backends.push(b);
                w.settle();
                let listed = w.list().into_iter().find(|b| b.name == name);
                crash = w.change(format!("create {name}"));
                out.push(Creation {
                    name,
                    result: listed.ok_or_else(|| CloudError::NotFound {
                        what: "the backend just created".into(),
                    }),
                });
                if crash {
                    // Killed in the middle of the parallel creation: the rest never happen.
                    break;
                }
            }
        }
        crash_if(crash);
        Ok(out)
    }

    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Start, |w, i| {
            let now = w.now;
            let delay = w.config.start_delay;
            let b = &mut w.backends[i];
            if b.status != Status::Shutoff || b.task.is_some() {
                return Err(transitional(&b.name, "started", "not SHUTOFF"));
            }
            b.task = Some("powering-on");
            b.until = Some((now + delay, Some(Status::Active)));
            w.settle();
            Ok(())
        })
    }

    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Stop, |w, i| {
            let now = w.now;
            let delay = w.config.stop_delay;
            let b = &mut w.backends[i];
            if b.status != Status::Active || b.task.is_some() {
                return Err(transitional(&b.name, "stopped", "not ACTIVE"));
            }
            b.task = Some("powering-off");
            b.until = Some((now + delay, Some(Status::Shutoff)));
            w.settle();
            Ok(())
        })
    }

    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Delete, |w, i| {
            let now = w.now;
            let delay = w.config.delete_delay;
            let b = &mut w.backends[i];
            b.task = Some("deleting");
            b.until = Some((now + delay, None));
            w.settle();
            Ok(())
        })
    }

    fn quota(&self) -> Result<Quota, CloudError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        let used = w.backends.len() as u64;
        let max = w.config.quota.map(u64::from);
        Ok(Quota {
            instances: Limit { used, max },
            cores: None,
            ram_mb: None,
            left: max.map(|m| m.saturating_sub(used)),
        })
    }
}

/// The simulated balancer.
#[derive(Debug, Clone)]
pub struct SimBalancer {
    sim: Sim,
}

impl SimBalancer {
    fn change(
        &self,
        what: String,
        f: impl FnOnce(&mut World) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        let crash = {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            f(&mut w)?;
            w.change(what)
        };
        crash_if(crash);
        Ok(())
    }
}

impl Balancer for SimBalancer {
    type Error = SimError;

    fn observe(&self, _metric: Metric) -> Result<BalancerView, SimError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        Ok(BalancerView {
            counter: w.trace.requests_until(w.now).saturating_sub(w.counter_base),
            pid: Some(w.pid),
            uptime_sec: Some(w.now.saturating_sub(w.started).as_secs()),
            servers: w.view(),
        })
    }

    fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), SimError> {
        self.change(format!("add {name}"), |w| {
            let now = w.now;
            if let Some(s) = w.servers.iter_mut().find(|s| s.name == name.as_str()) {
                if s.addr != addr {
                    return Err(SimError(format!(
                        "{name} exists with address {}, not {addr}",
                        s.addr
                    )));
                }
                s.checks_since.get_or_insert(now);
                return Ok(());
            }
            w.servers.push(SimServer {
                name: name.to_string(),
                addr,
                admin: Admin::Maint,
                checks_since: Some(now),
                drain_since: None,
                preheated: false,
            });
            Ok(())
        })
    }

    fn ready(&self, name: &ServerName) -> Result<(), SimError> {
        self.change(format!("ready {name}"), |w| {
            let s = w
                .servers
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| SimError(format!("no server {name}")))?;
            s.admin = Admin::Ready;
            s.drain_since = None;
            Ok(())
        })
    }

    fn drain(&self, name: &ServerName) -> Result<(), SimError> {
        self.change(format!("drain {name}"), |w| {
            let now = w.now;
            let s = w
                .servers
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| SimError(format!("no server {name}")))?;
            s.admin = Admin::Drain;
            s.drain_since = Some(now);
            Ok(())
        })
    }

    fn remove(&self, name: &ServerName) -> Result<Removal, SimError> {
        let mut outcome = Removal::AlreadyGone;
        self.change(format!("remove {name}"), |w| {
            let Some(i) = w.servers.iter().position(|s| s.name == name.as_str()) else {
                return Ok(());
            };
            if w.sessions(&w.servers[i]) > 0 {
                w.servers[i].admin = Admin::Maint;
                outcome = Removal::Busy("Server still has connections attached to it".into());
            } else {
                w.servers.remove(i);
                outcome = Removal::Removed;
            }
            Ok(())
        })?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::synthetic;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backends_boot_start_stop_and_go_on_time() {
        let sim = Sim::new(SimConfig::default(), synthetic::constant(10.0, 1000));
        let cloud = sim.cloud();
        let made = cloud.create(2).unwrap();
        assert_eq!(made[0].name, "node-1");
        assert_eq!(made[1].result.as_ref().unwrap().status, Status::Build);
        sim.advance(secs(79));
        assert_eq!(cloud.list().unwrap()[0].status, Status::Build);
        sim.advance(secs(1));
        let b = cloud.list().unwrap();
        assert_eq!(b[0].status, Status::Active);
        cloud.stop(&b[0]).unwrap();
        let l = cloud.list().unwrap();
        assert_eq!(
            (l[0].status.clone(), l[0].task.as_deref()),
            (Status::Active, Some("powering-off"))
        );
        assert!(matches!(
            cloud.stop(&l[0]),
            Err(CloudError::Transitional { .. })
        ));
        sim.advance(secs(10));
        let l = cloud.list().unwrap();
        assert_eq!(l[0].status, Status::Shutoff);
        cloud.start(&l[0]).unwrap();
        assert_eq!(
            cloud.list().unwrap()[0].task.as_deref(),
            Some("powering-on")
        );
        sim.advance(secs(80));
        assert_eq!(cloud.list().unwrap()[0].status, Status::Active);
        cloud.delete(&l[1]).unwrap();
        assert_eq!(cloud.list().unwrap().len(), 1);
        assert!(matches!(
            cloud.delete(&l[1]),
            Err(CloudError::NotFound { .. })
        ));
        assert_eq!(
            sim.calls(),
            [
                "create node-1",
                "create node-2",
                "stop node-1",
                "start node-1",
                "delete node-2"
            ]
        );
    }

    #[test]
    fn the_quota_counts_stopped_backends_and_refuses_beyond() {
        let sim = Sim::new(
            SimConfig {
                quota: Some(2),
                ..SimConfig::default()
            },
            synthetic::constant(0.0, 10),
        );
        let c = sim.cloud().create(3).unwrap();
        assert!(c[0].result.is_ok() && c[1].result.is_ok());
        assert!(matches!(c[2].result, Err(CloudError::QuotaExceeded { .. })));
        assert_eq!(sim.cloud().quota().unwrap().left, Some(0));
        sim.set_quota(Some(5));
        sim.reject_creates(true);
        assert!(sim.cloud().create(1).unwrap()[0].result.is_err());
    }

    #[test]
    fn a_server_passes_its_check_after_the_delay_and_takes_traffic_when_ready() {
        let sim = Sim::new(
            SimConfig {
                boot_delay: secs(10),
                drain_time: secs(3),
                ..SimConfig::default()
            },
            synthetic::constant(20.0, 1000),
        );
        let b = sim.balancer();
        let name = ServerName::new("node-1").unwrap();
        sim.cloud().create(1).unwrap();
        let addr: ServerAddr = "10.0.0.2:80".parse().unwrap();
        b.add(&name, addr).unwrap();
        let s = &b.observe(Metric::Sessions).unwrap().servers[0];
        assert_eq!((s.admin, s.healthy), (Admin::Maint, false));
        sim.advance(secs(11));
        assert!(
            !b.observe(Metric::Sessions).unwrap().servers[0].healthy,
            "2 s after ACTIVE"
        );
        sim.advance(secs(1));
        let s = &b.observe(Metric::Sessions).unwrap().servers[0];
        assert!(s.healthy && !s.takes_traffic);
        b.ready(&name).unwrap();
        let v = b.observe(Metric::Sessions).unwrap();
        assert!(v.servers[0].takes_traffic);
        assert_eq!(v.counter, 240, "20 req/s for 12 s");
        b.drain(&name).unwrap();
        assert_eq!(
            b.remove(&name).unwrap(),
            Removal::Busy("Server still has connections attached to it".into())
        );
        assert_eq!(
            b.observe(Metric::Sessions).unwrap().servers[0].admin,
            Admin::Maint
        );
        sim.advance(secs(3));
        assert_eq!(b.remove(&name).unwrap(), Removal::Removed);
        assert_eq!(b.remove(&name).unwrap(), Removal::AlreadyGone);
        // A reload restarts the counter with a new pid.
        sim.reload_balancer();
        sim.advance(secs(2));
        let v = b.observe(Metric::Sessions).unwrap();
        assert_eq!((v.counter, v.pid, v.uptime_sec), (40, Some(2), Some(2)));
    }

    #[test]
    fn a_crash_happens_after_the_change() {
        let sim = Sim::new(SimConfig::default(), synthetic::constant(0.0, 10));
        sim.crash_after(2);
        let cloud = sim.cloud();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cloud.create(3)));
        let payload = r.unwrap_err();
        assert!(payload.downcast_ref::<SimCrash>().is_some());
        // The creation that crashed was made; the one after it was not.
        assert_eq!(sim.backends().len(), 2);
        assert_eq!(sim.calls(), ["create node-1", "create node-2"]);
    }
}
