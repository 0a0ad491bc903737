//! The simulated balancer: HAProxy's server states (see [`super`]).

use super::faults::crash_if;
use super::{Sim, SimServer, World};
use crate::balancer::{Admin, Balancer, BalancerView, Metric, Removal, ServerAddr, ServerName};

/// A refused balancer call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulated balancer: {0}")]
pub struct SimError(pub String);

/// The simulated balancer.
#[derive(Debug, Clone)]
pub struct SimBalancer {
    pub(super) sim: Sim,
}

impl SimBalancer {
    fn change(
        &self,
        what: String,
        f: impl FnOnce(&mut World) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        let crash = {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            f(&mut w)?;
            w.change(what)
        };
        crash_if(crash);
        Ok(())
    }
}

impl Balancer for SimBalancer {
    type Error = SimError;

    fn observe(&self, _metric: Metric) -> Result<BalancerView, SimError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        Ok(BalancerView {
            counter: w.trace.requests_until(w.now).saturating_sub(w.counter_base),
            pid: Some(w.pid),
            uptime_sec: Some(w.now.saturating_sub(w.started).as_secs()),
            servers: w.view(),
            instances: None,
        })
    }

    fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), SimError> {
        self.change(format!("add {name}"), |w| {
            let now = w.now;
            if let Some(s) = w.servers.iter_mut().find(|s| s.name == name.as_str()) {
                if s.addr != addr {
                    return Err(SimError(format!(
                        "{name} exists with address {}, not {addr}",
                        s.addr
                    )));
                }
                s.checks_since.get_or_insert(now);
                return Ok(());
            }
            w.servers.push(SimServer {
                name: name.to_string(),
                addr,
                admin: Admin::Maint,
                checks_since: Some(now),
                drain_since: None,
                preheated: false,
            });
            Ok(())
        })
    }

    fn ready(&self, name: &ServerName) -> Result<(), SimError> {
        self.change(format!("ready {name}"), |w| {
            let s = w
                .servers
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| SimError(format!("no server {name}")))?;
            s.admin = Admin::Ready;
            s.drain_since = None;
            Ok(())
        })
    }

    fn drain(&self, name: &ServerName) -> Result<(), SimError> {
        self.change(format!("drain {name}"), |w| {
            let now = w.now;
            let s = w
                .servers
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| SimError(format!("no server {name}")))?;
            s.admin = Admin::Drain;
            s.drain_since = Some(now);
            Ok(())
        })
    }

    fn remove(&self, name: &ServerName) -> Result<Removal, SimError> {
        let mut outcome = Removal::AlreadyGone;
        self.change(format!("remove {name}"), |w| {
            let Some(i) = w.servers.iter().position(|s| s.name == name.as_str()) else {
                return Ok(());
            };
            if w.sessions(&w.servers[i]) > 0 {
                w.servers[i].admin = Admin::Maint;
                outcome = Removal::Busy("Server still has connections attached to it".into());
            } else {
                w.servers.remove(i);
                outcome = Removal::Removed;
            }
            Ok(())
        })?;
        Ok(outcome)
    }

    fn maint(&self, name: &ServerName) -> Result<(), SimError> {
        self.change(format!("maint {name}"), |w| {
            let s = w
                .servers
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| SimError(format!("no server {name}")))?;
            s.admin = Admin::Maint;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cloud::Cloud;
    use crate::simulation::trace::synthetic;
    use crate::simulation::world::SimConfig;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_server_passes_its_check_after_the_delay_and_takes_traffic_when_ready() {
        let sim = Sim::new(
            SimConfig {
                boot_delay: secs(10),
                drain_time: secs(3),
                ..SimConfig::default()
            },
            synthetic::constant(20.0, 1000),
        );
        let b = sim.balancer();
        let name = ServerName::new("node-1").unwrap();
        sim.cloud().create(1).unwrap();
        let addr: ServerAddr = "10.0.0.2:80".parse().unwrap();
        b.add(&name, addr).unwrap();
        let s = &b.observe(Metric::Sessions).unwrap().servers[0];
        assert_eq!((s.admin, s.healthy), (Admin::Maint, false));
        sim.advance(secs(11));
        assert!(
            !b.observe(Metric::Sessions).unwrap().servers[0].healthy,
            "2 s after ACTIVE"
        );
        sim.advance(secs(1));
        let s = &b.observe(Metric::Sessions).unwrap().servers[0];
        assert!(s.healthy && !s.takes_traffic);
        b.ready(&name).unwrap();
        let v = b.observe(Metric::Sessions).unwrap();
        assert!(v.servers[0].takes_traffic);
        assert_eq!(v.counter, 240, "20 req/s for 12 s");
        b.drain(&name).unwrap();
        assert_eq!(
            b.remove(&name).unwrap(),
            Removal::Busy("Server still has connections attached to it".into())
        );
        assert_eq!(
            b.observe(Metric::Sessions).unwrap().servers[0].admin,
            Admin::Maint
        );
        sim.advance(secs(3));
        assert_eq!(b.remove(&name).unwrap(), Removal::Removed);
        assert_eq!(b.remove(&name).unwrap(), Removal::AlreadyGone);
        // A reload restarts the counter with a new pid.
        sim.reload_balancer();
        sim.advance(secs(2));
        let v = b.observe(Metric::Sessions).unwrap();
        assert_eq!((v.counter, v.pid, v.uptime_sec), (40, Some(2), Some(2)));
    }
}
