//! Reloading HAProxy: through the master CLI (`reload`, then `show proc` until the new worker
//! is there), or with a command (`systemctl reload haproxy` by default, as the lab report did).
//!
//! Used only when the runtime API cannot make a change (HAProxy older than 2.6, or `add
//! server` refused), and always after the backend file passed `haproxy -c`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Supervised;

use super::socket::{Socket, SocketError};

/// The lab report's reload command.
pub const DEFAULT_RELOAD_COMMAND: [&str; 3] = ["systemctl", "reload", "haproxy"];

/// One process in `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// The `<reloads>` column: for the master, reloads since it started; for a worker, the
    /// reloads it has been through (0 for the current worker).
    pub reloads: u32,
    /// `<uptime>` as printed (`0d00h01m59s`).
    pub uptime: String,
}

/// The master CLI's `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcList {
    pub master: Proc,
    /// The master's `[failed: N]`: reloads that failed (bad config).
    pub failed_reloads: Option<u32>,
    /// The workers, current and old (old ones still finish their connections).
    pub workers: Vec<Proc>,
}

impl ProcList {
    /// The current worker: the one that has been through the fewest reloads.
    pub fn current_worker(&self) -> Option<&Proc> {
        self.workers.iter().min_by_key(|w| w.reloads)
    }
}

/// A reply that could not be read as `show proc` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("show proc: {0}")]
pub struct ProcParseError(pub String);

/// Parses the master CLI's `show proc`.
pub fn parse_show_proc(reply: &str) -> Result<ProcList, ProcParseError> {
    let mut master = None;
    let mut failed = None;
    let mut workers = Vec::new();
    let mut section = "master";
    for line in reply.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim();
            if h == "workers" || h == "programs" {
                section = if h == "workers" {
                    "workers"
                } else {
                    "programs"
                };
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let pid_reloads = || -> Result<(u32, u32), ProcParseError> {
            let bad = || ProcParseError(format!("unexpected line {line:?}"));
            let pid = f.first().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let reloads = f.get(2).and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            Ok((pid, reloads))
        };
        match (section, f.get(1).copied()) {
            ("master", Some("master")) => {
                let (pid, reloads) = pid_reloads()?;
                // `2 [failed: 1]`
                if f.get(3) == Some(&"[failed:") {
                    failed = f.get(4).and_then(|n| n.trim_end_matches(']').parse().ok());
                }
                let uptime = f
                    .iter()
                    .skip(3)
                    .find(|t| t.starts_with(|c: char| c.is_ascii_digit()) && t.contains('d'))
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default();
                master = Some(Proc {
                    pid,
                    reloads,
                    uptime,
                });
            }
            ("workers", Some("worker")) => {
                let (pid, reloads) = pid_reloads()?;
                workers.push(Proc {
                    pid,
                    reloads,
                    uptime: f.get(3).map(|s| (*s).to_owned()).unwrap_or_default(),
                });
            }
            ("programs", _) => {}
            _ => return Err(ProcParseError(format!("unexpected line {line:?}"))),
        }
    }
    Ok(ProcList {
        master: master.ok_or_else(|| ProcParseError("no master line".into()))?,
        failed_reloads: failed,
        workers,
    })
}

/// How to reload HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMethod {
    /// `reload` on the master CLI; success is confirmed with `show proc`.
    Master(Socket),
    /// A command (program and arguments) that reloads HAProxy and exits 0 on success.
    Command(Vec<String>),
}

impl ReloadMethod {
    /// The default: the master CLI when a master socket is known, else
    /// `systemctl reload haproxy`.
    pub fn default_for(master: Option<&Socket>) -> ReloadMethod {
        match master {
            Some(m) => ReloadMethod::Master(m.clone()),
            None => ReloadMethod::Command(DEFAULT_RELOAD_COMMAND.map(str::to_owned).to_vec()),
        }
    }
}

/// A reload that failed or could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The master socket failed.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// `show proc` could not be read.
    #[error("HAProxy master socket {socket}: {source}")]
    Proc {
        /// The master socket.
        socket: String,
        /// The cause.
        #[source]
        source: ProcParseError,
    },
    /// The master counted a failed reload: the old worker keeps serving.
    #[error(
        "HAProxy master socket {socket}: the reload failed (show proc counts {failed} failed reloads; the old worker keeps serving; see HAProxy's log){reply}"
    )]
    Failed {
        /// The master socket.
        socket: String,
        /// The failed-reload count after the attempt.
        failed: u32,
        /// What the master answered to `reload`, if anything (`: ...`).
        reply: String,
    },
    /// No new worker appeared in time.
    #[error("HAProxy master socket {socket}: no new worker within {waited:?} after reload")]
    Timeout {
        /// The master socket.
        socket: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The reload command could not be started, failed, or took too long.
    #[error("reload command `{command}` {problem}")]
    Command {
        /// The command line.
        command: String,
        /// What went wrong, with its stderr.
        problem: String,
    },
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The new worker's PID (master CLI only).
    pub new_worker: Option<u32>,
}

