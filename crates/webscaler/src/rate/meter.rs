//! The request rate from a cumulative counter, safe across reloads: the one path from a
//! balancer's counter to the policy's exact [`Rate`]. Pure: no I/O, no clock of its own.
//!
//! A [`Sample`] is the counter's value (HAProxy's `stot` or `req_tot`), the time it was read
//! (a monotonic or simulated time since any fixed origin), and, when known, the answering
//! process's `Pid` and `Uptime_sec` from `show info`. Between two samples of the same process
//! the increase is the difference, and the rate is the increase over the time between the
//! samples (the lab report's formula 1.1, on the monotonic clock instead of a sleep time), as an
//! exact fraction.
//!
//! HAProxy's counters belong to the worker, so a reload starts them again from 0. A reload is
//! recognised by the counter going down, the `Pid` changing, or `Uptime_sec` going down. Then
//! the new value is what the new worker counted since it started: it is the increase, and it
//! accrued over the new worker's uptime, not over the whole interval. `Uptime_sec` is whole
//! seconds (the true uptime is in `[u, u + 1)`), so the midpoint `u + 0.5 s` is used, capped
//! by the interval; without an uptime the whole interval is used (a lower bound). The
//! requests the old worker served between the previous sample and the reload are not visible
//! anywhere, so the increase is a lower bound, but the rate is the new worker's rate: neither
//! negative nor huge. (The lab report, which reloaded HAProxy itself, divided by the time since its
//! reload in the same way.)
//!
//! Several HAProxy instances: [`RateMeters`] keeps one meter per source and sums the rates.
//! [`RateMeters::round`] is the scaling loop's path (a [`Counter`] per instance that counts
//! this tick): the rate is the sum of each source's reset-safe rate, a source absent from a
//! round is forgotten, and one that comes back (or is new) counts from its next reading on,
//! so a returning instance never makes a spike.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Rate;

/// One reading of a cumulative counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The counter's value.
    pub counter: u64,
    /// When it was read: a monotonic (or simulated) time since any fixed origin.
    pub at: Duration,
    /// `Uptime_sec` of the process that answered, if known.
    pub uptime_sec: Option<u64>,
    /// `Pid` of the process that answered, if known.
    pub pid: Option<u32>,
}

/// One source's counter at a tick (a balancer instance's backend counter), with the identity
/// of the process that counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counter {
    /// Which source: an HAProxy instance's number (0 for a lone one).
    pub source: u32,
    /// The counter's value.
    pub value: u64,
    /// `Pid` of the process that counted, if known.
    pub pid: Option<u32>,
    /// `Uptime_sec` of that process, if known.
    pub uptime_sec: Option<u64>,
}

impl Counter {
    /// The counter of a lone source whose process is not known.
    pub fn new(value: u64) -> Counter {
        Counter {
            value,
            ..Counter::default()
        }
    }

    /// Its sample at `at`.
    pub fn sample(&self, at: Duration) -> Sample {
        Sample {
            counter: self.value,
            at,
            uptime_sec: self.uptime_sec,
            pid: self.pid,
        }
    }
}

/// The rate between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// How much the counter went up (after a reload: the new worker's count).
    pub increase: u64,
    /// The time the increase accrued over: the interval, or the new worker's uptime.
    /// (Serialized as seconds.)
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
    /// The time between the two samples. (Serialized as seconds.)
    #[serde(serialize_with = "as_secs")]
    pub interval: Duration,
    /// `increase / elapsed`, exact. (Serialized as a float, per second.)
    #[serde(serialize_with = "as_f64")]
    pub rate: Rate,
    /// Whether a reload (counter reset) happened between the samples.
    pub reset: bool,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn as_f64<S: serde::Serializer>(r: &Rate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(r.to_f64())
}

/// Why a sample gave no rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRate {
    /// The first sample: a rate needs two.
    FirstReading,
    /// No time passed since the previous sample (or the sample is older than it): the
    /// previous sample stays the base.
    NoTimePassed,
    /// The counter could not be read (the caller's case: a failed socket, no counter).
    NoCounter,
}

