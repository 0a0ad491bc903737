//! The scaling decision: pure code, no I/O and no clock of its own.
//!
//! Each tick the controller reads the balancer's request counter and counts the backends the
//! cloud reports, and hands them to a [`Policy`] as an [`Observation`] with the current time
//! (`now`: a monotonic or simulated time since any fixed origin). The policy answers with a
//! [`Decision`]: how many servers are needed, the capacity to aim for, how many backends to
//! add and to remove, and why. The same code runs live (`webscaler run`) and simulated
//! (`webscaler simulate`, [`crate::simulation::run`]).
//!
//! The policies:
//!
//! - [`DefaultPolicy`]: `needed = clamp(ceil(rate / threshold), min, max)` in exact
//!   arithmetic; backends that are building or starting count as capacity; scale up at once;
//!   scale down only when the recommendation has stayed lower for a stabilization window
//!   (acting on the highest recommendation inside it, as Kubernetes' HPA) that lengthens
//!   after a regretted scale-down ([`window`]), at most N per tick; optionally a tolerance
//!   band below capacity (a server is released only when one fewer would keep that share
//!   spare); a predictive mode that scales up ahead of a sustained rise while its predictions
//!   come true ([`predict`]); and, with a history of earlier days, a seasonal floor
//!   ([`baseline`], [`Floor`]).
//! - [`SeedPolicy`]: the lab report's algorithm (listing 1.10) exactly, for comparison.
//! - The references users compare a scaler with: [`HpaPolicy`] (Kubernetes' Horizontal Pod
//!   Autoscaler), [`TargetTrackingPolicy`] (AWS target tracking), and [`OraclePolicy`] (the
//!   clairvoyant bound, simulation only).
//!
//! docs/webscaler-policy.md explains each rule and how the defaults were chosen.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::rate::meter::{Counter, RateMeters, Reading};
use crate::rate::{Rate, Threshold, Tolerance};

pub mod baseline;
pub mod hpa;
pub mod oracle;
pub mod predict;
pub mod resume;
pub mod rounds;
pub mod seed;
pub mod target_tracking;
pub mod window;

pub use crate::rate::meter::NoRate;
pub use baseline::{Baseline, Zone};
pub use hpa::{HpaConfig, HpaPolicy};
pub use oracle::OraclePolicy;
pub use predict::{Predictive, Predictor, TrackRecord};
pub use resume::{Recall, Resumed, Resumption};
pub use seed::{SeedConfig, SeedPolicy};
pub use target_tracking::{TargetTrackingConfig, TargetTrackingPolicy};
pub use window::Stabilizer;

/// What the controller saw at one tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// The balancer's cumulative request (or session) counter, one per balancer instance
    /// that counts this tick (one for a lone HAProxy), each with the `Pid` and `Uptime_sec`
    /// of the process that counted (a new pid means the counter restarted: a reload). Empty
    /// if none could be read. The rate is the sum of each one's reset-safe rate
    /// ([`RateMeters::round`]).
    pub counters: Vec<Counter>,
    /// Backends that serve: ACTIVE in the cloud (the lab report's `active`).
    pub serving: u32,
    /// Backends being built or started: capacity on its way.
    pub pending: u32,
    /// Stopped backends kept for a fast start (the warm pool).
    pub stopped: u32,
    /// Backends the cloud allows in all, stopped ones included, when known.
    pub quota: Option<u32>,
    /// The wall-clock time of the observation (the seasonal floor's time of day), when known.
    pub wall: Option<DateTime<Utc>>,
}

impl Observation {
    /// The reading of this observation's counters at `now` on `meter` (one meter per
    /// policy, kept across ticks).
    pub fn reading(&self, meter: &mut RateMeters<u32>, now: Duration) -> Result<Reading, NoRate> {
        meter.round(now, &self.counters)
    }

    /// Whether any counter could be read.
    pub fn has_counter(&self) -> bool {
        !self.counters.is_empty()
    }
}

/// A scaling policy: one decision per tick.
pub trait Policy {
    /// Decides what to do at time `now` (monotonic or simulated; it must not decrease).
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision;
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        (**self).decide(now, obs)
    }
}

/// What a policy decided at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The request rate measured over the last interval (req/s), when known.
    pub rate: Option<Rate>,
    /// The lab report's `diff` column: the rate as whole requests per second.
    pub diff: Option<u64>,
    /// The lab report's `diffpt` column: requests since the previous tick (the default policy
    /// gives the counter delta; the lab-report policy its own `diff × whole seconds`).
    pub diffpt: Option<u64>,
    /// Servers needed for the measured rate (the CSV `needed` column). The default policy
    /// clamps it to `[min, max]`; the lab-report policy does not.
    pub needed: Option<u32>,
    /// The capacity (serving + pending) to have after this tick's actions.
    pub target: u32,
    /// Backends to add (start stopped ones first, then create).
    pub add: u32,
    /// Backends to remove (drain, then stop).
    pub remove: u32,
    pub reason: Reason,
}

