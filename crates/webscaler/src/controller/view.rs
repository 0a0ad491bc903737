//! Observe: what the cloud and the balancer report, joined by name into one [`Member`] per
//! backend, each with the [`Role`] it plays this tick. Pure: the inputs are the two listings,
//! the time and the controller's (non-authoritative) memory of when a join or a drain began.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use crate::balancer::{Admin, BalancerView, ServerAddr, ServerView};
use crate::cloud::{Backend, Naming, Status, natural_cmp};

/// Where a backend is in the cloud's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudState {
    /// ACTIVE with nothing going on (other than tasks that leave it serving).
    Running,
    /// Being built, started, rebooted, rebuilt, resized or migrated: on its way to running.
    Booting,
    /// Being stopped, shelved, suspended or paused.
    Stopping,
    /// Being deleted.
    Deleting,
    /// SHUTOFF: a warm instance that starts quickly.
    Stopped,
    /// ERROR.
    Failed,
    /// Anything else (paused, suspended, shelved, rescue, unknown...): left alone.
    Other,
}

/// Tasks during which an ACTIVE instance is going away.
const LEAVING_TASKS: &[&str] = &[
    "powering-off",
    "shelving",
    "shelving_image_pending_upload",
    "shelving_image_uploading",
    "shelving_offloading",
    "suspending",
    "pausing",
    "rescuing",
];

/// The state of a backend as the controller acts on it.
pub fn cloud_state(b: &Backend) -> CloudState {
    let task = b.task.as_deref().unwrap_or("");
    if task == "deleting" || task == "soft-deleting" {
        return CloudState::Deleting;
    }
    match &b.status {
        Status::Error => CloudState::Failed,
        Status::Deleted | Status::SoftDeleted => CloudState::Deleting,
        Status::Active if task.is_empty() => CloudState::Running,
        Status::Active if task.starts_with("reboot") || task == "rebuilding" => CloudState::Booting,
        Status::Active if LEAVING_TASKS.contains(&task) => CloudState::Stopping,
        // Other tasks (an image snapshot, an attach) leave it serving.
        Status::Active => CloudState::Running,
        Status::Shutoff if task.is_empty() => CloudState::Stopped,
        // powering-on, or anything else that moves it out of SHUTOFF.
        Status::Shutoff => CloudState::Booting,
        s if s.is_transitional() => CloudState::Booting,
        _ => CloudState::Other,
    }
}

/// The role a backend plays this tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "role")]
pub enum Role {
    /// Running, ready in the balancer and passing its checks: capacity.
    Serving,
    /// Running and ready in the balancer, but its health check fails (HAProxy: `DOWN`):
    /// not capacity. Counted as failed; replaced once it has failed for `check_timeout`,
    /// serving again if it recovers before.
    Unhealthy {
        /// Since when (this controller's memory; restarts at a restart).
        since: Duration,
    },
    /// Running, not yet ready in the balancer (absent, or in MAINT waiting for its check):
    /// capacity on its way.
    Joining {
        /// Since when (this controller's memory; restarts at a restart).
        since: Duration,
    },
    /// Being built or started: capacity on its way.
    Booting,
    /// Running and draining in the balancer: leaving.
    Draining {
        /// Sessions left.
        sessions: u64,
        /// Since when (this controller's memory; restarts at a restart).
        since: Duration,
    },
    /// Being stopped in the cloud: leaving.
    Stopping,
    /// Being deleted in the cloud: leaving.
    Deleting,
    /// Stopped: the warm pool.
    Stopped,
    /// Broken: ERROR in the cloud, or running but never passed its check in time. Deleted
    /// and replaced.
    Failed { why: String },
    /// In a state the controller leaves alone (paused, suspended, unknown...).
    Other {
        /// The cloud's status.
        status: String,
    },
    /// Only in the balancer: its backend is gone from the cloud.
    Orphan,
}

impl Role {
    /// Every [`Role::label`], in the order of the variants.
    pub const LABELS: [&'static str; 11] = [
        "serving",
        "unhealthy",
        "joining",
        "booting",
        "draining",
        "stopping",
        "deleting",
        "stopped",
        "failed",
        "other",
        "orphan",
    ];

