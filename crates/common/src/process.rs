//! Child processes: how they are started, recognised and stopped.
//!
//! - [`SpawnOptions`]: how a child is set apart from the tool that starts it (its own process
//!   group, a signal when the starting thread dies, the open-file limit raised, an
//!   environment variable that marks it as ours). Every tool of the workspace starts its
//!   long-lived children (balancers, backends, httperf, an embedded HAProxy) through it.
//! - [`Supervised`]: a child that is always stopped (SIGTERM, a grace period, SIGKILL) when
//!   dropped, so a lab or a test that fails half-way leaves nothing running; started in its
//!   own group with [`SpawnOptions::stop_group`], the whole group is stopped.
//! - [`terminate`] and [`terminate_group`]: the same for a process (or a group) that is not
//!   our child (a daemon found through its pid file, a backend started by an earlier run).
//! - [`split_words`]: a command line given as one string (`--command 'lbbench backend
//!   --port {port}'`) split into words the way `sh` does; [`join_words`] the other way round
//!   (a command for a remote shell, through `ssh`).
//!
//! ```no_run
//! use std::process::Command;
//! use common::process::{SpawnOptions, Supervised};
//!
//! // A helper that must not outlive us, in a group of its own so that everything it
//! // starts is stopped with it.
//! let opts = SpawnOptions::isolated().stop_group();
//! let mut p = Supervised::spawn_with("load", Command::new("sh").args(["-c", "sleep 60 & sleep 60"]), &opts)?;
//! p.stop()?; // SIGTERM to the group, 5 s, then SIGKILL to whatever is left in it
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group, test_kill_process};

/// How a child is set apart from the process that starts it. The default changes nothing.
///
/// - `own_group`: the child leads a new process group. A Ctrl-C in the terminal then reaches
///   only the tool, which stops its children in order; and the group can be signalled as a
///   whole ([`signal_group`], [`terminate_group`]), which reaches what the child starts too
///   (a wrapper script's own children).
/// - `own_session`: the child leads a new session (`setsid`), and so a new process group
///   too: no signal of the tool's terminal (Ctrl-C, a hangup) ever reaches it. For children
///   meant to outlive the tool (an embedded HAProxy, local backends).
/// - `parent_death`: the signal the child gets when the *thread* that started it ends (Linux
///   `PR_SET_PDEATHSIG`), even if the tool is killed with SIGKILL. Start such children from
///   a thread that outlives them (the main thread, or a test's own thread). If the tool died
///   between fork and exec, the child does not start.
/// - `raise_nofile`: the child's soft limit on open files is raised to the hard limit, so
///   that programs that do not raise it themselves can use as many descriptors as the others.
/// - `marker`: an environment variable set in the child, by which a later run recognises
///   the process as one of its own ([`has_marker`]) before it signals it.
/// - `stop_group`: [`Supervised::stop`] signals the whole group rather than the child alone
///   (needs `own_group`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Start the child in a new process group of its own.
    pub own_group: bool,
    /// Start the child in a new session of its own (and so a new process group).
    pub own_session: bool,
    /// The signal the child gets when the starting thread ends.
    pub parent_death: Option<Signal>,
    /// Raise the child's soft open-file limit to the hard limit.
    pub raise_nofile: bool,
    /// An environment variable (name, value) set in the child to recognise it later.
    pub marker: Option<(OsString, OsString)>,
    /// Stop the whole group, not the child alone ([`Supervised::stop`]).
    pub stop_group: bool,
}

impl SpawnOptions {
    /// A child that is the tool's alone to stop: its own process group, SIGTERM when the
    /// starting thread ends, and the open-file limit raised (the lab's balancers and
    /// backends).
    pub fn isolated() -> Self {
        SpawnOptions {
            own_group: true,
            parent_death: Some(Signal::TERM),
            raise_nofile: true,
            ..SpawnOptions::default()
        }
    }

    /// A child meant to outlive the tool (a daemon it starts): a session and process group
    /// of its own, no parent-death signal, the open-file limit raised. Give it a
    /// [`marker`](SpawnOptions::marker) to recognise it later ([`find_marked`]).
    pub fn detached() -> Self {
        SpawnOptions {
            own_group: true,
            own_session: true,
            raise_nofile: true,
            ..SpawnOptions::default()
        }
    }

