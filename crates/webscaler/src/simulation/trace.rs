//! Request-rate traces: the load a policy is simulated against (`webscaler simulate`).
//!
//! A trace is a step function of time: each row `seconds,rate` sets the request rate (req/s)
//! from `seconds` until the next row. **The last row marks the end of the trace**; its rate is
//! not used (write the final rate again, or 0). Times are seconds from the start of the trace
//! with at most nine decimals and strictly increasing; before the first row the rate is 0.
//!
//! ```csv
//! seconds,rate
//! 0,15
//! 600,75
//! 1800,15
//! 3000,15
//! ```
//!
//! Rates are kept exactly, in billionths of a request per second, so the requests a trace
//! sends up to any time (its integral, the balancer's counter in a simulation) is exact too.
//!
//! A trace can also come from a staged load profile ([`Trace::from_profile`]): the rate at each
//! moment is the sum of the rates of the stages running then, and a stage runs for
//! `num_conns / rate` seconds from its start.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use common::profile::Profile;

use crate::rate::{DecimalError, Rate, format_fraction, parse_decimal};

const NANOS: u128 = 1_000_000_000;

/// A trace that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A line of the file is wrong.
    #[error("{origin}:{line}: {message}")]
    Line {
        /// The file (or the name the caller gave the text).
        origin: String,
        /// The line number, from 1.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The trace as a whole is wrong (too short, a profile stage that cannot be represented).
    #[error("{origin}: {message}")]
    Invalid {
        /// The file or name.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The profile could not be read.
    #[error(transparent)]
    Profile(#[from] common::profile::ProfileError),
}

/// A request-rate trace: a step function of time, exact to 10^-9 req/s and 1 ns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Segment starts (strictly increasing, the first at 0) and their rates in 10^-9 req/s.
    steps: Vec<(Duration, u64)>,
    /// When the trace ends (after the last segment start).
    end: Duration,
    /// Requests (in 10^-18 units) sent before each segment starts.
    before: Vec<u128>,
}

impl Trace {
    /// A trace from segment starts and rates (in 10^-9 req/s) and its end. Starts must be
    /// strictly increasing and before `end`; a first start after 0 gets a zero-rate segment
    /// before it. Consecutive segments of the same rate are merged.
    pub fn new(steps: Vec<(Duration, u64)>, end: Duration) -> Result<Trace, String> {
        if steps.is_empty() {
            return Err("a trace needs at least one segment".into());
        }
        for w in steps.windows(2) {
            if w[1].0 <= w[0].0 {
                return Err(format!(
                    "times must increase: {} s is not after {} s",
                    secs_text(w[1].0),
                    secs_text(w[0].0)
                ));
            }
        }
        let last = steps[steps.len() - 1].0;
        if end <= last {
            return Err(format!(
                "the end ({} s) must be after the last segment start ({} s)",
                secs_text(end),
                secs_text(last)
            ));
        }
        let mut merged: Vec<(Duration, u64)> = Vec::with_capacity(steps.len() + 1);
        if steps[0].0 > Duration::ZERO {
            merged.push((Duration::ZERO, 0));
        }
        for (t, r) in steps {
            if merged.last().is_some_and(|&(_, prev)| prev == r) {
                continue;
            }
            merged.push((t, r));
        }
        let mut before = Vec::with_capacity(merged.len());
        let mut acc: u128 = 0;
        for (i, &(t, r)) in merged.iter().enumerate() {
            before.push(acc);
            let next = merged.get(i + 1).map_or(end, |s| s.0);
            acc += u128::from(r) * (next - t).as_nanos();
        }
        Ok(Trace {
            steps: merged,
            end,
            before,
        })
    }

    /// A constant rate from 0 to `end`.
    pub fn constant(rate_nanos: u64, end: Duration) -> Trace {
        Trace {
            steps: vec![(Duration::ZERO, rate_nanos)],
            end,
            before: vec![0],
        }
    }

    /// When the trace ends.
    pub fn end(&self) -> Duration {
        self.end
    }

    /// The segments: (start, end, rate).
    pub fn segments(&self) -> impl Iterator<Item = (Duration, Duration, Rate)> + '_ {
        self.steps.iter().enumerate().map(|(i, &(t, r))| {
            let next = self.steps.get(i + 1).map_or(self.end, |s| s.0);
            (t, next, Rate::from_nanos_per_sec(r))
        })
    }

    fn index_at(&self, t: Duration) -> usize {
        // The last segment starting at or before t (the first starts at 0).
        self.steps
            .partition_point(|&(s, _)| s <= t)
            .saturating_sub(1)
    }

    /// The rate at time `t` (the last segment's rate from its start on, also past the end).
    pub fn rate_at(&self, t: Duration) -> Rate {
        Rate::from_nanos_per_sec(self.steps[self.index_at(t)].1)
    }

    /// Requests sent from 0 to `t` (clamped to the end), rounded down: the balancer's counter.
    pub fn requests_until(&self, t: Duration) -> u64 {
        let t = t.min(self.end);
        let i = self.index_at(t);
        let (start, r) = self.steps[i];
        let total = self.before[i] + u128::from(r) * (t - start).as_nanos();
        u64::try_from(total / (NANOS * NANOS)).unwrap_or(u64::MAX)
    }

    /// The part from `from` on, its times shifted so that `from` is 0; `None` unless `from`
    /// is before the end.
    pub fn after(&self, from: Duration) -> Option<Trace> {
        if from >= self.end {
            return None;
        }
        let i = self.index_at(from);
        let mut steps = vec![(Duration::ZERO, self.steps[i].1)];
        steps.extend(self.steps[i + 1..].iter().map(|&(t, r)| (t - from, r)));
        Trace::new(steps, self.end - from).ok()
    }

    /// The part before `until`; `None` unless `until` is after 0 (and at most the end).
    pub fn before(&self, until: Duration) -> Option<Trace> {
        let until = until.min(self.end);
        if until.is_zero() {
            return None;
        }
        let steps: Vec<(Duration, u64)> = self
            .steps
            .iter()
            .copied()
            .take_while(|&(t, _)| t < until)
            .collect();
        Trace::new(steps, until).ok()
    }

    /// The highest rate in the trace.
    pub fn peak(&self) -> Rate {
        Rate::from_nanos_per_sec(self.steps.iter().map(|s| s.1).max().unwrap_or(0))
    }

    /// The servers `needed` at each segment's rate ([`crate::policy::Config::needed`]), as a
    /// step function of time: the demand a simulation is scored against.
    pub fn demand(&self, needed: impl Fn(Rate) -> u32) -> Vec<(Duration, u32)> {
        let mut out: Vec<(Duration, u32)> = Vec::with_capacity(self.steps.len());
        for (t, _, rate) in self.segments() {
            let d = needed(rate);
            if out.last().is_none_or(|&(_, prev)| prev != d) {
                out.push((t, d));
            }
        }
        out
    }

    /// Reads a `seconds,rate` CSV file (see the module documentation).
    pub fn load(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Trace::parse_csv(&text, &path.display().to_string())
    }

    /// Parses `seconds,rate` CSV text; `origin` names it in errors. The header line
    /// `seconds,rate` is optional.
    pub fn parse_csv(text: &str, origin: &str) -> Result<Trace, TraceError> {
        let line_err = |line: u64, message: String| TraceError::Line {
            origin: origin.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut rows: Vec<(Duration, u64)> = Vec::new();
        let mut first = true;
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                line_err(line, format!("not CSV: {e}"))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if first {
                first = false;
                if record
                    .get(0)
                    .is_some_and(|f| f.eq_ignore_ascii_case("seconds"))
                {
                    let header: Vec<&str> = record.iter().collect();
                    if header != ["seconds", "rate"] {
                        return Err(line_err(
                            line,
                            format!(
                                "the header must be `seconds,rate`, not `{}`",
                                header.join(",")
                            ),
                        ));
                    }
                    continue;
                }
            }
            if record.len() != 2 {
                return Err(line_err(
                    line,
                    format!("expected 2 fields `seconds,rate`, found {}", record.len()),
                ));
            }
            let at =
                parse_seconds(&record[0]).map_err(|e| line_err(line, format!("seconds: {e}")))?;
            let rate = parse_nanos(&record[1]).map_err(|e| line_err(line, format!("rate: {e}")))?;
            if let Some(&(prev, _)) = rows.last()
                && at <= prev
            {
                return Err(line_err(
                    line,
                    format!(
                        "seconds must increase: {} is not after {}",
                        secs_text(at),
                        secs_text(prev)
                    ),
                ));
            }
            rows.push((at, rate));
        }
        if rows.len() < 2 {
            return Err(TraceError::Invalid {
                origin: origin.to_string(),
                message: format!(
                    "a trace needs at least two rows (the last one marks its end), found {}",
                    rows.len()
                ),
            });
        }
        let (end, _) = rows.pop().unwrap_or_default();
        Trace::new(rows, end).map_err(|message| TraceError::Invalid {
            origin: origin.to_string(),
            message,
        })
    }

    /// The trace as `seconds,rate` CSV text, with a header; [`Trace::parse_csv`] reads it back.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("seconds,rate\n");
        for &(t, r) in &self.steps {
            out.push_str(&format!("{},{}\n", secs_text(t), nanos_text(r)));
        }
        let last = self.steps[self.steps.len() - 1].1;
        out.push_str(&format!("{},{}\n", secs_text(self.end), nanos_text(last)));
        out
    }

    /// The request rate a staged load profile produces: at each moment the sum of the rates of
    /// the stages running, a stage running for `num_conns / rate` seconds (rounded to the
    /// nanosecond) from its start. The trace ends when the last stage ends.
    pub fn from_profile(profile: &Profile, origin: &str) -> Result<Trace, TraceError> {
        let invalid = |message: String| TraceError::Invalid {
            origin: origin.to_string(),
            message,
        };
        // (time, +rate) at starts and (time, -rate) at ends.
        let mut events: Vec<(Duration, i128)> = Vec::new();
        for (i, stage) in profile.stages.iter().enumerate() {
            let n = i + 1;
            let start = parse_seconds(&format!("{}", stage.start))
                .map_err(|e| invalid(format!("stage {n}: start: {e}")))?;
            let rate = parse_nanos(&format!("{}", stage.rate))
                .map_err(|e| invalid(format!("stage {n}: rate: {e}")))?;
            if rate == 0 {
                return Err(invalid(format!("stage {n}: rate must be > 0")));
            }
            // duration = num_conns / rate s = num_conns * 10^18 / rate_nanos ns, rounded.
            let rate = u128::from(rate);
            let ns = (u128::from(stage.num_conns) * NANOS * NANOS + rate / 2) / rate;
            let ns =
                u64::try_from(ns).map_err(|_| invalid(format!("stage {n}: lasts too long")))?;
            let end = start + Duration::from_nanos(ns);
            events.push((start, rate as i128));
            events.push((end, -(rate as i128)));
        }
        events.sort_by_key(|e| e.0);
        let end = events.last().map(|e| e.0).unwrap_or_default();
        let mut steps: Vec<(Duration, u64)> = Vec::new();
        let mut level: i128 = 0;
        let mut i = 0;
        while i < events.len() {
            let t = events[i].0;
            while i < events.len() && events[i].0 == t {
                level += events[i].1;
                i += 1;
            }
            if t < end {
                let r = u64::try_from(level)
                    .map_err(|_| invalid("the summed rate is too large".into()))?;
                steps.push((t, r));
            }
        }
        if steps.is_empty() {
            return Err(invalid("the profile has no duration".into()));
        }
        Trace::new(steps, end).map_err(invalid)
    }

    /// Reads a profile file and turns it into a trace.
    pub fn load_profile(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
        let path = path.as_ref();
        let profile = Profile::load(path)?;
        Trace::from_profile(&profile, &path.display().to_string())
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segments over {} s, peak {} req/s",
            self.steps.len(),
            secs_text(self.end),
            self.peak()
        )
    }
}

