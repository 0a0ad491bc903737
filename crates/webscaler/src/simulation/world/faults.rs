//! Faults the tests inject into the simulated world: a balancer reload, a backend in
//! ERROR, quota changes and refusals, a busy backend, and a crash right after a change.

use super::{Sim, World};
use crate::cloud::Status;

/// The payload of a simulated crash ([`Sim::crash_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCrash;

/// What the `busy_next` fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudCall {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `delete`.
    Delete,
}

/// Panics with [`SimCrash`] (after the `RefCell` borrow is released).
pub(super) fn crash_if(crash: bool) {
    if crash {
        std::panic::panic_any(SimCrash);
    }
}

impl World {
    /// Counts a change; `true` if it is the one to crash after.
    pub(super) fn change(&mut self, what: String) -> bool {
        self.calls.push(what);
        match &mut self.crash_after {
            Some(0) | None => false,
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.crash_after = None;
                    true
                } else {
                    false
                }
            }
        }
    }
}

impl Sim {
    /// The balancer restarts: a new pid, the counter from 0.
    pub fn reload_balancer(&self) {
        let mut w = self.world.borrow_mut();
        w.counter_base = w.trace.requests_until(w.now);
        w.pid += 1;
        w.started = w.now;
    }

    /// A backend goes into ERROR.
    pub fn fail_backend(&self, name: &str) {
        let mut w = self.world.borrow_mut();
        if let Some(b) = w.backends.iter_mut().find(|b| b.name == name) {
            b.status = Status::Error;
            b.task = None;
            b.until = None;
            b.running_since = None;
        }
    }

    /// Changes the instance quota.
    pub fn set_quota(&self, quota: Option<u32>) {
        self.world.borrow_mut().config.quota = quota;
    }

    /// Whether every creation is refused as over quota, whatever the quota report says.
    pub fn reject_creates(&self, reject: bool) {
        self.world.borrow_mut().reject_creates = reject;
    }

    /// The next call of this kind answers that the backend is busy (Nova's 409).
    pub fn busy_next(&self, call: CloudCall) {
        self.world.borrow_mut().busy.push(call);
    }

    /// The `n`-th change from now (a create, start, stop, delete, or balancer add, ready,
    /// drain, remove; `n` ≥ 1) takes effect and then panics with [`SimCrash`].
    pub fn crash_after(&self, n: u64) {
        self.world.borrow_mut().crash_after = Some(n.max(1));
    }

    pub(super) fn busy(&self, call: CloudCall) -> bool {
        let mut w = self.world.borrow_mut();
        match w.busy.iter().position(|c| *c == call) {
            Some(i) => {
                w.busy.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::simulation::trace::synthetic;
    use crate::simulation::world::SimConfig;

    #[test]
    fn a_crash_happens_after_the_change() {
        let sim = Sim::new(SimConfig::default(), synthetic::constant(0.0, 10));
        sim.crash_after(2);
        let cloud = sim.cloud();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cloud.create(3)));
        let payload = r.unwrap_err();
        assert!(payload.downcast_ref::<SimCrash>().is_some());
        // The creation that crashed was made; the one after it was not.
        assert_eq!(sim.backends().len(), 2);
        assert_eq!(sim.calls(), ["create node-1", "create node-2"]);
    }
}