/// Why a policy decided what it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The lab-report policy's baseline rounds (no action before the third round).
    Baseline,
    /// The policy waits for its next round (the lab report's 60 s, HPA's 15-s sync, target
    /// tracking's minute).
    BetweenRounds,
    /// No rate this tick: only the bounds are enforced.
    NoRate(NoRate),
    /// The capacity matches the recommendation.
    Steady,
    /// The rate is within the tolerance band of the current capacity.
    Tolerance,
    /// Scaling up to the servers the rate needs.
    Demand,
    /// Scaling up to the servers a predicted rate needs.
    Predicted {
        /// The rate predicted for now + lead time.
        rate: Rate,
    },
    /// Scaling up to (or holding) the seasonal floor of the history.
    History {
        /// The rate the history expects within the lead.
        rate: Rate,
    },
    /// The oracle provisions for demand it knows is coming.
    Foresight,
    /// HPA's scale-up rate limit caps the step.
    ScaleUpLimit {
        /// What the HPA would have scaled to.
        wanted: u32,
    },
    /// HPA: no server is ready, so there is no per-server metric.
    Unready,
    /// Target tracking: an alarm is breaching, but not yet for enough periods.
    Alarm,
    /// Raising the capacity to the minimum.
    Minimum,
    /// Lowering the capacity to the maximum (or quota).
    Maximum,
    /// Scaling down: the recommendation stayed lower for the whole window.
    ScaleDown {
        /// The capacity the window allows (before the per-tick limit).
        allowed: u32,
    },
    /// A lower recommendation is held back by the stabilization window.
    Window {
        /// The highest recommendation in the window (the current capacity until the policy
        /// has seen a full window).
        held: u32,
    },
    /// Scaling down waits until no backend is booting.
    Pending,
    /// The quota is used up (lab-report policy).
    QuotaReached,
    /// The lab report's scale-down rule keeps this many running (lab-report policy).
    Floor,
}

impl Decision {
    /// A short label for logs and the CSV `action` column: `up`, `up:predicted`,
    /// `up:history`, `up:min`, `down`, `down:max`, `hold`, `hold:tolerance`, `hold:window`,
    /// `hold:pending`, `hold:history`, `hold:no-rate`, `hold:baseline`, `hold:round`,
    /// `hold:quota`, `hold:min`, `hold:unready`, `hold:alarm`.
    pub fn action(&self) -> &'static str {
        if self.add > 0 {
            return match self.reason {
                Reason::Predicted { .. } => "up:predicted",
                Reason::History { .. } => "up:history",
                Reason::Minimum => "up:min",
                _ => "up",
            };
        }
        if self.remove > 0 {
            return match self.reason {
                Reason::Maximum => "down:max",
                _ => "down",
            };
        }
        match self.reason {
            Reason::Baseline => "hold:baseline",
            Reason::BetweenRounds => "hold:round",
            Reason::NoRate(_) => "hold:no-rate",
            Reason::Tolerance => "hold:tolerance",
            Reason::Window { .. } => "hold:window",
            Reason::Pending => "hold:pending",
            Reason::QuotaReached => "hold:quota",
            Reason::Floor => "hold:min",
            Reason::History { .. } => "hold:history",
            Reason::Unready => "hold:unready",
            Reason::Alarm => "hold:alarm",
            _ => "hold",
        }
    }

    /// Whether the decision changes anything.
    pub fn is_action(&self) -> bool {
        self.add > 0 || self.remove > 0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Baseline => write!(f, "baseline round (the lab report waits two rounds)"),
            Reason::BetweenRounds => write!(f, "between rounds"),
            Reason::NoRate(why) => write!(f, "{why}"),
            Reason::Steady => write!(f, "capacity matches"),
            Reason::Tolerance => write!(f, "within the tolerance band"),
            Reason::Demand => write!(f, "demand"),
            Reason::Predicted { rate } => write!(f, "predicted rate {rate} req/s"),
            Reason::History { rate } => write!(f, "the history expects {rate} req/s"),
            Reason::Foresight => write!(f, "demand within the lead"),
            Reason::ScaleUpLimit { wanted } => {
                write!(f, "the scale-up rate limit (wanted {wanted})")
            }
            Reason::Unready => write!(f, "no server ready, no metric"),
            Reason::Alarm => write!(f, "alarm breaching, too few periods yet"),
            Reason::Minimum => write!(f, "minimum"),
            Reason::Maximum => write!(f, "maximum"),
            Reason::ScaleDown { allowed } => {
                write!(f, "lower for the whole window, towards {allowed}")
            }
            Reason::Window { held } => write!(f, "stabilization window holds {held}"),
            Reason::Pending => write!(f, "backends still booting"),
            Reason::QuotaReached => write!(f, "quota reached"),
            Reason::Floor => write!(f, "the lab report keeps min_backends running"),
        }
    }
}

