//! [`Haproxy`] as the controller's [`Balancer`]: one `observe` is `show info` (pid and
//! uptime, to recognise reloads), `show stat` (the backend's counter; each server's status,
//! check and sessions) and `show servers state` (each server's administrative state, which
//! `show stat` hides once a draining server fails its check: it then reads `DOWN`). The
//! changes are the non-blocking steps of [`super::lifecycle`]; each keeps the backend file in
//! step when one is kept.

use std::time::{Duration, Instant};

use super::lifecycle::{RemoveStep, check_summary, healthy};
use super::state::AdminState;
use super::{Haproxy, HaproxyError, Metric, ServerAddr, ServerName};
use crate::balancer::{Admin, Balancer, BalancerView, Removal, ServerView};

/// How long a reload of the fallback (HAProxy refusing runtime changes) may take.
const RELOAD_DEADLINE: Duration = Duration::from_secs(60);

fn admin_of(state: AdminState) -> Admin {
    if state.maint() {
        Admin::Maint
    } else if state.drain() {
        Admin::Drain
    } else {
        Admin::Ready
    }
}

impl Balancer for Haproxy {
    type Error = HaproxyError;

    fn observe(&self, metric: Metric) -> Result<BalancerView, HaproxyError> {
        let info = self.info()?;
        let stats = self.stats()?;
        let states = self.servers_state()?;
        let counter = self.counter_of(metric, &stats)?;
        let servers = stats
            .servers
            .iter()
            .map(|row| {
                let state = states.iter().find(|s| s.name == row.name);
                let admin = match state {
                    Some(s) => admin_of(s.admin_state),
                    // Not in `show servers state` (a race with a change): read show stat.
                    None => match row.status {
                        super::Status::Maint => Admin::Maint,
                        super::Status::Drain => Admin::Drain,
                        _ => Admin::Ready,
                    },
                };
                ServerView {
                    name: row.name.clone(),
                    addr: row.addr.as_deref().and_then(|a| a.parse().ok()),
                    admin,
                    checks_enabled: state.is_some_and(|s| s.checks_enabled()),
                    healthy: healthy(row),
                    takes_traffic: row.status.takes_traffic(),
                    sessions: row.scur.unwrap_or(0),
                    detail: format!("{}, {}", row.status_text, check_summary(Some(row))),
                }
            })
            .collect();
        Ok(BalancerView {
            counter,
            pid: Some(info.pid),
            uptime_sec: Some(info.uptime_sec),
            servers,
            instances: None,
        })
    }

    fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), HaproxyError> {
        self.begin_add(name, addr, Instant::now() + RELOAD_DEADLINE)?;
        self.changed();
        Ok(())
    }

    fn ready(&self, name: &ServerName) -> Result<(), HaproxyError> {
        Haproxy::ready(self, name)?;
        self.changed();
        Ok(())
    }

    fn drain(&self, name: &ServerName) -> Result<(), HaproxyError> {
        self.set_drain(name)?;
        self.changed();
        Ok(())
    }

    fn remove(&self, name: &ServerName) -> Result<Removal, HaproxyError> {
        let r = match self.try_remove(name, Instant::now() + RELOAD_DEADLINE)? {
            RemoveStep::Removed(_) => Removal::Removed,
            RemoveStep::Busy(reply) => Removal::Busy(reply),
            RemoveStep::AlreadyGone => Removal::AlreadyGone,
        };
        self.changed();
        Ok(r)
    }

    fn maint(&self, name: &ServerName) -> Result<(), HaproxyError> {
        Haproxy::maint(self, name)?;
        self.changed();
        Ok(())
    }

    fn error_kind(error: &HaproxyError) -> &'static str {
        error.kind()
    }
}

impl Haproxy {
    /// After a change: the backend file and the server state file are brought up to date
    /// (best effort: the loop does it again after every tick, and says so when that fails).
    fn changed(&self) {
        let _ = self.persist();
    }
}
