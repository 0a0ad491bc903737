//! One host as the lab sees it: an ssh connection, `lbbench agent` running there over it,
//! and requests sent and replies read with deadlines. A connection that ends (the host, its
//! sshd or the network gone) is [`HostError::Lost`], named, with what ssh said.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::Shutdown;
use common::process::Supervised;

use super::file::{Host, SshSettings};
use super::protocol::{HostFacts, PROTOCOL, Reply, Request, decode, encode};
use super::ssh::{SshCommand, SshConnection, SshError};
use crate::lab::{log_tail, spawn_options};

/// Why a host did not do what the lab asked.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The connection could not be made.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// `lbbench agent` did not start on the host.
    #[error(
        "{host}: `{lbbench} agent` did not start there ({detail}); install lbbench on the host, \
         or set `lbbench = \"PATH\"` in the hosts file"
    )]
    NoAgent {
        host: String,
        /// The program tried.
        lbbench: String,
        /// What happened.
        detail: String,
    },
    /// The connection ended.
    #[error("lost the connection to {host} ({destination}): {detail}")]
    Lost {
        host: String,
        /// `user@host:port`.
        destination: String,
        /// What ssh and the agent said.
        detail: String,
    },
    /// No reply in time.
    #[error("{host}: no reply to {what} within {}s", after.as_secs())]
    Timeout {
        host: String,
        /// The request.
        what: String,
        /// How long it was given.
        after: Duration,
    },
    /// The agent could not do it.
    #[error("{host}: {message}")]
    Failed {
        host: String,
        /// What went wrong there.
        message: String,
    },
    /// The agent speaks another protocol, or said something unexpected.
    #[error("{host}: {detail}")]
    Protocol {
        host: String,
        /// What was wrong.
        detail: String,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl HostError {
    /// Whether the host is gone (its connection lost, or silent past a deadline).
    pub fn is_lost(&self) -> bool {
        matches!(self, HostError::Lost { .. } | HostError::Timeout { .. })
    }
}

/// How long any request may take besides the ones that run something long (a balancer's
/// start waits up to 30 s for it to answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

enum Line {
    Text(String),
    Unreadable(String),
}

/// A host with `lbbench agent` running on it.
#[derive(Debug)]
pub struct RemoteHost {
    host: Host,
    facts: HostFacts,
    clock_offset_ms: i64,
    session: Option<Supervised>,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    log: PathBuf,
    cancelled: bool,
    conn: SshConnection,
}

impl RemoteHost {
    /// Connects to `host` (its control master in `control_dir`), starts `lbbench agent` there
    /// (its stderr to `log_dir/<name>.log`, ssh's own to `<name>.ssh.log`) and greets it.
    pub fn connect(
        host: &Host,
        settings: &SshSettings,
        control_dir: &Path,
        log_dir: &Path,
        shutdown: &Shutdown,
    ) -> Result<RemoteHost, HostError> {
        RemoteHost::connect_all(
            std::slice::from_ref(host),
            settings,
            control_dir,
            log_dir,
            shutdown,
        )
        .pop()
        .unwrap_or(Err(HostError::Interrupted))
    }

    /// [`RemoteHost::connect`] for every host at once: all connect in parallel, so the wait
    /// is the slowest host's, not the sum. Each host's result, in order. Call it from a thread
    /// that outlives the connections (their ssh processes get SIGTERM when it ends).
    pub fn connect_all(
        hosts: &[Host],
        settings: &SshSettings,
        control_dir: &Path,
        log_dir: &Path,
        shutdown: &Shutdown,
    ) -> Vec<Result<RemoteHost, HostError>> {
        let started: Vec<Result<SshConnection, HostError>> = hosts
            .iter()
            .map(|h| {
                let cmd = SshCommand::new(h, settings, control_dir);
                Ok(SshConnection::start(
                    cmd,
                    &log_dir.join(format!("{}.ssh.log", h.name)),
                )?)
            })
            .collect();
        let agents: Vec<Result<RemoteHost, HostError>> = started
            .into_iter()
            .zip(hosts)
            .map(|(conn, h)| {
                let mut conn = conn?;
                conn.wait_ready(shutdown)?;
                let mut remote = RemoteHost::start_agent(h, conn, log_dir)?;
                remote.send(&Request::Hello)?;
                Ok(remote)
            })
            .collect();
        let wait = settings.connect_timeout + Duration::from_secs(20);
        agents
            .into_iter()
            .map(|r| {
                let mut remote = r?;
                remote.greet(wait, shutdown)?;
                Ok(remote)
            })
            .collect()
    }

    /// `lbbench agent` in a session over `conn`, its replies read by a thread.
    fn start_agent(
        host: &Host,
        conn: SshConnection,
        log_dir: &Path,
    ) -> Result<RemoteHost, HostError> {
        let log = log_dir.join(format!("{}.log", host.name));
        let err_file = std::fs::File::create(&log).map_err(|e| HostError::Failed {
            host: host.name.clone(),
            message: format!("cannot create {}: {e}", log.display()),
        })?;
        let mut c = conn.session(&[host.lbbench.as_str(), "agent"])?;
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_file);
        let mut session =
            Supervised::spawn_with(&format!("agent on {}", host.name), &mut c, &spawn_options())
                .map_err(SshError::Spawn)?
                .with_grace(Duration::from_secs(2));
        let stdin = session.child_mut().stdin.take();
        let stdout = session.child_mut().stdout.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = stdout {
            let _ = std::thread::Builder::new()
                .name(format!("from-{}", host.name))
                .spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let sent = match line {
                            Ok(l) => tx.send(Line::Text(l)),
                            Err(e) => tx.send(Line::Unreadable(e.to_string())),
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                });
        }
        Ok(RemoteHost {
            host: host.clone(),
            facts: HostFacts::default(),
            clock_offset_ms: 0,
            session: Some(session),
            stdin,
            lines,
            log,
            cancelled: false,
            conn,
        })
    }

    /// Reads the agent's answer to the first `hello` (sent by `connect_all`), then measures
    /// the clock with a second one (the first also waits for the agent to start).
    fn greet(&mut self, wait: Duration, shutdown: &Shutdown) -> Result<(), HostError> {
        let no_agent = |e: HostError, host: &Host| match e {
            HostError::Lost { detail, .. } => HostError::NoAgent {
                host: host.name.clone(),
                lbbench: host.lbbench.clone(),
                detail,
            },
            e => e,
        };
        let facts = match self.receive("hello", Instant::now() + wait, Some(shutdown)) {
            Ok(Reply::Hello(f)) => f,
            Ok(other) => return Err(self.unexpected(&other)),
            Err(e) => return Err(no_agent(e, &self.host)),
        };
        if facts.protocol != PROTOCOL {
            return Err(HostError::Protocol {
                host: self.host.name.clone(),
                detail: format!(
                    "{} there speaks the lab protocol {}, this lbbench speaks {PROTOCOL}: \
                     install the same lbbench on every host",
                    facts.lbbench, facts.protocol
                ),
            });
        }
        let sent = Utc::now().timestamp_millis();
        let again = self.call(&Request::Hello, wait, Some(shutdown))?;
        let received = Utc::now().timestamp_millis();
        let Reply::Hello(again) = again else {
            return Err(self.unexpected(&again));
        };
        self.clock_offset_ms = again.clock_ms - (sent + received) / 2;
        self.facts = facts;
        Ok(())
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// What the agent told about its host.
    pub fn facts(&self) -> &HostFacts {
        &self.facts
    }

    /// The host's clock minus this machine's, in ms (measured at the greeting, to within
    /// half the round trip).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Sends a request without waiting for its reply.
    pub fn send(&mut self, request: &Request) -> Result<(), HostError> {
        let line = encode(request);
        let written = match self.stdin.as_mut() {
            Some(s) => s.write_all(line.as_bytes()).and_then(|()| s.flush()),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        };
        if *request == Request::Cancel {
            self.cancelled = true;
        }
        written.map_err(|e| self.lost(&format!("cannot send to it: {e}")))
    }

    /// Waits for the next reply until `deadline`. On Ctrl-C (`shutdown`), the request in
    /// progress is cancelled once and its reply still awaited (at most 15 s more).
    pub fn receive(
        &mut self,
        what: &str,
        deadline: Instant,
        shutdown: Option<&Shutdown>,
    ) -> Result<Reply, HostError> {
        let mut deadline = deadline;
        let started = Instant::now();
        loop {
            match self.poll(Duration::from_millis(20)) {
                Some(r) => {
                    self.cancelled = false;
                    return r;
                }
                None if Instant::now() >= deadline => {
                    return Err(HostError::Timeout {
                        host: self.host.name.clone(),
                        what: what.to_owned(),
                        after: deadline.saturating_duration_since(started),
                    });
                }
                None => {}
            }
            if shutdown.is_some_and(Shutdown::requested) && !self.cancelled {
                self.send(&Request::Cancel)?;
                deadline = deadline.min(Instant::now() + Duration::from_secs(15));
            }
        }
    }

    /// The next reply if one comes within `wait`: `None` if none yet.
    fn poll(&mut self, wait: Duration) -> Option<Result<Reply, HostError>> {
        match self.lines.recv_timeout(wait) {
            Ok(Line::Text(l)) => Some(match decode::<Reply>(&l) {
                Ok(Reply::Error { message }) => Err(HostError::Failed {
                    host: self.host.name.clone(),
                    message,
                }),
                Ok(r) => Ok(r),
                Err(detail) => Err(HostError::Protocol {
                    host: self.host.name.clone(),
                    detail,
                }),
            }),
            Ok(Line::Unreadable(e)) => Some(Err(self.lost(&format!("cannot read from it: {e}")))),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(self.lost("its session ended"))),
        }
    }

    /// Sends `request` and waits for its reply, at most `timeout`.
    pub fn call(
        &mut self,
        request: &Request,
        timeout: Duration,
        shutdown: Option<&Shutdown>,
    ) -> Result<Reply, HostError> {
        self.send(request)?;
        self.receive(request.name(), Instant::now() + timeout, shutdown)
    }

    /// The error for a reply of the wrong kind.
    pub fn unexpected(&self, reply: &Reply) -> HostError {
        HostError::Protocol {
            host: self.host.name.clone(),
            detail: format!("unexpected reply {}", encode(reply).trim_end()),
        }
    }

    /// [`HostError::Lost`] with what ssh and the agent said.
    fn lost(&mut self, what: &str) -> HostError {
        // The session's status and ssh's words come a moment after its output ends.
        let status = self
            .session
            .as_mut()
            .and_then(|s| s.wait_timeout(Duration::from_secs(2)).ok().flatten());
        let mut detail = what.to_owned();
        if let Some(s) = status {
            detail.push_str(&format!(" (ssh {s})"));
        }
        for said in [self.conn.said(), log_tail(&self.log, 0, 3)] {
            if !said.starts_with("(nothing in") && !said.starts_with("(cannot read") {
                detail.push_str(&format!("; {said}"));
            }
        }
        self.stdin = None;
        HostError::Lost {
            host: self.host.name.clone(),
            destination: self.host.destination(),
            detail,
        }
    }

    /// Whether the connection is still up.
    pub fn is_up(&mut self) -> bool {
        self.stdin.is_some()
            && self.conn.is_up()
            && self
                .session
                .as_mut()
                .is_some_and(|s| matches!(s.try_status(), Ok(None)))
    }

    /// Tells the agent to stop everything and exit, waits for it (at most `timeout`), then
    /// closes the connection. A lost host is just closed (its agent stops on its own when
    /// its stdin ends).
    pub fn bye(&mut self, timeout: Duration) -> Result<(), HostError> {
        let result = if self.stdin.is_some() {
            match self.call(&Request::Bye, timeout, None) {
                Ok(Reply::Bye) => Ok(()),
                Ok(other) => Err(self.unexpected(&other)),
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        self.stdin = None;
        if let Some(mut s) = self.session.take() {
            let _ = s.wait_timeout(Duration::from_secs(5));
            let _ = s.stop();
        }
        self.conn.close();
        result
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        let _ = self.bye(Duration::from_secs(20));
    }
}

/// Waits for one reply from each host, until `deadline`. When one host is lost, the others'
/// requests are cancelled and their replies awaited (at most 15 s more), so that what ran
/// stops at once; likewise on Ctrl-C. The replies come back in the hosts' order.
pub fn receive_all(
    hosts: &mut [&mut RemoteHost],
    what: &str,
    deadline: Instant,
    shutdown: Option<&Shutdown>,
) -> Vec<Result<Reply, HostError>> {
    let mut results: Vec<Option<Result<Reply, HostError>>> = hosts.iter().map(|_| None).collect();
    let mut deadline = deadline;
    let started = Instant::now();
    let mut cancelled = false;
    while results.iter().any(Option::is_none) {
        for (h, slot) in hosts.iter_mut().zip(results.iter_mut()) {
            if slot.is_none()
                && let Some(r) = h.poll(Duration::ZERO)
            {
                h.cancelled = false;
                *slot = Some(r);
            }
        }
        let lost = results
            .iter()
            .any(|r| matches!(r, Some(Err(e)) if e.is_lost()));
        let stop = lost || shutdown.is_some_and(Shutdown::requested);
        if stop && !cancelled {
            cancelled = true;
            for (h, slot) in hosts.iter_mut().zip(results.iter_mut()) {
                if slot.is_none()
                    && let Err(e) = h.send(&Request::Cancel)
                {
                    *slot = Some(Err(e));
                }
            }
            deadline = deadline.min(Instant::now() + Duration::from_secs(15));
        }
        if Instant::now() >= deadline {
            for (h, slot) in hosts.iter().zip(results.iter_mut()) {
                if slot.is_none() {
                    *slot = Some(Err(HostError::Timeout {
                        host: h.host.name.clone(),
                        what: what.to_owned(),
                        after: deadline.saturating_duration_since(started),
                    }));
                }
            }
        }
        if results.iter().any(Option::is_none) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    results.into_iter().flatten().collect()
}