impl fmt::Display for NoRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoRate::FirstReading => "first counter reading, no rate yet",
            NoRate::NoTimePassed => "no time passed since the last reading",
            NoRate::NoCounter => "the counter could not be read",
        })
    }
}

/// Whether the counter was restarted between `prev` and `cur` (a reload or restart).
pub fn is_reset(prev: &Sample, cur: &Sample) -> bool {
    cur.counter < prev.counter
        || matches!((prev.pid, cur.pid), (Some(a), Some(b)) if a != b)
        || matches!((prev.uptime_sec, cur.uptime_sec), (Some(a), Some(b)) if b < a)
}

/// The reading between two samples of one source; `None` if no time passed (or `cur` is
/// older than `prev`).
pub fn reading(prev: &Sample, cur: &Sample) -> Option<Reading> {
    let interval = cur.at.checked_sub(prev.at)?;
    if interval.is_zero() {
        return None;
    }
    let reset = is_reset(prev, cur);
    let (increase, elapsed) = if reset {
        let since_reload = cur
            .uptime_sec
            .map(|u| Duration::from_secs(u) + Duration::from_millis(500))
            .unwrap_or(interval);
        (cur.counter, since_reload.min(interval))
    } else {
        (cur.counter - prev.counter, interval)
    };
    // `elapsed` is at least 0.5 s or the (non-zero) interval, so this is `None` only for an
    // interval beyond 584 years.
    let rate = Rate::from_count(increase, elapsed)?;
    Some(Reading {
        increase,
        elapsed,
        interval,
        rate,
        reset,
    })
}

/// The rate of one source: feed it samples, get readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateMeter {
    last: Option<Sample>,
}

impl RateMeter {
    /// A meter with no sample yet.
    pub fn new() -> RateMeter {
        RateMeter::default()
    }

    /// Takes a sample and returns the reading since the previous one. The first sample gives
    /// [`NoRate::FirstReading`]; a sample at the same time as the previous one, or older,
    /// gives [`NoRate::NoTimePassed`] and is ignored (the previous sample stays the base, so
    /// the next reading measures from it).
    pub fn update(&mut self, sample: Sample) -> Result<Reading, NoRate> {
        let Some(prev) = self.last else {
            self.last = Some(sample);
            return Err(NoRate::FirstReading);
        };
        let r = reading(&prev, &sample).ok_or(NoRate::NoTimePassed)?;
        self.last = Some(sample);
        Ok(r)
    }

    /// The last sample taken (the base of the next reading).
    pub fn last(&self) -> Option<&Sample> {
        self.last.as_ref()
    }
}

/// The result of one round over several sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined<K> {
    /// Each source of this round and its reading (`None` for a source's first sample).
    pub readings: Vec<(K, Option<Reading>)>,
    /// The sum of the rates (per second, as a float: the exact fractions of several sources
    /// have unrelated denominators); `None` unless every source of this round has a reading.
    pub rate: Option<f64>,
    /// The sum of the increases, on the same condition.
    pub increase: Option<u64>,
}

/// One [`RateMeter`] per source (e.g. per HAProxy socket), rates summed.
#[derive(Debug, Clone)]
pub struct RateMeters<K: Ord> {
    meters: BTreeMap<K, RateMeter>,
}

