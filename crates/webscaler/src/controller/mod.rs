//! The scaling loop's one tick: observe → rate → decide → plan → act → record.
//!
//! [`Controller`] is generic over the [`Cloud`](crate::cloud::Cloud), the
//! [`Balancer`](crate::balancer::Balancer), the [`Clock`](crate::clock::Clock) and the
//! [`Policy`](crate::policy::Policy), so `webscaler run` (OpenStack or local processes,
//! HAProxy, the monotonic clock) and `webscaler simulate` ([`crate::simulation::world`]: a
//! simulated cloud, balancer and clock) run this same code. It does not sleep and does not loop: the caller calls
//! [`Controller::tick`] on its ticker (live) or after advancing the simulated clock.
//!
//! `tick.rs` runs the steps in order:
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
//! 4. **Act** (`act.rs`): each action is one call that does not wait; errors are reported
//!    and the next tick, which observes again, retries what is still needed.
//! 5. **Record**: one [`record::Record`] (the CSV row) and a log line.
//!
//! Nothing the controller keeps is the source of truth: every tick starts from what the
//! cloud and the balancer report, and the balancer's own states (a server in MAINT with
//! checks on is joining; one in DRAIN is leaving) carry each backend's lifecycle across
//! ticks. So a controller that crashed at any point is repaired by the next one: see
//! docs/webscaler.md.

mod act;
pub mod plan;
pub mod record;
pub mod tally;
mod tick;
pub mod view;

use std::fmt;
use std::time::Duration;

use common::time::TimeFormat;
use serde::Serialize;

use crate::balancer::Metric;
use crate::cloud::{Naming, Quota};

pub use plan::{Action, Plan, PlanInput};
pub use record::{HEADER, Record};
pub use tally::{Change, Failure, Side, Tally};
pub use tick::TickReport;
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
    /// Stopped backends kept for a fast start (the lab report kept 1); more are deleted.
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
    /// Sessions (`stot`, the lab report's counter), prefix `node-`, port 80, a warm pool of 1,
    /// drains of at most 60 s, 10 minutes to pass the first check (cloud-init installs the
    /// web server after the instance is ACTIVE), quota retried after 5 minutes, the lab report's
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

/// The quota as last seen, to notice a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuotaSeen {
    used: u64,
    max: Option<u64>,
    left: Option<u64>,
}

impl From<&Quota> for QuotaSeen {
    fn from(q: &Quota) -> QuotaSeen {
        QuotaSeen::after(q, 0)
    }
}

impl QuotaSeen {
    /// The quota as it will read once `created` more instances exist: a hold taken while
    /// the controller itself fills the quota must not be released by that filling.
    fn after(q: &Quota, created: u64) -> QuotaSeen {
        QuotaSeen {
            used: q.instances.used.saturating_add(created),
            max: q.instances.max,
            left: q.left.map(|l| l.saturating_sub(created)),
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
    /// The current tick's changes and failures.
    tally: Tally,
}

impl<C, B, K, P> Controller<C, B, K, P> {
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
            tally: Tally::default(),
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

    /// Ticks done so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
}
