//! The simulated cloud: Nova's states, delays and quota (see [`super`]).

use super::faults::crash_if;
use super::{CloudCall, Sim, World};
use crate::cloud::{Backend, Cloud, CloudError, Creation, Limit, Quota, Status};

/// The simulated cloud.
#[derive(Debug, Clone)]
pub struct SimCloud {
    pub(super) sim: Sim,
}

fn transitional(name: &str, action: &'static str, why: &str) -> CloudError {
    CloudError::Transitional {
        name: name.to_owned(),
        action,
        message: why.to_owned(),
    }
}

impl SimCloud {
    fn act(
        &self,
        backend: &Backend,
        call: CloudCall,
        f: impl FnOnce(&mut World, usize) -> Result<(), CloudError>,
    ) -> Result<(), CloudError> {
        let verb = match call {
            CloudCall::Start => "started",
            CloudCall::Stop => "stopped",
            CloudCall::Delete => "deleted",
        };
        if self.sim.busy(call) {
            return Err(transitional(&backend.name, verb, "simulated 409"));
        }
        let crash = {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            let i = w
                .backends
                .iter()
                .position(|b| b.id == backend.id)
                .ok_or_else(|| CloudError::NotFound {
                    what: format!("backend {} ({})", backend.name, backend.id),
                })?;
            f(&mut w, i)?;
            w.change(format!(
                "{} {}",
                match call {
                    CloudCall::Start => "start",
                    CloudCall::Stop => "stop",
                    CloudCall::Delete => "delete",
                },
                backend.name
            ))
        };
        crash_if(crash);
        Ok(())
    }
}

impl Cloud for SimCloud {
    fn provider(&self) -> &'static str {
        "sim"
    }

    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        Ok(w.list())
    }

    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        let mut out = Vec::new();
        let mut crash = false;
        {
            let mut w = self.sim.world.borrow_mut();
            w.settle();
            let names = w
                .naming
                .next_names(w.backends.iter().map(|b| b.name.as_str()), count);
            for name in names {
                let full = w
                    .config
                    .quota
                    .is_some_and(|q| w.backends.len() >= q as usize);
                if full || w.reject_creates {
                    w.calls.push(format!("refused create {name} (quota)"));
                    out.push(Creation {
                        name,
                        result: Err(CloudError::QuotaExceeded {
                            message: format!(
                                "Quota exceeded for instances: Requested 1, but already used {} of {} instances",
                                w.backends.len(),
                                w.config.quota.map_or_else(|| "?".into(), |q| q.to_string())
                            ),
                        }),
                    });
                    continue;
                }
                let until = Some((w.now + w.config.boot_delay, Some(Status::Active)));
                let b = w.new_backend(name.clone(), Status::Build, until);
                w.backends.push(b);
                w.settle();
                let listed = w.list().into_iter().find(|b| b.name == name);
                crash = w.change(format!("create {name}"));
                out.push(Creation {
                    name,
                    result: listed.ok_or_else(|| CloudError::NotFound {
                        what: "the backend just created".into(),
                    }),
                });
                if crash {
                    // Killed in the middle of the parallel creation: the rest never happen.
                    break;
                }
            }
        }
        crash_if(crash);
        Ok(out)
    }

    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Start, |w, i| {
            let now = w.now;
            let delay = w.config.start_delay;
            let b = &mut w.backends[i];
            if b.status != Status::Shutoff || b.task.is_some() {
                return Err(transitional(&b.name, "started", "not SHUTOFF"));
            }
            b.task = Some("powering-on");
            b.until = Some((now + delay, Some(Status::Active)));
            w.settle();
            Ok(())
        })
    }

    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Stop, |w, i| {
            let now = w.now;
            let delay = w.config.stop_delay;
            let b = &mut w.backends[i];
            if b.status != Status::Active || b.task.is_some() {
                return Err(transitional(&b.name, "stopped", "not ACTIVE"));
            }
            b.task = Some("powering-off");
            b.until = Some((now + delay, Some(Status::Shutoff)));
            w.settle();
            Ok(())
        })
    }

    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        self.act(backend, CloudCall::Delete, |w, i| {
            let now = w.now;
            let delay = w.config.delete_delay;
            let b = &mut w.backends[i];
            b.task = Some("deleting");
            b.until = Some((now + delay, None));
            w.settle();
            Ok(())
        })
    }

    fn quota(&self) -> Result<Quota, CloudError> {
        let mut w = self.sim.world.borrow_mut();
        w.settle();
        let used = w.backends.len() as u64;
        let max = w.config.quota.map(u64::from);
        Ok(Quota {
            instances: Limit { used, max },
            cores: None,
            ram_mb: None,
            left: max.map(|m| m.saturating_sub(used)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::simulation::trace::synthetic;
    use crate::simulation::world::SimConfig;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backends_boot_start_stop_and_go_on_time() {
        let sim = Sim::new(SimConfig::default(), synthetic::constant(10.0, 1000));
        let cloud = sim.cloud();
        let made = cloud.create(2).unwrap();
        assert_eq!(made[0].name, "node-1");
        assert_eq!(made[1].result.as_ref().unwrap().status, Status::Build);
        sim.advance(secs(79));
        assert_eq!(cloud.list().unwrap()[0].status, Status::Build);
        sim.advance(secs(1));
        let b = cloud.list().unwrap();
        assert_eq!(b[0].status, Status::Active);
        cloud.stop(&b[0]).unwrap();
        let l = cloud.list().unwrap();
        assert_eq!(
            (l[0].status.clone(), l[0].task.as_deref()),
            (Status::Active, Some("powering-off"))
        );
        assert!(matches!(
            cloud.stop(&l[0]),
            Err(CloudError::Transitional { .. })
        ));
        sim.advance(secs(10));
        let l = cloud.list().unwrap();
        assert_eq!(l[0].status, Status::Shutoff);
        cloud.start(&l[0]).unwrap();
        assert_eq!(
            cloud.list().unwrap()[0].task.as_deref(),
            Some("powering-on")
        );
        sim.advance(secs(80));
        assert_eq!(cloud.list().unwrap()[0].status, Status::Active);
        cloud.delete(&l[1]).unwrap();
        assert_eq!(cloud.list().unwrap().len(), 1);
        assert!(matches!(
            cloud.delete(&l[1]),
            Err(CloudError::NotFound { .. })
        ));
        assert_eq!(
            sim.calls(),
            [
                "create node-1",
                "create node-2",
                "stop node-1",
                "start node-1",
                "delete node-2"
            ]
        );
    }

    #[test]
    fn the_quota_counts_stopped_backends_and_refuses_beyond() {
        let sim = Sim::new(
            SimConfig {
                quota: Some(2),
                ..SimConfig::default()
            },
            synthetic::constant(0.0, 10),
        );
        let c = sim.cloud().create(3).unwrap();
        assert!(c[0].result.is_ok() && c[1].result.is_ok());
        assert!(matches!(c[2].result, Err(CloudError::QuotaExceeded { .. })));
        assert_eq!(sim.cloud().quota().unwrap().left, Some(0));
        sim.set_quota(Some(5));
        sim.reject_creates(true);
        assert!(sim.cloud().create(1).unwrap()[0].result.is_err());
    }
}