impl fmt::Display for Decision {
    /// `rate 45.2 req/s, needed 5, target 5 (+2 -0): up (demand)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate {
            Some(r) => write!(f, "rate {r} req/s")?,
            None => write!(f, "rate -")?,
        }
        match self.needed {
            Some(n) => write!(f, ", needed {n}")?,
            None => write!(f, ", needed -")?,
        }
        write!(
            f,
            ", target {} (+{} -{}): {} ({})",
            self.target,
            self.add,
            self.remove,
            self.action(),
            self.reason
        )
    }
}

/// Which policy to run (`--policy`, `policy = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// [`DefaultPolicy`].
    #[default]
    Default,
    /// [`SeedPolicy`], named `lab-report` (`seed` is accepted too).
    #[serde(rename = "lab-report", alias = "seed")]
    Seed,
    /// [`HpaPolicy`].
    Hpa,
    /// [`TargetTrackingPolicy`].
    TargetTracking,
    /// [`OraclePolicy`] (simulation only).
    Oracle,
}

impl PolicyKind {
    /// Every kind, in the order tables list them.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Default,
        PolicyKind::Seed,
        PolicyKind::Hpa,
        PolicyKind::TargetTracking,
        PolicyKind::Oracle,
    ];
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<PolicyKind, String> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.to_string() == s || (s == "seed" && *k == PolicyKind::Seed))
            .ok_or_else(|| {
                format!(
                    "unknown policy `{s}` (expected default, lab-report, hpa, target-tracking or oracle)"
                )
            })
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Default => "default",
            PolicyKind::Seed => "lab-report",
            PolicyKind::Hpa => "hpa",
            PolicyKind::TargetTracking => "target-tracking",
            PolicyKind::Oracle => "oracle",
        })
    }
}

/// The settings of [`DefaultPolicy`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Requests per second one server takes (the lab report's 10).
    pub threshold: Threshold,
    /// Servers kept at least (the lab report's `min_backends`, 2).
    pub min: u32,
    /// Servers at most, besides the cloud's quota (`None`: the quota alone).
    pub max: Option<u32>,
    /// The band (0 by default: none): a server is released only when one fewer would take the
    /// rate with this share of the threshold spare (`rate ≤ (capacity − 1) × threshold ×
    /// (1 − tol)`); scaling up has no band.
    pub tolerance: Tolerance,
    /// Scale down only to the highest recommendation of this window (the base window).
    pub scale_down_window: Duration,
    /// The longest the window grows to after a regretted scale-down (no longer than the
    /// base: a fixed window).
    pub scale_down_window_max: Duration,
    /// A scale-down is regretted when more capacity than it kept is asked for within this
    /// long after it.
    pub scale_down_regret: Duration,
    /// Backends removed at most per tick (`None`: no limit).
    pub max_remove_per_tick: Option<u32>,
    /// Hold scale-down while a backend is still booting (AWS: no scale-in during warm-up).
    pub hold_down_while_pending: bool,
    /// Scale up ahead of a sustained rise (on by default; `None`: reactive only).
    pub predictive: Option<Predictive>,
}

impl Config {
    /// The most servers allowed: `max` or `quota` (the backends the cloud allows in all),
    /// whichever is lower; `u32::MAX` with neither.
    pub fn cap(&self, quota: Option<u32>) -> u32 {
        cap(self.max, quota)
    }

    /// The servers needed at `rate`: `ceil(rate / threshold)`, exactly, at least `min` and
    /// at most [`Config::cap`] (the cap wins over `min`: a quota below the minimum is still
    /// a quota). The CSV's `needed`, `webscaler status`'s, and a simulation's demand.
    pub fn needed(&self, rate: Rate, quota: Option<u32>) -> u32 {
        bound(
            to_u32(rate.servers_needed(self.threshold)),
            self.min,
            self.cap(quota),
        )
    }

    /// The default stabilization window (the base of the adaptive window);
    /// docs/webscaler-policy.md shows the simulations it was chosen from.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// The default longest window after a regretted scale-down: HPA's fixed window.
    pub const DEFAULT_WINDOW_MAX: Duration = Duration::from_secs(300);
    /// The default regret horizon: about the time a released server takes to come back (an
    /// 80-s boot, a tick to join, a tick to pass the check, and a margin), as the predictive
    /// mode's lead.
    pub const DEFAULT_REGRET: Duration = Duration::from_secs(120);
    /// The default band: none. The adaptive window damps noise that comes back within it,
    /// and a band pays for its spare at every level on every load (docs/webscaler-policy.md).
    pub const DEFAULT_TOLERANCE: Tolerance = Tolerance::NONE;
    /// The default per-tick removal limit: none (the window does the damping; a limit only
    /// kept servers longer in every simulation).
    pub const DEFAULT_MAX_REMOVE: Option<u32> = None;

