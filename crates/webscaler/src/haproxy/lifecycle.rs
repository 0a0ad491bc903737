//! The server lifecycle over the runtime API, each step with HAProxy's exact protocol.
//!
//! - add: `add server <b>/<s> <ip>:<port> check inter … rise … fall …` (options spelled out:
//!   dynamic servers do not inherit `default-server`), `enable health <b>/<s>` (a dynamic
//!   server's check is only configured until then), wait until the check passes (the server
//!   sits in MAINT meanwhile and gets no traffic), then `set server <b>/<s> state ready`.
//! - drain: `set server … state drain`, then wait until the server's `scur` is 0.
//! - remove: `set server … state maint`, then `del server`, retried while HAProxy answers
//!   that the server still has connections.
//! - ready, maint: one `set server … state` each.
//!
//! Waits poll `show stat` with a deadline and stop at once on a shutdown request. When a
//! backend file is kept, it is rewritten after every add and remove. When `add server` or
//! `del server` is refused (HAProxy before 2.6, or a socket below `level admin`), the change
//! is made in the backend file and HAProxy is reloaded instead.

use std::time::{Duration, Instant};

use common::Shutdown;
use serde::Serialize;

use super::backend_file::{BackendServer, Installed, render_backend};
use super::stats::StatRow;
use super::{Haproxy, HaproxyError};
use crate::balancer::{ServerAddr, ServerName};

/// How a change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeMethod {
    /// Through the runtime API, without a reload.
    Runtime,
    /// Through the backend file and a reload (the fallback).
    Reload,
}

/// What [`Haproxy::add_server`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Runtime API or reload.
    pub method: ChangeMethod,
    /// Whether the server already existed with this address (an add that was interrupted,
    /// finished now).
    pub resumed: bool,
    /// From the first command until the server was ready.
    pub waited: Duration,
    /// What happened to the backend file, if one is kept.
    pub file: Option<Installed>,
}

/// What [`Haproxy::drain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// The server has no sessions left.
    Drained {
        /// How long that took.
        waited: Duration,
    },
    /// The deadline came first; the server stays in DRAIN.
    TimedOut {
        /// Sessions still open.
        sessions: u64,
        /// How long it waited.
        waited: Duration,
    },
}

/// What [`Haproxy::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The server was deleted.
    Removed {
        /// Runtime API or reload.
        method: ChangeMethod,
        /// How long it took (including waiting for connections to finish).
        waited: Duration,
        /// What happened to the backend file, if one is kept.
        file: Option<Installed>,
    },
    /// There was no such server.
    AlreadyGone,
}

/// What [`Haproxy::begin_add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddStep {
    /// `add server` registered it (in MAINT) and its checks are enabled.
    Added,
    /// It already existed with this address; its checks are enabled.
    Resumed,
    /// The runtime API refused: it was written to the backend file and HAProxy reloaded.
    Reloaded,
}

/// What [`Haproxy::try_remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveStep {
    /// The server is gone.
    Removed(ChangeMethod),
    /// HAProxy still holds connections to it (HAProxy's answer); it stays in MAINT.
    Busy(String),
    /// There was no such server.
    AlreadyGone,
}

enum DelStep {
    Deleted,
    Busy(String),
    /// The runtime API refused `del server`: (command, reply).
    Refused(String, String),
}

/// Replies that mean "this HAProxy will not do that through the runtime API".
fn refused(reply: &str) -> bool {
    reply.starts_with("Unknown command")
        || reply.contains("experimental mode")
        || reply.starts_with("Permission denied")
}

/// The last check of a server in words (`L4CON, Layer4 connection problem`), for messages.
pub fn check_summary(row: Option<&StatRow>) -> String {
    match row {
        None => "server not found".to_owned(),
        Some(r) => match (&r.check_status, &r.check_desc) {
            (Some(s), Some(d)) => format!("{s}, {d}"),
            (Some(s), None) => s.clone(),
            _ => "none yet".to_owned(),
        },
    }
}

