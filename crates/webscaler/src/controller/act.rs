//! The act step of a tick: each action of the plan is one call that does not wait; a failed
//! call is an event, and the next tick, which observes again, retries what is still needed.

use std::time::Duration;

use common::time::format_duration;

use super::tally::{Change, Side};
use super::{Action, Controller, Event, Level, Plan, QuotaHold, QuotaSeen};
use crate::balancer::{Balancer, Removal, ServerName};
use crate::clock::Clock;
use crate::cloud::{Backend, Cloud, CloudError};
use crate::policy::Policy;

impl<C: Cloud, B: Balancer, K: Clock, P: Policy> Controller<C, B, K, P> {
    fn hold_for_quota(&mut self, now: Duration, message: &str, events: &mut Vec<Event>) {
        // The quota as it is after the refusal: the hold ends when it changes from this.
        if let Ok(q) = self.cloud.quota() {
            self.quota = Some(q);
        }
        if self.hold.is_none() {
            events.push(Event {
                level: Level::Warning,
                message: format!(
                    "{message}: holding creations until the quota changes (or {})",
                    format_duration(self.config.quota_retry)
                ),
            });
        }
        self.hold = Some(QuotaHold {
            since: now,
            seen: self.quota.as_ref().map(QuotaSeen::from),
        });
    }