/// Reads a number of seconds (at most nine decimals) as a duration.
fn parse_seconds(text: &str) -> Result<Duration, DecimalError> {
    let (m, scale) = parse_decimal(text, 9)?;
    let ns = m
        .checked_mul(10u128.pow(9 - scale))
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| DecimalError::TooLarge(text.trim().to_string()))?;
    Ok(Duration::from_nanos(ns))
}

/// Reads a rate in req/s (at most nine decimals) in billionths of a request per second.
fn parse_nanos(text: &str) -> Result<u64, DecimalError> {
    let (m, scale) = parse_decimal(text, 9)?;
    m.checked_mul(10u128.pow(9 - scale))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| DecimalError::TooLarge(text.trim().to_string()))
}

fn secs_text(d: Duration) -> String {
    format_fraction(d.as_nanos(), NANOS, 9)
}

fn nanos_text(n: u64) -> String {
    format_fraction(u128::from(n), NANOS, 9)
}

/// Deterministic synthetic traces for tests and benchmarks (rates in req/s as decimals).
pub mod synthetic {
    use super::*;

    fn nanos(rate: f64) -> u64 {
        // Rates here are written by us with at most 3 decimals; round to 10^-3 req/s.
        ((rate * 1000.0).round().max(0.0) as u64) * 1_000_000
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `rate` req/s from 0 to `end` seconds.
    pub fn constant(rate: f64, end: u64) -> Trace {
        Trace::constant(nanos(rate), secs(end))
    }

    /// `low` req/s, then `high` from `up` to `down` seconds, then `low` again until `end`.
    pub fn step(low: f64, high: f64, up: u64, down: u64, end: u64) -> Trace {
        Trace::new(
            vec![
                (secs(0), nanos(low)),
                (secs(up), nanos(high)),
                (secs(down), nanos(low)),
            ],
            secs(end),
        )
        .unwrap_or_else(|e| panic!("synthetic::step({up}, {down}, {end}): {e}"))
    }

    /// `base` req/s with one spike to `peak` from `at` for `width` seconds, until `end`.
    pub fn spike(base: f64, peak: f64, at: u64, width: u64, end: u64) -> Trace {
        step(base, peak, at, at + width, end)
    }

    /// From `from` req/s at `start` linearly up to `to` at `top`, then back down to `from`
    /// at `top + (top - start)`, in steps of `every` seconds; `from` outside, until `end`.
    pub fn ramp(from: f64, to: f64, start: u64, top: u64, every: u64, end: u64) -> Trace {
        let mut steps = vec![(secs(0), nanos(from))];
        let rise = (top - start) as f64;
        let mut t = start;
        while t < top + (top - start) && t < end {
            let x = if t <= top {
                (t - start) as f64 / rise
            } else {
                1.0 - (t - top) as f64 / rise
            };
            steps.push((secs(t), nanos(from + (to - from) * x)));
            t += every;
        }
        if t < end {
            steps.push((secs(t), nanos(from)));
        }
        steps.dedup_by_key(|s| s.0);
        Trace::new(steps, secs(end)).unwrap_or_else(|e| panic!("synthetic::ramp: {e}"))
    }

    /// `mean` req/s with uniform noise of ± `fraction` (0.05 for ±5%), a new value every
    /// `every` seconds, until `end`; the same `seed` gives the same trace.
    pub fn noisy(mean: f64, fraction: f64, every: u64, end: u64, seed: u64) -> Trace {
        let mut rng = SplitMix64(seed);
        let mut steps = Vec::new();
        let mut t = 0;
        while t < end {
            let u = rng.unit() * 2.0 - 1.0;
            steps.push((secs(t), nanos(mean * (1.0 + fraction * u))));
            t += every;
        }
        Trace::new(steps, secs(end)).unwrap_or_else(|e| panic!("synthetic::noisy: {e}"))
    }

    /// `high` req/s with dips to `low` of the given lengths (seconds), each dip `every`
    /// seconds after the previous one starts, the first at `every`; `high` until `end`.
    pub fn dips(high: f64, low: f64, lengths: &[u64], every: u64, end: u64) -> Trace {
        let mut steps = vec![(secs(0), nanos(high))];
        for (i, &len) in lengths.iter().enumerate() {
            let at = every * (i as u64 + 1);
            steps.push((secs(at), nanos(low)));
            steps.push((secs(at + len), nanos(high)));
        }
        Trace::new(steps, secs(end)).unwrap_or_else(|e| panic!("synthetic::dips: {e}"))
    }

    /// A day's load: from `low` req/s at midnight up to `high` at midday and back (a cosine),
    /// with uniform noise of ± `fraction`, a new value every `every` seconds, for `end`
    /// seconds; the same `seed` gives the same trace.
    pub fn diurnal(low: f64, high: f64, fraction: f64, every: u64, end: u64, seed: u64) -> Trace {
        let mut rng = SplitMix64(seed);
        let mut steps = Vec::new();
        let mut t = 0;
        while t < end {
            let phase = 2.0 * std::f64::consts::PI * t as f64 / 86_400.0;
            let mean = low + (high - low) * (1.0 - phase.cos()) / 2.0;
            let u = rng.unit() * 2.0 - 1.0;
            steps.push((secs(t), nanos(mean * (1.0 + fraction * u))));
            t += every;
        }
        Trace::new(steps, secs(end)).unwrap_or_else(|e| panic!("synthetic::diurnal: {e}"))
    }

    /// Several days of a daily shape: a night floor of about 8 req/s, a late-morning hump to
    /// about 70 req/s at 11:00 and an evening peak of about 110 req/s at 20:30 (Gaussian
    /// bumps in the time of day), each day scaled by `1 ± day_spread`, with uniform noise of
    /// ± `fraction`, a new value every minute. Day `anomalous` (from 0) has a flash crowd,
    /// 2.5 × the rate from 13:00 to 16:00, and an outage, a fifth of it from 03:00 to 05:00.
    /// Second 0 is midnight; the same `seed` gives the same trace.
    pub fn days(days: u64, day_spread: f64, fraction: f64, anomalous: u64, seed: u64) -> Trace {
        let bump = |h: f64, at: f64, width: f64| {
            let d = (h - at).abs();
            let d = d.min(24.0 - d);
            (-d * d / (2.0 * width * width)).exp()
        };
        let mut rng = SplitMix64(seed);
        let mut steps = Vec::new();
        for day in 0..days {
            let factor = 1.0 + day_spread * (rng.unit() * 2.0 - 1.0);
            for minute in 0..1440u64 {
                let h = minute as f64 / 60.0;
                let mut mean = 6.0 + 64.0 * bump(h, 11.0, 2.5) + 104.0 * bump(h, 20.5, 1.8);
                if day == anomalous {
                    if (13.0..16.0).contains(&h) {
                        mean *= 2.5;
                    } else if (3.0..5.0).contains(&h) {
                        mean /= 5.0;
                    }
                }
                let u = rng.unit() * 2.0 - 1.0;
                steps.push((
                    secs(day * 86_400 + minute * 60),
                    nanos(factor * mean * (1.0 + fraction * u)),
                ));
            }
        }
        Trace::new(steps, secs(days * 86_400)).unwrap_or_else(|e| panic!("synthetic::days: {e}"))
    }

    /// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator.
    pub struct SplitMix64(pub u64);

    impl SplitMix64 {
        /// The next 64 random bits.
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A float uniform in [0, 1).
        pub fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The synthetic traces shipped in `benches-data/` (file name, trace), as used to choose
    /// the policy's defaults (docs/webscaler-policy.md) and by `scripts/bench-scaler.sh`.
    pub fn shipped() -> Vec<(&'static str, Trace)> {
        vec![
            // 15 req/s (2 servers), a step to 75 (8 servers) for 20 min, back to 15.
            ("trace-step.csv", step(15.0, 75.0, 600, 1800, 3000)),
            // 20 req/s with a 2-minute spike to 120.
            ("trace-spike.csv", spike(20.0, 120.0, 900, 120, 2400)),
            // 5 → 120 req/s over 20 min and back, in 30-s steps.
            ("trace-ramp.csv", ramp(5.0, 120.0, 300, 1500, 30, 3300)),
            // 50 req/s ± 5%, a new value every 5 s, for an hour (exactly 5 servers at the mean).
            ("trace-noisy.csv", noisy(50.0, 0.05, 5, 3600, 1)),
            // 75 req/s (8 servers) with dips to 25 (3 servers) of 30 s to 5 min, every 10 min.
            (
                "trace-dips.csv",
                dips(75.0, 25.0, &[30, 60, 90, 120, 180, 300], 600, 4200),
            ),
            // A day: 10 req/s at midnight, 120 at midday, ± 5 %, a new value every minute.
            ("trace-day.csv", diurnal(10.0, 120.0, 0.05, 60, 86_400, 1)),
            // Five days of two peaks (70 req/s at 11:00, 110 at 20:30), days ± 5 %, minutes
            // ± 8 %; day 2 has a flash crowd and an outage. `simulate --from 4d` scores the
            // last day, `--learn` learns the first four.
            ("trace-days.csv", days(5, 0.05, 0.08, 2, 1)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::profile::Profile;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }
    fn rps(x: u64) -> u64 {
        x * 1_000_000_000
    }

    #[test]
    fn csv_rows_are_steps_and_the_last_row_ends_the_trace() {
        let t = Trace::parse_csv("seconds,rate\n0,10\n60,20.5\n120,0\n", "t.csv").unwrap();
        assert_eq!(t.end(), s(120));
        assert_eq!(t.rate_at(s(0)), Rate::per_second(10));
        assert_eq!(t.rate_at(s(59)), Rate::per_second(10));
        assert_eq!(t.rate_at(s(60)), Rate::parse("20.5").unwrap());
        assert_eq!(t.requests_until(s(60)), 600);
        assert_eq!(t.requests_until(s(61)), 620); // 620.5 rounded down
        assert_eq!(t.requests_until(s(120)), 600 + 1230);
        assert_eq!(t.requests_until(s(1000)), 1830); // clamped to the end
        let segs: Vec<_> = t.segments().collect();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1], (s(60), s(120), Rate::parse("20.5").unwrap()));
    }

    #[test]
    fn header_is_optional_and_the_text_round_trips() {
        let t = Trace::parse_csv("0,1.25\n\n30.5,2\n90,2\n", "t").unwrap();
        assert_eq!(t.end(), s(90));
        let again = Trace::parse_csv(&t.to_csv(), "again").unwrap();
        assert_eq!(t, again);
        assert_eq!(t.to_csv(), "seconds,rate\n0,1.25\n30.5,2\n90,2\n");
    }

    #[test]
    fn a_trace_cuts_into_before_and_after() {
        let t = Trace::parse_csv("0,10\n60,20\n120,30\n180,0\n", "t").unwrap();
        let a = t.after(s(90)).unwrap();
        assert_eq!(a.to_csv(), "seconds,rate\n0,20\n30,30\n90,30\n");
        assert_eq!(
            t.after(s(120)).unwrap().to_csv(),
            "seconds,rate\n0,30\n60,30\n"
        );
        assert!(t.after(s(180)).is_none());
        let b = t.before(s(90)).unwrap();
        assert_eq!(b.to_csv(), "seconds,rate\n0,10\n60,20\n90,20\n");
        assert_eq!(
            b.requests_until(s(90)) + a.requests_until(a.end()),
            t.requests_until(t.end())
        );
        assert!(t.before(Duration::ZERO).is_none());
        assert_eq!(t.before(s(500)).unwrap(), t);
    }

    #[test]
    fn a_first_row_after_zero_means_no_load_before_it() {
        let t = Trace::parse_csv("10,5\n20,5\n", "t").unwrap();
        assert_eq!(t.rate_at(s(5)), Rate::ZERO);
        assert_eq!(t.requests_until(s(20)), 50);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            (
                "seconds,rate\n0,1\nx,2\n",
                "t.csv:3: seconds: `x` is not a decimal number",
            ),
            (
                "0,1\n0,2\n",
                "t.csv:2: seconds must increase: 0 is not after 0",
            ),
            ("0,1\n5,-2\n", "t.csv:2: rate: `-2` is negative"),
            (
                "0,1\n5\n",
                "t.csv:2: expected 2 fields `seconds,rate`, found 1",
            ),
            (
                "0,1\n5,1,3\n",
                "t.csv:2: expected 2 fields `seconds,rate`, found 3",
            ),
            (
                "seconds,req\n0,1\n",
                "t.csv:1: the header must be `seconds,rate`, not `seconds,req`",
            ),
            (
                "0,1\n",
                "t.csv: a trace needs at least two rows (the last one marks its end), found 1",
            ),
            (
                "seconds,rate\n",
                "t.csv: a trace needs at least two rows (the last one marks its end), found 0",
            ),
            (
                "0,1\n1,0.0000000001\n",
                "t.csv:2: rate: `0.0000000001` has more than 9 decimals",
            ),
        ];
        for (text, want) in cases {
            let got = Trace::parse_csv(text, "t.csv").unwrap_err().to_string();
            assert!(
                got.starts_with(want),
                "{text:?}: got {got:?}, want {want:?}"
            );
        }
        let e = Trace::load("/nonexistent/trace.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/trace.csv: "), "{e}");
    }

