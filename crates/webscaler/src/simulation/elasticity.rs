//! Elasticity metrics of the SPEC Research Group (Herbst et al., "Ready for Rain?",
//! SPEC-RG-2016-01; ACM TOMPECS 2018), computed as BUNGEE computes them.
//!
//! Demand `d(t)` (servers the load needs) and supply `s(t)` (servers serving) are step
//! functions given as their change points. Over the duration `T`:
//!
//! - `accuracy_U = ∫ (d − s)⁺ dt / T` and `accuracy_O = ∫ (s − d)⁺ dt / T`, in servers: the
//!   average shortfall and the average excess;
//! - `timeshare_U` and `timeshare_O`: the fraction of `T` with `s < d`, and with `s > d`;
//! - `jitter = (supply events − demand events) / T`, per minute, an event being a change of
//!   one unit (a step from 2 to 5 is three events): negative when supply is more inert than
//!   demand, positive when it moves more (flaps).
//!
//! The integrals run over segments whose boundaries are the union of both series' change
//! times; each series holds its last value until the later of the two ends (BUNGEE's
//! `AbstractAreaDuration`), so `T = max(ends) − start`, and both series must start at the same
//! time. Areas and times are summed exactly (server × nanoseconds in `u128`) and divided once.
//! A zero duration gives zeros rather than BUNGEE's NaN.
//!
//! Beyond SPEC: `server_seconds` (the integral of a cost series: in a simulation, the
//! backends paid for), `actions` (scaling decisions that changed something) and
//! `underprovisioned_seconds` (`timeshare_U × T`, in seconds).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A step function of time with whole values: `value` from each point's time until the next
/// point, and the last value until `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSeries {
    points: Vec<(Duration, u32)>,
    end: Duration,
}

impl StepSeries {
    /// A series from its change points and its end. Times must not decrease (of several
    /// points at one time the last counts) and the end must not be before the last point.
    pub fn new(points: Vec<(Duration, u32)>, end: Duration) -> Result<StepSeries, String> {
        let Some(&(_, _)) = points.first() else {
            return Err("a series needs at least one point".into());
        };
        let mut clean: Vec<(Duration, u32)> = Vec::with_capacity(points.len());
        for (t, v) in points {
            match clean.last_mut() {
                Some(last) if t < last.0 => {
                    return Err(format!(
                        "times must not decrease: {:?} after {:?}",
                        t, last.0
                    ));
                }
                Some(last) if t == last.0 => last.1 = v,
                _ => clean.push((t, v)),
            }
        }
        // Drop points that do not change the value.
        clean.dedup_by(|b, a| a.1 == b.1);
        if end < clean[clean.len() - 1].0 {
            return Err(format!(
                "the end {:?} is before the last point {:?}",
                end,
                clean[clean.len() - 1].0
            ));
        }
        Ok(StepSeries { points: clean, end })
    }

    /// When the series starts.
    pub fn start(&self) -> Duration {
        self.points[0].0
    }

    /// When the series ends.
    pub fn end(&self) -> Duration {
        self.end
    }

    /// The change points (only real changes; the first point is the start).
    pub fn points(&self) -> &[(Duration, u32)] {
        &self.points
    }

    /// The value at `t` (the first value before the start, the last after the end).
    pub fn value_at(&self, t: Duration) -> u32 {
        let i = self.points.partition_point(|&(s, _)| s <= t);
        self.points[i.saturating_sub(1)].1
    }

    /// The largest value.
    pub fn max(&self) -> u32 {
        self.points.iter().map(|p| p.1).max().unwrap_or(0)
    }

    /// `∫ value dt` from the start to `until` (the last value holding past the end), in
    /// value × nanoseconds.
    pub fn integral_until(&self, until: Duration) -> u128 {
        let mut total = 0u128;
        for (i, &(t, v)) in self.points.iter().enumerate() {
            if t >= until {
                break;
            }
            let next = self.points.get(i + 1).map_or(until, |p| p.0.min(until));
            total += u128::from(v) * (next - t).as_nanos();
        }
        total
    }

    /// Up and down events, in units (BUNGEE's `getScaleEvents`).
    pub fn events(&self) -> Events {
        let mut e = Events::default();
        for w in self.points.windows(2) {
            let (a, b) = (w[0].1, w[1].1);
            if b > a {
                e.up += u64::from(b - a);
            } else {
                e.down += u64::from(a - b);
            }
        }
        e
    }
}

/// Scaling events of a series, counted in units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// Units added.
    pub up: u64,
    /// Units removed.
    pub down: u64,
}

impl Events {
    /// All events.
    pub fn total(self) -> u64 {
        self.up + self.down
    }
}

/// Exact sums of under- and over-provisioning (before dividing by the duration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provisioning {
    /// `∫ (d − s)⁺ dt`, in servers × nanoseconds.
    pub under_area: u128,
    /// `∫ (s − d)⁺ dt`, in servers × nanoseconds.
    pub over_area: u128,
    /// Nanoseconds with `s < d`.
    pub under_time: u128,
    /// Nanoseconds with `s > d`.
    pub over_time: u128,
    /// `T`, in nanoseconds.
    pub duration: u128,
    /// Events of the demand.
    pub demand_events: Events,
    /// Events of the supply.
    pub supply_events: Events,
}

