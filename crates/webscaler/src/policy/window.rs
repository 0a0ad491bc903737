//! The default policy's scale-down stabilization window, and how it adapts to the load.
//!
//! Every recommendation is kept with its time, and the policy scales down only to the
//! highest recommendation of the last window, `(now − window, now]` (Kubernetes' HPA does
//! the same with a fixed 300-s window). After a (re)start nothing is removed before one full
//! window of recommendations has been seen.
//!
//! The window trades money (servers kept after the load fell) against shortfall when the
//! load comes back (a released server takes a boot to return). A short window suits a load
//! that falls and stays down, a long one a load with dips or slow noise. Which of the two a
//! service has shows in its own scale-downs: a scale-down is **regretted** when, within
//! `regret` (about the time a released server takes to come back: a boot, a join, a check),
//! the policy asks again for more capacity than it kept. The released servers then cost a
//! boot each and may be missing for it, where keeping them would have cost only the dip. So:
//!
//! - a regretted scale-down lengthens the window to `max` (the next dips are held as a long
//!   window holds them);
//! - a scale-down that sticks (no regret within `regret`) halves the window's excess over
//!   the base again, so that a load whose falls last gets the short window back.
//!
//! With `max` no longer than the base the window is fixed. docs/webscaler-policy.md shows
//! the simulations the settings come from.

use std::collections::VecDeque;
use std::time::Duration;

/// The last scale-down, until it is regretted or sticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScaleDown {
    /// When the latest step down was made.
    at: Duration,
    /// The capacity it kept.
    kept: u32,
}

/// The recommendations of the longest window, the window in force, and the last
/// scale-down.
#[derive(Debug, Clone)]
pub struct Stabilizer {
    base: Duration,
    max: Duration,
    regret: Duration,
    window: Duration,
    /// (time, recommendation), oldest first, over the last `max`.
    recommendations: VecDeque<(Duration, u32)>,
    /// When the first recommendation was made: scale-down needs a full window of them.
    first: Option<Duration>,
    last_down: Option<ScaleDown>,
}

impl Stabilizer {
    /// A window of `base` that grows to `max` after a scale-down regretted within `regret`
    /// (a `max` no longer than `base`: a fixed window).
    pub fn new(base: Duration, max: Duration, regret: Duration) -> Stabilizer {
        Stabilizer {
            base,
            max: max.max(base),
            regret,
            window: base,
            recommendations: VecDeque::new(),
            first: None,
            last_down: None,
        }
    }

    /// The window in force.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records the recommendation `rec` made at `now` (learning from the last scale-down
    /// first) and returns the highest recommendation of the window in force, or `None`
    /// before a full window of recommendations has been seen.
    pub fn record(&mut self, now: Duration, rec: u32) -> Option<u32> {
        self.learn(now, rec);
        let first = *self.first.get_or_insert(now);
        self.recommendations.push_back((now, rec));
        // Keep those strictly inside (now − max, now]; the newest always stays.
        while self.recommendations.len() > 1
            && self
                .recommendations
                .front()
                .is_some_and(|&(t, _)| t + self.max <= now)
        {
            self.recommendations.pop_front();
        }
        let window = self.window;
        (now.saturating_sub(first) >= window).then(|| {
            self.recommendations
                .iter()
                .rev()
                .take_while(|&&(t, _)| t == now || t + window > now)
                .map(|&(_, r)| r)
                .max()
                .unwrap_or(rec)
        })
    }

    /// The policy scaled down at `now` to `kept`. A further step down before the previous
    /// one was judged replaces it: the regret is then measured against the lower capacity.
    pub fn scaled_down(&mut self, now: Duration, kept: u32) {
        if self.max > self.base {
            self.last_down = Some(ScaleDown { at: now, kept });
        }
    }

