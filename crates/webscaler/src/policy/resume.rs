//! A policy's memory across restarts of `webscaler run`.
//!
//! A policy remembers: the previous counter reading (the rate needs two), the recommendations
//! of its scale-down window and whether its last scale-down was regretted (the window then
//! lengthens), the rates its predictive mode fits a trend to, HPA's and target tracking's
//! windows and datapoints. A fresh policy has none of that: it gives no rate on its first tick,
//! waits a full base window before a scale-down (where the old one may have adapted its
//! window to five minutes), and predicts nothing for two minutes.
//!
//! So every tick `run` keeps what the policy was shown ([`Recall`]: the last [`Recall::SPAN`]
//! of observations, with their times on the policy's clock and on the wall clock) in its
//! state directory, and a new `run` shows them to its fresh policy again, at the same times,
//! before its first tick ([`resume`]). Policies are
//! deterministic functions of what they were shown and when, so the resumed policy is the one
//! that stopped, moved on by the time `run` was down: its first tick measures the rate since
//! the last tick of the previous run (HAProxy kept counting), and decides as the old policy
//! would have after a tick that long.
//!
//! That holds when the previous run stopped recently: a restart by systemd, an upgrade, a
//! `kill -9`. Observations older than [`max_gap`] (a minute, or two ticks) are not used: the
//! policy starts afresh, and then removes nothing before one full window (the promise of a
//! fresh start). The pause since the last remembered tick is taken from the wall clock (the
//! monotonic clock does not survive the process); a last tick later than now (the clock was
//! set back) is not used either.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::time::format_duration;
use serde::{Deserialize, Serialize};

use super::{Decision, Observation, Policy};
use crate::rate::meter::Counter;

/// One tick's observation, as [`Recall`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// When it was made, on the policy's clock (which a resumed policy carries on).
    pub at: Duration,
    /// When it was made, on the wall clock (how long ago, for the next run).
    pub wall: DateTime<Utc>,
    /// The balancer's counters.
    pub counters: Vec<Counter>,
    /// Backends serving.
    pub serving: u32,
    /// Backends on their way.
    pub pending: u32,
    /// Stopped backends kept.
    pub stopped: u32,
    /// The backends the quota allows, when known.
    pub quota: Option<u32>,
}

impl Remembered {
    /// The observation again.
    fn observation(&self) -> Observation {
        Observation {
            counters: self.counters.clone(),
            serving: self.serving,
            pending: self.pending,
            stopped: self.stopped,
            quota: self.quota,
            wall: Some(self.wall),
        }
    }
}

/// The observations of the last [`Recall::SPAN`], oldest first, their times increasing (also
/// when read from a file: [`Recall::push`] takes each in turn).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RecallFile")]
pub struct Recall {
    ticks: VecDeque<Remembered>,
}

/// [`Recall`] as read, before its invariants are restored.
#[derive(Deserialize)]
struct RecallFile {
    ticks: Vec<Remembered>,
}

impl From<RecallFile> for Recall {
    fn from(f: RecallFile) -> Recall {
        let mut r = Recall::new();
        for t in f.ticks {
            r.push_remembered(t);
        }
        r
    }
}

impl Recall {
    /// How far back the observations are kept: the longest memory of any policy (target
    /// tracking's 15 one-minute periods before it scales in), and a minute more.
    pub const SPAN: Duration = Duration::from_secs(16 * 60);

    /// The latest time on the policy's clock a tick is kept at (a century): a file with later
    /// ones is not one a run wrote, and a policy's clock that far would overflow.
    pub const MAX_AT: Duration = Duration::from_secs(100 * 365 * 86_400);

    /// Nothing remembered yet.
    pub fn new() -> Recall {
        Recall::default()
    }

    /// Keeps `obs`, shown to the policy at `at` on its clock (an observation without a
    /// wall-clock time is not kept), and forgets those older than [`Recall::SPAN`] before it,
    /// and any that are not older than it on either clock (the wall clock was set back).
    pub fn push(&mut self, at: Duration, obs: &Observation) {
        let Some(wall) = obs.wall else { return };
        self.push_remembered(Remembered {
            at,
            wall,
            counters: obs.counters.clone(),
            serving: obs.serving,
            pending: obs.pending,
            stopped: obs.stopped,
            quota: obs.quota,
        });
    }