impl ReloadMethod {
    /// Reloads and waits (until `deadline`) for the new worker or the command's exit.
    pub fn reload(&self, deadline: Instant) -> Result<Reloaded, ReloadError> {
        match self {
            ReloadMethod::Master(socket) => master_reload(socket, deadline),
            ReloadMethod::Command(argv) => command_reload(argv, deadline),
        }
    }
}

fn show_proc(socket: &Socket) -> Result<ProcList, ReloadError> {
    let reply = socket.command("show proc")?;
    parse_show_proc(&reply).map_err(|source| ReloadError::Proc {
        socket: socket.path().display().to_string(),
        source,
    })
}

fn master_reload(socket: &Socket, deadline: Instant) -> Result<Reloaded, ReloadError> {
    let start = Instant::now();
    let before = show_proc(socket)?;
    let old: Vec<u32> = before.workers.iter().map(|w| w.pid).collect();
    // 2.6 answers nothing and reloads in the background; 3.x answers when it is done. The
    // master re-executes itself, so the connection may also just be cut: that still means
    // the command arrived.
    let reply = match socket.command("reload") {
        Ok(r) => r.trim().to_owned(),
        Err(e) if matches!(e.kind, super::socket::SocketErrorKind::Read { .. }) => String::new(),
        Err(e) => return Err(e.into()),
    };
    let name = socket.path().display().to_string();
    loop {
        // While the master re-executes, its socket refuses or cuts connections.
        if let Ok(now) = show_proc(socket) {
            let failed_now = now.failed_reloads.unwrap_or(0);
            if failed_now > before.failed_reloads.unwrap_or(0) {
                return Err(ReloadError::Failed {
                    socket: name,
                    failed: failed_now,
                    reply: if reply.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", reply.replace('\n', " | "))
                    },
                });
            }
            if now.master.reloads > before.master.reloads
                && let Some(w) = now.current_worker().filter(|w| !old.contains(&w.pid))
            {
                return Ok(Reloaded {
                    new_worker: Some(w.pid),
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(ReloadError::Timeout {
                socket: name,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn command_reload(argv: &[String], deadline: Instant) -> Result<Reloaded, ReloadError> {
    let line = argv.join(" ");
    let fail = |problem: String| ReloadError::Command {
        command: line.clone(),
        problem,
    };
    let (program, args) = argv.split_first().ok_or_else(|| fail("is empty".into()))?;
    let mut child = Supervised::spawn(
        "reload command",
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .map_err(|e| fail(format!("cannot start: {e}")))?;
    let status = child
        .wait_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|e| fail(format!("cannot be waited for: {e}")))?;
    let Some(status) = status else {
        return Err(fail("did not finish in time (stopped)".into()));
    };
    if status.success() {
        return Ok(Reloaded { new_worker: None });
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.child_mut().stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim().replace('\n', " | ");
    Err(fail(if stderr.is_empty() {
        format!("failed ({status})")
    } else {
        format!("failed ({status}): {stderr}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_2_6: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
7287            master          2 [failed: 1]   0d00h01m59s     2.6.12-1+deb12u4\n\
# workers\n\
15171           worker          0               0d00h00m15s     2.6.12-1+deb12u4\n\
15001           worker          1               0d00h01m00s     2.6.12-1+deb12u4\n\
# programs\n\n";

    #[test]
    fn parses_show_proc() {
        let p = parse_show_proc(PROC_2_6).unwrap();
        assert_eq!(p.master.pid, 7287);
        assert_eq!(p.master.reloads, 2);
        assert_eq!(p.master.uptime, "0d00h01m59s");
        assert_eq!(p.failed_reloads, Some(1));
        assert_eq!(p.workers.len(), 2);
        assert_eq!(p.current_worker().unwrap().pid, 15171);
        assert_eq!(p.workers[1].uptime, "0d00h01m00s");
    }

    #[test]
    fn show_proc_garbage_is_an_error() {
        assert!(parse_show_proc("").is_err());
        assert!(parse_show_proc("Unknown command.\n").is_err());
        assert!(parse_show_proc("#<PID> <type>\nx master 0\n").is_err());
    }

    #[test]
    fn the_default_method_follows_the_master_socket() {
        assert_eq!(
            ReloadMethod::default_for(None),
            ReloadMethod::Command(vec!["systemctl".into(), "reload".into(), "haproxy".into()])
        );
        let m = Socket::master("/run/haproxy-master.sock");
        assert_eq!(
            ReloadMethod::default_for(Some(&m)),
            ReloadMethod::Master(m.clone())
        );
    }

    #[test]
    fn a_reload_command_that_fails_says_why() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ok = ReloadMethod::Command(vec!["true".into()]).reload(deadline);
        assert_eq!(ok.unwrap(), Reloaded { new_worker: None });
        let e = ReloadMethod::Command(vec![
            "sh".into(),
            "-c".into(),
            "echo 'Job for haproxy.service failed' >&2; exit 1".into(),
        ])
        .reload(deadline)
        .unwrap_err()
        .to_string();
        assert!(e.contains("Job for haproxy.service failed"), "{e}");
        assert!(e.starts_with("reload command `sh -c"), "{e}");
        let e = ReloadMethod::Command(vec!["/nonexistent/reloader".into()])
            .reload(deadline)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/reloader") && e.contains("cannot start"),
            "{e}"
        );
    }
}