    /// A short name for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Role::Serving => "serving",
            Role::Unhealthy { .. } => "unhealthy",
            Role::Joining { .. } => "joining",
            Role::Booting => "booting",
            Role::Draining { .. } => "draining",
            Role::Stopping => "stopping",
            Role::Deleting => "deleting",
            Role::Stopped => "stopped",
            Role::Failed { .. } => "failed",
            Role::Other { .. } => "other",
            Role::Orphan => "orphan",
        }
    }
}

/// One backend: the cloud's and the balancer's view of it, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The name (the cloud's instance name, the balancer's server name).
    pub name: String,
    /// The cloud's backend, if the cloud lists it.
    pub backend: Option<Backend>,
    /// The balancer's server, if it has one.
    pub server: Option<ServerView>,
    /// Where the balancer should reach it, from the cloud's address.
    pub addr: Option<ServerAddr>,
    /// Its role this tick.
    pub role: Role,
}

impl Member {
    /// Whether the balancer has a server of this name at another address than the cloud's.
    pub fn addr_mismatch(&self) -> bool {
        match (&self.server, self.addr) {
            (Some(s), Some(a)) => s.addr.is_some_and(|sa| sa != a),
            _ => false,
        }
    }
}

/// What the controller remembers between ticks. None of it is the source of truth: after a
/// restart it starts empty, which only restarts the join and drain timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// When each joining backend was first seen joining.
    pub joining_since: HashMap<String, Duration>,
    /// When each draining server was first seen draining.
    pub draining_since: HashMap<String, Duration>,
    /// When each ready server was first seen failing its check.
    pub unhealthy_since: HashMap<String, Duration>,
}

impl Memory {
    /// Keeps the timestamps of this tick's joining and draining members, and forgets the rest.
    pub fn update(&mut self, members: &[Member]) {
        let mut joining = HashMap::new();
        let mut draining = HashMap::new();
        let mut unhealthy = HashMap::new();
        for m in members {
            match m.role {
                Role::Joining { since } => {
                    joining.insert(m.name.clone(), since);
                }
                Role::Draining { since, .. } => {
                    draining.insert(m.name.clone(), since);
                }
                Role::Unhealthy { since } => {
                    unhealthy.insert(m.name.clone(), since);
                }
                _ => {}
            }
        }
        self.joining_since = joining;
        self.draining_since = draining;
        self.unhealthy_since = unhealthy;
    }
}

/// The settings classification needs.
#[derive(Debug, Clone)]
pub struct ClassifyConfig {
    /// Which balancer servers are ours (by name prefix).
    pub naming: Naming,
    /// The port of backends whose cloud address has none (OpenStack: the web server's).
    pub backend_port: u16,
    /// A running backend that has not passed its check for this long (joining), or has
    /// failed it for this long (ready), is failed.
    pub check_timeout: Duration,
}

/// Joins the cloud's backends and the balancer's servers (ours: those with the prefix) by
/// name, in natural order, and gives each its role.
pub fn classify(
    backends: &[Backend],
    balancer: &BalancerView,
    memory: &Memory,
    now: Duration,
    cfg: &ClassifyConfig,
) -> Vec<Member> {
    let mut by_name: BTreeMap<String, (Option<&Backend>, Option<&ServerView>)> = BTreeMap::new();
    for b in backends {
        by_name.entry(b.name.clone()).or_default().0 = Some(b);
    }
    for s in &balancer.servers {
        if cfg.naming.is_backend(&s.name) {
            by_name.entry(s.name.clone()).or_default().1 = Some(s);
        }
    }
    let mut members: Vec<Member> = by_name
        .into_iter()
        .map(|(name, (backend, server))| {
            let addr = backend
                .and_then(|b| b.address)
                .and_then(|a| ServerAddr::from_socket_addr(a.socket_addr(cfg.backend_port)).ok());
            let role = role(&name, backend, server, addr, memory, now, cfg);
            Member {
                name,
                backend: backend.cloned(),
                server: server.cloned(),
                addr,
                role,
            }
        })
        .collect();
    members.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    members
}

