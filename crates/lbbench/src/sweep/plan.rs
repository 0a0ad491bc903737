//! The runs of a sweep: every rate from `from` to `to` by `step` (or every reply size at one
//! rate), each repeated, in the lab report's order (all repeats of a rate, then the next rate;
//! sizes in the outer loop).

use crate::httperf::{Tls, fmt_rate};

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Position in the whole plan, from 0.
    pub index: usize,
    /// Connections per second (httperf's `--rate`).
    pub rate: f64,
    /// The reply size asked of the backend (`size=` in the URI), in bytes; `None` leaves the
    /// URI as it is.
    pub reply_size: Option<u64>,
    /// Which repeat of this rate, from 1.
    pub run: u32,
}

impl PlannedRun {
    /// The run's identity in the CSV file, for resuming.
    pub fn key(&self, server: &str, tls: Tls) -> RunKey {
        RunKey::new(server, tls, self.reply_size, self.rate, self.run)
    }
}

/// What identifies a run in a sweep's CSV file: (server, tls, reply size, target rate, run
/// index). Rates are compared to the millionth, in their written form, so `100`, `100.0` and
/// `100.00000000001` are the same rate. Rows written before the `tls` and `reply_size`
/// columns existed are plain runs of the URI's own reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    /// The `server` column.
    pub server: String,
    /// The `tls` column.
    pub tls: Tls,
    /// The `reply_size` column (empty: `None`).
    pub reply_size: Option<u64>,
    /// The `target_rate` column, as [`fmt_rate`] writes it.
    pub rate: String,
    /// The `run` column.
    pub run: u32,
}

impl RunKey {
    /// The key of a run.
    pub fn new(server: &str, tls: Tls, reply_size: Option<u64>, rate: f64, run: u32) -> Self {
        RunKey {
            server: server.to_owned(),
            tls,
            reply_size,
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

/// Every run: for each reply size (none if `sizes` is empty), each rate `repeat` times.
pub fn plan(rates: &[f64], sizes: &[u64], repeat: u32) -> Vec<PlannedRun> {
    let sizes: Vec<Option<u64>> = if sizes.is_empty() {
        vec![None]
    } else {
        sizes.iter().copied().map(Some).collect()
    };
    sizes
        .iter()
        .flat_map(|&size| {
            rates
                .iter()
                .flat_map(move |&rate| (1..=repeat).map(move |run| (size, rate, run)))
        })
        .enumerate()
        .map(|(index, (reply_size, rate, run))| PlannedRun {
            index,
            rate,
            reply_size,
            run,
        })
        .collect()
}

/// Reads a reply size: bytes, or a number with `k`, `m` or `g` (powers of 1,024: `64k` is
/// 65,536 bytes), as in `--sizes 1k,64k,1m,16m`.
pub fn parse_size(s: &str) -> Result<u64, PlanError> {
    let t = s.trim();
    let (digits, unit) = match t
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(PlanError::Invalid(format!(
                "bad reply size `{s}`: use bytes or a number with k, m or g (64k, 1m)"
            )));
        }
    };
    let n: f64 = digits.parse().map_err(|_| {
        PlanError::Invalid(format!(
            "bad reply size `{s}`: use bytes or a number with k, m or g (64k, 1m)"
        ))
    })?;
    let bytes = (n * mult as f64).round();
    if !(bytes.is_finite() && bytes >= 0.0 && bytes <= MAX_REPLY_SIZE as f64) {
        return Err(PlanError::Invalid(format!(
            "reply size `{s}` is out of range (0 to {})",
            fmt_size(MAX_REPLY_SIZE)
        )));
    }
    Ok(bytes as u64)
}

/// The largest reply size a sweep asks for (the backend's own limit).
pub const MAX_REPLY_SIZE: u64 = crate::backend::MAX_REPLY_SIZE;

/// A size in bytes as people read it: `512 B`, `64 KiB`, `1 MiB`, `1.5 GiB`.
pub fn fmt_size(bytes: u64) -> String {
    let units = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (div, unit) in units {
        if bytes >= div {
            return format!("{} {unit}", fmt_rate(bytes as f64 / div as f64));
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_lab_report_sweep() {
        let r = rates(100.0, 2000.0, 100.0).unwrap();
        assert_eq!(r.len(), 20);
        assert_eq!(r[0], 100.0);
        assert_eq!(r[19], 2000.0);
        let p = plan(&r, &[], 3);
        assert_eq!(p.len(), 60);
        assert_eq!(
            p[..4],
            [
                PlannedRun {
                    index: 0,
                    rate: 100.0,
                    reply_size: None,
                    run: 1
                },
                PlannedRun {
                    index: 1,
                    rate: 100.0,
                    reply_size: None,
                    run: 2
                },
                PlannedRun {
                    index: 2,
                    rate: 100.0,
                    reply_size: None,
                    run: 3
                },
                PlannedRun {
                    index: 3,
                    rate: 200.0,
                    reply_size: None,
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
        let k = |rate, run| RunKey::new("a", Tls::Off, None, rate, run);
        assert_eq!(k(100.0, 1), k(100.000_000_000_01, 1));
        assert_ne!(k(100.0, 1), k(100.0, 2));
        assert_ne!(k(100.0, 1), RunKey::new("a", Tls::On, None, 100.0, 1));
        assert_ne!(k(100.0, 1), RunKey::new("a", Tls::Off, Some(0), 100.0, 1));
    }

    #[test]
    fn size_sweeps_and_sizes() {
        let p = plan(&[20.0], &[1024, 65536], 2);
        let got: Vec<(Option<u64>, u32)> = p.iter().map(|r| (r.reply_size, r.run)).collect();
        assert_eq!(
            got,
            [
                (Some(1024), 1),
                (Some(1024), 2),
                (Some(65536), 1),
                (Some(65536), 2)
            ]
        );
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("16m").unwrap(), 16 << 20);
        assert_eq!(parse_size("1.5m").unwrap(), 3 << 19);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "k", "1x", "-1", "1e3", "999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_size(16 << 20), "16 MiB");
        assert_eq!(fmt_size(1536), "1.5 KiB");
        assert_eq!(fmt_size(100), "100 B");
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
