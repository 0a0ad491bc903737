//! Locks on files, held with `flock(2)` until dropped.
//!
//! - [`PidLock`]: one process at a time holds a file or directory, and a second one is told who
//!   holds it instead of waiting (a sweep's CSV, a lab's directory).
//! - [`FileLock`]: a short critical section (read, change and write a state file) that the
//!   others wait their turn for, shared or exclusive.
//!
//! Both unlock explicitly when dropped rather than by closing their descriptor: a child forked
//! by another thread holds a copy of the descriptor until it execs, and the lock would live as
//! long as that copy.
//!
//! [`PidLock::acquire`] takes an exclusive `flock(2)` on a lock file and writes its pid into
//! it; a second process gets [`LockError::Held`] with that pid at once instead of waiting.
//! The kernel drops the lock when its holder exits, also on SIGKILL, so a stale lock file is
//! harmless and is never removed (removing it would let two processes lock two different
//! files of the same name).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{} is locked by another process{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, as it wrote it (`None` if it had not yet).
        pid: Option<u32>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {}: {error}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        error: io::Error,
    },
}

/// An exclusive lock held until dropped (or until the process exits).
#[derive(Debug)]
pub struct PidLock {
    path: PathBuf,
    _file: File,
}

impl PidLock {
    /// Takes the lock on `path` (created if missing, with its directory) without waiting, and
    /// writes this process's pid into it.
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        let io_err = |error| LockError::Io {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    path: path.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(PidLock {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidLock {
    /// Unlocks explicitly rather than by closing (see the module's documentation).
    fn drop(&mut self) {
        let _ = self._file.unlock();
    }
}

/// Whether a [`FileLock`] excludes readers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Several holders at once, none of them exclusive (readers).
    Shared,
    /// One holder (a writer).
    Exclusive,
}

/// A `flock(2)` on a lock file that waits until it is granted and is released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Opens `path` (created if missing; its directory must exist) and waits for the lock.
    /// The error is the open's or the lock's, for the caller to name the file.
    pub fn wait(path: &Path, mode: LockMode) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        loop {
            let r = match mode {
                LockMode::Shared => file.lock_shared(),
                LockMode::Exclusive => file.lock(),
            };
            match r {
                Ok(()) => return Ok(FileLock { file }),
                // A signal handled while waiting.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for FileLock {
    /// Unlocks explicitly rather than by closing (see the module's documentation).
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The lock file that guards `file` against a second writer: `.NAME.lock` beside it.
pub fn lock_path_for(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.with_file_name(format!(".{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_one_s_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path_for(&dir.path().join("perf.csv"));
        assert_eq!(path, dir.path().join(".perf.csv.lock"));
        let held = PidLock::acquire(&path).unwrap();
        // Another open file description, as another process would have.
        match PidLock::acquire(&path) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        let again = PidLock::acquire(&path).unwrap();
        assert_eq!(again.path(), path);
    }

    /// Whether another open file description could take `path` exclusively right now.
    fn free(path: &Path) -> bool {
        let f = File::open(path).unwrap();
        match f.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn a_file_lock_excludes_as_asked_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".state.lock");
        let w = FileLock::wait(&path, LockMode::Exclusive).unwrap();
        assert!(!free(&path));
        drop(w);
        assert!(free(&path));
        let r1 = FileLock::wait(&path, LockMode::Shared).unwrap();
        let r2 = FileLock::wait(&path, LockMode::Shared).unwrap();
        assert!(!free(&path));
        drop(r1);
        assert!(!free(&path));
        drop(r2);
        assert!(free(&path));
        let e = FileLock::wait(&dir.path().join("missing/.lock"), LockMode::Shared).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    /// How many of 3,000 calls of `attempt` succeed while another thread forks and execs
    /// `true` over and over (a fork copies every descriptor, the lock file's too, until the
    /// child execs).
    fn successes_while_forking(mut attempt: impl FnMut() -> bool) -> usize {
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Stops the forking thread however the attempts end (a panicking one too).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let _ = std::process::Command::new("true").status();
                }
            });
            let _stop = Stop(&done);
            (0..3000).filter(|_| attempt()).count()
        })
    }

    #[test]
    fn a_dropped_file_lock_is_free_while_other_threads_fork() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        // Taking it again would wait for a forked child's exec; the check does not wait.
        let free_after_drop = successes_while_forking(|| {
            drop(FileLock::wait(&path, LockMode::Exclusive).unwrap());
            free(&path)
        });
        assert_eq!(free_after_drop, 3000);
    }

    #[test]
    fn a_dropped_lock_is_free_while_other_threads_fork() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let taken = successes_while_forking(|| PidLock::acquire(&path).is_ok());
        assert_eq!(taken, 3000);
    }
}