    /// Judges the last scale-down by the recommendation `rec` at `now`.
    fn learn(&mut self, now: Duration, rec: u32) {
        let Some(down) = self.last_down else {
            return;
        };
        let since = now.saturating_sub(down.at);
        if since > self.regret {
            // It stuck: halve the excess over the base.
            self.last_down = None;
            self.window = self.base + (self.window - self.base) / 2;
        } else if rec > down.kept {
            // Regretted: hold the next dips as the longest window does.
            self.last_down = None;
            self.window = self.max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    /// Feeds `recs` at `t0`, `t0 + 5`, …; returns the window's answer at the last.
    fn feed(st: &mut Stabilizer, t0: u64, recs: &[u32]) -> Option<u32> {
        let mut out = None;
        for (i, &r) in recs.iter().enumerate() {
            out = st.record(s(t0 + 5 * i as u64), r);
        }
        out
    }

    #[test]
    fn nothing_before_a_full_window_then_the_highest_inside_it() {
        let mut st = Stabilizer::new(s(20), s(60), s(30));
        assert_eq!(st.record(s(0), 8), None);
        assert_eq!(st.record(s(10), 3), None);
        // (0, 20]: the 8 at t = 0 has left; 3 and 3 remain.
        assert_eq!(st.record(s(20), 3), Some(3));
        assert_eq!(st.record(s(25), 5), Some(5));
        assert_eq!(st.record(s(40), 2), Some(5), "(20, 40] holds the 5 at 25");
        assert_eq!(st.record(s(45), 2), Some(2));
    }

    #[test]
    fn a_regretted_scale_down_lengthens_the_window_to_the_max() {
        let mut st = Stabilizer::new(s(60), s(300), s(120));
        // 8 servers from t = 0 to 300, then 3 for a full window: down at t = 360.
        assert_eq!(feed(&mut st, 0, &[8; 61]), Some(8));
        assert_eq!(feed(&mut st, 305, &[3; 12]), Some(3));
        st.scaled_down(s(360), 3);
        // The load is back 30 s later (within 120 s): regretted.
        assert_eq!(st.record(s(390), 8), Some(8));
        assert_eq!(st.window(), s(300));
        // The next dip of 2 minutes is held: (t − 300, t] still holds the 8 at t = 390.
        assert_eq!(feed(&mut st, 395, &[3; 24]), Some(8), "t = 510");
        // A dip longer than the window is released, 300 s after the 8 at 390.
        assert_eq!(feed(&mut st, 515, &[3; 35]), Some(8), "t = 685");
        assert_eq!(st.record(s(690), 3), Some(3));
    }

    #[test]
    fn after_a_restart_a_longer_window_waits_for_its_full_length() {
        let mut st = Stabilizer::new(s(60), s(300), s(120));
        feed(&mut st, 0, &[8; 13]);
        st.scaled_down(s(60), 3);
        assert_eq!(st.record(s(65), 8), None, "300 s not yet seen");
        assert_eq!(feed(&mut st, 70, &[3; 46]), None, "t = 295");
        assert_eq!(st.record(s(300), 3), Some(8), "(0, 300] holds the 8 at 65");
        assert_eq!(st.record(s(365), 3), Some(3));
    }

    #[test]
    fn scale_downs_that_stick_halve_the_excess_back_to_the_base() {
        let mut st = Stabilizer::new(s(60), s(300), s(120));
        feed(&mut st, 0, &[8; 13]);
        st.scaled_down(s(60), 3);
        st.record(s(65), 8); // regretted: 300 s
        assert_eq!(st.window(), s(300));
        st.scaled_down(s(400), 3);
        st.record(s(520), 3); // 120 s later: not yet judged (the horizon is inclusive)
        assert_eq!(st.window(), s(300));
        st.record(s(525), 3); // stuck: 60 + 240 / 2
        assert_eq!(st.window(), s(180));
        st.scaled_down(s(600), 2);
        st.record(s(721), 3); // stuck (later than 120 s): 60 + 120 / 2
        assert_eq!(st.window(), s(120));
        st.scaled_down(s(800), 2);
        st.record(s(921), 2);
        assert_eq!(st.window(), s(90));
    }

    #[test]
    fn a_rise_to_no_more_than_was_kept_is_no_regret() {
        let mut st = Stabilizer::new(s(60), s(300), s(120));
        st.record(s(0), 8);
        st.scaled_down(s(60), 5);
        st.record(s(65), 5);
        st.record(s(70), 4);
        st.record(s(75), 5);
        assert_eq!(st.window(), s(60));
        // A further step down replaces the judged one; the regret counts against 3.
        st.scaled_down(s(80), 3);
        st.record(s(100), 4);
        assert_eq!(st.window(), s(300));
    }

    #[test]
    fn a_fixed_window_never_adapts() {
        let mut st = Stabilizer::new(s(60), s(60), s(120));
        feed(&mut st, 0, &[8; 13]);
        st.scaled_down(s(60), 3);
        st.record(s(65), 8);
        assert_eq!(st.window(), s(60));
        // A max below the base is the base.
        let st = Stabilizer::new(s(60), s(10), s(120));
        assert_eq!(st.window(), s(60));
    }
}
