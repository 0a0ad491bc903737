//! The runs of a sweep: every rate from `from` to `to` by `step`, each repeated, in the
//! report's order (all repeats of a rate, then the next rate).

use crate::httperf::fmt_rate;

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Position in the whole plan, from 0.
    pub index: usize,
    /// Connections per second (httperf's `--rate`).
    pub rate: f64,
    /// Which repeat of this rate, from 1.
    pub run: u32,
}

impl PlannedRun {
    /// The run's identity in the CSV file, for resuming.
    pub fn key(&self, server: &str) -> RunKey {
        RunKey::new(server, self.rate, self.run)
    }
}

/// What identifies a run in a sweep's CSV file: (server, target rate, run index). Rates are
/// compared to the millionth, in their written form, so `100`, `100.0` and
/// `100.00000000001` are the same rate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    /// The `server` column.
    pub server: String,
    /// The `target_rate` column, as [`fmt_rate`] writes it.
    pub rate: String,
    /// The `run` column.
    pub run: u32,
}

impl RunKey {
    /// The key of a run.
    pub fn new(server: &str, rate: f64, run: u32) -> Self {
        RunKey {
            server: server.to_owned(),
            rate: fmt_rate((rate * 1e6).round() / 1e6),
            run,
        }
    }
}

/// A rate range that gives no runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// `from` is above `to`.
    #[error("empty rate list: --from {} is above --to {}", fmt_rate(*.from), fmt_rate(*.to))]
    Empty {
        /// The first rate.
        from: f64,
        /// The last rate.
        to: f64,
    },
    /// A value that is not a positive number.
    #[error("{0}")]
    Invalid(String),
}

/// At most this many rates, so a typo (`--step 0.0001`) fails at once instead of planning
/// years of runs.
pub const MAX_RATES: usize = 100_000;

/// The rates `from, from+step, …` up to and including `to`.
///
/// Each rate is computed as `from + k·step` (not by repeated addition) and rounded to 1e-9,
/// so `0.1` steps give `0.3`, not `0.30000000000000004`.
pub fn rates(from: f64, to: f64, step: f64) -> Result<Vec<f64>, PlanError> {
    for (name, v) in [("--from", from), ("--to", to), ("--step", step)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(PlanError::Invalid(format!(
                "{name} must be a positive number (got {v})"
            )));
        }
    }
    if from > to {
        return Err(PlanError::Empty { from, to });
    }
    let n = ((to - from) / step + 1e-9).floor() + 1.0;
    if n > MAX_RATES as f64 {
        return Err(PlanError::Invalid(format!(
            "--from {} --to {} --step {} gives {n} rates, more than {MAX_RATES}",
            fmt_rate(from),
            fmt_rate(to),
            fmt_rate(step)
        )));
    }
    Ok((0..n as usize)
        .map(|k| ((from + k as f64 * step) * 1e9).round() / 1e9)
        .collect())
}

/// Every run: each rate `repeat` times.
pub fn plan(rates: &[f64], repeat: u32) -> Vec<PlannedRun> {
    rates
        .iter()
        .flat_map(|&rate| (1..=repeat).map(move |run| (rate, run)))
        .enumerate()
        .map(|(index, (rate, run))| PlannedRun { index, rate, run })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_seed_sweep() {
        let r = rates(100.0, 2000.0, 100.0).unwrap();
        assert_eq!(r.len(), 20);
        assert_eq!(r[0], 100.0);
        assert_eq!(r[19], 2000.0);
        let p = plan(&r, 3);
        assert_eq!(p.len(), 60);
        assert_eq!(
            p[..4],
            [
                PlannedRun {
                    index: 0,
                    rate: 100.0,
                    run: 1
                },
                PlannedRun {
                    index: 1,
                    rate: 100.0,
                    run: 2
                },
                PlannedRun {
                    index: 2,
                    rate: 100.0,
                    run: 3
                },
                PlannedRun {
                    index: 3,
                    rate: 200.0,
                    run: 1
                },
            ]
        );
    }

    #[test]
    fn bad_ranges() {
        assert_eq!(
            rates(300.0, 200.0, 100.0),
            Err(PlanError::Empty {
                from: 300.0,
                to: 200.0
            })
        );
        assert!(
            rates(300.0, 200.0, 100.0)
                .unwrap_err()
                .to_string()
                .contains("--from 300 is above --to 200")
        );
        assert!(matches!(rates(1.0, 2.0, 0.0), Err(PlanError::Invalid(_))));
        assert!(matches!(rates(0.0, 2.0, 1.0), Err(PlanError::Invalid(_))));
        assert!(matches!(rates(1.0, 1e9, 1.0), Err(PlanError::Invalid(_))));
    }

    #[test]
    fn a_single_rate_and_fractional_steps() {
        assert_eq!(rates(50.0, 50.0, 10.0).unwrap(), [50.0]);
        assert_eq!(rates(20.0, 50.0, 30.0).unwrap(), [20.0, 50.0]);
        assert_eq!(rates(0.1, 0.3, 0.1).unwrap(), [0.1, 0.2, 0.3]);
        assert_eq!(rates(1.0, 2.5, 1.0).unwrap(), [1.0, 2.0]);
    }

    #[test]
    fn keys_compare_rates_as_written() {
        assert_eq!(
            RunKey::new("a", 100.0, 1),
            RunKey::new("a", 100.000_000_000_01, 1)
        );
        assert_ne!(RunKey::new("a", 100.0, 1), RunKey::new("a", 100.0, 2));
    }

    proptest! {
        #[test]
        fn rates_stay_in_range_and_step_evenly(
            from in 1u32..500, extra in 0u32..3000, step in 1u32..400
        ) {
            let (from, to, step) = (f64::from(from), f64::from(from + extra), f64::from(step));
            let r = rates(from, to, step).unwrap();
            prop_assert_eq!(r[0], from);
            prop_assert!(*r.last().unwrap() <= to);
            prop_assert!(*r.last().unwrap() + step > to);
            for w in r.windows(2) {
                prop_assert_eq!(w[1] - w[0], step);
            }
        }
    }
}
