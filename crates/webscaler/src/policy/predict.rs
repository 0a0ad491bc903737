//! The predictive mode: scale up ahead of a sustained rise of the request rate.
//!
//! The lab report named prediction as future work (lab report §1.3.5, §1.6.1): a reactive scaler
//! lags by the boot time of a server. Here the rates of the last `history` are fitted with a
//! straight line (least squares) and the line is read at `now + lead`, where `lead` is about
//! the time a new server takes to serve (boot, then a tick to join). The default policy
//! scales up to the predicted rate when it is higher than the measured one; it never scales
//! down on a prediction (scale-down stays reactive and stabilized).
//!
//! A line through any rise extrapolates it, including a rise that has already stopped: after
//! a single step (a flash crowd arriving, the end of a dip) the fit keeps climbing and the
//! policy would buy servers for load that never comes, then release them (on a trace with
//! dips, 50 actions instead of 6). So the trend is extrapolated only when it is **sustained**:
//!
//! - the samples cover at least three quarters of the history (no prediction from the first
//!   few ticks);
//! - the fitted rise over them is positive and at least `min_rise` (10 %) of the current
//!   rate: noise around a level has no such slope;
//! - no single jump makes most of it: the largest rise across two consecutive intervals is at
//!   most `max_jump` (75 %) of the range of the samples. One step, however sharp, is a jump
//!   of 100 %; a ramp, or a staircase of two or more comparable steps, passes;
//! - the rise is still on: the latest rate is at least `1 − max_fall` (90 %) of the highest
//!   rate of the history. After a peak the line through the climb still points up, and
//!   without this test the policy held a peak's servers for three more ticks while the rate
//!   had already fallen by a third (the demo's profile at 5-s ticks);
//! - the prediction is capped at `max_factor` (2) × the current rate.
//!
//! Even so, noise can climb like a staircase for two minutes: on a load with ± 8 % a minute
//! (the multi-day trace) 25 of 28 predictions that bought a server were not reached by the
//! measured load within twice the lead. So the policy keeps a [`TrackRecord`]: a prediction
//! that would buy servers is judged later (it came true when the servers the measured rate
//! needs reach the predicted ones within twice the lead), and the policy acts on predictions
//! only while the last one judged came true. Predictions not acted on are judged too, so the
//! first one that comes true restores the trust.
//!
//! The fit is done in `f64` (a heuristic, not a count), and the prediction is rounded to
//! 10^-6 req/s before the exact `ceil(rate / threshold)`. docs/webscaler-policy.md shows the
//! simulations the settings come from.

use std::collections::VecDeque;
use std::time::Duration;

use crate::rate::Rate;

/// Settings of the predictive mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predictive {
    /// How far back the trend is fitted (the last few minutes).
    pub history: Duration,
    /// How far ahead it is read (about the time a new server takes to serve).
    pub lead: Duration,
    /// Samples needed before predicting.
    pub min_samples: usize,
    /// The fitted rise over the history must be at least this share of the current rate.
    pub min_rise: f64,
    /// The largest rise across two consecutive intervals may be at most this share of the
    /// range of the samples (1 or more: no such test).
    pub max_jump: f64,
    /// No prediction when the latest rate is more than this share below the highest rate of
    /// the history (the rise has stopped).
    pub max_fall: f64,
    /// The prediction is at most this many times the current rate.
    pub max_factor: f64,
    /// Act on predictions only while the last one judged came true ([`TrackRecord`]).
    pub track_record: bool,
}

impl Predictive {
    /// Checks the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.history.is_zero() {
            return Err("predictive_history must be longer than 0".into());
        }
        if self.min_samples < 2 {
            return Err("the predictive mode needs at least 2 samples".into());
        }
        if !(self.min_rise.is_finite() && self.min_rise >= 0.0) {
            return Err("the predictive min_rise must be a number ≥ 0".into());
        }
        if !(self.max_jump.is_finite() && self.max_jump > 0.0) {
            return Err("the predictive max_jump must be a number > 0".into());
        }
        if !(self.max_fall.is_finite() && (0.0..=1.0).contains(&self.max_fall)) {
            return Err("the predictive max_fall must be a number from 0 to 1".into());
        }
        if !(self.max_factor.is_finite() && self.max_factor >= 1.0) {
            return Err("the predictive max_factor must be a number ≥ 1".into());
        }
        Ok(())
    }
}