fn role(
    name: &str,
    backend: Option<&Backend>,
    server: Option<&ServerView>,
    addr: Option<ServerAddr>,
    memory: &Memory,
    now: Duration,
    cfg: &ClassifyConfig,
) -> Role {
    let Some(b) = backend else {
        return Role::Orphan;
    };
    match cloud_state(b) {
        CloudState::Failed => Role::Failed {
            why: format!("{} in the cloud", b.status),
        },
        CloudState::Booting => Role::Booting,
        CloudState::Stopping => Role::Stopping,
        CloudState::Deleting => Role::Deleting,
        CloudState::Stopped => Role::Stopped,
        CloudState::Other => Role::Other {
            status: b.status.to_string(),
        },
        // No address yet: nothing to give the balancer.
        CloudState::Running if addr.is_none() => Role::Booting,
        CloudState::Running => match server.map(|s| s.admin) {
            Some(Admin::Ready) if server.is_some_and(|s| s.checks_enabled && !s.takes_traffic) => {
                let since = *memory.unhealthy_since.get(name).unwrap_or(&now);
                if now.saturating_sub(since) >= cfg.check_timeout {
                    Role::Failed {
                        why: format!(
                            "its health check has failed for {}",
                            common::time::format_duration(cfg.check_timeout)
                        ),
                    }
                } else {
                    Role::Unhealthy { since }
                }
            }
            Some(Admin::Ready) => Role::Serving,
            Some(Admin::Drain) => Role::Draining {
                sessions: server.map_or(0, |s| s.sessions),
                since: *memory.draining_since.get(name).unwrap_or(&now),
            },
            None | Some(Admin::Maint) => {
                let since = *memory.joining_since.get(name).unwrap_or(&now);
                if now.saturating_sub(since) >= cfg.check_timeout {
                    Role::Failed {
                        why: format!(
                            "running but not passing its health check after {}",
                            common::time::format_duration(cfg.check_timeout)
                        ),
                    }
                } else {
                    Role::Joining { since }
                }
            }
        },
    }
}

/// How many members play each role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Ready in the balancer (and running).
    pub serving: u32,
    /// Booting or joining: capacity on its way.
    pub pending: u32,
    /// Draining in the balancer.
    pub draining: u32,
    /// Being stopped or deleted.
    pub leaving: u32,
    /// Stopped (the warm pool).
    pub stopped: u32,
    /// Failed (to be replaced), or failing their health check while ready: not capacity.
    pub failed: u32,
    /// Every backend the cloud lists (all states: they all count against the quota).
    pub instances: u32,
    /// Running in the cloud: the lab report's `active` ("active servers in OpenStack").
    pub active: u32,
}

impl Counts {
    /// What the cloud's listing alone tells, when the balancer could not be read: the
    /// backends running (`active`), booting (`pending`), stopped, failed, leaving, and all
    /// of them (`instances`). Nothing is known to serve.
    pub fn of_cloud(backends: &[Backend]) -> Counts {
        let mut c = Counts::default();
        for b in backends {
            c.instances += 1;
            match cloud_state(b) {
                CloudState::Running => c.active += 1,
                CloudState::Booting => c.pending += 1,
                CloudState::Stopped => c.stopped += 1,
                CloudState::Failed => c.failed += 1,
                CloudState::Stopping | CloudState::Deleting => c.leaving += 1,
                CloudState::Other => {}
            }
        }
        c
    }

