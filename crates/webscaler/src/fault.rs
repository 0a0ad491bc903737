//! Crash points, for crash tests: with `WEBSCALER_CRASH_AT=NAME` (or `NAME@N`) in its
//! environment, the process kills itself with SIGKILL the first (or N-th) time it reaches
//! the point `NAME`, exactly as a `kill -9` at that moment would. So a test chooses the
//! moment of a crash instead of racing a sleep. Without the variable (always, outside
//! tests), a point costs one look at a value read once.
//!
//! The points:
//!
//! | name | where |
//! |---|---|
//! | `local-create` | the local provider has recorded a new backend's slot and started its process, before recording its pid |
//! | `local-stop` | the local provider has sent SIGTERM to a backend it stops or deletes |
//! | `added` | the controller has added a server to the balancer (in maintenance), before readying it |
//! | `drained` | the controller has set a server to drain |
//! | `tick-end` | `webscaler run` has written a tick's CSV row, log line and status file: between two ticks |

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that names the crash point.
pub const VARIABLE: &str = "WEBSCALER_CRASH_AT";

/// The point and the how-manieth time it is reached that crashes, from the variable.
fn spec() -> Option<&'static (String, u64)> {
    static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let v = std::env::var(VARIABLE).ok()?;
        Some(match v.split_once('@') {
            Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
            None => (v, 1),
        })
    })
    .as_ref()
}

/// Reaching the point `name`: SIGKILL to this process if it is the point (and the time)
/// that [`VARIABLE`] names.
pub fn point(name: &str) {
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Some((at, n)) = spec() else { return };
    if at != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    eprintln!("webscaler: crash point {name} reached ({VARIABLE}): SIGKILL");
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // SIGKILL cannot be caught; this is never reached.
    std::process::abort();
}
