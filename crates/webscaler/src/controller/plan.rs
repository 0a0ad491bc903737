//! Plan: from this tick's members and the policy's decision to a list of [`Action`]s. Pure.
//!
//! - **Scale up** by `add`: first cancel drains (a draining server is back at once), then
//!   start stopped backends (lowest names first), then create the rest in one call (the cloud
//!   creates them in parallel), no more than the quota leaves room for.
//! - **Scale down** by `remove`: drain serving backends, those not taking traffic first, then
//!   the highest names (so `node-1`, `node-2` stay); if more must go (a quota that shrank),
//!   retire joining backends and cancel booting ones.
//! - **Reconcile**, every tick, from what the cloud and the balancer report: a running
//!   backend is added to the balancer (in maintenance, checks on) and made ready once its
//!   check passes; a server whose backend is gone, stopped or leaving is removed; a failed
//!   backend is deleted (the policy then sees the missing capacity and replaces it); a
//!   drained server (no sessions left, or the drain timeout passed) is retired: its backend
//!   is stopped, or deleted when the warm pool is full, then its server removed.
//! - **Warm pool**: up to `warm_pool` stopped backends are kept (the lowest names); stopped
//!   ones beyond are deleted.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::view::{Member, Role};
use crate::balancer::ServerAddr;
use crate::cloud::{Backend, natural_cmp};
use crate::policy::Decision;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Remove a server from the balancer: its backend is gone, stopped or leaving, or the
    /// server points at another address.
    RemoveServer {
        /// The server.
        name: String,
    },
    /// Delete a failed backend (after removing its server, if any).
    DeleteFailed {
        backend: Backend,
        /// Whether the balancer has a server for it.
        server: bool,
        /// Why it failed.
        why: String,
    },
    /// Make a joining server ready: its check passed.
    ReadyServer {
        /// The server.
        name: String,
    },
    /// Add a running backend to the balancer (maintenance, checks on), or turn its checks
    /// on.
    AddServer {
        /// The server.
        name: String,
        addr: ServerAddr,
    },
    /// Cancel a drain: the capacity is needed again.
    Undrain {
        /// The server.
        name: String,
    },
    /// Start a stopped backend.
    Start { backend: Backend },
    /// Create backends (in parallel).
    Create { count: u32 },
    /// Drain a serving backend's server (scale down).
    Drain {
        /// The server.
        name: String,
    },
    /// A drained backend leaves: stop it (or delete it when the warm pool is full), then
    /// remove its server.
    Retire {
        backend: Backend,
        /// Delete instead of stop.
        delete: bool,
        /// Whether the balancer has a server for it.
        server: bool,
    },
    /// Cancel a booting backend (scale down beyond the serving ones): delete it.
    Cancel {
        backend: Backend,
        /// Whether the balancer has a server for it.
        server: bool,
    },
    /// Delete a stopped backend beyond the warm pool.
    Trim { backend: Backend },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RemoveServer { name } => write!(f, "remove server {name}"),
            Action::DeleteFailed { backend, why, .. } => {
                write!(f, "delete failed {} ({why})", backend.name)
            }
            Action::ReadyServer { name } => write!(f, "ready {name}"),
            Action::AddServer { name, addr } => write!(f, "add server {name} ({addr})"),
            Action::Undrain { name } => write!(f, "undrain {name}"),
            Action::Start { backend } => write!(f, "start {}", backend.name),
            Action::Create { count } => write!(f, "create {count}"),
            Action::Drain { name } => write!(f, "drain {name}"),
            Action::Retire {
                backend, delete, ..
            } => write!(
                f,
                "{} {}",
                if *delete { "delete" } else { "stop" },
                backend.name
            ),
            Action::Cancel { backend, .. } => write!(f, "cancel {}", backend.name),
            Action::Trim { backend } => write!(f, "trim {}", backend.name),
        }
    }
}

/// What planning needs besides the members.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput<'a> {
    /// The policy's decision (`None`: reconcile only, e.g. when no rate could be read).
    pub decision: Option<&'a Decision>,
    /// The time.
    pub now: Duration,
    /// Stopped backends to keep.
    pub warm_pool: u32,
    /// How long a drain may take before the backend leaves anyway.
    pub drain_timeout: Duration,
    /// How many backends may be created now (`None`: no limit known); 0 while a quota error
    /// holds.
    pub create_room: Option<u64>,
}

/// The plan of one tick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Plan {
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Backends the decision wanted created that the quota left no room for.
    pub quota_limited: u32,
}

