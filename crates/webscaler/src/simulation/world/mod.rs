//! A simulated cloud, balancer and clock on one shared world: what the controller runs
//! against in its tests and in `webscaler simulate`, with no sleeping (a day-long trace takes
//! well under a second).
//!
//! - [`SimClock`] (`clock.rs`): the world's time, moved only by [`Sim::advance`]; the wall
//!   clock starts at the lab report's first timestamp (2014-09-28 15:49:58 UTC).
//! - [`SimCloud`] (`cloud.rs`, a [`Cloud`](crate::cloud::Cloud)): backends that take
//!   `boot_delay` from create to ACTIVE, `start_delay` from start to ACTIVE (status SHUTOFF
//!   with task `powering-on` meanwhile), `stop_delay` from stop to SHUTOFF (ACTIVE with task
//!   `powering-off`), `delete_delay` to disappear (task `deleting`); an instance quota that
//!   counts stopped backends as Nova's does; Nova's answers to a busy backend
//!   ([`CloudError::Transitional`](crate::cloud::CloudError::Transitional)).
//! - [`SimBalancer`] (`balancer.rs`, a [`Balancer`](crate::balancer::Balancer)): HAProxy's
//!   server states. An added server is in MAINT with checks on; its check passes
//!   `check_delay` after both it was added and its backend became ACTIVE (HAProxy's
//!   `rise × inter`); a ready server takes traffic while its check passes; a draining server
//!   keeps sessions for `drain_time`. The backend's counter is the requests of a [`Trace`] so
//!   far.
//! - Faults (`faults.rs`): [`Sim::reload_balancer`] (the counter restarts from 0 with a new
//!   pid), [`Sim::fail_backend`] (ERROR), [`Sim::set_quota`], [`Sim::reject_creates`] (the
//!   cloud refuses creations over a quota it did not report; each refusal is logged in
//!   [`Sim::calls`] as `refused create NAME`), [`Sim::busy_next`] (the next start, stop or
//!   delete answers 409), and [`Sim::crash_after`]: the n-th change from now takes effect
//!   and then panics with [`SimCrash`], as a controller killed right after a call would
//!   leave things.
//!
//! Everything is deterministic; handles are cheap clones of one `Rc<RefCell<_>>` (one
//! thread).

mod balancer;
mod clock;
mod cloud;
mod faults;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::balancer::{Admin, ServerAddr, ServerView};
use crate::cloud::{Address, Backend, Naming, Status, natural_cmp};
use crate::simulation::trace::Trace;

pub use balancer::{SimBalancer, SimError};
pub use clock::{SEED_START, SimClock};
pub use cloud::SimCloud;
pub use faults::{CloudCall, SimCrash};

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
    /// The wall-clock time at time 0 (the CSV dates, and the time of day a seasonal floor
    /// reads).
    pub wall_origin: DateTime<Utc>,
}

impl Default for SimConfig {
    /// 80-s boots and starts, 10-s stops, instant deletes, 2-s checks
    /// (`rise 2`, `inter 1s`), instant drains, the lab report's quota of 13, prefix `node-`,
    /// nothing running at 0, the wall clock starting at the lab report's first timestamp
    /// (2014-09-28 15:49:58 UTC).
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
            wall_origin: clock::SEED_START,
        }
    }
}

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

    /// The wall-clock time at `t`.
    fn wall_at(&self, t: Duration) -> DateTime<Utc> {
        self.config.wall_origin + chrono::Duration::from_std(t).unwrap_or(chrono::Duration::MAX)
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
                created: Some(self.wall_at(b.created)),
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
}

/// The shared simulated world; [`Sim::cloud`], [`Sim::balancer`] and [`Sim::clock`] are
/// handles to it.
#[derive(Debug, Clone)]
pub struct Sim {
    world: Rc<RefCell<World>>,
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

    /// The wall-clock time now.
    pub fn wall(&self) -> DateTime<Utc> {
        let w = self.world.borrow();
        w.wall_at(w.now)
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
}
