//! The scaling loop's one tick: observe → rate → decide → plan → act → record.
//!
//! [`Controller`] is generic over the [`Cloud`], the [`Balancer`], the [`Clock`] and the
//! [`Policy`], so `webscaler run` (OpenStack or local processes, HAProxy, the monotonic
//! clock) and `webscaler simulate` ([`crate::simulation::world`]: a simulated cloud, balancer and clock)
//! run this same code. It does not sleep and does not loop: the caller calls
//! [`Controller::tick`] on its ticker (live) or after advancing the simulated clock.
//!
//! 1. **Observe**: the balancer's counter (with the pid and uptime of the process that
//!    counted) and servers; the cloud's backends; the quota. Joined by name into members,
//!    each with a role ([`view`]).
//! 2. **Rate** and **decide**: the policy gets the counter and the capacity (serving, and
//!    pending = booting or joining) and measures the rate with the one reload-safe meter
//!    ([`crate::rate::meter`]).
//! 3. **Plan** ([`plan`]): scale up or down as decided, and reconcile what the cloud and the
//!    balancer report (add, ready, remove, retire drained servers, delete failed backends,
//!    trim the warm pool).
//! 4. **Act**: each action is one call that does not wait; errors are reported and the next
//!    tick, which observes again, retries what is still needed.
//! 5. **Record**: one [`record::Record`] (the CSV row) and a log line.
//!
//! Nothing the controller keeps is the source of truth: every tick starts from what the
//! cloud and the balancer report, and the balancer's own states (a server in MAINT with
//! checks on is joining; one in DRAIN is leaving) carry each backend's lifecycle across
//! ticks. So a controller that crashed at any point is repaired by the next one: see
//! docs/webscaler.md.

pub mod plan;
pub mod record;
pub mod view;

use std::fmt;
use std::time::Duration;

use common::time::{TimeFormat, format_duration};
use serde::Serialize;

use crate::balancer::{Balancer, BalancerView, Metric, Removal, ServerName};
use crate::clock::Clock;
use crate::cloud::{Backend, Cloud, CloudError, Naming, Quota};
use crate::policy::{Decision, Observation, Policy};

pub use plan::{Action, Plan, PlanInput};
pub use record::{HEADER, Record};
pub use view::{ClassifyConfig, CloudState, Counts, Member, Memory, Role};

/// The controller's settings (the policy has its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which balancer counter measures the load.
    pub metric: Metric,
    /// The backends' name prefix (balancer servers without it are not ours).
    pub naming: Naming,
    /// The port of backends whose cloud address has none (OpenStack: the web server's, 80).
    pub backend_port: u16,
    /// Stopped backends kept for a fast start (the seed kept 1); more are deleted.
    pub warm_pool: u32,
    /// How long a drain may take before the backend is stopped anyway.
    pub drain_timeout: Duration,
    /// How long a running backend may take to pass its first health check before it is
    /// deleted and replaced.
    pub check_timeout: Duration,
    /// After a quota error, creations hold until the quota report changes or this long.
    pub quota_retry: Duration,
    /// The CSV `date` format.
    pub time_format: TimeFormat,
}

impl Default for Config {
    /// Sessions (`stot`, the seed's counter), prefix `node-`, port 80, a warm pool of 1,
    /// drains of at most 60 s, 10 minutes to pass the first check (cloud-init installs the
    /// web server after the instance is ACTIVE), quota retried after 5 minutes, the seed's
    /// date format.
    fn default() -> Config {
        Config {
            metric: Metric::Sessions,
            naming: Naming::default(),
            backend_port: 80,
            warm_pool: 1,
            drain_timeout: Duration::from_secs(60),
            check_timeout: Duration::from_secs(600),
            quota_retry: Duration::from_secs(300),
            time_format: TimeFormat::Local,
        }
    }
}

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth a line (a quota hold released, a removal still waiting for connections).
    Info,
    /// Something did not happen and will be retried (a busy backend, a quota error).
    Warning,
    /// Something failed (a cloud or balancer call, a listing).
    Error,
}

/// One thing worth a log line besides the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// How serious.
    pub level: Level,
    /// What happened, in one line.
    pub message: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = match self.level {
            Level::Info => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        write!(f, "{l}: {}", self.message)
    }
}

