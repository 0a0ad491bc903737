//! A fixed-rate ticker on the monotonic clock.
//!
//! Tick `k` is due at `start + k·interval`, so lateness never accumulates (no drift). If the
//! loop falls behind by more than a whole interval, the ticks it missed are skipped and
//! counted, never fired in a burst. An interval of zero fires as fast as the loop runs.

use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

/// One firing of a [`Ticker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The tick's index `k`: it was due at `start + k·interval`.
    pub index: u64,
    /// When the tick was due.
    pub due: Instant,
    /// Ticks skipped just before this one because the loop was late.
    pub skipped: u64,
}

/// What a ticker should do now, given how far it is from its start (pure logic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait this long, then fire tick `next`.
    Wait(Duration),
    /// Fire tick `index` now, skipping `skipped` ticks before it.
    Fire {
        /// The tick to fire.
        index: u64,
        /// How many ticks were missed.
        skipped: u64,
    },
}

/// Decides the next step for a ticker whose next tick is `next`, `elapsed` after its start.
pub fn step(elapsed: Duration, interval: Duration, next: u64) -> Step {
    if interval.is_zero() {
        return Step::Fire {
            index: next,
            skipped: 0,
        };
    }
    let due = offset(interval, next);
    if elapsed < due {
        return Step::Wait(due - elapsed);
    }
    // The latest tick that is already due; those between `next` and it are skipped.
    let latest = (elapsed.as_nanos() / interval.as_nanos()) as u64;
    let latest = latest.max(next);
    Step::Fire {
        index: latest,
        skipped: latest - next,
    }
}

/// `interval · k`, saturating instead of overflowing.
fn offset(interval: Duration, k: u64) -> Duration {
    let nanos = interval.as_nanos().saturating_mul(u128::from(k));
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// A drift-free fixed-rate ticker. Tick 0 fires at once.
#[derive(Debug, Clone)]
pub struct Ticker {
    start: Instant,
    interval: Duration,
    next: u64,
    skipped_total: u64,
}

impl Ticker {
    /// A ticker that starts now.
    pub fn new(interval: Duration) -> Self {
        Ticker::starting_at(Instant::now(), interval)
    }

    /// A ticker whose tick 0 is due at `start`.
    pub fn starting_at(start: Instant, interval: Duration) -> Self {
        Ticker {
            start,
            interval,
            next: 0,
            skipped_total: 0,
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// All ticks skipped so far.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    /// Waits for the next tick and returns it, or `None` as soon as shutdown is requested.
    pub fn wait(&mut self, shutdown: &Shutdown) -> Option<Tick> {
        loop {
            if shutdown.requested() {
                return None;
            }
            match step(self.start.elapsed(), self.interval, self.next) {
                Step::Wait(d) => {
                    shutdown.sleep(d);
                }
                Step::Fire { index, skipped } => {
                    self.next = index + 1;
                    self.skipped_total += skipped;
                    let due = crate::time::instant_after(self.start, offset(self.interval, index));
                    return Some(Tick {
                        index,
                        due,
                        skipped,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_tick_fires_at_once() {
        assert_eq!(
            step(ms(0), S, 0),
            Step::Fire {
                index: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn waits_for_the_due_time_of_the_next_tick() {
        assert_eq!(step(ms(10), S, 1), Step::Wait(ms(990)));
        assert_eq!(step(ms(2300), S, 3), Step::Wait(ms(700)));
    }

    #[test]
    fn late_but_within_one_interval_fires_without_skipping() {
        assert_eq!(
            step(ms(1900), S, 1),
            Step::Fire {
                index: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn far_behind_skips_and_counts_instead_of_bunching() {
        // Next is tick 1 but it is already 4.5 s: ticks 1, 2, 3 are skipped, tick 4 fires.
        assert_eq!(
            step(ms(4500), S, 1),
            Step::Fire {
                index: 4,
                skipped: 3
            }
        );
    }

    #[test]
    fn zero_interval_always_fires() {
        assert_eq!(
            step(ms(5), Duration::ZERO, 7),
            Step::Fire {
                index: 7,
                skipped: 0
            }
        );
    }

    proptest! {
        /// Whatever the lateness, a fired tick is due, the next one is not, and nothing fires
        /// twice.
        #[test]
        fn fired_ticks_are_due_and_never_repeat(elapsed_ms in 0u64..100_000, interval_ms in 1u64..5_000, next in 0u64..200) {
            let interval = ms(interval_ms);
            match step(ms(elapsed_ms), interval, next) {
                Step::Wait(d) => {
                    prop_assert_eq!(ms(elapsed_ms) + d, interval * next as u32);
                }
                Step::Fire { index, skipped } => {
                    prop_assert!(index >= next);
                    prop_assert_eq!(index - next, skipped);
                    prop_assert!(interval * index as u32 <= ms(elapsed_ms));
                    prop_assert!(interval * (index as u32 + 1) > ms(elapsed_ms));
                }
            }
        }
    }

    #[test]
    fn real_ticks_keep_their_schedule() {
        let shutdown = Shutdown::new().unwrap();
        let mut t = Ticker::new(ms(20));
        let first = t.wait(&shutdown).unwrap();
        assert_eq!(first.index, 0);
        for k in 1..5 {
            let tick = t.wait(&shutdown).unwrap();
            assert!(tick.index >= k);
            assert!(Instant::now() >= tick.due, "never fires early");
        }
        shutdown.trigger();
        assert_eq!(t.wait(&shutdown), None);
    }
}