    fn push_remembered(&mut self, t: Remembered) {
        if t.at > Recall::MAX_AT {
            return;
        }
        while self
            .ticks
            .back()
            .is_some_and(|b| b.wall >= t.wall || b.at >= t.at)
        {
            self.ticks.pop_back();
        }
        let span = chrono::Duration::from_std(Recall::SPAN).unwrap_or(chrono::Duration::MAX);
        while self.ticks.front().is_some_and(|f| t.wall - f.wall > span) {
            self.ticks.pop_front();
        }
        self.ticks.push_back(t);
    }

    /// The observations kept, oldest first.
    pub fn ticks(&self) -> impl ExactSizeIterator<Item = &Remembered> {
        self.ticks.iter()
    }

    /// The newest observation's time.
    pub fn last_wall(&self) -> Option<DateTime<Utc>> {
        self.ticks.back().map(|t| t.wall)
    }
}

/// The longest pause between the previous run's last tick and the new run's first that a
/// policy resumes across: a minute (the default base window), or two ticks when they are
/// longer.
pub fn max_gap(interval: Duration) -> Duration {
    Duration::from_secs(60).max(interval.saturating_mul(2))
}

/// A policy shown the ticks of the previous run again: its clock continues theirs. The
/// caller's times are moved by [`Resumed::offset`]; what it records in a [`Recall`] is on the
/// policy's clock ([`Resumed::policy_time`]).
#[derive(Debug, Clone)]
pub struct Resumed<P> {
    inner: P,
    offset: Duration,
}

impl<P> Resumed<P> {
    /// A policy that was not shown anything: its clock is the caller's.
    pub fn fresh(inner: P) -> Resumed<P> {
        Resumed {
            inner,
            offset: Duration::ZERO,
        }
    }

    /// How far the policy's clock is ahead of the caller's: from the first tick it was shown
    /// again to the caller's time 0.
    pub fn offset(&self) -> Duration {
        self.offset
    }

    /// The caller's time `now` on the policy's clock.
    pub fn policy_time(&self, now: Duration) -> Duration {
        now.saturating_add(self.offset)
    }
}

impl<P: Policy> Policy for Resumed<P> {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let now = self.policy_time(now);
        self.inner.decide(now, obs)
    }
}

/// What [`resume`] did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumption {
    /// Nothing was remembered.
    Nothing,
    /// The remembered ticks were shown to the policy.
    Resumed {
        /// How many.
        ticks: usize,
        /// The time from the last of them to the caller's time 0.
        gap: Duration,
    },
    /// The remembered ticks were too old (or in the future): the policy starts afresh.
    TooOld {
        /// The time from the last of them to the caller's time 0 (`None`: after it).
        gap: Option<Duration>,
    },
}