    #[test]
    fn the_seed_profile_sums_its_stages() {
        // The lab report's load generator (its listing 1.2).
        let p = Profile::parse(
            r#"
[[stage]]
start = 0
rate = 1
num_conns = 1200
[[stage]]
start = 120
rate = 10
num_conns = 4800
[[stage]]
start = 180
rate = 10
num_conns = 3600
[[stage]]
start = 240
rate = 10
num_conns = 3000
[[stage]]
start = 300
rate = 40
num_conns = 9600
[[stage]]
start = 420
rate = 10
num_conns = 4800
[[stage]]
start = 420
rate = 10
num_conns = 4800
[[stage]]
start = 420
rate = 40
num_conns = 9600
"#,
            "seed",
        )
        .unwrap();
        let t = Trace::from_profile(&p, "seed").unwrap();
        let got: Vec<(u64, u64)> = t
            .segments()
            .map(|(a, _, r)| (a.as_secs(), r.ceil() as u64))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 1),
                (120, 11),
                (180, 21),
                (240, 31),
                (300, 71),
                (420, 131),
                (540, 71),
                (600, 61),
                (660, 21),
                (900, 1),
            ]
        );
        assert_eq!(t.end(), s(1200));
        // Total requests = total connections.
        assert_eq!(
            t.requests_until(t.end()),
            1200 + 4800 + 3600 + 3000 + 9600 + 4800 + 4800 + 9600
        );
    }

    #[test]
    fn profile_stage_lengths_are_rounded_to_the_nanosecond() {
        let p = Profile::parse("[[stage]]\nstart = 0.5\nrate = 3\nnum_conns = 100\n", "p").unwrap();
        let t = Trace::from_profile(&p, "p").unwrap();
        assert_eq!(t.end(), Duration::from_nanos(500_000_000 + 33_333_333_333));
        assert_eq!(t.rate_at(s(0)), Rate::ZERO);
        assert_eq!(t.rate_at(s(1)), Rate::per_second(3));
        assert_eq!(t.requests_until(t.end()), 99); // 99.999999999 rounded down
    }

    #[test]
    fn demand_is_clamped_ceil_of_rate_over_threshold() {
        let t = Trace::new(
            vec![
                (s(0), 0),
                (s(10), rps(30)),
                (s(20), rps(31)),
                (s(30), rps(200)),
            ],
            s(40),
        )
        .unwrap();
        let seed = crate::policy::Config::default(); // threshold 10, min 2
        assert_eq!(
            t.demand(|r| seed.needed(r, Some(13))),
            vec![(s(0), 2), (s(10), 3), (s(20), 4), (s(30), 13)]
        );
    }

    #[test]
    fn the_shipped_synthetic_trace_files_match_their_generators() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches-data");
        for (name, trace) in synthetic::shipped() {
            let file = Trace::load(dir.join(name)).unwrap();
            assert_eq!(
                file, trace,
                "{name}: run `cargo run -p webscaler --example write-synthetic-traces`"
            );
        }
    }

    #[test]
    fn the_seed_profile_is_the_seed_trace_earlier() {
        // The profile (listing 1.2) and the measured trace (listing 1.7) describe the same
        // load: the same peak of about 131 req/s.
        let text = include_str!("../../../../benches-data/seed-profile.toml");
        let p = Profile::parse(text, "seed-profile.toml").unwrap();
        let from_profile = Trace::from_profile(&p, "seed-profile.toml").unwrap();
        let measured = Trace::parse_csv(
            include_str!("../../../../benches-data/seed-trace.csv"),
            "seed-trace.csv",
        )
        .unwrap();
        assert_eq!(from_profile.peak().ceil(), 131);
        assert_eq!(measured.peak().ceil(), 132);
        assert_eq!(from_profile.end(), s(1200));
    }

    #[test]
    fn synthetic_traces_are_deterministic_and_shaped() {
        let a = synthetic::noisy(50.0, 0.05, 5, 600, 7);
        let b = synthetic::noisy(50.0, 0.05, 5, 600, 7);
        assert_eq!(a, b);
        assert_ne!(a, synthetic::noisy(50.0, 0.05, 5, 600, 8));
        for (_, _, r) in a.segments() {
            let x = r.to_f64();
            assert!((47.5..=52.5).contains(&x), "{x}");
        }
        let r = synthetic::ramp(5.0, 120.0, 300, 1500, 30, 3300);
        assert_eq!(r.rate_at(s(0)).to_f64(), 5.0);
        assert_eq!(r.rate_at(s(1500)).to_f64(), 120.0);
        assert_eq!(r.rate_at(s(2750)).to_f64(), 5.0);
        assert_eq!(r.peak().to_f64(), 120.0);
        let day = synthetic::diurnal(10.0, 120.0, 0.05, 60, 86_400, 1);
        assert_eq!(day.end(), s(86_400));
        let near = |t: u64, mean: f64| {
            let x = day.rate_at(s(t)).to_f64();
            assert!((x - mean).abs() <= mean * 0.05 + 1e-3, "{t}: {x}");
        };
        near(0, 10.0);
        near(43_200, 120.0);
        near(21_600, 65.0);
        let sp = synthetic::spike(20.0, 120.0, 900, 120, 2400);
        assert_eq!(sp.rate_at(s(1019)).to_f64(), 120.0);
        assert_eq!(sp.rate_at(s(1020)).to_f64(), 20.0);
    }
}
