//! One tick of the [`Controller`]: observe, rate, decide, plan, then act (`act.rs`) and
//! record.

use std::time::Duration;

use common::time::format_duration;

use super::tally::{Side, Tally};
use super::view::{self, ClassifyConfig, Counts, Member};
use super::{Controller, Event, Level, Plan, PlanInput, QuotaHold, QuotaSeen, Record, plan};
use crate::balancer::{Balancer, BalancerView};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::policy::{Decision, Observation, Policy};

/// Everything about one tick.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// The tick's number (0 first).
    pub index: u64,
    /// When, on the controller's clock.
    pub at: Duration,
    /// The CSV row.
    pub record: Record,
    /// What the policy was shown (`None` when the cloud or the balancer could not be read).
    pub observation: Option<Observation>,
    /// What the policy decided.
    pub decision: Option<Decision>,
    /// The members by role.
    pub counts: Counts,
    /// Every backend: the cloud's and the balancer's view side by side, with its role.
    pub members: Vec<Member>,
    pub plan: Plan,
    /// What was done, one short phrase each (`started node-3`).
    pub done: Vec<String>,
    /// Warnings and errors.
    pub events: Vec<Event>,
    /// The changes made and the calls that failed, counted.
    pub tally: Tally,
    /// The balancer instances that answered this tick's observation.
    pub balancers_answering: u32,
    /// How many more backends the cloud's quota has room for, as last reported (`None`:
    /// unlimited, or never read).
    pub quota_left: Option<u64>,
}

impl TickReport {
    /// The tick's log line: the decision, the counts, and what was done.
    pub fn log_line(&self) -> String {
        let mut s = format!("tick {}: ", self.index);
        match &self.decision {
            Some(d) => s.push_str(&d.to_string()),
            None => s.push_str("no decision (see the error)"),
        }
        let c = &self.counts;
        s.push_str(&format!(
            "; serving {}, pending {}, draining {}, stopped {}",
            c.serving, c.pending, c.draining, c.stopped
        ));
        if self.record.action != self.decision.as_ref().map_or("", |d| d.action()) {
            s.push_str(&format!(" [{}]", self.record.action));
        }
        if !self.done.is_empty() {
            s.push_str("; ");
            s.push_str(&self.done.join(", "));
        }
        s
    }
}

