//! Graceful shutdown on SIGINT and SIGTERM.
//!
//! [`Shutdown::install`] registers the handlers once per process. A signal sets a flag and
//! writes a byte to a self-pipe, so [`Shutdown::sleep`] (a `poll(2)` on that pipe) returns at
//! once instead of at the end of its timeout: loops stop within milliseconds, not at their
//! next tick. A second SIGINT or SIGTERM while the first is being handled exits the process
//! at once with status 130 (the operator's "I mean it").

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use signal_hook::consts::{SIGINT, SIGTERM};

/// A shared "please stop" flag that SIGINT and SIGTERM set, with sleeps that wake on it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    flag: Arc<AtomicBool>,
    /// Read end of the self-pipe; readable once shutdown was requested.
    wake_rx: UnixStream,
    /// Write end, for [`Shutdown::trigger`].
    wake_tx: UnixStream,
}

static INSTALLED: OnceLock<Shutdown> = OnceLock::new();

impl Shutdown {
    /// Registers the SIGINT and SIGTERM handlers (once per process) and returns the shared
    /// flag. Later calls return the same flag.
    pub fn install() -> io::Result<Shutdown> {
        if let Some(s) = INSTALLED.get() {
            return Ok(s.clone());
        }
        let s = Shutdown::new()?;
        for sig in [SIGINT, SIGTERM] {
            // Order matters: the conditional exit sees the flag as it was before this signal.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&s.inner.flag))?;
            signal_hook::flag::register(sig, Arc::clone(&s.inner.flag))?;
            signal_hook::low_level::pipe::register(sig, s.inner.wake_tx.try_clone()?)?;
        }
        Ok(INSTALLED.get_or_init(|| s).clone())
    }

    /// A flag that no signal sets; only [`Shutdown::trigger`] does. For tests and simulations.
    pub fn new() -> io::Result<Shutdown> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(Inner {
                flag: Arc::new(AtomicBool::new(false)),
                wake_rx,
                wake_tx,
            }),
        })
    }

    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
    }

    /// Requests shutdown, as a signal would.
    pub fn trigger(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        // A full pipe already wakes every sleeper, so a failed write is harmless.
        let _ = (&self.inner.wake_tx).write(&[1]);
    }

    /// Sleeps for `d`, or less if shutdown is requested. Returns `true` if it slept the
    /// whole time and `false` if it was woken by a shutdown request.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = crate::time::instant_after(Instant::now(), d);
        loop {
            if self.requested() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            let left = deadline - now;
            let ts = Timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.inner.wake_rx, PollFlags::IN)];
            // EINTR and spurious wakeups loop back to the checks above.
            let _ = poll(&mut fds, Some(&ts));
        }
    }

    /// Sleeps until `deadline` (see [`Shutdown::sleep`]).
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_runs_its_time_without_a_request() {
        let s = Shutdown::new().unwrap();
        let t = Instant::now();
        assert!(s.sleep(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn trigger_wakes_a_sleeper_at_once() {
        let s = Shutdown::new().unwrap();
        let s2 = s.clone();
        let t = Instant::now();
        let h = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        s.trigger();
        assert!(!h.join().unwrap(), "woken, not timed out");
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(s.requested());
        // Once requested, sleeps return at once.
        assert!(!s.sleep(Duration::from_secs(30)));
    }

    #[test]
    fn a_real_sigterm_sets_the_flag_and_wakes_the_sleeper() {
        let s = Shutdown::install().unwrap();
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
            .unwrap();
        assert!(!h.join().unwrap());
        assert!(s.requested());
        assert!(
            Shutdown::install().unwrap().requested(),
            "install returns the same flag"
        );
    }
}