impl Resumption {
    /// One line for the log, or `None` when nothing was remembered.
    pub fn note(&self, max_gap: Duration) -> Option<String> {
        match self {
            Resumption::Nothing => None,
            Resumption::Resumed { ticks, gap } => Some(format!(
                "the policy resumes from the previous run's last {ticks} tick(s), the last {} ago",
                format_duration(round_ms(*gap))
            )),
            Resumption::TooOld { gap: Some(gap) } => Some(format!(
                "the previous run's last tick is {} old (more than {}): the policy starts afresh",
                format_duration(Duration::from_secs(gap.as_secs())),
                format_duration(max_gap)
            )),
            Resumption::TooOld { gap: None } => Some(
                "the previous run's last tick is later than now (the clock was set back): the policy starts afresh"
                    .to_owned(),
            ),
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Shows `policy` the remembered ticks again, at their times on the policy's clock, so that
/// it continues at `now_wall` (the caller's time 0) as if it had been running: see the module
/// documentation.
/// Ticks more than `max_gap` before `now_wall` (the newest one decides) are not used.
pub fn resume<P: Policy>(
    mut policy: P,
    recall: &Recall,
    now_wall: DateTime<Utc>,
    max_gap: Duration,
) -> (Resumed<P>, Resumption) {
    let Some(last) = recall.ticks.back() else {
        return (Resumed::fresh(policy), Resumption::Nothing);
    };
    let gap = match (now_wall - last.wall).to_std() {
        Ok(g) if g > Duration::ZERO && g <= max_gap => g,
        Ok(g) if g > Duration::ZERO => {
            return (Resumed::fresh(policy), Resumption::TooOld { gap: Some(g) });
        }
        _ => return (Resumed::fresh(policy), Resumption::TooOld { gap: None }),
    };
    // `push` keeps the times increasing.
    for t in &recall.ticks {
        // What it decided then was done then (or not): only its memory is wanted.
        let _ = policy.decide(t.at, &t.observation());
    }
    let offset = last.at.saturating_add(gap);
    (
        Resumed {
            inner: policy,
            offset,
        },
        Resumption::Resumed {
            ticks: recall.ticks.len(),
            gap,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Config, DefaultPolicy, HpaConfig, HpaPolicy};
    use crate::policy::{TargetTrackingConfig, TargetTrackingPolicy};

    const TICK: Duration = Duration::from_secs(5);

    fn t0() -> DateTime<Utc> {
        "2026-01-05T10:00:00Z".parse().unwrap()
    }

    fn wall(i: usize) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(5 * i as i64)
    }

    /// 75 req/s with dips to 25 (300 s, 60 s, 300 s), a tick every 5 s for 40 minutes, as a
    /// lone HAProxy that keeps running counts it; 8 servers serving.
    fn observations() -> Vec<Observation> {
        let dip = |s: u64| {
            (600..900).contains(&s) || (1200..1260).contains(&s) || (1500..1800).contains(&s)
        };
        let mut counter = 0;
        (0..480)
            .map(|i| {
                let s = 5 * i as u64;
                counter += 5 * if dip(s) { 25 } else { 75 };
                Observation {
                    counters: vec![Counter {
                        source: 0,
                        value: counter,
                        pid: Some(4242),
                        uptime_sec: Some(10_000 + s),
                    }],
                    serving: 8,
                    pending: 0,
                    stopped: 0,
                    quota: Some(13),
                    wall: Some(wall(i)),
                }
            })
            .collect()
    }

    /// The ticks as a run from time 0 remembers them.
    fn recall_of(obs: &[Observation]) -> Recall {
        let mut recall = Recall::new();
        for (i, o) in obs.iter().enumerate() {
            recall.push(TICK * i as u32, o);
        }
        recall
    }

    type Make = fn() -> Box<dyn Policy>;

    fn policies() -> Vec<(&'static str, Make)> {
        vec![
            ("default", || {
                Box::new(DefaultPolicy::new(Config::default()))
            }),
            ("hpa", || Box::new(HpaPolicy::new(HpaConfig::default()))),
            ("target-tracking", || {
                Box::new(TargetTrackingPolicy::new(TargetTrackingConfig::default()))
            }),
        ]
    }

    #[test]
    fn a_resumed_policy_decides_as_the_one_that_never_stopped() {
        let obs = observations();
        let at = |i: usize| TICK * i as u32;
        for (name, make) in policies() {
            let mut through = make();
            let all: Vec<Decision> = obs
                .iter()
                .enumerate()
                .map(|(i, o)| through.decide(at(i), o))
                .collect();
            for k in (3..obs.len()).step_by(11) {
                let recall = recall_of(&obs[..k]);
                // The new run's time 0 is tick k's.
                let (mut resumed, how) = resume(make(), &recall, wall(k), Duration::from_secs(60));
                assert_eq!(
                    how,
                    Resumption::Resumed {
                        ticks: k.min(193),
                        gap: TICK
                    },
                    "{name} at {k}"
                );
                for (j, o) in obs.iter().enumerate().skip(k) {
                    assert_eq!(
                        resumed.decide(at(j - k), o),
                        all[j],
                        "{name}, restarted at tick {k}: tick {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_fresh_policy_would_release_what_the_resumed_one_keeps() {
        // The default policy regretted its release in the first 5-minute dip and holds the
        // later dips with a 5-minute window; one restarted fresh at 1,490 s has the 60-s
        // window again and releases servers in the third dip.
        let obs = observations();
        let k = 298;
        let recall = recall_of(&obs[..k]);
        let (mut resumed, _) = resume(
            DefaultPolicy::new(Config::default()),
            &recall,
            wall(k),
            Duration::from_secs(60),
        );
        let mut fresh = DefaultPolicy::new(Config::default());
        let mut fewer = 0;
        for (j, o) in obs.iter().enumerate().skip(k) {
            let now = TICK * (j - k) as u32;
            let (r, f) = (resumed.decide(now, o), fresh.decide(now, o));
            assert!(r.target >= f.target, "tick {j}: {r:?} {f:?}");
            if f.target < r.target {
                fewer += 1;
            }
        }
        assert!(fewer > 10, "{fewer}");
        // And the resumed one has a rate on its first tick, where a fresh one needs two.
        let (mut resumed, _) = resume(
            DefaultPolicy::new(Config::default()),
            &recall,
            wall(k),
            Duration::from_secs(60),
        );
        assert!(resumed.decide(Duration::ZERO, &obs[k]).rate.is_some());
        assert!(
            DefaultPolicy::new(Config::default())
                .decide(Duration::ZERO, &obs[k])
                .rate
                .is_none()
        );
    }

    #[test]
    fn old_or_future_ticks_are_not_resumed_from() {
        let obs = observations();
        let recall = recall_of(&obs[..20]);
        let max = max_gap(TICK);
        assert_eq!(max, Duration::from_secs(60));
        assert_eq!(max_gap(Duration::from_secs(45)), Duration::from_secs(90));
        // Resumed at `s` seconds after the last tick: the offset, and what it did.
        let after = |recall: &Recall, s: i64| {
            let now = wall(19) + chrono::Duration::seconds(s);
            let (p, how) = resume(DefaultPolicy::new(Config::default()), recall, now, max);
            (p.offset(), how)
        };
        let secs = Duration::from_secs;
        assert_eq!(
            after(&recall, 60),
            (
                TICK * 19 + secs(60),
                Resumption::Resumed {
                    ticks: 20,
                    gap: secs(60)
                }
            )
        );
        let (offset, how) = after(&recall, 61);
        assert_eq!(
            (offset, &how),
            (
                Duration::ZERO,
                &Resumption::TooOld {
                    gap: Some(secs(61))
                }
            )
        );
        assert_eq!(
            how.note(max).unwrap(),
            "the previous run's last tick is 1m1s old (more than 1m0s): the policy starts afresh"
        );
        let (offset, how) = after(&recall, 0);
        assert_eq!(
            (offset, &how),
            (Duration::ZERO, &Resumption::TooOld { gap: None })
        );
        assert!(how.note(max).unwrap().contains("clock was set back"));
        let (_, how) = after(&Recall::new(), 1);
        assert_eq!((&how, how.note(max)), (&Resumption::Nothing, None));
        let how = Resumption::Resumed {
            ticks: 20,
            gap: Duration::from_millis(7_250),
        };
        assert_eq!(
            how.note(max).unwrap(),
            "the policy resumes from the previous run's last 20 tick(s), the last 7.25s ago"
        );
    }

    #[test]
    fn the_recall_keeps_the_span_in_order_also_from_a_file() {
        let obs = observations();
        let mut recall = recall_of(&obs);
        // 16 minutes of 5-s ticks, and the tick that starts them.
        assert_eq!(recall.ticks().len(), 193);
        assert_eq!(recall.last_wall(), Some(wall(479)));
        assert_eq!(recall.ticks().next().unwrap().wall, wall(479 - 192));
        // A tick without a wall-clock time is not kept; one not after the newest replaces
        // those it is not after (the clock was set back).
        recall.push(TICK * 480, &Observation::default());
        assert_eq!(recall.ticks().len(), 193);
        recall.push(TICK * 480, &obs[470]);
        assert_eq!(recall.last_wall(), Some(wall(470)));
        assert_eq!(recall.ticks().len(), 184);

        let text = serde_json::to_string(&recall).unwrap();
        let back: Recall = serde_json::from_str(&text).unwrap();
        assert_eq!(back, recall);
        // Written out of order by hand: read back in order.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["ticks"].as_array_mut().unwrap().swap(0, 5);
        let back: Recall = serde_json::from_value(v).unwrap();
        assert!(
            back.ticks()
                .zip(back.ticks().skip(1))
                .all(|(a, b)| a.wall < b.wall)
        );
        assert!(serde_json::from_str::<Recall>("{\"ticks\":[{\"wall\":\"yesterday\"}]}").is_err());
        // A time no run reaches is not kept (a policy's clock there would overflow).
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["ticks"][183]["at"] = serde_json::json!({"secs": u64::MAX, "nanos": 0});
        let back: Recall = serde_json::from_value(v).unwrap();
        assert_eq!(back.ticks().len(), 183);
    }
}