impl Default for Predictive {
    /// Two minutes of history, read 120 s ahead (the default 80-s boot, a tick to join, and
    /// the half interval by which a measured rate is already old, with a margin), from 3
    /// samples; a sustained rise of at least 10 %, no jump above 75 % of the range, the latest
    /// rate within 10 % of the highest, at most twice the current rate. Chosen with `webscaler simulate` (docs/webscaler-policy.md).
    fn default() -> Predictive {
        Predictive {
            history: Duration::from_secs(120),
            lead: Duration::from_secs(120),
            min_samples: 3,
            min_rise: 0.1,
            max_jump: 0.75,
            max_fall: 0.1,
            max_factor: 2.0,
            track_record: true,
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

    /// The rate the trend gives at `now + lead`, when the samples show a sustained rise (see
    /// the module documentation); `None` otherwise.
    pub fn predict(&self, now: Duration) -> Option<Rate> {
        let c = &self.config;
        if self.samples.len() < c.min_samples {
            return None;
        }
        let points: Vec<(f64, f64)> = self
            .samples
            .iter()
            .map(|&(t, r)| (t.as_secs_f64() - now.as_secs_f64(), r))
            .collect();
        let span = -points.first()?.0;
        if span < 0.75 * c.history.as_secs_f64() {
            return None;
        }
        let (intercept, slope) = least_squares(&points)?;
        let latest = points.last()?.1;
        let rise = slope * span;
        if rise <= 0.0 || rise < c.min_rise * latest {
            return None;
        }
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.1), hi.max(p.1))
            });
        if latest < (1.0 - c.max_fall) * hi {
            return None;
        }
        if c.max_jump < 1.0 && largest_jump(&points) > c.max_jump * (hi - lo) {
            return None;
        }
        let predicted = (intercept + slope * c.lead.as_secs_f64()).min(c.max_factor * latest);
        Rate::from_f64(predicted)
    }
}

/// Whether predictions have been coming true. A prediction that would buy servers is
/// recorded with the servers it asks for; it **came true** when the servers the measured rate
/// needs reach them within `deadline` (twice the lead: the prediction is for one lead ahead,
/// and a trend read through steps reaches it a little late), and it **failed** otherwise.
/// The policy trusts predictions while the last one judged came true (and before any was).
#[derive(Debug, Clone)]
pub struct TrackRecord {
    deadline: Duration,
    trusted: bool,
    /// Predictions awaiting judgement: (when, servers), each asking for more than the last.
    open: VecDeque<(Duration, u32)>,
}

impl TrackRecord {
    /// No prediction judged yet: trusted.
    pub fn new(deadline: Duration) -> TrackRecord {
        TrackRecord {
            deadline,
            trusted: true,
            open: VecDeque::new(),
        }
    }

    /// Whether the policy acts on predictions now.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// Records a prediction made at `now` asking for `servers` (one asking for no more than
    /// a prediction still open adds nothing).
    pub fn predicted(&mut self, now: Duration, servers: u32) {
        if self.open.back().is_none_or(|&(_, s)| servers > s) {
            self.open.push_back((now, servers));
        }
    }

    /// Judges the open predictions by `needed`, the servers the rate measured at `now` needs,
    /// oldest first.
    pub fn judge(&mut self, now: Duration, needed: u32) {
        while let Some(&(at, servers)) = self.open.front() {
            if now.saturating_sub(at) > self.deadline {
                self.trusted = false;
            } else if needed >= servers {
                self.trusted = true;
            } else {
                break;
            }
            self.open.pop_front();
        }
    }
}

