//! The exclusive lock of the running instance on its state directory ([`RunLock`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file of the running instance in the state directory; it holds its pid.
pub const LOCK_FILE: &str = "webscaler.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another webscaler run (pid {pid}) uses the state directory {}; stop it or give another --state-dir",
        state_dir.display()
    )]
    Held {
        /// The pid the lock file names (empty if it names none).
        pid: String,
        state_dir: PathBuf,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `open`, `lock` or `write`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while `webscaler run` runs on a state directory; released when dropped (or when
/// the process dies: it is an `flock`).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `state_dir` (which must exist) and writes our pid into it.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io = |action, source| LockError::Io {
            action,
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Held {
                    pid: pid.trim().to_owned(),
                    state_dir: state_dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("write", e))?;
        Ok(RunLock { _file: file })
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
            matches!(&e, LockError::Held { pid, .. } if *pid == std::process::id().to_string()),
            "{e}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