    /// Checks the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(max) = self.max {
            if max == 0 {
                return Err("max must be at least 1".into());
            }
            if self.min > max {
                return Err(format!("min ({}) is above max ({max})", self.min));
            }
        }
        if self.scale_down_window_max < self.scale_down_window {
            return Err(format!(
                "scale_down_window_max ({}) is shorter than scale_down_window ({})",
                common::time::format_duration(self.scale_down_window_max),
                common::time::format_duration(self.scale_down_window)
            ));
        }
        if self.max_remove_per_tick == Some(0) {
            return Err("max_remove_per_tick must be at least 1 (or unset for no limit)".into());
        }
        if let Some(p) = &self.predictive {
            p.validate()?;
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            threshold: Threshold::SEED,
            min: 2,
            max: None,
            tolerance: Config::DEFAULT_TOLERANCE,
            scale_down_window: Config::DEFAULT_WINDOW,
            scale_down_window_max: Config::DEFAULT_WINDOW_MAX,
            scale_down_regret: Config::DEFAULT_REGRET,
            max_remove_per_tick: Config::DEFAULT_MAX_REMOVE,
            hold_down_while_pending: true,
            predictive: Some(Predictive::default()),
        }
    }
}

/// `max` or `quota`, whichever is lower; `u32::MAX` with neither.
pub(crate) fn cap(max: Option<u32>, quota: Option<u32>) -> u32 {
    match (max, quota) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => u32::MAX,
    }
}

/// `clamp(x, min, max)` where `max` wins over `min` (a quota below the minimum is still a
/// quota).
fn bound(x: u32, min: u32, max: u32) -> u32 {
    x.max(min).min(max)
}

fn to_u32(x: u128) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// The default policy's seasonal floor: what a [`Baseline`] learnt from earlier days expects
/// over the next `lead`, as a number of servers the policy does not go below. It only raises
/// the recommendation, so it never scales down by itself (the window and the band do, once
/// the floor falls).
#[derive(Debug, Clone)]
pub struct Floor {
    /// The expected rate by time of day (or day of week).
    pub baseline: Baseline,
    /// How far ahead the floor looks: a server's boot and join, with a margin.
    pub lead: Duration,
    /// The time zone of the baseline's slots.
    pub zone: Zone,
}

impl Floor {
    /// The default lead: as the predictive mode's (an 80-s boot, a tick to join, a tick to
    /// pass the check, and a margin).
    pub const DEFAULT_LEAD: Duration = Duration::from_secs(120);

    /// The highest rate the history expects over `[wall, wall + lead]`.
    pub fn rate(&self, wall: DateTime<Utc>) -> Option<Rate> {
        let lead = chrono::Duration::from_std(self.lead).unwrap_or(chrono::Duration::zero());
        let from = self.zone.civil(wall);
        let to = self.zone.civil(wall + lead);
        self.baseline.peak(from, to).and_then(Rate::from_f64)
    }
}

/// The default policy (see the module documentation and docs/webscaler-policy.md).
#[derive(Debug, Clone)]
pub struct DefaultPolicy {
    config: Config,
    meter: RateMeters<u32>,
    /// The recommendations of the stabilization window.
    stabilizer: Stabilizer,
    predictor: Option<Predictor>,
    floor: Option<Floor>,
    /// Whether the predictions have been coming true (when the predictive mode keeps one).
    track: Option<TrackRecord>,
}

impl DefaultPolicy {
    /// A policy with these settings (see [`Config::validate`]).
    pub fn new(config: Config) -> DefaultPolicy {
        DefaultPolicy {
            config,
            meter: RateMeters::new(),
            stabilizer: Stabilizer::new(
                config.scale_down_window,
                config.scale_down_window_max,
                config.scale_down_regret,
            ),
            predictor: config.predictive.map(Predictor::new),
            floor: None,
            track: config
                .predictive
                .filter(|p| p.track_record)
                .map(|p| TrackRecord::new(p.lead * 2)),
        }
    }

    /// The same policy with a seasonal floor.
    pub fn with_floor(mut self, floor: Floor) -> DefaultPolicy {
        self.floor = Some(floor);
        self
    }
}

impl Policy for DefaultPolicy {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let cfg = self.config;
        let max = cfg.cap(obs.quota);
        let min = cfg.min.min(max);
        let current = obs.serving.saturating_add(obs.pending);
        let reading = obs.reading(&mut self.meter, now);
        let (delta, rate) = match reading {
            Ok(r) => (r.increase, r.rate),
            Err(why) => {
                // No rate: only enforce the bounds.
                let target = bound(current, min, max);
                let reason = match target.cmp(&current) {
                    std::cmp::Ordering::Greater => Reason::Minimum,
                    std::cmp::Ordering::Less => Reason::Maximum,
                    std::cmp::Ordering::Equal => Reason::NoRate(why),
                };
                return Decision {
                    rate: None,
                    diff: None,
                    diffpt: None,
                    needed: None,
                    target,
                    add: target.saturating_sub(current),
                    remove: current.saturating_sub(target),
                    reason,
                };
            }
        };

