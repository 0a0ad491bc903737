//! A policy that decides on its own period, whatever the controller's tick: the lab report's rounds
//! every 60 s, Kubernetes HPA's sync every 15 s, AWS target tracking's one-minute periods.
//!
//! [`Rounds::due`] says whether a round is due at a tick: the first tick, then the first tick
//! at or after each later mark (within [`ROUND_SLACK`], so that a real clock's jitter does not
//! postpone a round by a tick). The marks are the grid `k × period` of the policy's clock
//! (which starts with the run, so the first tick is on a mark): a late round does not shift the
//! later ones, marks missed entirely are skipped, never run in a burst, and a policy resumed
//! after a restart ([`super::resume`]) keeps the rounds of the one that stopped.

use std::time::Duration;

/// How early a tick may come and still be a round: a real ticker's tick lands a little
/// after its mark, and never by as much as this.
pub const ROUND_SLACK: Duration = Duration::from_millis(500);

/// The schedule of a policy's rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounds {
    period: Duration,
    /// When the next round is due (`None`: at the first tick).
    next: Option<Duration>,
}

impl Rounds {
    /// Rounds every `period`, the first at the first tick, the next at the first mark after
    /// it. A zero period makes every tick a round.
    pub fn every(period: Duration) -> Rounds {
        Rounds { period, next: None }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Whether a round is due at `now`; if so, schedules the next one.
    pub fn due(&mut self, now: Duration) -> bool {
        let due = match self.next {
            Some(due) => due,
            // The grid's mark at or before the first tick.
            None if !self.period.is_zero() => {
                let p = self.period.as_nanos();
                let mark = (now + ROUND_SLACK).as_nanos() / p * p;
                Duration::from_nanos(u64::try_from(mark).unwrap_or(u64::MAX))
            }
            None => now,
        };
        if now + ROUND_SLACK < due {
            return false;
        }
        let mut next = due + self.period;
        if !self.period.is_zero() {
            while next <= now + ROUND_SLACK {
                next += self.period;
            }
        }
        self.next = Some(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn rounds_stay_on_their_grid_and_skip_missed_marks() {
        let mut r = Rounds::every(ms(15_000));
        let due: Vec<u64> = (0..=12)
            .map(|k| k * 5_000)
            .filter(|&t| r.due(ms(t)))
            .collect();
        assert_eq!(due, vec![0, 15_000, 30_000, 45_000, 60_000]);
        // A tick 0.3 s early still counts; a late one does not shift the grid.
        let mut r = Rounds::every(ms(15_000));
        assert!(r.due(ms(1_000)));
        assert!(!r.due(ms(14_000)));
        assert!(r.due(ms(14_700)));
        assert!(!r.due(ms(15_000)));
        assert!(r.due(ms(30_800)));
        // Marks missed entirely are skipped: the next is the one after now.
        assert!(r.due(ms(100_000)));
        assert!(!r.due(ms(104_000)));
        assert!(r.due(ms(105_000)));
        // The first tick may come late (a resumed policy's first remembered tick): the
        // marks are still the grid's.
        let mut r = Rounds::every(ms(15_000));
        assert!(r.due(ms(40_000)));
        assert!(!r.due(ms(44_000)));
        assert!(r.due(ms(45_000)));
        let mut every = Rounds::every(Duration::ZERO);
        assert!(every.due(ms(0)) && every.due(ms(0)) && every.due(ms(7)));
    }
}