    /// The same options, with [`Supervised::stop`] and [`Supervised::signal_group`] reaching
    /// the whole process group (implies `own_group`).
    pub fn stop_group(mut self) -> Self {
        self.own_group = true;
        self.stop_group = true;
        self
    }

    /// The same options, with `signal` sent to the child when the starting thread ends.
    pub fn parent_death(mut self, signal: Signal) -> Self {
        self.parent_death = Some(signal);
        self
    }

    /// The same options, with the environment variable `name=value` set in the child.
    pub fn marker(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.marker = Some((name.into(), value.into()));
        self
    }

    /// Sets these options on `cmd` (for a child that is not [`Supervised`]).
    pub fn apply(&self, cmd: &mut Command) {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        // `setsid` fails in a process group leader, so a new session is not combined with
        // `process_group(0)`: the session's new group is the child's own anyway.
        if self.own_group && !self.own_session {
            cmd.process_group(0);
        }
        if let Some((name, value)) = &self.marker {
            cmd.env(name, value);
        }
        if self.parent_death.is_none() && !self.raise_nofile && !self.own_session {
            return;
        }
        let session = self.own_session;
        let death = self.parent_death;
        let parent = rustix::process::getpid();
        let raise = self.raise_nofile.then(|| {
            let nofile = getrlimit(Resource::Nofile);
            Rlimit {
                current: nofile.maximum,
                maximum: nofile.maximum,
            }
        });
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe system calls (setsid, prctl, getppid, setrlimit); it allocates
        // nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                if session {
                    rustix::process::setsid()?;
                }
                if let Some(sig) = death {
                    rustix::process::set_parent_process_death_signal(Some(sig))?;
                    // The parent may have died before the prctl: then nobody would stop us.
                    if rustix::process::getppid() != Some(parent) {
                        return Err(io::Error::other("the parent exited"));
                    }
                }
                if let Some(limit) = raise {
                    // Best effort: the soft limit stays as it was if this fails.
                    let _ = setrlimit(Resource::Nofile, limit);
                }
                Ok(())
            });
        }
    }
}

/// How long a process gets to exit after SIGTERM before it is killed, unless set otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A child process that is stopped (SIGTERM, grace, SIGKILL) when dropped.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    grace: Duration,
    status: Option<ExitStatus>,
    /// Whether `stop` signals the child's whole process group.
    group: bool,
}

impl Supervised {
    /// Starts `cmd` as it is. `name` is used in error messages. A missing program gives an
    /// error that names it.
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<Supervised> {
        Supervised::spawn_with(name, cmd, &SpawnOptions::default())
    }