/// Everything about one tick.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// The tick's number (0 first).
    pub index: u64,
    /// When, on the controller's clock.
    pub at: Duration,
    /// The CSV row.
    pub record: Record,
    /// What the policy was shown (`None` when the cloud or the balancer could not be read).
    pub observation: Option<Observation>,
    /// What the policy decided.
    pub decision: Option<Decision>,
    /// The members by role.
    pub counts: Counts,
    /// Every backend: the cloud's and the balancer's view side by side, with its role.
    pub members: Vec<Member>,
    /// The plan.
    pub plan: Plan,
    /// What was done, one short phrase each (`started node-3`).
    pub done: Vec<String>,
    /// Warnings and errors.
    pub events: Vec<Event>,
}

impl TickReport {
    /// The tick's log line: the decision, the counts, and what was done.
    pub fn log_line(&self) -> String {
        let mut s = format!("tick {}: ", self.index);
        match &self.decision {
            Some(d) => s.push_str(&d.to_string()),
            None => s.push_str("no decision (see the error)"),
        }
        let c = &self.counts;
        s.push_str(&format!(
            "; serving {}, pending {}, draining {}, stopped {}",
            c.serving, c.pending, c.draining, c.stopped
        ));
        if self.record.action != self.decision.as_ref().map_or("", |d| d.action()) {
            s.push_str(&format!(" [{}]", self.record.action));
        }
        if !self.done.is_empty() {
            s.push_str("; ");
            s.push_str(&self.done.join(", "));
        }
        s
    }
}

/// The quota as last seen, to notice a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuotaSeen {
    used: u64,
    max: Option<u64>,
    left: Option<u64>,
}

impl From<&Quota> for QuotaSeen {
    fn from(q: &Quota) -> QuotaSeen {
        QuotaSeen {
            used: q.instances.used,
            max: q.instances.max,
            left: q.left,
        }
    }
}

/// Creations held after a quota error.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QuotaHold {
    since: Duration,
    seen: Option<QuotaSeen>,
}

/// The scaling loop's state (see the module documentation).
///
/// ```
/// use std::time::Duration;
/// use webscaler::controller::{Config, Controller};
/// use webscaler::policy::{self, DefaultPolicy};
/// use webscaler::simulation::world::{Sim, SimConfig};
/// use webscaler::simulation::trace::synthetic;
///
/// // 45 req/s from t = 0: with a threshold of 10, five servers.
/// let sim = Sim::new(SimConfig::default(), synthetic::constant(45.0, 600));
/// let mut c = Controller::new(
///     sim.cloud(),
///     sim.balancer(),
///     sim.clock(),
///     DefaultPolicy::new(policy::Config::default()),
///     Config::default(),
/// );
/// for _ in 0..60 {
///     let tick = c.tick();
///     assert!(tick.events.is_empty(), "{:?}", tick.events);
///     sim.advance(Duration::from_secs(5));
/// }
/// assert_eq!(c.tick().counts.serving, 5);
/// ```
#[derive(Debug)]
pub struct Controller<C, B, K, P> {
    cloud: C,
    balancer: B,
    clock: K,
    policy: P,
    config: Config,
    memory: Memory,
    ticks: u64,
    quota: Option<Quota>,
    hold: Option<QuotaHold>,
    /// The last observation error, to log it once per streak.
    failing: Option<String>,
    /// Whether reading the quota failed last time (logged once per streak).
    quota_failing: bool,
}

impl<C: Cloud, B: Balancer, K: Clock, P: Policy> Controller<C, B, K, P> {
    /// A controller that has not ticked yet. The policy should be fresh: its first tick
    /// reads the counter, its second one measures the first rate.
    pub fn new(cloud: C, balancer: B, clock: K, policy: P, config: Config) -> Self {
        Controller {
            cloud,
            balancer,
            clock,
            policy,
            config,
            memory: Memory::default(),
            ticks: 0,
            quota: None,
            hold: None,
            failing: None,
            quota_failing: false,
        }
    }

    /// The cloud.
    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// The balancer.
    pub fn balancer(&self) -> &B {
        &self.balancer
    }