        let predicted = match self.predictor.as_mut() {
            Some(p) => {
                p.record(now, rate);
                p.predict(now).filter(|&p| p > rate)
            }
            None => None,
        };
        let needed = cfg.needed(rate, obs.quota);
        // A prediction is acted on only while the last one judged came true; one that would
        // buy servers is judged later whether acted on or not.
        let predicted = match self.track.as_mut() {
            Some(track) => {
                track.judge(now, needed);
                predicted.filter(|p| {
                    let wants = bound(to_u32(p.servers_needed(cfg.threshold)), min, max);
                    if wants > needed.max(current) {
                        track.predicted(now, wants);
                    }
                    track.trusted()
                })
            }
            None => predicted,
        };
        let effective = predicted.unwrap_or(rate);
        let raw = to_u32(effective.servers_needed(cfg.threshold));
        // The band: up as soon as the current servers do not take the rate; down only when one
        // fewer would take it with `tolerance` spare, and then to what the rate needs.
        let within = raw <= current
            && current > 0
            && !effective.fits(cfg.threshold, current - 1, cfg.tolerance);
        let reactive = bound(if within { current } else { raw }, min, max);
        // The seasonal floor only raises the recommendation.
        let history = self
            .floor
            .as_ref()
            .zip(obs.wall)
            .and_then(|(f, wall)| f.rate(wall));
        let floor = history.map_or(0, |r| {
            bound(to_u32(r.servers_needed(cfg.threshold)), min, max)
        });
        let rec = reactive.max(floor);
        let by_history = history.filter(|_| floor > reactive);
        let window_max = self.stabilizer.record(now, rec);

