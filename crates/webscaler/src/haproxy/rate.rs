//! The request rate from a cumulative counter, safe across reloads. Pure: no I/O, no clock.
//!
//! A [`Sample`] is a backend's cumulative counter (`stot` or `req_tot`), the monotonic instant
//! it was read at, and, when known, the answering process's `Pid` and `Uptime_sec` from
//! `show info`. Between two samples of the same process the increase is the difference and
//! the rate is the increase over the time between the samples (the seed's formula 1.1, on
//! the monotonic clock instead of a sleep time).
//!
//! HAProxy's counters belong to the worker, so a reload starts them again from 0. A reload is
//! recognised by the counter going down, the `Pid` changing, or `Uptime_sec` going down.
//! Then the new value is what the new worker counted since it started: it is the increase,
//! and it accrued over the new worker's uptime, not over the whole interval. `Uptime_sec` is
//! whole seconds (the true uptime is in `[u, u + 1)`), so the midpoint `u + 0.5 s` is used,
//! capped by the interval. The requests the old worker served between the previous sample
//! and the reload are not visible anywhere, so the increase is a lower bound, but the rate
//! is the new worker's rate: neither negative nor huge.
//!
//! Several HAProxy instances: [`RateMeters`] keeps one meter per source and sums the rates.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::StatRow;

/// Which cumulative counter of the backend row measures the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `stot`, as the seed used: on an HTTP backend, one session per request.
    #[default]
    Sessions,
    /// `req_tot`: HTTP requests.
    Requests,
}

impl Metric {
    /// The `show stat` column.
    pub fn column(self) -> &'static str {
        match self {
            Metric::Sessions => "stot",
            Metric::Requests => "req_tot",
        }
    }

    /// The counter in a row, if the row has it.
    pub fn counter(self, row: &StatRow) -> Option<u64> {
        match self {
            Metric::Sessions => row.stot,
            Metric::Requests => row.req_tot,
        }
    }
}

/// One reading of a cumulative counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The counter's value.
    pub counter: u64,
    /// When it was read, on the monotonic clock.
    pub at: Instant,
    /// `Uptime_sec` of the process that answered, if read.
    pub uptime_sec: Option<u64>,
    /// `Pid` of the process that answered, if read.
    pub pid: Option<u32>,
}

/// The rate between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
    /// `increase / elapsed`, per second.
    pub rate: f64,
    /// Whether a reload (counter reset) happened between the samples.
    pub reset: bool,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Whether HAProxy restarted its counters between `prev` and `cur`.
pub fn is_reset(prev: &Sample, cur: &Sample) -> bool {
    cur.counter < prev.counter
        || matches!((prev.pid, cur.pid), (Some(a), Some(b)) if a != b)
        || matches!((prev.uptime_sec, cur.uptime_sec), (Some(a), Some(b)) if b < a)
}

/// The reading between two samples of one source; `None` if no time passed.
pub fn reading(prev: &Sample, cur: &Sample) -> Option<Reading> {
    let interval = cur.at.checked_duration_since(prev.at)?;
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
    Some(Reading {
        increase,
        elapsed,
        interval,
        rate: increase as f64 / elapsed.as_secs_f64(),
        reset,
    })
}

/// The rate of one source: feed it samples, get readings.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    last: Option<Sample>,
}

impl RateMeter {
    /// A meter with no sample yet.
    pub fn new() -> RateMeter {
        RateMeter::default()
    }

    /// Takes a sample; returns the reading since the previous one (`None` for the first
    /// sample, or if the clock did not move). A sample older than the last one is ignored.
    pub fn update(&mut self, sample: Sample) -> Option<Reading> {
        match self.last {
            Some(prev) if sample.at < prev.at => None,
            Some(prev) => {
                let r = reading(&prev, &sample);
                self.last = Some(sample);
                r
            }
            None => {
                self.last = Some(sample);
                None
            }
        }
    }

    /// The last sample taken.
    pub fn last(&self) -> Option<&Sample> {
        self.last.as_ref()
    }
}