    /// Starts `cmd` with `opts` applied (see [`SpawnOptions`]).
    pub fn spawn_with(
        name: &str,
        cmd: &mut Command,
        opts: &SpawnOptions,
    ) -> io::Result<Supervised> {
        opts.apply(cmd);
        let child = cmd.spawn().map_err(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            io::Error::new(e.kind(), format!("cannot start {name} ({program}): {e}"))
        })?;
        Ok(Supervised {
            name: name.to_owned(),
            child,
            grace: DEFAULT_GRACE,
            status: None,
            group: (opts.own_group || opts.own_session) && opts.stop_group,
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

    /// Sends a signal to the child's whole process group (the child alone if it was not
    /// started with [`SpawnOptions::stop_group`]). Members of the group that outlive the child
    /// (a wrapper's children) are reached too, also after the child was reaped.
    pub fn signal_group(&mut self, sig: Signal) -> io::Result<()> {
        if self.group {
            return match signal_group(self.child.id(), sig) {
                Err(e) if e.raw_os_error() == Some(libc_esrch()) => Ok(()),
                r => r,
            };
        }
        self.signal(sig)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = crate::time::instant_after(Instant::now(), timeout);
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
    ///
    /// Started with [`SpawnOptions::stop_group`], the signals go to the whole group, and
    /// whatever is left of the group once the child has exited gets SIGKILL: nothing it
    /// started outlives it.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.try_status()? {
            self.kill_rest_of_group();
            return Ok(s);
        }
        self.signal_group(Signal::TERM)?;
        if let Some(s) = self.wait_timeout(self.grace)? {
            self.kill_rest_of_group();
            return Ok(s);
        }
        self.signal_group(Signal::KILL)?;
        let s = self.child.wait()?;
        self.status = Some(s);
        self.kill_rest_of_group();
        Ok(s)
    }

    fn kill_rest_of_group(&mut self) {
        if self.group && group_has_live_members(self.child.id()) {
            let _ = signal_group(self.child.id(), Signal::KILL);
        }
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

/// Sends `sig` to every process of the process group `pgid`.
pub fn signal_group(pgid: u32, sig: Signal) -> io::Result<()> {
    kill_process_group(pid_of(pgid)?, sig).map_err(io::Error::from)
}

/// Whether any live (non-zombie) process is in the process group `pgid` (from `/proc`).
pub fn group_has_live_members(pgid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(stat_state_and_group)
            .is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z')
    })
}

/// Stops the process group `pgid` (started with [`SpawnOptions::own_group`]): SIGTERM to the
/// group, up to `grace` for its leader to go, then SIGKILL to whatever is left of the group.
/// `reap` is called while waiting, so that a leader that is our own child does not stay a
/// zombie (pass `|| {}` otherwise). Returns `false` if the group was already gone; an error
/// if something of it is still alive 10 s after SIGKILL.
pub fn terminate_group(pgid: u32, grace: Duration, mut reap: impl FnMut()) -> io::Result<bool> {
    if !group_has_live_members(pgid) && !is_alive(pgid) {
        return Ok(false);
    }
    let signal = |sig: Signal| {
        // Fall back to the leader alone if it somehow left its group.
        if signal_group(pgid, sig).is_err() {
            let _ = signal_pid(pgid, sig);
        }
    };
    let mut gone = |timeout: Duration, whole: bool| {
        crate::wait::poll_until("exit", timeout, Duration::from_millis(10), || {
            reap();
            let alive = is_alive(pgid) || (whole && group_has_live_members(pgid));
            (!alive).then_some(())
        })
        .is_ok()
    };
    signal(Signal::TERM);
    if !gone(grace, false) {
        signal(Signal::KILL);
    } else if group_has_live_members(pgid) {
        // The leader went; what it started goes too.
        signal(Signal::KILL);
    }
    if gone(Duration::from_secs(10), true) {
        Ok(true)
    } else {
        Err(io::Error::other(format!(
            "process group {pgid} is still alive after SIGKILL"
        )))
    }
}

/// Whether the process `pid` has the environment variable `name` set to `value` (from
/// `/proc/PID/environ`, as it was when the process started). `false` for a process that is
/// gone or that we may not read.
pub fn has_marker(pid: u32, name: &str, value: &str) -> bool {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{name}={value}");
    env.split(|&b| b == 0).any(|v| v == want.as_bytes())
}

/// A process that carries a marker ([`SpawnOptions::marker`]), as [`find_marked`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// The process.
    pub pid: u32,
    /// Its process group (the pid of the child that was started in a group of its own).
    pub pgid: u32,
    /// The marker's value.
    pub value: String,
}

/// Every live process (zombies excluded) whose environment has the variable `name`, with
/// its value and process group: one pass over `/proc`. Children inherit the environment, so
/// this finds what a marked child started too (a wrapper's backend, HAProxy's workers).
/// Processes we may not read are skipped.
pub fn find_marked(name: &str) -> Vec<Marked> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("{name}=");
    let mut found = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Some(value) = env
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(prefix.as_bytes()))
        else {
            continue;
        };
        let Some((state, pgid)) = stat_state_and_group(pid) else {
            continue;
        };
        if state != 'Z' {
            found.push(Marked {
                pid,
                pgid,
                value: String::from_utf8_lossy(value).into_owned(),
            });
        }
    }
    found
}