    /// Runs the plan. Returns what was done and how many backends were brought up.
    pub(super) fn act(
        &mut self,
        plan: &Plan,
        now: Duration,
        events: &mut Vec<Event>,
    ) -> (Vec<String>, u32) {
        let mut done = Vec::new();
        let mut brought_up = 0;
        for action in &plan.actions {
            match action {
                Action::RemoveServer { name } => {
                    self.remove_server(name, &mut done, events);
                }
                Action::DeleteFailed {
                    backend,
                    server,
                    why,
                } => {
                    // A server that still holds connections stays in maintenance (no
                    // traffic) and is removed by a later tick: a failed backend (a hung
                    // one holds its connections until it is gone) is deleted anyway.
                    if *server
                        && self.remove_server_step(&backend.name, &mut done, events)
                            == ServerStep::Failed
                    {
                        continue;
                    }
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("deleted {} ({why})", backend.name));
                    }
                }
                Action::ReadyServer { name } => {
                    if self.balancer_call(name, Change::Ready, events, |b, n| b.ready(n)) {
                        done.push(format!("{name} ready"));
                    }
                }
                Action::AddServer { name, addr } => {
                    let addr = *addr;
                    if self.balancer_call(name, Change::Add, events, |b, n| b.add(n, addr)) {
                        done.push(format!("added {name} ({addr}) to the balancer"));
                        crate::fault::point("added");
                    }
                }
                Action::Undrain { name } => {
                    if self.balancer_call(name, Change::Undrain, events, |b, n| b.ready(n)) {
                        done.push(format!("{name} back from draining"));
                        brought_up += 1;
                    }
                }
                Action::Start { backend } => {
                    if self.cloud_call(Verb::Start, backend, events) {
                        done.push(format!("started {}", backend.name));
                        brought_up += 1;
                    }
                }
                Action::Create { count } => {
                    brought_up += self.create(*count, now, &mut done, events);
                }
                Action::Drain { name } => {
                    if self.balancer_call(name, Change::Drain, events, |b, n| b.drain(n)) {
                        done.push(format!("draining {name}"));
                        // The drain timeout counts from now, not from when it is seen.
                        self.memory.draining_since.insert(name.clone(), now);
                        crate::fault::point("drained");
                    }
                }
                Action::Retire {
                    backend,
                    delete,
                    server,
                } => {
                    let verb = if *delete { Verb::Delete } else { Verb::Stop };
                    if self.cloud_call(verb, backend, events) {
                        done.push(format!(
                            "{} {}",
                            if *delete { "deleted" } else { "stopped" },
                            backend.name
                        ));
                        if *server {
                            self.remove_server(&backend.name, &mut done, events);
                        }
                    }
                }
                Action::Cancel { backend, server } => {
                    if *server && !self.remove_server(&backend.name, &mut done, events) {
                        continue;
                    }
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("cancelled {}", backend.name));
                    }
                }
                Action::Trim { backend } => {
                    if self.cloud_call(Verb::Delete, backend, events) {
                        done.push(format!("deleted {} (beyond the warm pool)", backend.name));
                    }
                }
            }
        }
        (done, brought_up)
    }

    fn create(
        &mut self,
        count: u32,
        now: Duration,
        done: &mut Vec<String>,
        events: &mut Vec<Event>,
    ) -> u32 {
        match self.cloud.create(count as usize) {
            Ok(creations) => {
                let mut made = Vec::new();
                let mut quota = None;
                for c in creations {
                    if let Err(e) = &c.result {
                        self.tally.failed(Side::Cloud, "create", e.kind());
                    }
                    match c.result {
                        Ok(_) => made.push(c.name),
                        Err(CloudError::QuotaExceeded { message }) => quota = Some(message),
                        Err(e) => events.push(Event {
                            level: Level::Error,
                            message: format!("cannot create {}: {e}", c.name),
                        }),
                    }
                }
                self.tally.changed(Change::Create, made.len() as u64);
                if !made.is_empty() {
                    done.push(format!("created {}", made.join(" ")));
                }
                if let Some(m) = quota {
                    self.hold_for_quota(now, &format!("quota exceeded: {m}"), events);
                }
                made.len() as u32
            }
            Err(CloudError::QuotaExceeded { message }) => {
                self.tally.failed(Side::Cloud, "create", "quota_exceeded");
                self.hold_for_quota(now, &format!("quota exceeded: {message}"), events);
                0
            }
            Err(e) => {
                self.tally.failed(Side::Cloud, "create", e.kind());
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot create {count} backend(s): {e}"),
                });
                0
            }
        }
    }

    /// A start, stop or delete; `false` (with an event) if it failed. A busy backend
    /// (transitional) is retried by a later tick.
    fn cloud_call(&mut self, verb: Verb, backend: &Backend, events: &mut Vec<Event>) -> bool {
        let r = match verb {
            Verb::Start => self.cloud.start(backend),
            Verb::Stop => self.cloud.stop(backend),
            Verb::Delete => self.cloud.delete(backend),
        };
        let change = verb.change();
        match r {
            Ok(()) => {
                self.tally.changed(change, 1);
                true
            }
            // Already gone: what a delete wanted (nothing was changed).
            Err(CloudError::NotFound { .. }) if verb == Verb::Delete => true,
            Err(e) => {
                self.tally.failed(Side::Cloud, change.as_str(), e.kind());
                let level = if e.is_retryable() {
                    Level::Warning
                } else {
                    Level::Error
                };
                let retry = if e.is_retryable() {
                    "; retried next tick"
                } else {
                    ""
                };
                events.push(Event {
                    level,
                    message: format!("cannot {} {}: {e}{retry}", verb.as_str(), backend.name),
                });
                false
            }
        }
    }

    /// A balancer call on one server; `false` (with an event) if it failed.
    fn balancer_call(
        &mut self,
        name: &str,
        change: Change,
        events: &mut Vec<Event>,
        f: impl FnOnce(&B, &ServerName) -> Result<(), B::Error>,
    ) -> bool {
        let what = match change {
            Change::Ready => "make ready",
            c => c.as_str(),
        };
        let Some(server) = server_name(name, events, || format!("{what} {name:?} in")) else {
            return false;
        };
        match f(&self.balancer, &server) {
            Ok(()) => {
                self.tally.changed(change, 1);
                true
            }
            Err(e) => {
                self.tally
                    .failed(Side::Balancer, change.as_str(), B::error_kind(&e));
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot {what} {name} in the balancer: {e}"),
                });
                false
            }
        }
    }

    /// One removal attempt; `true` if the server is gone.
    fn remove_server(
        &mut self,
        name: &str,
        done: &mut Vec<String>,
        events: &mut Vec<Event>,
    ) -> bool {
        self.remove_server_step(name, done, events) == ServerStep::Gone
    }

    /// One removal attempt, and how far it got.
    fn remove_server_step(
        &mut self,
        name: &str,
        done: &mut Vec<String>,
        events: &mut Vec<Event>,
    ) -> ServerStep {
        let Some(server) = server_name(name, events, || format!("remove {name:?} from")) else {
            return ServerStep::Failed;
        };
        match self.balancer.remove(&server) {
            Ok(Removal::Removed) => {
                self.tally.changed(Change::Remove, 1);
                done.push(format!("removed {name} from the balancer"));
                ServerStep::Gone
            }
            Ok(Removal::AlreadyGone) => ServerStep::Gone,
            Ok(Removal::Busy(reply)) => {
                events.push(Event {
                    level: Level::Info,
                    message: format!(
                        "{name} stays in maintenance until the balancer lets go of its connections ({reply})"
                    ),
                });
                ServerStep::Maintenance
            }
            Err(e) => {
                self.tally
                    .failed(Side::Balancer, "remove", B::error_kind(&e));
                events.push(Event {
                    level: Level::Error,
                    message: format!("cannot remove {name} from the balancer: {e}"),
                });
                ServerStep::Failed
            }
        }
    }
}

/// `name` as a balancer server name; if it is not one, an error event says it cannot be
/// `doing` (`remove "x y" from`) the balancer.
fn server_name(
    name: &str,
    events: &mut Vec<Event>,
    doing: impl FnOnce() -> String,
) -> Option<ServerName> {
    ServerName::new(name)
        .map_err(|e| {
            events.push(Event {
                level: Level::Error,
                message: format!("cannot {} the balancer: {e}", doing()),
            });
        })
        .ok()
}

/// How far a removal attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStep {
    /// The server is gone.
    Gone,
    /// It is in maintenance (no traffic) but still holds connections.
    Maintenance,
    /// The balancer refused or failed.
    Failed,
}

/// What [`Controller::cloud_call`] asks of the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Start,
    Stop,
    Delete,
}

impl Verb {
    fn change(self) -> Change {
        match self {
            Verb::Start => Change::Start,
            Verb::Stop => Change::Stop,
            Verb::Delete => Change::Delete,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Delete => "delete",
        }
    }
}