impl Plan {
    /// How many backends the plan brings up (undrain, start, create).
    pub fn adding(&self) -> u32 {
        let undrain_or_start = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Undrain { .. } | Action::Start { .. }))
            .count();
        u32::try_from(undrain_or_start)
            .unwrap_or(u32::MAX)
            .saturating_add(self.creating())
    }

    /// How many backends the plan creates.
    pub fn creating(&self) -> u32 {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Create { count } => *count,
                _ => 0,
            })
            .sum()
    }
}

/// Plans one tick (see the module documentation).
pub fn plan(members: &[Member], input: &PlanInput<'_>) -> Plan {
    let (add, remove) = input.decision.map_or((0, 0), |d| (d.add, d.remove));
    let names = |pred: &dyn Fn(&Member) -> bool| -> Vec<&Member> {
        let mut v: Vec<&Member> = members.iter().filter(|m| pred(m)).collect();
        v.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        v
    };
    let mut taken: Vec<&str> = Vec::new();
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut quota_limited = 0;

    // Scale up: cancel drains, start stopped ones, create the rest.
    let mut want = add;
    for m in names(&|m| matches!(m.role, Role::Draining { .. })) {
        if want == 0 {
            break;
        }
        up.push(Action::Undrain {
            name: m.name.clone(),
        });
        taken.push(&m.name);
        want -= 1;
    }
    for m in names(&|m| m.role == Role::Stopped) {
        if want == 0 {
            break;
        }
        if let Some(b) = &m.backend {
            up.push(Action::Start { backend: b.clone() });
            taken.push(&m.name);
            want -= 1;
        }
    }
    if want > 0 {
        let room = input
            .create_room
            .map_or(want, |r| u32::try_from(r).unwrap_or(u32::MAX).min(want));
        quota_limited = want - room;
        if room > 0 {
            up.push(Action::Create { count: room });
        }
    }

    // Scale down: drain serving ones (not taking traffic first, then the highest names),
    // then retire joining ones and cancel booting ones.
    let mut left = remove;
    let mut serving = names(&|m| m.role == Role::Serving);
    serving.sort_by(|a, b| {
        let takes = |m: &Member| m.server.as_ref().is_some_and(|s| s.takes_traffic);
        takes(a)
            .cmp(&takes(b))
            .then_with(|| natural_cmp(&b.name, &a.name))
    });
    for m in serving {
        if left == 0 {
            break;
        }
        down.push(Action::Drain {
            name: m.name.clone(),
        });
        taken.push(&m.name);
        left -= 1;
    }
    let mut retire = Vec::new();
    for m in names(&|m| matches!(m.role, Role::Joining { .. }))
        .into_iter()
        .rev()
    {
        if left == 0 {
            break;
        }
        if let Some(b) = &m.backend {
            retire.push((b.clone(), m.server.is_some()));
            taken.push(&m.name);
            left -= 1;
        }
    }
    for m in names(&|m| m.role == Role::Booting).into_iter().rev() {
        if left == 0 {
            break;
        }
        if let Some(b) = &m.backend {
            down.push(Action::Cancel {
                backend: b.clone(),
                server: m.server.is_some(),
            });
            taken.push(&m.name);
            left -= 1;
        }
    }

    // Reconcile.
    let mut fix_servers = Vec::new();
    let mut failed = Vec::new();
    let mut readies = Vec::new();
    let mut adds = Vec::new();
    for m in members {
        if taken.contains(&m.name.as_str()) {
            continue;
        }
        let has_server = m.server.is_some();
        match &m.role {
            Role::Orphan | Role::Stopping | Role::Deleting | Role::Stopped if has_server => {
                fix_servers.push(Action::RemoveServer {
                    name: m.name.clone(),
                });
            }
            Role::Failed { why } => {
                if let Some(b) = &m.backend {
                    failed.push(Action::DeleteFailed {
                        backend: b.clone(),
                        server: has_server,
                        why: why.clone(),
                    });
                }
            }
            Role::Serving if m.addr_mismatch() => {
                fix_servers.push(Action::RemoveServer {
                    name: m.name.clone(),
                });
            }
            Role::Joining { .. } => match (&m.server, m.addr) {
                (_, None) => {}
                (None, Some(addr)) => adds.push(Action::AddServer {
                    name: m.name.clone(),
                    addr,
                }),
                (Some(_), Some(_)) if m.addr_mismatch() => {
                    fix_servers.push(Action::RemoveServer {
                        name: m.name.clone(),
                    });
                }
                (Some(s), Some(addr)) if !s.checks_enabled => adds.push(Action::AddServer {
                    name: m.name.clone(),
                    addr,
                }),
                (Some(s), Some(_)) if s.healthy => readies.push(Action::ReadyServer {
                    name: m.name.clone(),
                }),
                _ => {}
            },
            Role::Draining { sessions, since }
                if *sessions == 0 || input.now.saturating_sub(*since) >= input.drain_timeout =>
            {
                if let Some(b) = &m.backend {
                    retire.push((b.clone(), has_server));
                }
            }
            _ => {}
        }
    }

    // The warm pool: keep the lowest-named stopped backends, counting those being stopped;
    // a retired backend is stopped while there is room, else deleted.
    let started: Vec<&str> = up
        .iter()
        .filter_map(|a| match a {
            Action::Start { backend } => Some(backend.name.as_str()),
            _ => None,
        })
        .collect();
    let stopping = members.iter().filter(|m| m.role == Role::Stopping).count() as u32;
    let mut pool = stopping;
    let mut trims = Vec::new();
    for m in names(&|m| m.role == Role::Stopped) {
        if started.contains(&m.name.as_str()) {
            continue;
        }
        if pool < input.warm_pool {
            pool += 1;
        } else if let Some(b) = &m.backend {
            trims.push(Action::Trim { backend: b.clone() });
        }
    }
    let mut retires = Vec::new();
    retire.sort_by(|a, b| natural_cmp(&a.0.name, &b.0.name));
    for (backend, server) in retire {
        let delete = pool >= input.warm_pool;
        if !delete {
            pool += 1;
        }
        retires.push(Action::Retire {
            backend,
            delete,
            server,
        });
    }

    let mut actions = fix_servers;
    actions.extend(failed);
    actions.extend(readies);
    actions.extend(adds);
    actions.extend(up);
    actions.extend(
        down.iter()
            .filter(|a| matches!(a, Action::Drain { .. }))
            .cloned(),
    );
    actions.extend(retires);
    actions.extend(
        down.into_iter()
            .filter(|a| matches!(a, Action::Cancel { .. })),
    );
    actions.extend(trims);
    Plan {
        actions,
        quota_limited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::{Admin, ServerView};
    use crate::cloud::{Address, Status};
    use crate::policy::Reason;
    use std::net::{IpAddr, Ipv4Addr};

    fn member(n: u8, role: Role, server: Option<(Admin, bool)>) -> Member {
        let name = format!("node-{n}");
        let addr: ServerAddr = format!("10.0.0.{n}:80").parse().unwrap();
        Member {
            backend: (role != Role::Orphan).then(|| Backend {
                name: name.clone(),
                id: format!("id-{n}"),
                status: Status::Active,
                address: Some(Address {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
                    port: None,
                }),
                created: None,
                task: None,
            }),
            server: server.map(|(admin, healthy)| ServerView {
                name: name.clone(),
                addr: Some(addr),
                admin,
                checks_enabled: true,
                healthy,
                takes_traffic: admin == Admin::Ready && healthy,
                sessions: 0,
                detail: String::new(),
            }),
            name,
            addr: Some(addr),
            role,
        }
    }

    fn decision(add: u32, remove: u32) -> Decision {
        Decision {
            rate: None,
            diff: None,
            diffpt: None,
            needed: None,
            target: 0,
            add,
            remove,
            reason: Reason::Demand,
        }
    }

    fn input(d: Option<&Decision>) -> PlanInput<'_> {
        PlanInput {
            decision: d,
            now: Duration::from_secs(100),
            warm_pool: 1,
            drain_timeout: Duration::from_secs(30),
            create_room: None,
        }
    }

    fn text(p: &Plan) -> Vec<String> {
        p.actions.iter().map(ToString::to_string).collect()
    }

    fn joining() -> Role {
        Role::Joining {
            since: Duration::from_secs(90),
        }
    }

    fn draining(sessions: u64, since: u64) -> Role {
        Role::Draining {
            sessions,
            since: Duration::from_secs(since),
        }
    }

    #[test]
    fn scale_up_cancels_drains_then_starts_stopped_then_creates() {
        let ms = vec![
            member(1, Role::Serving, Some((Admin::Ready, true))),
            member(2, draining(3, 95), Some((Admin::Drain, true))),
            member(3, Role::Stopped, None),
            member(4, Role::Stopped, None),
        ];
        let d = decision(5, 0);
        let p = plan(&ms, &input(Some(&d)));
        assert_eq!(
            text(&p),
            ["undrain node-2", "start node-3", "start node-4", "create 2"]
        );
        assert_eq!(p.adding(), 5);
        // The quota leaves room for one: the rest is counted, not attempted.
        let p = plan(
            &ms,
            &PlanInput {
                create_room: Some(1),
                ..input(Some(&d))
            },
        );
        assert_eq!(p.quota_limited, 1);
        assert!(text(&p).contains(&"create 1".to_string()));
        let p = plan(
            &ms,
            &PlanInput {
                create_room: Some(0),
                ..input(Some(&d))
            },
        );
        assert_eq!(p.quota_limited, 2);
        assert!(!text(&p).iter().any(|a| a.starts_with("create")));
    }

    #[test]
    fn scale_down_drains_unhealthy_then_highest_then_retires_and_cancels() {
        let ms = vec![
            member(1, Role::Serving, Some((Admin::Ready, true))),
            member(2, Role::Serving, Some((Admin::Ready, false))), // DOWN
            member(3, Role::Serving, Some((Admin::Ready, true))),
            member(4, joining(), Some((Admin::Maint, false))),
            member(5, Role::Booting, None),
        ];
        let d = decision(0, 2);
        assert_eq!(
            text(&plan(&ms, &input(Some(&d)))),
            ["drain node-2", "drain node-3"]
        );
        // Beyond the serving ones: the joining one is retired (stopped into the empty warm
        // pool), the booting one cancelled.
        let d = decision(0, 5);
        assert_eq!(
            text(&plan(&ms, &input(Some(&d)))),
            [
                "drain node-2",
                "drain node-3",
                "drain node-1",
                "stop node-4",
                "cancel node-5"
            ]
        );
    }

    #[test]
    fn reconcile_adds_readies_removes_and_replaces() {
        let mut stale = member(9, Role::Orphan, Some((Admin::Ready, false)));
        stale.backend = None;
        let mut unchecked = member(6, joining(), Some((Admin::Maint, false)));
        unchecked.server.as_mut().unwrap().checks_enabled = false;
        let ms = vec![
            member(1, Role::Serving, Some((Admin::Ready, true))),
            member(2, joining(), None),
            member(3, joining(), Some((Admin::Maint, true))),
            member(4, joining(), Some((Admin::Maint, false))),
            member(
                5,
                Role::Failed {
                    why: "ERROR in the cloud".into(),
                },
                None,
            ),
            unchecked,
            member(7, Role::Stopped, Some((Admin::Maint, false))),
            stale,
        ];
        assert_eq!(
            text(&plan(&ms, &input(None))),
            [
                "remove server node-7",
                "remove server node-9",
                "delete failed node-5 (ERROR in the cloud)",
                "ready node-3",
                "add server node-2 (10.0.0.2:80)",
                "add server node-6 (10.0.0.6:80)",
            ]
        );
    }

    #[test]
    fn drained_servers_retire_into_the_warm_pool_and_the_rest_is_deleted() {
        let ms = vec![
            member(1, Role::Serving, Some((Admin::Ready, true))),
            member(2, draining(0, 99), Some((Admin::Drain, true))), // drained
            member(3, draining(2, 50), Some((Admin::Drain, true))), // timed out
            member(4, draining(2, 99), Some((Admin::Drain, true))), // still draining
        ];
        assert_eq!(
            text(&plan(&ms, &input(None))),
            ["stop node-2", "delete node-3"]
        );
        // With a stopped one already kept, both are deleted; extra stopped ones are trimmed.
        let mut ms2 = ms.clone();
        ms2.push(member(5, Role::Stopped, None));
        ms2.push(member(6, Role::Stopped, None));
        assert_eq!(
            text(&plan(&ms2, &input(None))),
            ["delete node-2", "delete node-3", "trim node-6"]
        );
        // A warm pool of 0 keeps nothing.
        assert_eq!(
            text(&plan(
                &ms2,
                &PlanInput {
                    warm_pool: 0,
                    ..input(None)
                }
            )),
            [
                "delete node-2",
                "delete node-3",
                "trim node-5",
                "trim node-6"
            ]
        );
    }

    #[test]
    fn a_drain_needed_again_is_cancelled_not_retired() {
        let ms = vec![member(2, draining(0, 99), Some((Admin::Drain, true)))];
        let d = decision(1, 0);
        assert_eq!(text(&plan(&ms, &input(Some(&d)))), ["undrain node-2"]);
    }

    #[test]
    fn a_server_at_a_stale_address_is_removed_to_be_added_again() {
        let mut m = member(1, joining(), Some((Admin::Maint, true)));
        m.server.as_mut().unwrap().addr = Some("10.9.9.9:80".parse().unwrap());
        assert_eq!(text(&plan(&[m], &input(None))), ["remove server node-1"]);
    }
}
