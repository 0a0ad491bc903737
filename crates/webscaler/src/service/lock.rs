//! The exclusive lock of the running instance on its state directory ([`RunLock`], a
//! [`common::lock::PidLock`] on `webscaler.lock`).

use std::path::{Path, PathBuf};

use common::lock::{self, PidLock};

/// The lock file of the running instance in the state directory; it holds its pid.
pub const LOCK_FILE: &str = "webscaler.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another `webscaler run` holds it.
    #[error(
        "another webscaler run (pid {}) uses the state directory {}; stop it or give another --state-dir",
        pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
        state_dir.display()
    )]
    Held {
        /// The holder's pid, if it had written it.
        pid: Option<u32>,
        state_dir: PathBuf,
    },
    /// The lock file could not be opened, locked or written.
    #[error(transparent)]
    Io(lock::LockError),
}

/// Held while `webscaler run` runs on a state directory; released when dropped (or when
/// the process dies: it is an `flock`).
#[derive(Debug)]
pub struct RunLock {
    _lock: PidLock,
}

impl RunLock {
    /// Takes the lock of `state_dir` and writes our pid into it.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
        match PidLock::acquire(&state_dir.join(LOCK_FILE)) {
            Ok(l) => Ok(RunLock { _lock: l }),
            Err(lock::LockError::Held { pid, .. }) => Err(LockError::Held {
                pid,
                state_dir: state_dir.to_path_buf(),
            }),
            Err(e) => Err(LockError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let e = RunLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&e, LockError::Held { pid, .. } if *pid == Some(std::process::id())),
            "{e}"
        );
        assert!(e.to_string().contains("another webscaler run (pid "), "{e}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