/// The largest rise from one sample to the next or the one after (a step in continuous time
/// shows in at most two consecutive intervals); 0 if nothing rises.
fn largest_jump(points: &[(f64, f64)]) -> f64 {
    let mut jump: f64 = 0.0;
    for (i, a) in points.iter().enumerate() {
        for b in points.iter().skip(i + 1).take(2) {
            jump = jump.max(b.1 - a.1);
        }
    }
    jump
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

    /// A predictor fed `rate(t)` every `every` seconds from 0 to `until`.
    fn fed(config: Predictive, every: u64, until: u64, rate: impl Fn(u64) -> f64) -> Predictor {
        let mut p = Predictor::new(config);
        for t in (0..=until).step_by(every as usize) {
            p.record(s(t), Rate::from_f64(rate(t)).unwrap());
        }
        p
    }

    fn rps(x: f64) -> Option<Rate> {
        Rate::from_f64(x)
    }

    #[test]
    fn a_rising_ramp_is_extrapolated_by_the_lead() {
        let ramp = Predictive {
            lead: s(60),
            ..Predictive::default()
        };
        // 100 req/s + 1 req/s more every second, sampled every 10 s.
        let p = fed(ramp, 10, 200, |t| 100.0 + t as f64);
        assert_eq!(p.predict(s(200)), rps(360.0));
        // Only the last 120 s are kept: t = 80 … 200.
        assert_eq!(p.samples.len(), 13);
        // Not before three quarters of the history are covered.
        let p = fed(ramp, 10, 80, |t| 100.0 + t as f64);
        assert_eq!(p.predict(s(80)), None);
        let p = fed(ramp, 10, 90, |t| 100.0 + t as f64);
        assert_eq!(p.predict(s(90)), rps(250.0));
        // With too few samples, nothing.
        assert_eq!(Predictor::new(ramp).predict(s(0)), None);
    }

    #[test]
    fn a_staircase_of_comparable_steps_is_a_sustained_rise() {
        // The lab report's trace climbs one step a minute: 13.7, 24.3, 44.7 req/s (5-s ticks).
        let stairs = |t: u64| match t {
            0..=59 => 13.7,
            60..=119 => 24.3,
            _ => 44.7,
        };
        let p = fed(Predictive::default(), 5, 150, stairs);
        let predicted = p.predict(s(150)).expect("two steps are a trend").to_f64();
        assert!(predicted > 44.7 && predicted <= 2.0 * 44.7, "{predicted}");
    }

    #[test]
    fn a_single_step_is_not_extrapolated_however_sharp() {
        for (low, high) in [(15.0, 75.0), (20.0, 120.0), (25.0, 75.0), (50.0, 51.0)] {
            for at in [40, 80, 100, 115] {
                let p = fed(Predictive::default(), 5, 120, |t| {
                    if t < at { low } else { high }
                });
                assert_eq!(p.predict(s(120)), None, "{low} → {high} at {at} s");
            }
        }
        // A step seen half in one interval and half in the next is still one jump.
        let p = fed(Predictive::default(), 5, 120, |t| match t {
            0..=79 => 15.0,
            80 => 45.0,
            _ => 75.0,
        });
        assert_eq!(p.predict(s(120)), None);
    }

    #[test]
    fn noise_flat_rates_and_falls_predict_nothing() {
        let mut rng = crate::simulation::trace::synthetic::SplitMix64(3);
        let mut noisy = Predictor::new(Predictive::default());
        let mut predicted = 0;
        for k in 0..720u64 {
            noisy.record(
                s(5 * k),
                Rate::from_f64(50.0 * (0.95 + 0.1 * rng.unit())).unwrap(),
            );
            predicted += usize::from(noisy.predict(s(5 * k)).is_some());
        }
        assert_eq!(predicted, 0, "±5 % noise is not a trend");
        let flat = fed(Predictive::default(), 5, 300, |_| 30.0);
        assert_eq!(flat.predict(s(300)), None);
        let fall = fed(Predictive::default(), 5, 300, |t| 300.0 - t as f64);
        assert_eq!(fall.predict(s(300)), None);
        // A rise of less than 10 % of the rate over the history is not enough either.
        let slow = fed(Predictive::default(), 5, 300, |t| 100.0 + t as f64 / 40.0);
        assert_eq!(slow.predict(s(300)), None);
    }

    #[test]
    fn a_rise_that_has_peaked_is_not_extrapolated() {
        // The demo's climb at 5-s ticks: 20 → 131 req/s in 90 s, then a fall to 84.
        let climb = |t: u64| if t <= 110 { 20.0 + t as f64 } else { 84.0 };
        let rising = fed(Predictive::default(), 5, 110, climb);
        assert!(
            rising.predict(s(110)).is_some(),
            "the climb itself is a trend"
        );
        let fallen = fed(Predictive::default(), 5, 115, climb);
        assert_eq!(fallen.predict(s(115)), None, "fell 36 % from the peak");
        // A dip of less than 10 % below the peak (noise on a ramp) keeps the prediction.
        let wobble = fed(Predictive::default(), 5, 115, |t| {
            if t <= 110 { 20.0 + t as f64 } else { 122.0 }
        });
        assert!(wobble.predict(s(115)).is_some());
        // max_fall = 1 turns the test off.
        let off = Predictive {
            max_fall: 1.0,
            ..Predictive::default()
        };
        assert!(fed(off, 5, 115, climb).predict(s(115)).is_some());
    }

    #[test]
    fn the_prediction_is_capped_at_twice_the_current_rate() {
        // A steep ramp: 1 → 241 req/s in 120 s, read 180 s ahead: the line says 601.
        let far = Predictive {
            lead: s(180),
            ..Predictive::default()
        };
        let p = fed(far, 5, 120, |t| 1.0 + 2.0 * t as f64);
        assert_eq!(p.predict(s(120)), rps(482.0));
        let uncapped = fed(
            Predictive {
                max_factor: 100.0,
                ..far
            },
            5,
            120,
            |t| 1.0 + 2.0 * t as f64,
        );
        assert_eq!(uncapped.predict(s(120)), rps(601.0));
    }

    #[test]
    fn settings_are_checked() {
        assert!(Predictive::default().validate().is_ok());
        let bad = |p: Predictive| p.validate().unwrap_err();
        assert!(
            bad(Predictive {
                history: Duration::ZERO,
                ..Predictive::default()
            })
            .contains("predictive_history")
        );
        assert!(
            bad(Predictive {
                max_factor: 0.5,
                ..Predictive::default()
            })
            .contains("max_factor")
        );
        assert!(
            bad(Predictive {
                min_rise: f64::NAN,
                ..Predictive::default()
            })
            .contains("min_rise")
        );
        assert!(
            bad(Predictive {
                max_fall: 1.5,
                ..Predictive::default()
            })
            .contains("max_fall")
        );
    }

    #[test]
    fn a_track_record_trusts_until_a_prediction_fails_and_again_when_one_comes_true() {
        let mut t = TrackRecord::new(s(240));
        assert!(t.trusted(), "nothing judged yet");
        t.predicted(s(0), 5);
        t.predicted(s(5), 5); // no more than the open one: nothing new
        t.predicted(s(10), 6);
        assert_eq!(t.open.len(), 2);
        t.judge(s(100), 4);
        t.judge(s(240), 4); // 240 s after the first: not yet late (the deadline is inclusive)
        assert!(t.trusted());
        assert_eq!(t.open.len(), 2);
        t.judge(s(241), 4); // the 5 of t = 0, 241 s old and not reached: failed
        assert!(!t.trusted());
        assert_eq!(t.open.len(), 1);
        t.judge(s(245), 6); // the 6 of t = 10: reached within 240 s
        assert!(t.trusted());
        assert!(t.open.is_empty());
        t.predicted(s(250), 8);
        t.judge(s(491), 7); // 241 s: failed
        assert!(!t.trusted());
        // Predictions not acted on are judged too: the first that comes true restores trust.
        t.predicted(s(300), 7);
        t.judge(s(400), 6);
        assert!(!t.trusted());
        t.judge(s(405), 7);
        assert!(t.trusted());
    }

    #[test]
    fn predictions_are_judged_oldest_first() {
        let mut t = TrackRecord::new(s(60));
        t.predicted(s(0), 5);
        t.predicted(s(30), 8);
        t.judge(s(50), 5); // the 5 came true; the 8 stays open
        assert!(t.trusted());
        assert_eq!(t.open.len(), 1);
        t.judge(s(91), 7); // the 8 of t = 30: 61 s, failed
        assert!(!t.trusted());
        t.predicted(s(100), 9);
        t.predicted(s(110), 12);
        t.judge(s(150), 9); // the 9 came true, the 12 is still open
        assert!(t.trusted());
        t.judge(s(171), 9); // the 12: failed, and the later judgement counts
        assert!(!t.trusted());
    }
}