/// The state letter and the process group of `pid`, from `/proc/PID/stat`.
fn stat_state_and_group(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state, ppid, pgrp, ...
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let pgrp = f.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// A command line that cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot split {line:?} into words: an unclosed quote or a trailing backslash")]
pub struct SplitError {
    pub line: String,
}

/// Splits a command line given as one string into words as a POSIX shell does: spaces
/// separate words; single quotes, double quotes and backslashes group and escape (`a 'b c'
/// "d'e"` is `a`, `b c`, `d'e`). No variables, globs or substitutions are expanded.
pub fn split_words(line: &str) -> Result<Vec<String>, SplitError> {
    shlex::split(line).ok_or_else(|| SplitError {
        line: line.to_owned(),
    })
}

/// A word that cannot be passed through a shell: it holds a NUL byte (which no command
/// line can carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot pass {word:?} through a shell: it holds a NUL byte")]
pub struct QuoteError {
    pub word: String,
}

/// Joins words into one command line that a POSIX shell (`sh -c`, and so the remote shell
/// `ssh` hands a command to) splits back into exactly these words, whatever they hold:
/// spaces, quotes, `$`, `;`, globs, newlines (the inverse of [`split_words`]). Only a NUL
/// byte cannot be carried.
pub fn join_words<S: AsRef<str>>(words: &[S]) -> Result<String, QuoteError> {
    shlex::try_join(words.iter().map(AsRef::as_ref)).map_err(|_| QuoteError {
        word: words
            .iter()
            .map(AsRef::as_ref)
            .find(|w| w.contains('\0'))
            .unwrap_or_default()
            .to_owned(),
    })
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
    let deadline = crate::time::instant_after(Instant::now(), grace);
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
    fn a_group_is_stopped_whole_even_when_a_child_holds_the_pipes() {
        use std::io::Read;
        // A wrapper whose background child keeps stdout open after the wrapper is gone.
        let mut p = Supervised::spawn_with(
            "wrapper",
            Command::new("sh")
                .args(["-c", "sleep 60 & echo $!; wait"])
                .stdout(std::process::Stdio::piped()),
            &SpawnOptions::default().stop_group(),
        )
        .unwrap()
        .with_grace(Duration::from_millis(500));
        let mut out = p.child_mut().stdout.take().unwrap();
        let mut first = [0u8; 64];
        let n = out.read(&mut first).unwrap();
        let grandchild: u32 = String::from_utf8_lossy(&first[..n]).trim().parse().unwrap();
        assert!(is_alive(grandchild));
        p.stop().unwrap();
        crate::wait::poll_until(
            "the grandchild to go",
            Duration::from_secs(5),
            Duration::from_millis(10),
            || (!is_alive(grandchild)).then_some(()),
        )
        .unwrap();
        // With the whole group gone, the pipe reaches its end.
        let mut rest = Vec::new();
        out.read_to_end(&mut rest).unwrap();
        assert!(!group_has_live_members(p.pid()));
    }

    #[test]
    fn isolation_raises_the_file_limit_marks_and_groups_the_child() {
        let opts = SpawnOptions::isolated().marker("COMMON_PROCESS_TEST", "yes");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "ulimit -Sn; ps -o pgid= -p $$; echo \"$COMMON_PROCESS_TEST\"",
        ])
        .stdout(std::process::Stdio::piped());
        opts.apply(&mut cmd);
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        let want = hard.map_or("unlimited".to_owned(), |h| h.to_string());
        assert_eq!(lines[0], want, "{text}");
        assert_eq!(lines[1], pid.to_string(), "its own group: {text}");
        assert_eq!(lines[2], "yes");
    }

    #[test]
    fn markers_are_read_from_proc() {
        let p = Supervised::spawn_with(
            "marked",
            Command::new("sleep").arg("60"),
            &SpawnOptions::default().marker("COMMON_MARKER_TEST", "42"),
        )
        .unwrap();
        let pid = p.pid();
        crate::wait::poll_until(
            "sleep to exec",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || (cmdline(pid)? == ["sleep", "60"]).then_some(()),
        )
        .unwrap();
        assert!(has_marker(pid, "COMMON_MARKER_TEST", "42"));
        assert!(!has_marker(pid, "COMMON_MARKER_TEST", "4"));
        assert!(!has_marker(std::process::id(), "COMMON_MARKER_TEST", "42"));
    }

    #[test]
    fn terminate_group_stops_a_group_that_is_not_ours() {
        let mut leader = Command::new("sh");
        leader.args(["-c", "sleep 60 & sleep 60"]);
        SpawnOptions::default().stop_group().apply(&mut leader);
        let mut child = leader.spawn().unwrap();
        let pgid = child.id();
        crate::wait::poll_until(
            "two members",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || {
                (fs::read_dir("/proc")
                    .unwrap()
                    .flatten()
                    .filter(|e| {
                        fs::read_to_string(e.path().join("stat"))
                            .ok()
                            .and_then(|s| {
                                s.rsplit_once(')').and_then(|(_, r)| {
                                    r.split_whitespace().nth(2).map(|g| g == pgid.to_string())
                                })
                            })
                            == Some(true)
                    })
                    .count()
                    >= 2)
                    .then_some(())
            },
        )
        .unwrap();
        assert!(
            terminate_group(pgid, Duration::from_secs(2), || {
                let _ = child.try_wait();
            })
            .unwrap()
        );
        assert!(!group_has_live_members(pgid));
        assert!(!terminate_group(pgid, Duration::from_secs(1), || {}).unwrap());
    }

    #[test]
    fn a_detached_child_leads_its_own_session_and_is_found_by_its_marker() {
        let value = format!("test-{}", std::process::id());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & wait"]);
        SpawnOptions::detached()
            .marker("COMMON_FIND_MARKED_TEST", &value)
            .apply(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let ours = || -> Vec<Marked> {
            find_marked("COMMON_FIND_MARKED_TEST")
                .into_iter()
                .filter(|m| m.value == value)
                .collect()
        };
        // The shell and its background sleep, both in the shell's group.
        let found = crate::wait::poll_until(
            "sh and sleep",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || {
                let v = ours();
                (v.len() == 2).then_some(v)
            },
        )
        .unwrap();
        assert!(found.iter().all(|m| m.pgid == pid), "{found:?}");
        assert!(found.iter().any(|m| m.pid == pid));
        // A session of its own: field 6 of /proc/PID/stat is the session id.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let session: u32 = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(3)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(session, pid);
        assert!(
            terminate_group(pid, Duration::from_secs(2), || {
                let _ = child.try_wait();
            })
            .unwrap()
        );
        assert!(ours().is_empty());
    }

    #[test]
    fn words_split_as_the_shell_does() {
        assert_eq!(
            split_words(r#"a  'b c' "d'e" f\ g"#).unwrap(),
            ["a", "b c", "d'e", "f g"]
        );
        assert_eq!(split_words("x ''").unwrap(), ["x", ""]);
        assert!(split_words("   ").unwrap().is_empty());
        let e = split_words("a 'b").unwrap_err();
        assert!(e.to_string().contains("unclosed quote"), "{e}");
    }

    #[test]
    fn joined_words_split_back() {
        let words = [
            "it's",
            "a b",
            "$HOME",
            "; rm -rf /",
            "*",
            "",
            "x\ny",
            "--x='1'",
        ];
        let line = join_words(&words).unwrap();
        assert_eq!(split_words(&line).unwrap(), words);
        let e = join_words(&["a", "b\0c"]).unwrap_err();
        assert_eq!(e.word, "b\0c");
    }

    /// The words as `sh -c LINE` sees them (`printf '%s\0'` of its arguments).
    fn through_the_shell(shell: &str, line: &str) -> Vec<String> {
        let out = Command::new(shell)
            .args(["-c", &format!("printf '%s\\0' {line}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell} -c {line:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut words: Vec<String> = text.split('\0').map(str::to_owned).collect();
        words.pop();
        words
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Any words but NUL reach a real shell (dash and bash) exactly as they were.
        #[test]
        fn any_words_pass_through_a_real_shell(
            words in proptest::collection::vec("[^\\x00]{0,12}", 1..5)
        ) {
            let line = join_words(&words).unwrap();
            for shell in ["sh", "bash"] {
                proptest::prop_assert_eq!(&through_the_shell(shell, &line), &words, "{} {:?}", shell, line);
            }
        }
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