/// Compares supply with demand over the union of their change times. Errors when the two
/// series do not start at the same time.
pub fn provisioning(demand: &StepSeries, supply: &StepSeries) -> Result<Provisioning, String> {
    if demand.start() != supply.start() {
        return Err(format!(
            "demand and supply must start together ({:?} and {:?})",
            demand.start(),
            supply.start()
        ));
    }
    let start = demand.start();
    let end = demand.end().max(supply.end());
    let mut times: Vec<Duration> = demand
        .points()
        .iter()
        .chain(supply.points())
        .map(|p| p.0)
        .filter(|&t| t < end)
        .collect();
    times.sort();
    times.dedup();
    let mut p = Provisioning {
        duration: (end - start).as_nanos(),
        demand_events: demand.events(),
        supply_events: supply.events(),
        ..Provisioning::default()
    };
    for (i, &t) in times.iter().enumerate() {
        let next = times.get(i + 1).copied().unwrap_or(end);
        let dt = (next - t).as_nanos();
        let (d, s) = (demand.value_at(t), supply.value_at(t));
        if d > s {
            p.under_area += u128::from(d - s) * dt;
            p.under_time += dt;
        } else if s > d {
            p.over_area += u128::from(s - d) * dt;
            p.over_time += dt;
        }
    }
    Ok(p)
}

/// The scores of a run: SPEC RG's elasticity metrics plus cost and action counts. Serialized
/// with the keys `webscaler simulate --json` prints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// `accuracy_U`: average servers missing (servers).
    pub accuracy_under: f64,
    /// `accuracy_O`: average servers in excess (servers).
    pub accuracy_over: f64,
    /// `timeshare_U`: fraction of the time with too few servers.
    pub timeshare_under: f64,
    /// `timeshare_O`: fraction of the time with too many servers.
    pub timeshare_over: f64,
    /// Supply events minus demand events, per minute.
    pub jitter: f64,
    /// Servers paid for × seconds (in a simulation: every backend not stopped).
    pub server_seconds: f64,
    /// Scaling decisions that added or removed servers.
    pub actions: u64,
    /// Seconds with fewer servers serving than the demand.
    pub underprovisioned_seconds: f64,
}

impl Metrics {
    /// Scores `supply` against `demand`; `cost` is the series of servers paid for (integrated
    /// from the common start to `T`), `actions` the number of scaling decisions.
    pub fn compute(
        demand: &StepSeries,
        supply: &StepSeries,
        cost: &StepSeries,
        actions: u64,
    ) -> Result<Metrics, String> {
        let p = provisioning(demand, supply)?;
        let end = demand.end().max(supply.end());
        let server_seconds = cost.integral_until(end) as f64 / 1e9;
        Ok(Metrics::from_provisioning(&p, server_seconds, actions))
    }

    /// The metrics from exact sums.
    pub fn from_provisioning(p: &Provisioning, server_seconds: f64, actions: u64) -> Metrics {
        let t = p.duration as f64;
        let per_t = |x: u128| if p.duration == 0 { 0.0 } else { x as f64 / t };
        let jitter = if p.duration == 0 {
            0.0
        } else {
            let diff = p.supply_events.total() as f64 - p.demand_events.total() as f64;
            diff / (t / 60e9)
        };
        Metrics {
            accuracy_under: per_t(p.under_area),
            accuracy_over: per_t(p.over_area),
            timeshare_under: per_t(p.under_time),
            timeshare_over: per_t(p.over_time),
            jitter,
            server_seconds,
            actions,
            underprovisioned_seconds: p.under_time as f64 / 1e9,
        }
    }
}

impl fmt::Display for Metrics {
    /// One `name value` line per metric, in the order of the JSON keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "accuracy_under            {:.4}", self.accuracy_under)?;
        writeln!(f, "accuracy_over             {:.4}", self.accuracy_over)?;
        writeln!(f, "timeshare_under           {:.4}", self.timeshare_under)?;
        writeln!(f, "timeshare_over            {:.4}", self.timeshare_over)?;
        writeln!(f, "jitter                    {:.4}", self.jitter)?;
        writeln!(f, "server_seconds            {:.0}", self.server_seconds)?;
        writeln!(f, "actions                   {}", self.actions)?;
        writeln!(
            f,
            "underprovisioned_seconds  {:.0}",
            self.underprovisioned_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }
    fn series(points: &[(u64, u32)], end: u64) -> StepSeries {
        StepSeries::new(points.iter().map(|&(t, v)| (s(t), v)).collect(), s(end)).unwrap()
    }
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_lagging_supply() {
        // Demand 2 → 4 at 60 s → 2 at 120 s; supply follows 30 s late; T = 180 s.
        //   [0,60)   d2 s2
        //   [60,90)  d4 s2  under 2 × 30 = 60 server-seconds, 30 s
        //   [90,120) d4 s4
        //   [120,150) d2 s4 over 2 × 30 = 60 server-seconds, 30 s
        //   [150,180) d2 s2
        let d = series(&[(0, 2), (60, 4), (120, 2)], 180);
        let sup = series(&[(0, 2), (90, 4), (150, 2)], 180);
        let p = provisioning(&d, &sup).unwrap();
        assert_eq!(p.under_area, 60 * 1_000_000_000);
        assert_eq!(p.over_area, 60 * 1_000_000_000);
        assert_eq!(p.under_time, 30 * 1_000_000_000);
        assert_eq!(p.duration, 180 * 1_000_000_000);
        let cost = series(&[(0, 2), (90, 4), (150, 2)], 180);
        let m = Metrics::compute(&d, &sup, &cost, 2).unwrap();
        assert!(close(m.accuracy_under, 60.0 / 180.0));
        assert!(close(m.accuracy_over, 60.0 / 180.0));
        assert!(close(m.timeshare_under, 30.0 / 180.0));
        assert!(close(m.timeshare_over, 30.0 / 180.0));
        assert!(close(m.jitter, 0.0)); // 4 events each
        assert!(close(m.server_seconds, 2.0 * 180.0 + 2.0 * 60.0));
        assert!(close(m.underprovisioned_seconds, 30.0));
        assert_eq!(m.actions, 2);
    }

