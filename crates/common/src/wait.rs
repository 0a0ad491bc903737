//! Polling with a deadline: the way to wait for a condition (a port that answers, a process
//! that exits, a server that turns UP) without sleeping a fixed time.

use std::time::{Duration, Instant};

/// The condition did not hold before the deadline.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}")]
pub struct TimedOut {
    /// What was waited for.
    pub what: String,
    /// How long it waited.
    pub waited: Duration,
}

/// Calls `check` every `every` until it returns `Some`, or until `timeout` has passed.
/// `check` runs at least once, and once more at the deadline.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let start = Instant::now();
    let deadline = crate::time::instant_after(start, timeout);
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                waited: now - start,
            });
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value() {
        let mut n = 0;
        let v = poll_until(
            "n to reach 3",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                (n == 3).then_some(n * 10)
            },
        )
        .unwrap();
        assert_eq!(v, 30);
    }

    #[test]
    fn times_out_with_a_message() {
        let err = poll_until(
            "never",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || None::<()>,
        )
        .unwrap_err();
        assert!(err.waited >= Duration::from_millis(20));
        assert!(err.to_string().contains("waiting for never"));
    }
}