/// Whether the server's checks have passed often enough that it is UP as soon as it is
/// set ready (health at least `rise`), not just the last check.
pub fn healthy(row: &StatRow) -> bool {
    if !row.check_passed() {
        return false;
    }
    match (row.get_u64("check_health"), row.get_u64("check_rise")) {
        (Ok(Some(h)), Ok(Some(rise))) => h >= rise,
        _ => true,
    }
}

impl Haproxy {
    fn target(&self, name: &ServerName) -> String {
        format!("{}/{}", self.backend, name)
    }

    /// Sends a command whose success reply is empty.
    fn expect_empty(&self, command: &str, name: &ServerName) -> Result<(), HaproxyError> {
        let reply = self.command(command)?;
        match reply.trim() {
            "" => Ok(()),
            "No such server." => Err(self.no_such_server(name)),
            "No such backend." => Err(self.no_such_backend()),
            other => Err(self.reply_err(command, other)),
        }
    }

    fn no_such_server(&self, name: &ServerName) -> HaproxyError {
        HaproxyError::NoSuchServer {
            socket: self.socket.path().to_path_buf(),
            backend: self.backend.to_string(),
            server: name.to_string(),
        }
    }

    fn reply_err(&self, command: &str, reply: &str) -> HaproxyError {
        HaproxyError::Reply {
            socket: self.socket.path().to_path_buf(),
            command: command.to_owned(),
            reply: reply.replace('\n', " "),
        }
    }