    /// Counts the roles of `members`.
    pub fn of(members: &[Member]) -> Counts {
        let mut c = Counts::default();
        for m in members {
            if let Some(b) = &m.backend {
                c.instances += 1;
                if cloud_state(b) == CloudState::Running {
                    c.active += 1;
                }
            }
            match m.role {
                Role::Serving => c.serving += 1,
                Role::Joining { .. } | Role::Booting => c.pending += 1,
                Role::Draining { .. } => c.draining += 1,
                Role::Stopping | Role::Deleting => c.leaving += 1,
                Role::Stopped => c.stopped += 1,
                Role::Failed { .. } | Role::Unhealthy { .. } => c.failed += 1,
                Role::Other { .. } | Role::Orphan => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Address;
    use std::net::{IpAddr, Ipv4Addr};

    fn backend(name: &str, status: &str, task: Option<&str>, ip: Option<u8>) -> Backend {
        Backend {
            name: name.into(),
            id: format!("id-{name}"),
            status: Status::parse(status),
            address: ip.map(|i| Address {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                port: None,
            }),
            created: None,
            task: task.map(str::to_owned),
        }
    }

    fn server(name: &str, admin: Admin, ip: u8, sessions: u64) -> ServerView {
        ServerView {
            name: name.into(),
            addr: Some(format!("10.0.0.{ip}:80").parse().unwrap()),
            admin,
            checks_enabled: true,
            healthy: admin == Admin::Ready,
            takes_traffic: admin == Admin::Ready,
            sessions,
            detail: String::new(),
        }
    }

    fn cfg() -> ClassifyConfig {
        ClassifyConfig {
            naming: Naming::default(),
            backend_port: 80,
            check_timeout: Duration::from_secs(600),
        }
    }

    #[test]
    fn cloud_states_from_status_and_task() {
        let table = [
            ("ACTIVE", None, CloudState::Running),
            ("ACTIVE", Some("image_snapshot"), CloudState::Running),
            ("ACTIVE", Some("powering-off"), CloudState::Stopping),
            ("ACTIVE", Some("deleting"), CloudState::Deleting),
            ("ACTIVE", Some("rebooting"), CloudState::Booting),
            ("BUILD", Some("spawning"), CloudState::Booting),
            ("SHUTOFF", None, CloudState::Stopped),
            ("SHUTOFF", Some("powering-on"), CloudState::Booting),
            ("SHUTOFF", Some("deleting"), CloudState::Deleting),
            ("ERROR", None, CloudState::Failed),
            ("REBOOT", None, CloudState::Booting),
            ("MIGRATING", None, CloudState::Booting),
            ("PAUSED", None, CloudState::Other),
            ("UNKNOWN", None, CloudState::Other),
            ("DELETED", None, CloudState::Deleting),
        ];
        for (status, task, want) in table {
            assert_eq!(
                cloud_state(&backend("node-1", status, task, Some(1))),
                want,
                "{status} {task:?}"
            );
        }
    }

    #[test]
    fn roles_join_the_two_views_by_name() {
        let backends = vec![
            backend("node-1", "ACTIVE", None, Some(1)),
            backend("node-2", "ACTIVE", None, Some(2)),
            backend("node-3", "ACTIVE", None, Some(3)),
            backend("node-4", "ACTIVE", None, Some(4)),
            backend("node-5", "BUILD", None, None),
            backend("node-6", "SHUTOFF", None, Some(6)),
            backend("node-7", "ERROR", None, None),
            backend("node-10", "ACTIVE", Some("powering-off"), Some(10)),
            backend("node-11", "ACTIVE", None, None),
        ];
        let view = BalancerView {
            servers: vec![
                server("node-1", Admin::Ready, 1, 0),
                server("node-2", Admin::Maint, 2, 0),
                server("node-3", Admin::Drain, 3, 4),
                server("node-6", Admin::Maint, 6, 0),
                server("node-9", Admin::Ready, 9, 0),
                server("web-1", Admin::Ready, 99, 0), // not ours
            ],
            ..BalancerView::default()
        };
        let now = Duration::from_secs(100);
        let mut memory = Memory::default();
        memory
            .draining_since
            .insert("node-3".into(), Duration::from_secs(90));
        let members = classify(&backends, &view, &memory, now, &cfg());
        let roles: Vec<(&str, &str)> = members
            .iter()
            .map(|m| (m.name.as_str(), m.role.label()))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("node-1", "serving"),
                ("node-2", "joining"),
                ("node-3", "draining"),
                ("node-4", "joining"),
                ("node-5", "booting"),
                ("node-6", "stopped"),
                ("node-7", "failed"),
                ("node-9", "orphan"),
                ("node-10", "stopping"),
                ("node-11", "booting"), // running but no address yet
            ]
        );
        assert_eq!(
            members[2].role,
            Role::Draining {
                sessions: 4,
                since: Duration::from_secs(90)
            }
        );
        assert_eq!(members[0].addr, Some("10.0.0.1:80".parse().unwrap()));
        let c = Counts::of(&members);
        assert_eq!(
            (
                c.serving, c.pending, c.draining, c.stopped, c.failed, c.leaving
            ),
            (1, 4, 1, 1, 1, 1)
        );
        assert_eq!(c.instances, 9);
        assert_eq!(c.active, 5, "ACTIVE without a task: node-1..4 and node-11");
    }

    #[test]
    fn a_join_that_never_passes_its_check_fails_after_the_timeout() {
        let backends = vec![backend("node-1", "ACTIVE", None, Some(1))];
        let view = BalancerView {
            servers: vec![server("node-1", Admin::Maint, 1, 0)],
            ..BalancerView::default()
        };
        let mut memory = Memory::default();
        let at = |t: u64, memory: &Memory| {
            classify(&backends, &view, memory, Duration::from_secs(t), &cfg())
        };
        let m = at(10, &memory);
        assert_eq!(
            m[0].role,
            Role::Joining {
                since: Duration::from_secs(10)
            }
        );
        memory.update(&m);
        assert_eq!(
            at(609, &memory)[0].role,
            Role::Joining {
                since: Duration::from_secs(10)
            }
        );
        assert!(matches!(at(610, &memory)[0].role, Role::Failed { .. }));
        // A restarted controller starts the timeout again.
        assert!(matches!(
            at(610, &Memory::default())[0].role,
            Role::Joining { .. }
        ));
    }

    #[test]
    fn a_ready_server_failing_its_check_is_not_capacity_and_fails_after_the_timeout() {
        let backends = vec![
            backend("node-1", "ACTIVE", None, Some(1)),
            backend("node-2", "ACTIVE", None, Some(2)),
        ];
        let mut down = server("node-2", Admin::Ready, 2, 0);
        down.takes_traffic = false;
        down.healthy = false;
        let view = BalancerView {
            servers: vec![server("node-1", Admin::Ready, 1, 0), down.clone()],
            ..BalancerView::default()
        };
        let mut memory = Memory::default();
        let at = |t: u64, memory: &Memory, view: &BalancerView| {
            classify(&backends, view, memory, Duration::from_secs(t), &cfg())
        };
        let m = at(10, &memory, &view);
        assert_eq!(m[0].role, Role::Serving);
        assert_eq!(
            m[1].role,
            Role::Unhealthy {
                since: Duration::from_secs(10)
            }
        );
        let c = Counts::of(&m);
        assert_eq!((c.serving, c.failed, c.pending), (1, 1, 0));
        memory.update(&m);
        assert!(matches!(
            at(609, &memory, &view)[1].role,
            Role::Unhealthy { .. }
        ));
        let failed = at(610, &memory, &view);
        assert!(
            matches!(&failed[1].role, Role::Failed { why } if why.contains("health check has failed")),
            "{:?}",
            failed[1].role
        );
        // Recovered before the timeout: serving again, and the timeout starts afresh.
        let up = BalancerView {
            servers: vec![
                server("node-1", Admin::Ready, 1, 0),
                server("node-2", Admin::Ready, 2, 0),
            ],
            ..BalancerView::default()
        };
        let m = at(300, &memory, &up);
        assert_eq!(m[1].role, Role::Serving);
        memory.update(&m);
        assert!(memory.unhealthy_since.is_empty());
        // Without checks, a server is what it is: serving.
        let mut unchecked = down;
        unchecked.checks_enabled = false;
        let v = BalancerView {
            servers: vec![unchecked],
            ..BalancerView::default()
        };
        assert_eq!(at(700, &Memory::default(), &v)[1].role, Role::Serving);
    }

    #[test]
    fn counts_from_the_cloud_alone() {
        let c = Counts::of_cloud(&[
            backend("node-1", "ACTIVE", None, Some(1)),
            backend("node-2", "ACTIVE", None, Some(2)),
            backend("node-3", "BUILD", None, None),
            backend("node-4", "SHUTOFF", None, Some(4)),
            backend("node-5", "ACTIVE", Some("powering-off"), Some(5)),
        ]);
        assert_eq!(
            (
                c.active,
                c.pending,
                c.stopped,
                c.leaving,
                c.serving,
                c.instances
            ),
            (2, 1, 1, 1, 0, 5)
        );
    }

    #[test]
    fn an_address_mismatch_is_seen() {
        let backends = vec![backend("node-1", "ACTIVE", None, Some(1))];
        let view = BalancerView {
            servers: vec![server("node-1", Admin::Ready, 7, 0)],
            ..BalancerView::default()
        };
        let m = classify(&backends, &view, &Memory::default(), Duration::ZERO, &cfg());
        assert!(m[0].addr_mismatch());
    }
}