        let (target, reason) = if rec >= current {
            let reason = if let Some(rate) = by_history {
                Reason::History { rate }
            } else if rec == current {
                if within && raw != current {
                    Reason::Tolerance
                } else {
                    Reason::Steady
                }
            } else if raw < min {
                Reason::Minimum
            } else if let Some(p) = predicted.filter(|_| needed < rec) {
                Reason::Predicted { rate: p }
            } else {
                Reason::Demand
            };
            (rec, reason)
        } else if current > max {
            (max, Reason::Maximum)
        } else {
            let allowed = window_max.map_or(current, |m| m.min(current));
            if allowed >= current {
                let held = window_max.unwrap_or(current);
                (current, Reason::Window { held })
            } else if cfg.hold_down_while_pending && obs.pending > 0 {
                (current, Reason::Pending)
            } else {
                let limit = cfg.max_remove_per_tick.unwrap_or(u32::MAX);
                let remove = (current - allowed).min(limit);
                self.stabilizer.scaled_down(now, current - remove);
                (current - remove, Reason::ScaleDown { allowed })
            }
        };
        Decision {
            rate: Some(rate),
            diff: Some(u64::try_from(rate.ceil()).unwrap_or(u64::MAX)),
            diffpt: Some(delta),
            needed: Some(needed),
            target,
            add: target.saturating_sub(current),
            remove: current.saturating_sub(target),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    /// Drives a policy with a counter that grows at the given per-tick rates (req/s) every
    /// `interval` seconds, with fixed serving/pending counts applied from the decisions.
    struct Drive {
        policy: DefaultPolicy,
        now: u64,
        total: u64,
        serving: u32,
        pending: u32,
        interval: u64,
    }

    impl Drive {
        fn new(config: Config, serving: u32, interval: u64) -> Drive {
            let mut policy = DefaultPolicy::new(config);
            let first = policy.decide(
                s(0),
                &Observation {
                    counters: vec![Counter::new(0)],
                    serving,
                    ..Observation::default()
                },
            );
            assert_eq!(first.reason, Reason::NoRate(NoRate::FirstReading));
            Drive {
                policy,
                now: 0,
                total: 0,
                serving,
                pending: 0,
                interval,
            }
        }

        /// One tick at `rate` req/s; the decision is applied at once (no boot delay).
        fn tick(&mut self, rate: u64) -> Decision {
            self.now += self.interval;
            self.total += rate * self.interval;
            let d = self.policy.decide(
                s(self.now),
                &Observation {
                    counters: vec![Counter::new(self.total)],
                    serving: self.serving,
                    pending: self.pending,
                    ..Observation::default()
                },
            );
            self.serving = self.serving + d.add - d.remove;
            d
        }
    }

    fn cfg() -> Config {
        Config::default()
    }

    #[test]
    fn the_decision_table() {
        // (rate, serving, pending, quota, expected target, add, remove, action)
        type Row = (u64, u32, u32, Option<u32>, u32, u32, u32, &'static str);
        let table: &[Row] = &[
            (30, 3, 0, None, 3, 0, 0, "hold"), // exactly 3 × threshold
            (31, 3, 0, None, 4, 1, 0, "up"),   // over 3 servers' worth: up at once
            (25, 3, 0, None, 3, 0, 0, "hold"), // needs 3
            (19, 3, 0, None, 3, 0, 0, "hold:tolerance"), // 2 would run at 95 %: keep 3
            (18, 3, 0, None, 3, 0, 0, "hold:window"), // 2 at 90 %: lower, held by the window
            (45, 2, 0, None, 5, 3, 0, "up"),
            (45, 2, 3, None, 5, 0, 0, "hold"), // pending capacity counts
            (45, 2, 2, None, 5, 1, 0, "up"),
            (0, 0, 0, None, 2, 2, 0, "up:min"), // never below min
            (5, 1, 0, None, 2, 1, 0, "up:min"), // tolerance cannot block reaching min
            (200, 3, 0, Some(13), 13, 10, 0, "up"), // capped by the quota
            (200, 13, 0, Some(13), 13, 0, 0, "hold"),
            (200, 15, 0, Some(13), 13, 0, 2, "down:max"), // above the quota: down at once
            (10, 5, 0, None, 5, 0, 0, "hold:window"),     // lower: held by the window
        ];
        // With a band of 0.1 (the default has none: then 19 req/s on 3 servers is
        // `hold:window`, as 18 is).
        let band = Config {
            tolerance: Tolerance::HPA,
            ..cfg()
        };
        for &(rate, serving, pending, quota, target, add, remove, action) in table {
            let mut p = DefaultPolicy::new(band);
            let obs = |total| Observation {
                counters: vec![Counter::new(total)],
                serving,
                pending,
                stopped: 0,
                quota,
                ..Observation::default()
            };
            p.decide(s(0), &obs(0));
            let d = p.decide(s(60), &obs(rate * 60));
            assert_eq!(
                (d.target, d.add, d.remove, d.action()),
                (target, add, remove, action),
                "rate {rate}, {serving}+{pending}, quota {quota:?}: {d}"
            );
            assert_eq!(d.rate, Some(Rate::per_second(rate)));
            assert_eq!(d.diffpt, Some(rate * 60));
        }
    }

    #[test]
    fn needed_is_clamped_and_exact() {
        let mut d = Drive::new(cfg(), 2, 5);
        assert_eq!(d.tick(0).needed, Some(2));
        assert_eq!(d.tick(70).needed, Some(7));
        let mut p = DefaultPolicy::new(Config {
            max: Some(6),
            ..cfg()
        });
        let o = |t| Observation {
            counters: vec![Counter::new(t)],
            serving: 2,
            ..Observation::default()
        };
        p.decide(s(0), &o(0));
        // 1000 requests in 3 s = 333.33 req/s: 34 servers, clamped to 6.
        let dec = p.decide(s(3), &o(1000));
        assert_eq!((dec.needed, dec.target, dec.diff), (Some(6), 6, Some(334)));
    }

    #[test]
    fn needed_is_capped_by_max_and_quota_which_win_over_min() {
        let c = Config {
            max: Some(10),
            ..cfg()
        };
        let r = |x| Rate::per_second(x);
        assert_eq!(c.needed(r(0), None), 2, "min");
        assert_eq!(c.needed(r(45), None), 5);
        assert_eq!(c.needed(r(500), None), 10, "max");
        assert_eq!(c.needed(r(500), Some(7)), 7, "the quota is lower");
        assert_eq!(
            c.needed(r(0), Some(1)),
            1,
            "a quota below min is still a quota"
        );
        assert_eq!(cfg().needed(r(u64::MAX), None), u32::MAX);
    }

    #[test]
    fn scale_down_waits_for_a_full_window_of_lower_recommendations() {
        let window = 60;
        let mut d = Drive::new(
            Config {
                scale_down_window: s(window),
                ..cfg()
            },
            2,
            5,
        );
        assert_eq!(d.tick(80).target, 8);
        // Now at 8; load drops to 20 req/s (2 servers) at t = 10.
        let mut first_down = None;
        for _ in 0..40 {
            let dec = d.tick(20);
            if dec.remove > 0 && first_down.is_none() {
                first_down = Some(d.now);
                assert_eq!(dec.target, 2);
            }
            if first_down.is_none() {
                assert_eq!(dec.action(), "hold:window", "at {}: {dec}", d.now);
            }
        }
        // The last recommendation of 8 was at t = 5; the first tick with only lower ones
        // inside (t − 60, t] is t = 65.
        assert_eq!(first_down, Some(65));
        assert_eq!(d.serving, 2);
    }

    #[test]
    fn window_zero_scales_down_at_once_and_max_remove_limits_steps() {
        let mut d = Drive::new(
            Config {
                scale_down_window: Duration::ZERO,
                max_remove_per_tick: Some(2),
                ..cfg()
            },
            2,
            5,
        );
        d.tick(80);
        let removed: Vec<u32> = (0..4).map(|_| d.tick(20).remove).collect();
        assert_eq!(removed, vec![2, 2, 2, 0]);
        assert_eq!(d.serving, 2);
    }

    #[test]
    fn the_window_acts_on_the_highest_recommendation_inside_it() {
        let mut d = Drive::new(
            Config {
                scale_down_window: s(30),
                ..cfg()
            },
            2,
            10,
        );
        d.tick(100); // t=10 → 10
        d.tick(60); // t=20: rec 6, held at 10
        d.tick(40); // t=30: rec 4, held
        let dec = d.tick(40); // t=40: window (10, 40] holds 6, 4, 4 → down to 6
        assert_eq!((dec.target, dec.remove), (6, 4), "{dec}");
        let dec = d.tick(40); // t=50: (20, 50] holds 4, 4, 4 → 4
        assert_eq!(dec.target, 4, "{dec}");
    }

    #[test]
    fn after_a_restart_nothing_is_removed_before_a_full_window() {
        // A restarted controller sees 8 serving and a low rate: it waits one window.
        let mut d = Drive::new(
            Config {
                scale_down_window: s(60),
                ..cfg()
            },
            8,
            5,
        );
        let mut removed_at = None;
        for _ in 0..20 {
            if d.tick(20).remove > 0 {
                removed_at.get_or_insert(d.now);
            }
        }
        // First recommendation at t=5; a full window has been seen at t=65.
        assert_eq!(removed_at, Some(65));
    }

    #[test]
    fn scale_down_holds_while_backends_boot() {
        let mut p = DefaultPolicy::new(Config {
            scale_down_window: Duration::ZERO,
            ..cfg()
        });
        let o = |t, pending| Observation {
            counters: vec![Counter::new(t)],
            serving: 6,
            pending,
            ..Observation::default()
        };
        p.decide(s(0), &o(0, 2));
        let d = p.decide(s(10), &o(100, 2));
        assert_eq!(d.action(), "hold:pending");
        let d = p.decide(s(20), &o(200, 0));
        assert_eq!((d.action(), d.remove), ("down", 4));
    }

    #[test]
    fn no_rate_enforces_only_the_bounds() {
        let mut p = DefaultPolicy::new(Config {
            max: Some(5),
            ..cfg()
        });
        let d = p.decide(
            s(0),
            &Observation {
                counters: vec![Counter::new(100)],
                serving: 0,
                ..Observation::default()
            },
        );
        assert_eq!((d.add, d.action(), d.needed), (2, "up:min", None));
        let d = p.decide(
            s(5),
            &Observation {
                counters: Vec::new(),
                serving: 7,
                ..Observation::default()
            },
        );
        assert_eq!((d.remove, d.action()), (2, "down:max"));
        // A counter that went down (a reload, no process identity known): the new count
        // over the interval, a lower bound; then ordinary intervals from the new base.
        let o = |t| Observation {
            counters: vec![Counter::new(t)],
            serving: 3,
            ..Observation::default()
        };
        let d = p.decide(s(10), &o(50));
        assert_eq!(d.rate, Some(Rate::per_second(5)), "{d}");
        assert_eq!(d.diffpt, Some(50));
        let d = p.decide(s(20), &o(350));
        assert_eq!(d.rate, Some(Rate::per_second(30)));
    }

    #[test]
    fn a_reload_is_recognised_by_the_balancer_pid_and_measured_over_its_uptime() {
        let mut p = DefaultPolicy::new(cfg());
        let o = |value, pid, up| Observation {
            counters: vec![Counter {
                source: 0,
                value,
                pid: Some(pid),
                uptime_sec: Some(up),
            }],
            serving: 3,
            ..Observation::default()
        };
        p.decide(s(0), &o(1000, 7, 600));
        // The new worker (pid 8) started 1.5 s ago (uptime 1 s + half a second) and has
        // already counted 1200 > 1000: not a "counter went down", still a reload.
        let d = p.decide(s(10), &o(1200, 8, 1));
        assert_eq!(d.rate, Some(Rate::per_second(800)), "{d}");
        let d = p.decide(s(20), &o(1500, 8, 11));
        assert_eq!(d.rate, Some(Rate::per_second(30)), "{d}");
    }

    #[test]
    fn config_validation_names_the_setting() {
        assert!(cfg().validate().is_ok());
        let e = Config {
            min: 5,
            max: Some(3),
            ..cfg()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e, "min (5) is above max (3)");
        assert!(
            Config {
                max_remove_per_tick: Some(0),
                ..cfg()
            }
            .validate()
            .unwrap_err()
            .contains("max_remove_per_tick")
        );
    }

    #[test]
    fn policy_kind_parses() {
        assert_eq!("lab-report".parse::<PolicyKind>(), Ok(PolicyKind::Seed));
        assert_eq!("seed".parse::<PolicyKind>(), Ok(PolicyKind::Seed));
        assert_eq!("default".parse::<PolicyKind>(), Ok(PolicyKind::Default));
        assert!("hpa2".parse::<PolicyKind>().unwrap_err().contains("hpa2"));
        assert_eq!(PolicyKind::Seed.to_string(), "lab-report");
        for k in PolicyKind::ALL {
            assert_eq!(k.to_string().parse::<PolicyKind>(), Ok(k));
        }
        assert_eq!(
            "target-tracking".parse::<PolicyKind>(),
            Ok(PolicyKind::TargetTracking)
        );
    }

    #[test]
    fn a_regretted_scale_down_lengthens_the_window_and_sticking_ones_shorten_it() {
        let mut d = Drive::new(
            Config {
                predictive: None,
                ..cfg()
            },
            2,
            5,
        );
        assert_eq!(d.tick(80).target, 8); // t = 5
        // A dip to 30 req/s (3 servers): released after the 60-s base window, at t = 65.
        let downs: Vec<u64> = (0..12)
            .filter_map(|_| (d.tick(30).remove > 0).then_some(d.now))
            .collect();
        assert_eq!(downs, vec![65]);
        // The load is back 5 s later: regretted (within 120 s), the window becomes 300 s.
        let up = d.tick(80);
        assert_eq!((up.target, up.action()), (8, "up"));
        // The next dip is held for 300 s after the last 8 (t = 70): released at t = 370.
        let mut first_down = None;
        while d.now < 490 {
            let dec = d.tick(30);
            if dec.remove > 0 {
                first_down.get_or_insert(d.now);
            } else if first_down.is_none() {
                assert_eq!(dec.action(), "hold:window", "t = {}", d.now);
            }
        }
        assert_eq!(first_down, Some(370));
        // No regret within 120 s (judged at t = 495): the window halves its excess, to 180 s.
        d.tick(30);
        assert_eq!(d.tick(80).action(), "up"); // t = 500: a rise long after is no regret
        let downs: Vec<u64> = (0..40)
            .filter_map(|_| (d.tick(30).remove > 0).then_some(d.now))
            .collect();
        assert_eq!(downs, vec![680], "180 s after the 8 at t = 500");
    }

    #[test]
    fn a_fixed_window_does_not_adapt() {
        let mut d = Drive::new(
            Config {
                predictive: None,
                scale_down_window_max: Config::DEFAULT_WINDOW,
                ..cfg()
            },
            2,
            5,
        );
        d.tick(80);
        for _ in 0..12 {
            d.tick(30);
        }
        assert_eq!(d.tick(80).add, 5, "back at t = 70");
        let downs: Vec<u64> = (0..20)
            .filter_map(|_| (d.tick(30).remove > 0).then_some(d.now))
            .collect();
        assert_eq!(downs, vec![130], "60 s after the 8 at t = 70");
    }

    #[test]
    fn predictions_that_do_not_come_true_are_not_acted_on_until_one_does() {
        /// A staircase of three minutes from `from` req/s, `step` more each minute: the
        /// ticks that acted, (t, action, target).
        fn stairs(d: &mut Drive, from: u64, step: u64) -> Vec<(u64, &'static str, u32)> {
            let mut actions = Vec::new();
            for minute in 0..3 {
                for _ in 0..12 {
                    let dec = d.tick(from + minute * step);
                    if dec.is_action() {
                        actions.push((d.now, dec.action(), dec.target));
                    }
                }
            }
            actions
        }
        for track_record in [true, false] {
            let predictive = Predictive {
                track_record,
                ..Predictive::default()
            };
            let mut d = Drive::new(
                Config {
                    predictive: Some(predictive),
                    ..cfg()
                },
                2,
                5,
            );
            // 15 → 25 → 35 req/s, then flat: at t = 125 and 135 the trend asks for 5 and 6
            // servers, where 35 req/s needs 4.
            let first = stairs(&mut d, 15, 10);
            assert_eq!(
                first,
                vec![
                    (65, "up", 3),
                    (125, "up:predicted", 5),
                    (135, "up:predicted", 6)
                ]
            );
            // Not reached within 240 s (twice the lead): judged failed at t = 370. The
            // servers it bought are released.
            for _ in 0..80 {
                d.tick(35);
            }
            assert_eq!(d.serving, 4);
            // The same staircase again, from 35 req/s: the policy follows the measured rate.
            let second = stairs(&mut d, 35, 10);
            if track_record {
                assert_eq!(second, vec![(645, "up", 5), (705, "up", 6)]);
            } else {
                assert!(second.iter().any(|a| a.1 == "up:predicted"), "{second:?}");
            }
            // The rise goes on: 55, then 65 req/s (7 servers) at t = 785 reach what the
            // unheeded prediction of t = 705 asked for, so predictions are acted on again.
            for _ in 0..4 {
                d.tick(55);
            }
            let third = stairs(&mut d, 65, 15);
            if track_record {
                assert_eq!(third[0], (785, "up:predicted", 8), "{third:?}");
            }
        }
    }

    #[test]
    fn decisions_print_one_log_line() {
        let mut d = Drive::new(cfg(), 2, 60);
        let line = d.tick(45).to_string();
        assert_eq!(
            line,
            "rate 45 req/s, needed 5, target 5 (+3 -0): up (demand)"
        );
    }
}