    /// Polls `check` until it returns `Some`, the deadline passes (`Ok(None)`), or a shutdown
    /// is requested (`Err(Cancelled)`).
    fn wait_for<T>(
        &self,
        what: &str,
        deadline: Instant,
        shutdown: &Shutdown,
        mut check: impl FnMut() -> Result<Option<T>, HaproxyError>,
    ) -> Result<Option<T>, HaproxyError> {
        loop {
            if shutdown.requested() {
                return Err(HaproxyError::Cancelled(what.to_owned()));
            }
            if let Some(v) = check()? {
                return Ok(Some(v));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if !shutdown.sleep(self.poll_every.min(deadline - now)) {
                return Err(HaproxyError::Cancelled(what.to_owned()));
            }
        }
    }

    /// `set server <b>/<s> state ready`.
    pub fn ready(&self, name: &ServerName) -> Result<(), HaproxyError> {
        self.expect_empty(
            &format!("set server {} state ready", self.target(name)),
            name,
        )
    }

    /// `set server <b>/<s> state maint`.
    pub fn maint(&self, name: &ServerName) -> Result<(), HaproxyError> {
        self.expect_empty(
            &format!("set server {} state maint", self.target(name)),
            name,
        )
    }

    /// `enable health <b>/<s>`.
    pub fn enable_health(&self, name: &ServerName) -> Result<(), HaproxyError> {
        self.expect_empty(&format!("enable health {}", self.target(name)), name)
    }

    /// The first, non-blocking half of an add: `add server` (in MAINT) and `enable health`,
    /// so that HAProxy starts checking it; it gets no traffic until [`Haproxy::ready`].
    /// Idempotent: a server that already exists with this address gets its checks enabled
    /// ([`AddStep::Resumed`]); another address is [`HaproxyError::AddressMismatch`]. When the
    /// runtime API refuses `add server`, the server is written to the backend file and
    /// HAProxy reloaded ([`AddStep::Reloaded`]; `deadline` bounds the reload), without
    /// waiting for its check. The backend file, if kept, is brought in step.
    pub fn begin_add(
        &self,
        name: &ServerName,
        addr: ServerAddr,
        deadline: Instant,
    ) -> Result<AddStep, HaproxyError> {
        let (step, _) = self.begin_add_inner(name, addr, deadline)?;
        if step != AddStep::Reloaded {
            self.sync_backend_file()?;
        }
        Ok(step)
    }

    fn begin_add_inner(
        &self,
        name: &ServerName,
        addr: ServerAddr,
        deadline: Instant,
    ) -> Result<(AddStep, Option<Installed>), HaproxyError> {
        let mut step = AddStep::Added;
        match self.stats()?.server(name.as_str()) {
            Some(row) => {
                self.same_addr(name, row, addr)?;
                step = AddStep::Resumed;
            }
            None => {
                let command = format!(
                    "add server {} {} {}",
                    self.target(name),
                    addr,
                    self.check.keywords()
                );
                let reply = self.command(&command)?;
                let reply = reply.trim();
                if reply == "New server registered." {
                } else if reply.starts_with("Already exists") {
                    // Added meanwhile by someone else: fine if it is the same address.
                    let stats = self.stats()?;
                    let row = stats
                        .server(name.as_str())
                        .ok_or_else(|| self.reply_err(&command, reply))?;
                    self.same_addr(name, row, addr)?;
                    step = AddStep::Resumed;
                } else if reply == "No such backend." {
                    return Err(self.no_such_backend());
                } else if refused(reply) {
                    let installed =
                        self.add_to_file_and_reload(name, addr, &command, reply, deadline)?;
                    return Ok((AddStep::Reloaded, Some(installed)));
                } else {
                    return Err(self.reply_err(&command, reply));
                }
            }
        }
        self.enable_health(name)?;
        Ok((step, None))
    }

    /// Adds a server and makes it ready once its health check passes (see the module docs).
    ///
    /// Idempotent: if the server already exists with this address (an add that was cut
    /// short), the remaining steps are done. If the check has not passed by `deadline`, the
    /// server stays in MAINT with checks on, and [`HaproxyError::CheckTimeout`] says what
    /// the last check saw.
    pub fn add_server(
        &self,
        name: &ServerName,
        addr: ServerAddr,
        deadline: Instant,
        shutdown: &Shutdown,
    ) -> Result<AddOutcome, HaproxyError> {
        let start = Instant::now();
        let (step, installed) = self.begin_add_inner(name, addr, deadline)?;
        if step == AddStep::Reloaded {
            return self.wait_up_after_reload(name, installed, start, deadline, shutdown);
        }
        let what = format!("waiting for {} to pass its health check", self.target(name));
        let mut last = None;
        let passed = self.wait_for(&what, deadline, shutdown, || {
            let stats = self.stats()?;
            let row = stats.server(name.as_str()).cloned();
            let ok = row.as_ref().is_some_and(healthy);
            last = row;
            Ok(ok.then_some(()))
        })?;
        if passed.is_none() {
            return Err(HaproxyError::CheckTimeout {
                backend: self.backend.to_string(),
                server: name.to_string(),
                waited: start.elapsed(),
                last: check_summary(last.as_ref()),
            });
        }
        self.ready(name)?;
        let file = self.sync_backend_file()?;
        Ok(AddOutcome {
            method: ChangeMethod::Runtime,
            resumed: step == AddStep::Resumed,
            waited: start.elapsed(),
            file,
        })
    }

    fn same_addr(
        &self,
        name: &ServerName,
        row: &StatRow,
        addr: ServerAddr,
    ) -> Result<(), HaproxyError> {
        let existing = row.addr.clone().unwrap_or_default();
        if existing.parse::<ServerAddr>().ok() == Some(addr) {
            return Ok(());
        }
        Err(HaproxyError::AddressMismatch {
            socket: self.socket.path().to_path_buf(),
            backend: self.backend.to_string(),
            server: name.to_string(),
            existing,
            wanted: addr.to_string(),
        })
    }

    /// The reload fallback of an add: the server goes into the backend file, which is
    /// installed once `haproxy -c` accepts it, and HAProxy is reloaded.
    fn add_to_file_and_reload(
        &self,
        name: &ServerName,
        addr: ServerAddr,
        command: &str,
        reply: &str,
        deadline: Instant,
    ) -> Result<Installed, HaproxyError> {
        let Some(file) = &self.file else {
            return Err(HaproxyError::Refused {
                socket: self.socket.path().to_path_buf(),
                command: command.to_owned(),
                reply: reply.to_owned(),
            });
        };
        let mut servers = self.backend_servers()?;
        if !servers.iter().any(|s| &s.name == name) {
            servers.push(BackendServer {
                name: name.clone(),
                addr,
            });
        }
        let installed = file.install(&render_backend(&self.backend, &servers, &self.check))?;
        self.reload(deadline)?;
        Ok(installed)
    }

    /// After a reload-based add: a config-file server starts UP with check status `INI`
    /// before its first check, so UP alone is not enough; wait for a passed check too.
    fn wait_up_after_reload(
        &self,
        name: &ServerName,
        installed: Option<Installed>,
        start: Instant,
        deadline: Instant,
        shutdown: &Shutdown,
    ) -> Result<AddOutcome, HaproxyError> {
        let what = format!(
            "waiting for {} to come up after the reload",
            self.target(name)
        );
        let mut last = None;
        let up = self.wait_for(&what, deadline, shutdown, || {
            let stats = self.stats()?;
            let row = stats.server(name.as_str()).cloned();
            let ok = row
                .as_ref()
                .is_some_and(|r| r.check_passed() && r.status.takes_traffic());
            last = row;
            Ok(ok.then_some(()))
        })?;
        if up.is_none() {
            return Err(HaproxyError::CheckTimeout {
                backend: self.backend.to_string(),
                server: name.to_string(),
                waited: start.elapsed(),
                last: check_summary(last.as_ref()),
            });
        }
        Ok(AddOutcome {
            method: ChangeMethod::Reload,
            resumed: false,
            waited: start.elapsed(),
            file: installed,
        })
    }

    /// `set server <b>/<s> state drain`: no new traffic; current sessions finish. Does not
    /// wait (see [`Haproxy::drain`]).
    pub fn set_drain(&self, name: &ServerName) -> Result<(), HaproxyError> {
        self.expect_empty(
            &format!("set server {} state drain", self.target(name)),
            name,
        )
    }

    /// Drains a server: no new traffic, and waits until its current sessions reach 0 or the
    /// deadline passes (then it stays in DRAIN; [`DrainOutcome::TimedOut`] says how many
    /// sessions were left).
    pub fn drain(
        &self,
        name: &ServerName,
        deadline: Instant,
        shutdown: &Shutdown,
    ) -> Result<DrainOutcome, HaproxyError> {
        let start = Instant::now();
        self.set_drain(name)?;
        let what = format!("draining {}", self.target(name));
        let mut sessions = 0;
        let done = self.wait_for(&what, deadline, shutdown, || {
            let stats = self.stats()?;
            let row = stats
                .server(name.as_str())
                .ok_or_else(|| self.no_such_server(name))?;
            sessions = row.scur.unwrap_or(0);
            Ok((sessions == 0).then_some(()))
        })?;
        Ok(match done {
            Some(()) => DrainOutcome::Drained {
                waited: start.elapsed(),
            },
            None => DrainOutcome::TimedOut {
                sessions,
                waited: start.elapsed(),
            },
        })
    }

    /// One `del server` attempt on a server already in maintenance.
    fn del_once(&self, name: &ServerName, maint: &str) -> Result<DelStep, HaproxyError> {
        let del = format!("del server {}", self.target(name));
        let reply = self.command(&del)?;
        let reply = reply.trim();
        if reply == "Server deleted." || reply == "No such server." {
            return Ok(DelStep::Deleted);
        }
        if reply.starts_with("Only servers in maintenance mode") {
            // Someone set it ready meanwhile: back to maint, and try again.
            self.expect_empty(maint, name)?;
            return Ok(DelStep::Busy(reply.to_owned()));
        }
        if reply.contains("still has connections") {
            return Ok(DelStep::Busy(reply.to_owned()));
        }
        if refused(reply) {
            return Ok(DelStep::Refused(del, reply.to_owned()));
        }
        Err(self.reply_err(&del, reply))
    }

    /// One non-blocking attempt at removing a server: `state maint`, then one `del server`.
    /// [`RemoveStep::Busy`] when HAProxy still holds connections to it: it stays in MAINT
    /// (no traffic), and a later attempt finishes. A server that does not exist is
    /// [`RemoveStep::AlreadyGone`]. The reload fallback applies as for
    /// [`Haproxy::remove`] (`deadline` bounds the reload). The backend file, if kept, is
    /// brought in step.
    pub fn try_remove(
        &self,
        name: &ServerName,
        deadline: Instant,
    ) -> Result<RemoveStep, HaproxyError> {
        self.remove_step(name, deadline).map(|(step, _)| step)
    }

    /// [`Haproxy::try_remove`], with what happened to the backend file.
    fn remove_step(
        &self,
        name: &ServerName,
        deadline: Instant,
    ) -> Result<(RemoveStep, Option<Installed>), HaproxyError> {
        let maint = format!("set server {} state maint", self.target(name));
        match self.expect_empty(&maint, name) {
            Ok(()) => {}
            Err(HaproxyError::NoSuchServer { .. }) => {
                let file = self.sync_backend_file()?;
                return Ok((RemoveStep::AlreadyGone, file));
            }
            Err(HaproxyError::Reply { reply, .. }) if refused(&reply) => {
                let file = self.remove_by_reload(name, &maint, &reply, deadline)?;
                return Ok((RemoveStep::Removed(ChangeMethod::Reload), Some(file)));
            }
            Err(e) => return Err(e),
        }
        Ok(match self.del_once(name, &maint)? {
            DelStep::Deleted => (
                RemoveStep::Removed(ChangeMethod::Runtime),
                self.sync_backend_file()?,
            ),
            DelStep::Busy(reply) => (RemoveStep::Busy(reply), None),
            DelStep::Refused(command, reply) => {
                let file = self.remove_by_reload(name, &command, &reply, deadline)?;
                (RemoveStep::Removed(ChangeMethod::Reload), Some(file))
            }
        })
    }

    /// Removes a server: [`Haproxy::try_remove`] until it is gone or the deadline passes
    /// (then it stays in MAINT and [`HaproxyError::RemoveTimeout`] is returned). A server
    /// that does not exist is [`RemoveOutcome::AlreadyGone`]. Drain it first to let its
    /// requests finish.
    pub fn remove(
        &self,
        name: &ServerName,
        deadline: Instant,
        shutdown: &Shutdown,
    ) -> Result<RemoveOutcome, HaproxyError> {
        let start = Instant::now();
        let what = format!("removing {}", self.target(name));
        let mut last = String::new();
        let mut attempts = 0u32;
        let done = self.wait_for(&what, deadline, shutdown, || {
            attempts += 1;
            let (step, file) = self.remove_step(name, deadline)?;
            let removed = |method| RemoveOutcome::Removed {
                method,
                waited: start.elapsed(),
                file,
            };
            Ok(match step {
                RemoveStep::Busy(reply) => {
                    last = reply;
                    None
                }
                RemoveStep::AlreadyGone if attempts == 1 => Some(RemoveOutcome::AlreadyGone),
                // Gone after a busy attempt: its connections ended and it was deleted.
                RemoveStep::AlreadyGone => Some(removed(ChangeMethod::Runtime)),
                RemoveStep::Removed(method) => Some(removed(method)),
            })
        })?;
        done.ok_or_else(|| HaproxyError::RemoveTimeout {
            backend: self.backend.to_string(),
            server: name.to_string(),
            waited: start.elapsed(),
            reply: last,
        })
    }

    /// The reload fallback of a removal: the backend file without the server, installed once
    /// `haproxy -c` accepts it, and a reload.
    fn remove_by_reload(
        &self,
        name: &ServerName,
        command: &str,
        reply: &str,
        deadline: Instant,
    ) -> Result<Installed, HaproxyError> {
        let Some(file) = &self.file else {
            return Err(HaproxyError::Refused {
                socket: self.socket.path().to_path_buf(),
                command: command.to_owned(),
                reply: reply.to_owned(),
            });
        };
        let servers: Vec<BackendServer> = self
            .backend_servers()?
            .into_iter()
            .filter(|s| &s.name != name)
            .collect();
        let installed = file.install(&render_backend(&self.backend, &servers, &self.check))?;
        self.reload(deadline)?;
        Ok(installed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recognised() {
        assert!(refused("Permission denied"));
        assert!(refused(
            "Unknown command. Please enter one of the following commands only :"
        ));
        assert!(refused(
            "This command is restricted to experimental mode only."
        ));
        assert!(!refused("No such server."));
        assert!(!refused(
            "Server still has connections attached to it, cannot remove it."
        ));
    }
}