/// The result of one round over several sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined<K> {
    /// Each source of this round and its reading (`None` for a source's first sample).
    pub readings: Vec<(K, Option<Reading>)>,
    /// The sum of the rates; `None` unless every source of this round has a reading.
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
            let r = self.meters.entry(k.clone()).or_default().update(s);
            readings.push((k, r));
        }
        let complete = !readings.is_empty() && readings.iter().all(|(_, r)| r.is_some());
        let (rate, increase) = if complete {
            let rs = readings.iter().filter_map(|(_, r)| r.as_ref());
            (
                Some(rs.clone().map(|r| r.rate).sum()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(t0: Instant, ms: u64, counter: u64, uptime: Option<u64>, pid: Option<u32>) -> Sample {
        Sample {
            counter,
            at: t0 + Duration::from_millis(ms),
            uptime_sec: uptime,
            pid,
        }
    }

    #[test]
    fn the_seed_formula_between_two_samples() {
        let t0 = Instant::now();
        let r = reading(
            &s(t0, 0, 100, Some(60), Some(7)),
            &s(t0, 60_000, 700, Some(120), Some(7)),
        )
        .unwrap();
        assert_eq!(r.increase, 600);
        assert_eq!(r.rate, 10.0);
        assert_eq!(r.elapsed, Duration::from_secs(60));
        assert!(!r.reset);
    }

    #[test]
    fn a_counter_that_went_down_is_a_reload_bounded_by_the_uptime() {
        let t0 = Instant::now();
        // 5000 before; the reload happened 2 s before the next sample, which reads 40.
        let r = reading(
            &s(t0, 0, 5000, Some(300), Some(7)),
            &s(t0, 10_000, 40, Some(2), Some(8)),
        )
        .unwrap();
        assert!(r.reset);
        assert_eq!(r.increase, 40);
        assert_eq!(r.elapsed, Duration::from_millis(2500));
        assert_eq!(r.rate, 16.0);
        // Without show info, the whole interval is used: a lower bound, never huge.
        let r = reading(&s(t0, 0, 5000, None, None), &s(t0, 10_000, 40, None, None)).unwrap();
        assert!(r.reset);
        assert_eq!(r.rate, 4.0);
    }

    #[test]
    fn a_new_pid_or_a_smaller_uptime_is_a_reload_even_if_the_counter_grew() {
        let t0 = Instant::now();
        let prev = s(t0, 0, 10, Some(100), Some(7));
        let r = reading(&prev, &s(t0, 5000, 50, Some(1), Some(9))).unwrap();
        assert!(r.reset);
        assert_eq!(r.increase, 50);
        assert_eq!(r.elapsed, Duration::from_millis(1500));
        let r = reading(&prev, &s(t0, 5000, 50, Some(1), None)).unwrap();
        assert!(r.reset, "uptime went down");
        let r = reading(&prev, &s(t0, 5000, 50, None, Some(8))).unwrap();
        assert!(r.reset, "pid changed");
        assert_eq!(r.elapsed, Duration::from_secs(5));
    }

    #[test]
    fn no_time_no_rate() {
        let t0 = Instant::now();
        assert_eq!(
            reading(&s(t0, 5, 1, None, None), &s(t0, 5, 9, None, None)),
            None
        );
        assert_eq!(
            reading(&s(t0, 5, 1, None, None), &s(t0, 1, 9, None, None)),
            None
        );
        let mut m = RateMeter::new();
        assert_eq!(m.update(s(t0, 1000, 1, None, None)), None, "first sample");
        assert_eq!(
            m.update(s(t0, 500, 1, None, None)),
            None,
            "older sample ignored"
        );
        assert_eq!(m.last().unwrap().at, t0 + Duration::from_millis(1000));
        assert_eq!(m.update(s(t0, 3000, 21, None, None)).unwrap().rate, 10.0);
    }

    #[test]
    fn several_sources_are_summed_once_all_have_a_reading() {
        let t0 = Instant::now();
        let mut m = RateMeters::new();
        let c = m.update([
            ("a", s(t0, 0, 0, None, None)),
            ("b", s(t0, 0, 100, None, None)),
        ]);
        assert_eq!(c.rate, None);
        let c = m.update([
            ("a", s(t0, 2000, 20, None, None)),
            ("b", s(t0, 2000, 160, None, None)),
        ]);
        assert_eq!(c.rate, Some(40.0));
        assert_eq!(c.increase, Some(80));
        // "b" fails this round: it keeps its sample, "a" alone is reported.
        let c = m.update([("a", s(t0, 4000, 40, None, None))]);
        assert_eq!(c.rate, Some(10.0));
        // A new source has no reading yet, so no total this round.
        let c = m.update([
            ("a", s(t0, 6000, 60, None, None)),
            ("b", s(t0, 6000, 200, None, None)),
            ("c", s(t0, 6000, 5, None, None)),
        ]);
        assert_eq!(c.rate, None);
        assert_eq!(c.readings[1].1.unwrap().rate, 10.0, "b over 4 s");
        m.forget(&"c");
        let c = m.update([("c", s(t0, 8000, 25, None, None))]);
        assert_eq!(c.rate, None, "forgotten: starts over");
        assert_eq!(m.update(Vec::new()).rate, None);
    }

    proptest! {
        #[test]
        fn never_negative_never_nan_never_beyond_its_window(
            c0 in 0u64..1_000_000, c1 in 0u64..1_000_000,
            dt in 1u64..600_000,
            u0 in proptest::option::of(0u64..100_000), u1 in proptest::option::of(0u64..100_000),
            p0 in proptest::option::of(1u32..5), p1 in proptest::option::of(1u32..5),
        ) {
            let t0 = Instant::now();
            let r = reading(&s(t0, 0, c0, u0, p0), &s(t0, dt, c1, u1, p1)).unwrap();
            prop_assert!(r.rate.is_finite() && r.rate >= 0.0);
            prop_assert!(r.elapsed <= r.interval);
            prop_assert!(r.elapsed >= r.interval.min(Duration::from_millis(500)));
            prop_assert!(r.increase <= c1);
            prop_assert!((r.rate * r.elapsed.as_secs_f64() - r.increase as f64).abs() < 1e-6 * (1.0 + r.increase as f64));
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
            let t0 = Instant::now();
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
                    at: t0 + Duration::from_secs_f64(t),
                    uptime_sec: Some(up.floor() as u64),
                    pid: Some(reloads.iter().filter(|r| **r <= t).count() as u32),
                };
                if let Some(r) = m.update(sample) {
                    let secs = r.elapsed.as_secs_f64();
                    if r.reset && up < 1.0 {
                        // Within the first second the uptime is 0: only "not huge" holds.
                        prop_assert!(r.rate <= 2.0 * rate + 2.0);
                    } else if r.reset {
                        // Half a second of uptime uncertainty plus one whole request.
                        let tol = (rate * 0.5 + 1.0) / secs + 1e-9;
                        prop_assert!((r.rate - rate).abs() <= tol,
                            "rate {} want {} elapsed {secs} up {up}", r.rate, rate);
                    } else {
                        prop_assert!((r.rate - rate).abs() <= 1.0 / secs + 1e-9,
                            "rate {} want {}", r.rate, rate);
                    }
                }
            }
        }
    }
}