impl<C: Cloud, B: Balancer, K: Clock, P: Policy> Controller<C, B, K, P> {
    /// One tick: observe, rate, decide, plan, act, record (see the module documentation).
    pub fn tick(&mut self) -> TickReport {
        let now = self.clock.now();
        let wall = self.clock.wall();
        let date = self.config.time_format.format(wall);
        let index = self.ticks;
        self.ticks += 1;
        let mut events = Vec::new();
        self.tally = Tally::default();

        // Observe.
        let balancer = self.balancer.observe(self.config.metric);
        events.extend(self.balancer.take_notes().into_iter().map(|message| Event {
            level: Level::Warning,
            message,
        }));
        let backends = self.cloud.list();
        if let Err(e) = &balancer {
            self.tally
                .failed(Side::Balancer, "observe", B::error_kind(e));
        }
        if let Err(e) = &backends {
            self.tally.failed(Side::Cloud, "list", e.kind());
        }
        events.extend(self.cloud.take_notes().into_iter().map(|message| Event {
            level: Level::Info,
            message,
        }));
        match self.cloud.quota() {
            Ok(q) => {
                self.quota = Some(q);
                self.quota_failing = false;
            }
            Err(e) => {
                self.tally.failed(Side::Cloud, "quota", e.kind());
                if !self.quota_failing {
                    events.push(Event {
                        level: Level::Warning,
                        message: format!("cannot read the quota ({e}); using the last one seen"),
                    });
                }
                self.quota_failing = true;
            }
        }
        let (balancer, backends) = match (balancer, backends) {
            (Ok(b), Ok(c)) => {
                if self.failing.take().is_some() {
                    events.push(Event {
                        level: Level::Info,
                        message: "the cloud and the balancer answer again".to_owned(),
                    });
                }
                (b, c)
            }
            (b, c) => {
                let mut msg = Vec::new();
                if let Err(e) = &b {
                    msg.push(format!("the balancer: {e}"));
                }
                if let Err(e) = &c {
                    msg.push(format!("the cloud: {e}"));
                }
                let msg = format!(
                    "cannot observe {}; nothing is done until both answer",
                    msg.join("; ")
                );
                // Once per streak (and again if the error changes).
                if self.failing.as_deref() != Some(msg.as_str()) {
                    events.push(Event {
                        level: Level::Error,
                        message: msg.clone(),
                    });
                }
                self.failing = Some(msg);
                return self.error_report(index, now, date, b.ok(), c.ok(), events);
            }
        };
        let members = view::classify(
            &backends,
            &balancer,
            &self.memory,
            now,
            &ClassifyConfig {
                naming: self.config.naming.clone(),
                backend_port: self.config.backend_port,
                check_timeout: self.config.check_timeout,
            },
        );
        self.memory.update(&members);
        let counts = Counts::of(&members);

        // Rate and decide.
        let left = self.quota.as_ref().and_then(|q| q.left);
        let observation = Observation {
            counters: balancer.counters(),
            serving: counts.serving,
            pending: counts.pending,
            stopped: counts.stopped,
            quota: self
                .quota
                .as_ref()
                .and_then(|q| q.backends(counts.instances)),
            wall: Some(wall),
        };
        let decision = self.policy.decide(now, &observation);

        // Plan.
        self.release_hold(now, &mut events);
        let create_room = if self.hold.is_some() { Some(0) } else { left };
        let plan = plan::plan(
            &members,
            &PlanInput {
                decision: Some(&decision),
                now,
                warm_pool: self.config.warm_pool,
                drain_timeout: self.config.drain_timeout,
                create_room,
            },
        );
        if plan.quota_limited > 0 && self.hold.is_none() {
            let q = self.quota.as_ref();
            let creating = u64::from(plan.creating());
            let used = q.map_or(0, |q| q.instances.used);
            let max = q
                .and_then(|q| q.instances.max)
                .map_or_else(|| "?".to_owned(), |m| m.to_string());
            let held = plan.quota_limited;
            events.push(Event {
                level: Level::Warning,
                message: if creating == 0 {
                    format!(
                        "the quota is used up ({used} of {max} instances): holding {held} creation(s) until the quota changes"
                    )
                } else {
                    format!(
                        "the quota has room for {creating} of the {} backend(s) wanted ({used} of {max} instances in use): creating {creating}, holding {held} until the quota changes",
                        creating + u64::from(held)
                    )
                },
            });
            self.hold = Some(QuotaHold {
                since: now,
                seen: q.map(|q| QuotaSeen::after(q, creating)),
            });
        }

        // Act.
        let (done, brought_up) = self.act(&plan, now, &mut events);

        // Record.
        let mut action = decision.action().to_owned();
        let quota_blocked = plan.quota_limited > 0 || (decision.add > 0 && self.hold.is_some());
        if quota_blocked {
            action = if brought_up > 0 {
                "up:quota"
            } else {
                "hold:quota"
            }
            .to_owned();
        }
        let record = Record {
            diffpt: decision.diffpt,
            haactive: balancer.taking_traffic(),
            active: counts.active,
            epoch: now.as_secs(),
            acu: Some(balancer.counter),
            date,
            diff: decision.diff,
            needed: decision.needed,
            pending: counts.pending,
            stopped: counts.stopped,
            action,
            rate: decision.rate.map(|r| r.to_f64()),
            instances: balancer.instances.as_ref().map(|i| i.answering),
        };
        TickReport {
            index,
            at: now,
            record,
            observation: Some(observation),
            decision: Some(decision),
            counts,
            members,
            plan,
            done,
            events,
            tally: std::mem::take(&mut self.tally),
            balancers_answering: balancer.instances.as_ref().map_or(1, |i| i.answering),
            quota_left: left,
        }
    }

    /// The row of a tick that could not observe both sides: what the side that answered
    /// says (the servers taking traffic; the backends running, booting and stopped), the
    /// rest empty or 0.
    fn error_report(
        &mut self,
        index: u64,
        now: Duration,
        date: String,
        balancer: Option<BalancerView>,
        backends: Option<Vec<crate::cloud::Backend>>,
        events: Vec<Event>,
    ) -> TickReport {
        let haactive = balancer.as_ref().map_or(0, BalancerView::taking_traffic);
        let counts = backends
            .as_deref()
            .map(Counts::of_cloud)
            .unwrap_or_default();
        let balancers_answering = balancer
            .as_ref()
            .map_or(0, |b| b.instances.as_ref().map_or(1, |i| i.answering));
        TickReport {
            index,
            at: now,
            record: Record {
                diffpt: None,
                haactive,
                active: counts.active,
                epoch: now.as_secs(),
                acu: balancer.as_ref().map(|b| b.counter),
                date,
                diff: None,
                needed: None,
                pending: counts.pending,
                stopped: counts.stopped,
                action: "error".to_owned(),
                rate: None,
                instances: self.balancer.instances().map(|_| balancers_answering),
            },
            observation: None,
            decision: None,
            counts,
            members: Vec::new(),
            plan: Plan::default(),
            done: Vec::new(),
            events,
            tally: std::mem::take(&mut self.tally),
            balancers_answering,
            quota_left: self.quota.as_ref().and_then(|q| q.left),
        }
    }

    /// Releases a quota hold when the quota report changed or the retry time passed.
    fn release_hold(&mut self, now: Duration, events: &mut Vec<Event>) {
        let Some(hold) = &self.hold else { return };
        let seen = self.quota.as_ref().map(QuotaSeen::from);
        let changed = seen != hold.seen;
        let expired = now.saturating_sub(hold.since) >= self.config.quota_retry;
        if changed || expired {
            events.push(Event {
                level: Level::Info,
                message: if changed {
                    "the quota changed: creating again".to_owned()
                } else {
                    format!(
                        "no quota change in {}: trying to create again",
                        format_duration(self.config.quota_retry)
                    )
                },
            });
            self.hold = None;
        }
    }
}
