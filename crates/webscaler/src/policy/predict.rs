//! The optional predictive mode: extrapolate the trend of the recent rates.
//!
//! The seed named prediction as future work (lab report §1.3.5, §1.6.1): a reactive scaler
//! lags by the boot time of a server. Here the rates of the last `history` are fitted with a
//! straight line (least squares) and the line is read at `now + lead`, where `lead` is about
//! the boot delay. The default policy scales up to the predicted rate when it is higher than
//! the measured one; scale-down stays reactive and stabilized.
//!
//! The fit is done in `f64` (a heuristic, not a count), and the prediction is rounded to
//! 10^-6 req/s before the exact `ceil(rate / threshold)`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::rate::Rate;

/// Settings of the predictive mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predictive {
    /// How far back the trend is fitted (the last few minutes).
    pub history: Duration,
    /// How far ahead it is read (about the boot delay).
    pub lead: Duration,
    /// Samples needed before predicting.
    pub min_samples: usize,
}

impl Predictive {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.history.is_zero() {
            return Err("the predictive history must be longer than 0".into());
        }
        if self.min_samples < 2 {
            return Err("the predictive mode needs at least 2 samples".into());
        }
        Ok(())
    }
}

impl Default for Predictive {
    /// Two minutes of history, read 120 s ahead (1.5 × the default 80-s boot delay: the
    /// measured rate is already an interval old), from 3 samples; chosen by replay
    /// (docs/webscaler-policy.md).
    fn default() -> Predictive {
        Predictive {
            history: Duration::from_secs(120),
            lead: Duration::from_secs(120),
            min_samples: 3,
        }
    }
}

/// The samples of the last `history` and the fit over them.
#[derive(Debug, Clone)]
pub struct Predictor {
    config: Predictive,
    samples: VecDeque<(Duration, f64)>,
}

impl Predictor {
    /// A predictor with no samples.
    pub fn new(config: Predictive) -> Predictor {
        Predictor {
            config,
            samples: VecDeque::new(),
        }
    }

    /// Adds the rate measured at `now` and forgets samples older than the history.
    pub fn record(&mut self, now: Duration, rate: Rate) {
        self.samples.push_back((now, rate.to_f64()));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| t + self.config.history < now)
        {
            self.samples.pop_front();
        }
    }

    /// The rate the trend gives at `now + lead`, never below zero; `None` with too few
    /// samples or when they all have the same time.
    pub fn predict(&self, now: Duration) -> Option<Rate> {
        if self.samples.len() < self.config.min_samples {
            return None;
        }
        let points: Vec<(f64, f64)> = self
            .samples
            .iter()
            .map(|&(t, r)| (t.as_secs_f64() - now.as_secs_f64(), r))
            .collect();
        let (intercept, slope) = least_squares(&points)?;
        Rate::from_f64(intercept + slope * self.config.lead.as_secs_f64())
    }
}

/// The least-squares line `y = a + b x` through the points: `(a, b)`, or `None` when fewer
/// than two points or all `x` are equal.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    #[test]
    fn least_squares_fits_lines_exactly_and_refuses_degenerate_input() {
        let (a, b) = least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((a - 1.0).abs() < 1e-12 && (b - 2.0).abs() < 1e-12);
        // Noise around y = 10 + x: the classic hand example.
        let (a, b) = least_squares(&[(0.0, 10.0), (1.0, 12.0), (2.0, 12.0)]).unwrap();
        assert!((b - 1.0).abs() < 1e-12, "{b}");
        assert!((a - (34.0 / 3.0 - 1.0)).abs() < 1e-12, "{a}");
        assert_eq!(least_squares(&[(1.0, 1.0)]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn a_rising_ramp_is_extrapolated_by_the_lead() {
        let mut p = Predictor::new(Predictive {
            history: s(120),
            lead: s(60),
            min_samples: 3,
        });
        // 1 req/s more every second: 10, 20, ... at t = 10, 20, ...
        assert_eq!(p.predict(s(0)), None);
        for t in (10..=200).step_by(10) {
            p.record(s(t), Rate::per_second(t));
        }
        assert_eq!(p.predict(s(200)), Some(Rate::per_second(260)));
        // Only the last 120 s are kept: t = 80 … 200.
        assert_eq!(p.samples.len(), 13);
    }

    #[test]
    fn a_flat_rate_predicts_itself_and_a_fall_never_goes_negative() {
        let mut p = Predictor::new(Predictive::default());
        for t in [0, 60, 120, 180] {
            p.record(s(t), Rate::per_second(30));
        }
        assert_eq!(p.predict(s(180)), Some(Rate::per_second(30)));
        let mut p = Predictor::new(Predictive::default());
        for (t, r) in [(0, 90), (60, 60), (120, 30), (180, 0)] {
            p.record(s(t), Rate::per_second(r));
        }
        assert_eq!(p.predict(s(180)), Some(Rate::ZERO));
    }
}