    /// The clock.
    pub fn clock(&self) -> &K {
        &self.clock
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Ticks done so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Whether creations are held after a quota error.
    pub fn quota_held(&self) -> bool {
        self.hold.is_some()
    }

    /// One tick: observe, rate, decide, plan, act, record (see the module documentation).
    pub fn tick(&mut self) -> TickReport {
        let now = self.clock.now();
        let date = self.config.time_format.format(self.clock.wall());
        let index = self.ticks;
        self.ticks += 1;
        let mut events = Vec::new();

        // Observe.
        let balancer = self.balancer.observe(self.config.metric);
        let backends = self.cloud.list();
        match self.cloud.quota() {
            Ok(q) => {
                self.quota = Some(q);
                self.quota_failing = false;
            }
            Err(e) => {
                if !self.quota_failing {
                    events.push(Event {
                        level: Level::Warning,
                        message: format!("cannot read the quota ({e}); using the last one seen"),
                    });
                }
                self.quota_failing = true;
            }
        }
        let (balancer, backends) = match (balancer, backends) {
            (Ok(b), Ok(c)) => {
                if self.failing.take().is_some() {
                    events.push(Event {
                        level: Level::Info,
                        message: "the cloud and the balancer answer again".to_owned(),
                    });
                }
                (b, c)
            }
            (b, c) => {
                let mut msg = Vec::new();
                if let Err(e) = &b {
                    msg.push(format!("the balancer: {e}"));
                }
                if let Err(e) = &c {
                    msg.push(format!("the cloud: {e}"));
                }
                let msg = format!(
                    "cannot observe {}; nothing is done until both answer",
                    msg.join("; ")
                );
                // Once per streak (and again if the error changes).
                if self.failing.as_deref() != Some(msg.as_str()) {
                    events.push(Event {
                        level: Level::Error,
                        message: msg.clone(),
                    });
                }
                self.failing = Some(msg);
                return self.error_report(index, now, date, b.ok(), events);
            }
        };
        let members = view::classify(
            &backends,
            &balancer,
            &self.memory,
            now,
            &ClassifyConfig {
                naming: self.config.naming.clone(),
                backend_port: self.config.backend_port,
                check_timeout: self.config.check_timeout,
            },
        );
        self.memory.update(&members);
        let counts = Counts::of(&members);

        // Rate and decide.
        let left = self.quota.as_ref().and_then(|q| q.left);
        let observation = Observation {
            requests_total: Some(balancer.counter),
            balancer_pid: balancer.pid,
            balancer_uptime_sec: balancer.uptime_sec,
            serving: counts.serving,
            pending: counts.pending,
            stopped: counts.stopped,
            quota: self
                .quota
                .as_ref()
                .and_then(|q| q.backends(counts.instances)),
        };
        let decision = self.policy.decide(now, &observation);

        // Plan.
        self.release_hold(now, &mut events);
        let create_room = if self.hold.is_some() { Some(0) } else { left };
        let plan = plan::plan(
            &members,
            &PlanInput {
                decision: Some(&decision),
                now,
                warm_pool: self.config.warm_pool,
                drain_timeout: self.config.drain_timeout,
                create_room,
            },
        );
        if plan.quota_limited > 0 && self.hold.is_none() {
            let q = self.quota.as_ref();
            events.push(Event {
                level: Level::Warning,
                message: format!(
                    "the quota is used up ({} of {} instances): holding {} creation(s) until the quota changes",
                    q.map_or(0, |q| q.instances.used),
                    q.and_then(|q| q.instances.max)
                        .map_or_else(|| "?".to_owned(), |m| m.to_string()),
                    plan.quota_limited
                ),
            });
            self.hold = Some(QuotaHold {
                since: now,
                seen: self.quota.as_ref().map(QuotaSeen::from),
            });
        }

        // Act.
        let (done, brought_up) = self.act(&plan, now, &mut events);

        // Record.
        let mut action = decision.action().to_owned();
        let quota_blocked = plan.quota_limited > 0 || (decision.add > 0 && self.hold.is_some());
        if quota_blocked {
            action = if brought_up > 0 {
                "up:quota"
            } else {
                "hold:quota"
            }
            .to_owned();
        }
        let record = Record {
            diffpt: decision.diffpt,
            haactive: balancer.servers.iter().filter(|s| s.takes_traffic).count() as u32,
            active: counts.active,
            epoch: now.as_secs(),
            acu: Some(balancer.counter),
            date,
            diff: decision.diff,
            needed: decision.needed,
            pending: counts.pending,
            stopped: counts.stopped,
            action,
            rate: decision.rate.map(|r| r.to_f64()),
        };
        TickReport {
            index,
            at: now,
            record,
            observation: Some(observation),
            decision: Some(decision),
            counts,
            members,
            plan,
            done,
            events,
        }
    }

    fn error_report(
        &self,
        index: u64,
        now: Duration,
        date: String,
        balancer: Option<BalancerView>,
        events: Vec<Event>,
    ) -> TickReport {
        let haactive = balancer.as_ref().map_or(0, |b| {
            b.servers.iter().filter(|s| s.takes_traffic).count() as u32
        });
        TickReport {
            index,
            at: now,
            record: Record {
                diffpt: None,
                haactive,
                active: 0,
                epoch: now.as_secs(),
                acu: balancer.as_ref().map(|b| b.counter),
                date,
                diff: None,
                needed: None,
                pending: 0,
                stopped: 0,
                action: "error".to_owned(),
                rate: None,
            },
            observation: None,
            decision: None,
            counts: Counts::default(),
            members: Vec::new(),
            plan: Plan::default(),
            done: Vec::new(),
            events,
        }
    }

    /// Releases a quota hold when the quota report changed or the retry time passed.
    fn release_hold(&mut self, now: Duration, events: &mut Vec<Event>) {
        let Some(hold) = &self.hold else { return };
        let seen = self.quota.as_ref().map(QuotaSeen::from);
        let changed = seen != hold.seen;
        let expired = now.saturating_sub(hold.since) >= self.config.quota_retry;
        if changed || expired {
            events.push(Event {
                level: Level::Info,
                message: if changed {
                    "the quota changed: creating again".to_owned()
                } else {
                    format!(
                        "no quota change in {}: trying to create again",
                        format_duration(self.config.quota_retry)
                    )
                },
            });
            self.hold = None;
        }
    }

    fn hold_for_quota(&mut self, now: Duration, message: &str, events: &mut Vec<Event>) {
        // The quota as it is after the refusal: the hold ends when it changes from this.
        if let Ok(q) = self.cloud.quota() {
            self.quota = Some(q);
        }
        if self.hold.is_none() {
            events.push(Event {
                level: Level::Warning,
                message: format!(
                    "{message}: holding creations until the quota changes (or {})",
                    format_duration(self.config.quota_retry)
                ),
            });
        }
        self.hold = Some(QuotaHold {
            since: now,
            seen: self.quota.as_ref().map(QuotaSeen::from),
        });
    }

    /// Runs the plan. Returns what was done and how many backends were brought up.
    fn act(&mut self, plan: &Plan, now: Duration, events: &mut Vec<Event>) -> (Vec<String>, u32) {
        let mut done = Vec::new();
        let mut brought_up = 0;
        for action in &plan.actions {
            match action {
                Action::RemoveServer { name } => {
                    self.remove_server(name, &mut done, events);
                }
                Action::DeleteFailed {
                    backend,
                    server,
                    why,
                } => {
                    if *server && !self.remove_server(&backend.name, &mut done, events) {
                        continue;
                    }
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("deleted {} ({why})", backend.name));
                    }
                }
                Action::ReadyServer { name } => {
                    if self.balancer_call(name, "make ready", events, |b, n| b.ready(n)) {
                        done.push(format!("{name} ready"));
                    }
                }
                Action::AddServer { name, addr } => {
                    let addr = *addr;
                    if self.balancer_call(name, "add", events, |b, n| b.add(n, addr)) {
                        done.push(format!("added {name} ({addr}) to the balancer"));
                    }
                }
                Action::Undrain { name } => {
                    if self.balancer_call(name, "undrain", events, |b, n| b.ready(n)) {
                        done.push(format!("{name} back from draining"));
                        brought_up += 1;
                    }
                }
                Action::Start { backend } => {
                    if self.cloud_call(Verb::Start, backend, events) {
                        done.push(format!("started {}", backend.name));
                        brought_up += 1;
                    }
                }
                Action::Create { count } => {
                    brought_up += self.create(*count, now, &mut done, events);
                }
                Action::Drain { name } => {
                    if self.balancer_call(name, "drain", events, |b, n| b.drain(n)) {
                        done.push(format!("draining {name}"));
                        // The drain timeout counts from now, not from when it is seen.
                        self.memory.draining_since.insert(name.clone(), now);
                    }
                }
                Action::Retire {
                    backend,
                    delete,
                    server,
                } => {
                    let verb = if *delete { Verb::Delete } else { Verb::Stop };
                    if self.cloud_call(verb, backend, events) {
                        done.push(format!(
                            "{} {}",
                            if *delete { "deleted" } else { "stopped" },
                            backend.name
                        ));
                        if *server {
                            self.remove_server(&backend.name, &mut done, events);
                        }
                    }
                }
                Action::Cancel { backend, server } => {
                    if *server && !self.remove_server(&backend.name, &mut done, events) {
                        continue;
                    }
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("cancelled {}", backend.name));
                    }
                }
                Action::Trim { backend } => {
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("deleted {} (beyond the warm pool)", backend.name));
                    }
                }
            }
        }
        (done, brought_up)
    }

    fn create(
        &mut self,
        count: u32,
        now: Duration,
        done: &mut Vec<String>,
        events: &mut Vec<Event>,
    ) -> u32 {
        match self.cloud.create(count as usize) {
            Ok(creations) => {
                let mut made = Vec::new();
                let mut quota = None;
                for c in creations {
                    match c.result {
                        Ok(_) => made.push(c.name),
                        Err(CloudError::QuotaExceeded { message }) => quota = Some(message),
                        Err(e) => events.push(Event {
                            level: Level::Error,
                            message: format!("cannot create {}: {e}", c.name),
                        }),
                    }
                }
                if !made.is_empty() {
                    done.push(format!("created {}", made.join(" ")));
                }
                if let Some(m) = quota {
                    self.hold_for_quota(now, &format!("quota exceeded: {m}"), events);
                }
                made.len() as u32
            }
            Err(CloudError::QuotaExceeded { message }) => {
                self.hold_for_quota(now, &format!("quota exceeded: {message}"), events);
                0
            }
            Err(e) => {
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot create {count} backend(s): {e}"),
                });
                0
            }
        }
    }

    /// A start, stop or delete; `false` (with an event) if it failed. A busy backend
    /// (transitional) is retried by a later tick.
    fn cloud_call(&mut self, verb: Verb, backend: &Backend, events: &mut Vec<Event>) -> bool {
        let r = match verb {
            Verb::Start => self.cloud.start(backend),
            Verb::Stop => self.cloud.stop(backend),
            Verb::Delete => self.cloud.delete(backend),
        };
        match r {
            Ok(()) => true,
            // Already gone: what a delete wanted.
            Err(CloudError::NotFound { .. }) if verb == Verb::Delete => true,
            Err(e) => {
                let level = if e.is_retryable() {
                    Level::Warning
                } else {
                    Level::Error
                };
                let retry = if e.is_retryable() {
                    "; retried next tick"
                } else {
                    ""
                };
                events.push(Event {
                    level,
                    message: format!("cannot {} {}: {e}{retry}", verb.as_str(), backend.name),
                });
                false
            }
        }
    }

    /// A balancer call on one server; `false` (with an event) if it failed.
    fn balancer_call(
        &mut self,
        name: &str,
        what: &str,
        events: &mut Vec<Event>,
        f: impl FnOnce(&B, &ServerName) -> Result<(), B::Error>,
    ) -> bool {
        let server = match ServerName::new(name) {
            Ok(s) => s,
            Err(e) => {
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot {what} {name:?} in the balancer: {e}"),
                });
                return false;
            }
        };
        match f(&self.balancer, &server) {
            Ok(()) => true,
            Err(e) => {
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot {what} {name} in the balancer: {e}"),
                });
                false
            }
        }
    }

    /// One removal attempt; `true` if the server is gone.
    fn remove_server(
        &mut self,
        name: &str,
        done: &mut Vec<String>,
        events: &mut Vec<Event>,
    ) -> bool {
        let server = match ServerName::new(name) {
            Ok(s) => s,
            Err(e) => {
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot remove {name:?} from the balancer: {e}"),
                });
                return false;
            }
        };
        match self.balancer.remove(&server) {
            Ok(Removal::Removed) => {
                done.push(format!("removed {name} from the balancer"));
                true
            }
            Ok(Removal::AlreadyGone) => true,
            Ok(Removal::Busy(reply)) => {
                events.push(Event {
                    level: Level::Info,
                    message: format!(
                        "{name} stays in maintenance until the balancer lets go of its connections ({reply})"
                    ),
                });
                false
            }
            Err(e) => {
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot remove {name} from the balancer: {e}"),
                });
                false
            }
        }
    }
}

/// What [`Controller::cloud_call`] asks of the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Start,
    Stop,
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Delete => "delete",
        }
    }
}
