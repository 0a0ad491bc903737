//! Child processes that are always stopped by PID: SIGTERM, a grace period, then SIGKILL.
//!
//! [`Supervised`] stops its process when dropped, so a lab or a test that fails half-way
//! leaves nothing running. [`terminate`] does the same for a process that is not our child
//! (a daemon found through its pid file).

use std::fs;
use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};

/// How long a process gets to exit after SIGTERM before it is killed, unless set otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A child process that is stopped (SIGTERM, grace, SIGKILL) when dropped.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    grace: Duration,
    status: Option<ExitStatus>,
}

impl Supervised {
    /// Starts `cmd`. `name` is used in error messages. A missing program gives an error that
    /// names it.
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<Supervised> {
        let child = cmd.spawn().map_err(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            io::Error::new(e.kind(), format!("cannot start {name} ({program}): {e}"))
        })?;
        Ok(Supervised {
            name: name.to_owned(),
            child,
            grace: DEFAULT_GRACE,
            status: None,
        })
    }

    /// Sets the time between SIGTERM and SIGKILL.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Sends a signal to the process (unless it has already been reaped).
    pub fn signal(&mut self, sig: Signal) -> io::Result<()> {
        if self.try_status()?.is_some() {
            return Ok(());
        }
        signal_pid(self.child.id(), sig)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the process: SIGTERM, up to the grace period, then SIGKILL. Returns how it exited.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.try_status()? {
            return Ok(s);
        }
        self.signal(Signal::TERM)?;
        if let Some(s) = self.wait_timeout(self.grace)? {
            return Ok(s);
        }
        self.signal(Signal::KILL)?;
        let s = self.child.wait()?;
        self.status = Some(s);
        Ok(s)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn pid_of(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}")))
}

/// Sends `sig` to `pid`.
pub fn signal_pid(pid: u32, sig: Signal) -> io::Result<()> {
    kill_process(pid_of(pid)?, sig).map_err(io::Error::from)
}

/// Whether `pid` names a live process (a zombie counts as gone).
pub fn is_alive(pid: u32) -> bool {
    let Ok(p) = pid_of(pid) else { return false };
    if test_kill_process(p).is_err() {
        return false;
    }
    // A zombie still answers kill(0); its state in /proc/PID/stat is 'Z'.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// The command line of `pid`, split on NULs, or `None` if it is gone.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Stops a process that is not our child: SIGTERM, up to `grace` for it to go, then
/// SIGKILL. Returns `false` if it was already gone.
pub fn terminate(pid: u32, grace: Duration) -> io::Result<bool> {
    if !is_alive(pid) {
        return Ok(false);
    }
    match signal_pid(pid, Signal::TERM) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc_esrch()) => return Ok(false),
        Err(e) => return Err(e),
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = signal_pid(pid, Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(true)
}

fn libc_esrch() -> i32 {
    rustix::io::Errno::SRCH.raw_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_terminates_and_reaps() {
        let mut p = Supervised::spawn("sleeper", Command::new("sleep").arg("60")).unwrap();
        let pid = p.pid();
        assert!(is_alive(pid));
        // Right after spawn the child may not have exec'd yet.
        crate::wait::poll_until(
            "sleep to exec",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || (cmdline(pid)? == ["sleep", "60"]).then_some(()),
        )
        .unwrap();
        let status = p.stop().unwrap();
        assert!(!status.success());
        assert!(!is_alive(pid));
    }

    #[test]
    fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
        use std::io::BufRead;
        let mut p = Supervised::spawn(
            "stubborn",
            Command::new("sh")
                .args(["-c", "trap '' TERM; echo ready; exec sleep 60"])
                .stdout(std::process::Stdio::piped()),
        )
        .unwrap()
        .with_grace(Duration::from_millis(200));
        let pid = p.pid();
        // Wait until the trap is in place before sending SIGTERM.
        let mut line = String::new();
        std::io::BufReader::new(p.child_mut().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        let t = Instant::now();
        p.stop().unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(!is_alive(pid));
    }

    #[test]
    fn drop_stops_the_process() {
        let p = Supervised::spawn("sleeper", Command::new("sleep").arg("60")).unwrap();
        let pid = p.pid();
        drop(p);
        assert!(!is_alive(pid));
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = Supervised::spawn("thing", &mut Command::new("/nonexistent/prog")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/prog"), "{err}");
    }

    #[test]
    fn terminate_stops_a_non_child() {
        // `sh` starts a grandchild in the background and prints its pid.
        let out = Command::new("sh")
            .args(["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(is_alive(pid));
        assert!(terminate(pid, Duration::from_secs(5)).unwrap());
        assert!(!is_alive(pid));
        assert!(!terminate(pid, Duration::from_secs(1)).unwrap());
    }
}