impl<K: Ord> Default for RateMeters<K> {
    fn default() -> Self {
        RateMeters {
            meters: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> RateMeters<K> {
    /// No sources yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one round of samples. A source missing from a round keeps its last sample, so
    /// a socket that failed once picks up where it left off; [`RateMeters::forget`] drops it.
    pub fn update(&mut self, samples: impl IntoIterator<Item = (K, Sample)>) -> Combined<K> {
        let mut readings = Vec::new();
        for (k, s) in samples {
            let r = self.meters.entry(k.clone()).or_default().update(s).ok();
            readings.push((k, r));
        }
        let complete = !readings.is_empty() && readings.iter().all(|(_, r)| r.is_some());
        let (rate, increase) = if complete {
            let rs = readings.iter().filter_map(|(_, r)| r.as_ref());
            (
                Some(rs.clone().map(|r| r.rate.to_f64()).sum()),
                Some(rs.map(|r| r.increase).sum()),
            )
        } else {
            (None, None)
        };
        Combined {
            readings,
            rate,
            increase,
        }
    }

    /// Drops a source.
    pub fn forget(&mut self, source: &K) {
        self.meters.remove(source);
    }
}

impl RateMeters<u32> {
    /// One round of the scaling loop: the counters of the sources that count now, all read
    /// at `at`. The reading sums the sources that have one (the increases, and the rates,
    /// each reset-safe); a source absent from the round is forgotten, so one that comes back
    /// (or a new one) is a first reading, and counts from the next round on. Errors: no
    /// counter at all ([`NoRate::NoCounter`]), or no source with a reading (the first
    /// source's reason).
    pub fn round(&mut self, at: Duration, counters: &[Counter]) -> Result<Reading, NoRate> {
        if counters.is_empty() {
            return Err(NoRate::NoCounter);
        }
        self.meters
            .retain(|k, _| counters.iter().any(|c| c.source == *k));
        let mut sum: Option<Reading> = None;
        let mut why = None;
        for c in counters {
            match self
                .meters
                .entry(c.source)
                .or_default()
                .update(c.sample(at))
            {
                Ok(r) => {
                    sum = Some(match sum {
                        None => r,
                        Some(s) => Reading {
                            increase: s.increase.saturating_add(r.increase),
                            elapsed: s.elapsed.max(r.elapsed),
                            interval: s.interval.max(r.interval),
                            rate: s.rate.plus(r.rate),
                            reset: s.reset || r.reset,
                        },
                    });
                }
                Err(e) => {
                    why.get_or_insert(e);
                }
            }
        }
        sum.ok_or(why.unwrap_or(NoRate::NoCounter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(ms: u64, counter: u64, uptime: Option<u64>, pid: Option<u32>) -> Sample {
        Sample {
            counter,
            at: Duration::from_millis(ms),
            uptime_sec: uptime,
            pid,
        }
    }

    #[test]
    fn the_seed_formula_between_two_samples_exactly() {
        let r = reading(
            &s(0, 100, Some(60), Some(7)),
            &s(60_000, 700, Some(120), Some(7)),
        )
        .unwrap();
        assert_eq!(r.increase, 600);
        assert_eq!(r.rate, Rate::per_second(10));
        assert_eq!(r.elapsed, Duration::from_secs(60));
        assert!(!r.reset);
        // 1 request in 3 s is exactly 1/3 req/s, not 0.333…: 30 of them need exactly 1
        // server at a threshold of 10.
        let r = reading(&s(0, 0, None, None), &s(3000, 100, None, None)).unwrap();
        assert_eq!((r.rate.numer(), r.rate.denom()), (100, 3));
    }

    #[test]
    fn a_counter_that_went_down_is_a_reload_bounded_by_the_uptime() {
        // 5000 before; the reload happened 2 s before the next sample, which reads 40.
        let r = reading(
            &s(0, 5000, Some(300), Some(7)),
            &s(10_000, 40, Some(2), Some(8)),
        )
        .unwrap();
        assert!(r.reset);
        assert_eq!(r.increase, 40);
        assert_eq!(r.elapsed, Duration::from_millis(2500));
        assert_eq!(r.rate, Rate::per_second(16));
        // Without show info, the whole interval is used: a lower bound, never huge.
        let r = reading(&s(0, 5000, None, None), &s(10_000, 40, None, None)).unwrap();
        assert!(r.reset);
        assert_eq!(r.rate, Rate::per_second(4));
    }

    #[test]
    fn a_new_pid_or_a_smaller_uptime_is_a_reload_even_if_the_counter_grew() {
        let prev = s(0, 10, Some(100), Some(7));
        let r = reading(&prev, &s(5000, 50, Some(1), Some(9))).unwrap();
        assert!(r.reset);
        assert_eq!(r.increase, 50);
        assert_eq!(r.elapsed, Duration::from_millis(1500));
        let r = reading(&prev, &s(5000, 50, Some(1), None)).unwrap();
        assert!(r.reset, "uptime went down");
        let r = reading(&prev, &s(5000, 50, None, Some(8))).unwrap();
        assert!(r.reset, "pid changed");
        assert_eq!(r.elapsed, Duration::from_secs(5));
    }

    #[test]
    fn no_time_no_rate_and_the_old_base_is_kept() {
        assert_eq!(reading(&s(5, 1, None, None), &s(5, 9, None, None)), None);
        assert_eq!(reading(&s(5, 1, None, None), &s(1, 9, None, None)), None);
        let mut m = RateMeter::new();
        assert_eq!(m.update(s(1000, 10, None, None)), Err(NoRate::FirstReading));
        assert_eq!(m.update(s(1000, 20, None, None)), Err(NoRate::NoTimePassed));
        assert_eq!(
            m.update(s(500, 20, None, None)),
            Err(NoRate::NoTimePassed),
            "an older sample is ignored"
        );
        assert_eq!(m.last().unwrap().counter, 10, "the base is kept");
        let r = m.update(s(3000, 30, None, None)).unwrap();
        assert_eq!((r.increase, r.rate), (20, Rate::per_second(10)));
        // A reset, then an ordinary interval from the new base.
        let r = m.update(s(4000, 5, None, None)).unwrap();
        assert!(r.reset);
        assert_eq!((r.increase, r.rate), (5, Rate::per_second(5)));
        let r = m.update(s(5000, 6, None, None)).unwrap();
        assert_eq!(
            (r.increase, r.rate, r.reset),
            (1, Rate::per_second(1), false)
        );
    }

    #[test]
    fn several_sources_are_summed_once_all_have_a_reading() {
        let mut m = RateMeters::new();
        let c = m.update([("a", s(0, 0, None, None)), ("b", s(0, 100, None, None))]);
        assert_eq!(c.rate, None);
        let c = m.update([
            ("a", s(2000, 20, None, None)),
            ("b", s(2000, 160, None, None)),
        ]);
        assert_eq!(c.rate, Some(40.0));
        assert_eq!(c.increase, Some(80));
        // "b" fails this round: it keeps its sample, "a" alone is reported.
        let c = m.update([("a", s(4000, 40, None, None))]);
        assert_eq!(c.rate, Some(10.0));
        // A new source has no reading yet, so no total this round.
        let c = m.update([
            ("a", s(6000, 60, None, None)),
            ("b", s(6000, 200, None, None)),
            ("c", s(6000, 5, None, None)),
        ]);
        assert_eq!(c.rate, None);
        assert_eq!(
            c.readings[1].1.unwrap().rate,
            Rate::per_second(10),
            "b over 4 s"
        );
        m.forget(&"c");
        let c = m.update([("c", s(8000, 25, None, None))]);
        assert_eq!(c.rate, None, "forgotten: starts over");
        assert_eq!(m.update(Vec::new()).rate, None);
    }

    #[test]
    fn a_round_sums_the_sources_and_a_returning_one_counts_from_its_next_reading() {
        let c = |source, value, pid| Counter {
            source,
            value,
            pid: Some(pid),
            uptime_sec: None,
        };
        let at = Duration::from_secs;
        let mut m = RateMeters::new();
        assert_eq!(m.round(at(0), &[]), Err(NoRate::NoCounter));
        assert_eq!(
            m.round(at(0), &[c(0, 0, 1), c(1, 100, 2)]),
            Err(NoRate::FirstReading)
        );
        let r = m.round(at(5), &[c(0, 50, 1), c(1, 175, 2)]).unwrap();
        assert_eq!((r.increase, r.rate), (125, Rate::per_second(25)));
        // Instance 1 does not answer: instance 0 alone.
        let r = m.round(at(10), &[c(0, 100, 1)]).unwrap();
        assert_eq!((r.increase, r.rate), (50, Rate::per_second(10)));
        // It comes back with everything it counted meanwhile: not counted this round...
        let r = m.round(at(15), &[c(0, 150, 1), c(1, 100_000, 2)]).unwrap();
        assert_eq!((r.increase, r.rate), (50, Rate::per_second(10)));
        // ...and from the next one on.
        let r = m.round(at(20), &[c(0, 200, 1), c(1, 100_075, 2)]).unwrap();
        assert_eq!((r.increase, r.rate), (125, Rate::per_second(25)));
        // One reloaded 1 s ago (uptime known): each rate is reset-safe, then summed.
        let r = m
            .round(
                at(25),
                &[
                    c(0, 250, 1),
                    Counter {
                        source: 1,
                        value: 30,
                        pid: Some(3),
                        uptime_sec: Some(1),
                    },
                ],
            )
            .unwrap();
        assert!(r.reset);
        assert_eq!(r.increase, 80);
        assert_eq!(r.rate, Rate::per_second(10).plus(Rate::per_second(20)));
        assert_eq!(r.elapsed, at(5));
        // A lone source reads as the one-source meter does.
        let mut one = RateMeters::new();
        let mut single = RateMeter::new();
        for (t, v) in [(0, 0), (5, 40), (10, 10), (15, 60)] {
            assert_eq!(
                one.round(at(t), &[Counter::new(v)]),
                single.update(Counter::new(v).sample(at(t)))
            );
        }
    }

    #[test]
    fn readings_serialize_as_seconds_and_floats() {
        let r = reading(&s(0, 0, None, None), &s(2000, 5, None, None)).unwrap();
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["rate"], 2.5);
        assert_eq!(v["elapsed"], 2.0);
        assert_eq!(v["increase"], 5);
    }

    proptest! {
        #[test]
        fn never_beyond_its_window_and_exact(
            c0 in 0u64..1_000_000, c1 in 0u64..1_000_000,
            dt in 1u64..600_000,
            u0 in proptest::option::of(0u64..100_000), u1 in proptest::option::of(0u64..100_000),
            p0 in proptest::option::of(1u32..5), p1 in proptest::option::of(1u32..5),
        ) {
            let r = reading(&s(0, c0, u0, p0), &s(dt, c1, u1, p1)).unwrap();
            prop_assert!(r.elapsed <= r.interval);
            prop_assert!(r.elapsed >= r.interval.min(Duration::from_millis(500)));
            prop_assert!(r.increase <= c1);
            // rate × elapsed is the increase, exactly.
            prop_assert_eq!(Some(r.rate), Rate::from_count(r.increase, r.elapsed));
            if !r.reset {
                prop_assert_eq!(r.increase, c1 - c0);
            }
        }

        /// A constant load of `rate` req/s, reloads at random times, samples every
        /// `period`: every reading is the true rate, within the rounding of whole requests
        /// and whole uptime seconds.
        #[test]
        fn a_steady_load_reads_steady_across_reloads(
            rate in 1u32..500,
            period_ms in 1000u64..60_000,
            reload_at in proptest::collection::vec(0.0f64..1.0, 0..4),
        ) {
            let rate = f64::from(rate);
            let period = period_ms as f64 / 1000.0;
            // Reloads, each inside a distinct interval, as fractions of that interval.
            let reloads: Vec<f64> = reload_at.iter().enumerate()
                .map(|(i, f)| (2 * i + 1) as f64 * period + f * period).collect();
            let mut m = RateMeter::new();
            for k in 0..10u32 {
                let t = f64::from(k) * period;
                let started = reloads.iter().copied().filter(|r| *r <= t).fold(0.0, f64::max);
                let up = t - started;
                let sample = Sample {
                    counter: (rate * up).floor() as u64,
                    at: Duration::from_secs_f64(t),
                    uptime_sec: Some(up.floor() as u64),
                    pid: Some(reloads.iter().filter(|r| **r <= t).count() as u32),
                };
                if let Ok(r) = m.update(sample) {
                    let secs = r.elapsed.as_secs_f64();
                    let got = r.rate.to_f64();
                    if r.reset && up < 1.0 {
                        // Within the first second the uptime is 0: only "not huge" holds.
                        prop_assert!(got <= 2.0 * rate + 2.0);
                    } else if r.reset {
                        // Half a second of uptime uncertainty plus one whole request.
                        let tol = (rate * 0.5 + 1.0) / secs + 1e-9;
                        prop_assert!((got - rate).abs() <= tol,
                            "rate {} want {} elapsed {secs} up {up}", got, rate);
                    } else {
                        prop_assert!((got - rate).abs() <= 1.0 / secs + 1e-9,
                            "rate {} want {}", got, rate);
                    }
                }
            }
        }
    }
}