    #[test]
    fn the_shorter_series_holds_its_last_value() {
        // Demand: 1, then 3 from 100 s, ends at 200 s. Supply: 1, then 2 from 50 s, ends at
        // 120 s, so its 2 holds until 200 s. T = 200 s.
        //   [0,50)    d1 s1
        //   [50,100)  d1 s2  over 50
        //   [100,200) d3 s2  under 100 (time 100)
        // Events: demand +2, supply +1: jitter = (1 − 2) / (200/60 min) = −0.3 per minute.
        let d = series(&[(0, 1), (100, 3)], 200);
        let sup = series(&[(0, 1), (50, 2)], 120);
        let m = Metrics::compute(&d, &sup, &sup, 1).unwrap();
        assert!(close(m.accuracy_under, 0.5));
        assert!(close(m.accuracy_over, 0.25));
        assert!(close(m.timeshare_under, 0.5));
        assert!(close(m.timeshare_over, 0.25));
        assert!(close(m.jitter, -0.3));
        assert!(close(m.server_seconds, 50.0 + 2.0 * 150.0));
    }

    #[test]
    fn events_are_counted_in_units() {
        let sup = series(&[(0, 2), (10, 5), (20, 5), (30, 1), (40, 2)], 50);
        assert_eq!(sup.events(), Events { up: 4, down: 4 });
        assert_eq!(sup.points().len(), 4); // the repeated 5 is not a change
        // Flapping supply against a flat demand: 5 events in 1 minute.
        let d = series(&[(0, 3)], 60);
        let flap = series(&[(0, 3), (10, 4), (20, 3), (30, 4), (40, 3), (50, 4)], 60);
        let m = Metrics::compute(&d, &flap, &flap, 5).unwrap();
        assert!(close(m.jitter, 5.0));
        assert!(close(m.accuracy_over, 30.0 / 60.0));
    }

    #[test]
    fn equal_series_score_zero_and_zero_duration_is_not_nan() {
        let d = series(&[(0, 2), (60, 7)], 120);
        let m = Metrics::compute(&d, &d, &d, 0).unwrap();
        assert_eq!(
            (
                m.accuracy_under,
                m.accuracy_over,
                m.timeshare_under,
                m.timeshare_over,
                m.jitter
            ),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        let z = series(&[(0, 2)], 0);
        let m = Metrics::compute(&z, &z, &z, 0).unwrap();
        assert_eq!(m.accuracy_under, 0.0);
        assert!(!m.jitter.is_nan());
    }

    #[test]
    fn bad_series_are_refused() {
        assert!(StepSeries::new(vec![], s(1)).is_err());
        assert!(StepSeries::new(vec![(s(5), 1), (s(4), 2)], s(9)).is_err());
        assert!(StepSeries::new(vec![(s(5), 1)], s(4)).is_err());
        let a = series(&[(0, 1)], 10);
        let b = series(&[(1, 1)], 10);
        assert!(provisioning(&a, &b).is_err());
        // Several points at one time: the last counts.
        let c = StepSeries::new(vec![(s(0), 1), (s(5), 2), (s(5), 3)], s(10)).unwrap();
        assert_eq!(c.value_at(s(5)), 3);
        assert_eq!(c.value_at(s(4)), 1);
        assert_eq!(c.integral_until(s(10)), (5 + 15) * 1_000_000_000);
    }

    #[test]
    fn json_keys_are_the_ones_simulate_prints() {
        let d = series(&[(0, 2)], 60);
        let m = Metrics::compute(&d, &d, &d, 0).unwrap();
        let v: serde_json::Value = serde_json::to_value(m).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "accuracy_over",
                "accuracy_under",
                "actions",
                "jitter",
                "server_seconds",
                "timeshare_over",
                "timeshare_under",
                "underprovisioned_seconds"
            ]
        );
    }
}
