//! Several balancer instances driven as one ([`Several`]): no single load balancer.
//!
//! Two or more HAProxy instances (a pair of hosts behind a virtual IP, or several
//! frontends on one host) serve the same backends. Every change (add, ready, drain, maint,
//! remove) goes to every instance that answered this tick. The controller's meter gets one
//! counter per instance, so the rate is the sum of each instance's own reset-safe rate (a
//! reload of one neither spikes nor zeroes the sum). A server takes traffic, and is healthy,
//! only when it is in every instance counted (the CSV's `haactive` counts those that take
//! traffic in every instance that answered); its sessions are the sum over every instance
//! that answered, so a backend is stopped only when it has drained in all of them.
//!
//! An instance that does not answer is skipped for the tick (said once per change) and
//! never blocks the others: they are observed in parallel, each call with its socket's own
//! deadlines, and one that fails a call is left alone for the rest of the tick. Each
//! observation compares every other answering instance with the reference (the first
//! instance that was in step at the previous tick, preferably one whose process did not
//! change; at the start, the one with the most servers) and repairs the difference
//! ([`repairs`]): missing
//! servers are added (in maintenance, checks on) and made ready once their check has passed
//! there, extra servers are removed, administrative states copied. An instance with
//! anything to repair is not counted that tick; it counts again once found in step, from
//! the tick after (the meter takes a returning source's first counter as a first reading).
//!
//! One instance is a pass-through: exactly what that balancer does alone.

use std::sync::{Mutex, MutexGuard};

use super::{
    Admin, Balancer, BalancerView, InstancesSeen, Metric, Removal, ServerAddr, ServerName,
    ServerView,
};
use crate::rate::meter::Counter;

/// Why a call on several instances failed.
#[derive(Debug, thiserror::Error)]
pub enum SeveralError<E: std::error::Error + 'static> {
    /// The only instance's own error (one instance is a pass-through).
    #[error(transparent)]
    One(E),
    /// No instance answered (each one's error, named).
    #[error("no HAProxy instance answers: {}", .0.join("; "))]
    NoneAnswers(Vec<String>),
}

/// One step that brings an instance in step with the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Missing: added in maintenance with its checks on (or its checks turned on).
    Add(ServerName, ServerAddr),
    /// Ready in the reference, and its check passed here (or failed in the reference too,
    /// or the server was not added here by a repair: a server put in maintenance runs no
    /// check, so there is none to wait for).
    Ready(ServerName),
    Drain(ServerName),
    Maint(ServerName),
    /// Not in the reference (or at another address).
    Remove(ServerName),
    /// Ready in the reference, added here by a repair and waiting for its first check:
    /// nothing to do yet.
    WaitCheck(ServerName),
}

/// What brings an instance whose servers are `other` in step with `reference` (pure; empty
/// when they agree). Servers are matched by name; health and sessions are not compared.
/// `added` names the servers a repair added to this instance (they wait for their check).
pub fn repairs(reference: &[ServerView], other: &[ServerView], added: &[String]) -> Vec<Repair> {
    let mut out = Vec::new();
    for r in reference {
        let Ok(name) = ServerName::new(&r.name) else {
            continue;
        };
        let Some(o) = other.iter().find(|o| o.name == r.name) else {
            if let Some(addr) = r.addr {
                out.push(Repair::Add(name, addr));
            }
            continue;
        };
        if r.addr.is_some() && o.addr.is_some() && r.addr != o.addr {
            out.push(Repair::Remove(name));
            continue;
        }
        if r.checks_enabled
            && !o.checks_enabled
            && let Some(addr) = r.addr
        {
            out.push(Repair::Add(name.clone(), addr));
        }
        if r.admin == o.admin {
            continue;
        }
        out.push(match r.admin {
            Admin::Ready
                if o.healthy || !r.healthy || !r.checks_enabled || !added.contains(&r.name) =>
            {
                Repair::Ready(name)
            }
            Admin::Ready => Repair::WaitCheck(name),
            Admin::Drain => Repair::Drain(name),
            Admin::Maint => Repair::Maint(name),
        });
    }
    for o in other {
        if !reference.iter().any(|r| r.name == o.name)
            && let Ok(name) = ServerName::new(&o.name)
        {
            out.push(Repair::Remove(name));
        }
    }
    out
}

/// What is known of one instance between calls.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Answered this tick's observation, and no call failed since.
    answering: bool,
    /// Found in step at the last observation.
    in_step: bool,
    /// The last failure, to say it once per change.
    failing: Option<String>,
    /// The pid of the process that counted, at the last observation.
    pid: Option<u32>,
    /// Skipped or repaired since it was last in step (to say when it is again).
    out: bool,
    /// Servers a repair added, until they are made ready or removed.
    added: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    seen: Vec<Seen>,
    notes: Vec<String>,
}

/// Several balancer instances as one [`Balancer`] (see the module documentation).
#[derive(Debug)]
pub struct Several<B> {
    members: Vec<(String, B)>,
    state: Mutex<State>,
}

impl<B: Balancer + Sync> Several<B> {
    /// The instances, each with the name its log lines use (its socket), in order: the
    /// first is the reference at the start. Panics if `members` is empty.
    pub fn new(members: Vec<(String, B)>) -> Several<B> {
        assert!(!members.is_empty(), "Several needs at least one balancer");
        let seen = vec![
            Seen {
                answering: true,
                ..Seen::default()
            };
            members.len()
        ];
        Several {
            members,
            state: Mutex::new(State {
                seen,
                notes: Vec::new(),
            }),
        }
    }

    /// The instances with their names.
    pub fn members(&self) -> impl Iterator<Item = (&str, &B)> {
        self.members.iter().map(|(n, b)| (n.as_str(), b))
    }

    /// How many instances.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false (there is at least one instance).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that instance `i` failed (`what`): skipped for the rest of the tick, said
    /// once per change.
    fn failed(&self, st: &mut State, i: usize, what: String) {
        let name = &self.members[i].0;
        let seen = &mut st.seen[i];
        seen.answering = false;
        seen.in_step = false;
        seen.out = true;
        let changed = seen.failing.as_deref() != Some(what.as_str());
        if changed {
            st.notes.push(format!(
                "HAProxy instance {name} does not answer ({what}); skipped until it does, then brought in step"
            ));
        }
        st.seen[i].failing = Some(what);
    }

    /// Calls `f` on every instance that answers; an instance whose call fails is skipped
    /// for the rest of the tick. Fails only when no instance took the call.
    fn each<T>(
        &self,
        f: impl Fn(&B) -> Result<T, B::Error>,
    ) -> Result<Vec<T>, SeveralError<B::Error>> {
        if let [(_, one)] = self.members.as_slice() {
            return f(one).map(|t| vec![t]).map_err(SeveralError::One);
        }
        let mut st = self.lock();
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for (i, (name, b)) in self.members.iter().enumerate() {
            if !st.seen[i].answering {
                continue;
            }
            match f(b) {
                Ok(t) => done.push(t),
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    self.failed(&mut st, i, e.to_string());
                }
            }
        }
        if done.is_empty() {
            if errors.is_empty() {
                errors.push("none answered this tick".to_owned());
            }
            return Err(SeveralError::NoneAnswers(errors));
        }
        Ok(done)
    }

    /// Applies `fixes` to instance `i`; false if a call failed (then it is skipped).
    fn repair(&self, st: &mut State, i: usize, fixes: &[Repair]) -> bool {
        let (name, b) = &self.members[i];
        let mut done = Vec::new();
        for fix in fixes {
            let added = &mut st.seen[i].added;
            match fix {
                Repair::Add(s, _) => added.push(s.to_string()),
                Repair::Ready(s) | Repair::Remove(s) => added.retain(|a| a != s.as_str()),
                _ => {}
            }
            let r = match fix {
                Repair::Add(s, addr) => b.add(s, *addr).map(|()| format!("added {s}")),
                Repair::Ready(s) => b.ready(s).map(|()| format!("{s} ready")),
                Repair::Drain(s) => b.drain(s).map(|()| format!("{s} draining")),
                Repair::Maint(s) => b.maint(s).map(|()| format!("{s} in maintenance")),
                Repair::Remove(s) => b.remove(s).map(|r| match r {
                    Removal::Busy(_) => format!("{s} in maintenance until its connections end"),
                    _ => format!("removed {s}"),
                }),
                Repair::WaitCheck(_) => continue,
            };
            match r {
                Ok(what) => done.push(what),
                Err(e) => {
                    self.failed(st, i, e.to_string());
                    return false;
                }
            }
        }
        if !done.is_empty() {
            st.notes.push(format!(
                "bringing HAProxy instance {name} in step: {}",
                done.join(", ")
            ));
        }
        true
    }
}

impl<B: Balancer + Sync> Balancer for Several<B>
where
    B::Error: Send,
{
    type Error = SeveralError<B::Error>;

    fn observe(&self, metric: Metric) -> Result<BalancerView, Self::Error> {
        if let [(_, one)] = self.members.as_slice() {
            return one.observe(metric).map_err(SeveralError::One);
        }
        // In parallel: one slow instance costs its own deadline, not the sum.
        let views: Vec<Result<BalancerView, B::Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .members
                .iter()
                .map(|(_, b)| s.spawn(move || b.observe(metric)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut st = self.lock();
        let mut errors = Vec::new();
        for (i, v) in views.iter().enumerate() {
            match v {
                Ok(_) => {
                    st.seen[i].answering = true;
                    if st.seen[i].failing.take().is_some() {
                        let name = &self.members[i].0;
                        st.notes
                            .push(format!("HAProxy instance {name} answers again"));
                    }
                }
                Err(e) => {
                    errors.push(format!("{}: {e}", self.members[i].0));
                    self.failed(&mut st, i, e.to_string());
                }
            }
        }
        let views: Vec<Option<BalancerView>> = views.into_iter().map(Result::ok).collect();
        let answering: Vec<usize> = (0..views.len()).filter(|&i| views[i].is_some()).collect();
        if answering.is_empty() {
            return Err(SeveralError::NoneAnswers(errors));
        }
        // The reference: in step before and the same process, else in step before, else (at
        // the start) the one with the most servers, so that an instance restarted empty
        // is filled rather than the others emptied.
        let pid_of = |i: usize| views[i].as_ref().and_then(|v| v.pid);
        let size = |i: usize| views[i].as_ref().map_or(0, |v| v.servers.len());
        let most = answering.iter().copied().fold(answering[0], |best, i| {
            if size(i) > size(best) { i } else { best }
        });
        let reference = answering
            .iter()
            .copied()
            .find(|&i| st.seen[i].in_step && st.seen[i].pid == pid_of(i))
            .or_else(|| answering.iter().copied().find(|&i| st.seen[i].in_step))
            .unwrap_or(most);
        let mut counted = vec![reference];
        for &i in &answering {
            if i == reference {
                continue;
            }
            let (Some(r), Some(o)) = (&views[reference], &views[i]) else {
                continue;
            };
            let fixes = repairs(&r.servers, &o.servers, &st.seen[i].added);
            if fixes.is_empty() {
                if std::mem::take(&mut st.seen[i].out) {
                    let name = &self.members[i].0;
                    st.notes.push(format!(
                        "HAProxy instance {name} is in step: its counter counts from the next tick"
                    ));
                }
                st.seen[i].in_step = true;
                counted.push(i);
            } else {
                st.seen[i].in_step = false;
                st.seen[i].out = true;
                self.repair(&mut st, i, &fixes);
            }
        }
        st.seen[reference].in_step = true;
        for &i in &answering {
            st.seen[i].pid = pid_of(i);
        }
        counted.sort_unstable();
        let Some(r) = &views[reference] else {
            return Err(SeveralError::NoneAnswers(errors));
        };
        let in_all = |among: &[usize], name: &str, f: fn(&ServerView) -> bool| {
            among.iter().all(|&i| {
                views[i]
                    .as_ref()
                    .and_then(|v| v.servers.iter().find(|s| s.name == name))
                    .is_some_and(f)
            })
        };
        let taking_traffic = r
            .servers
            .iter()
            .filter(|s| in_all(&answering, &s.name, |s| s.takes_traffic))
            .count() as u32;
        let servers = r
            .servers
            .iter()
            .map(|s| ServerView {
                healthy: in_all(&counted, &s.name, |s| s.healthy),
                takes_traffic: in_all(&counted, &s.name, |s| s.takes_traffic),
                sessions: views
                    .iter()
                    .flatten()
                    .filter_map(|v| v.servers.iter().find(|o| o.name == s.name))
                    .map(|o| o.sessions)
                    .sum(),
                ..s.clone()
            })
            .collect();
        let counters: Vec<Counter> = counted
            .iter()
            .filter_map(|&i| {
                views[i].as_ref().map(|v| Counter {
                    source: i as u32,
                    value: v.counter,
                    pid: v.pid,
                    uptime_sec: v.uptime_sec,
                })
            })
            .collect();
        Ok(BalancerView {
            counter: counters.iter().map(|c| c.value).sum(),
            pid: None,
            uptime_sec: None,
            servers,
            instances: Some(InstancesSeen {
                total: self.members.len() as u32,
                answering: answering.len() as u32,
                taking_traffic,
                counters,
            }),
        })
    }

    fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), Self::Error> {
        self.each(|b| b.add(name, addr)).map(drop)
    }

    fn ready(&self, name: &ServerName) -> Result<(), Self::Error> {
        self.each(|b| b.ready(name)).map(drop)
    }

    fn drain(&self, name: &ServerName) -> Result<(), Self::Error> {
        self.each(|b| b.drain(name)).map(drop)
    }

    fn maint(&self, name: &ServerName) -> Result<(), Self::Error> {
        self.each(|b| b.maint(name)).map(drop)
    }

    fn remove(&self, name: &ServerName) -> Result<Removal, Self::Error> {
        let all = self.each(|b| b.remove(name))?;
        Ok(
            if let Some(busy) = all.iter().find(|r| matches!(r, Removal::Busy(_))) {
                busy.clone()
            } else if all.contains(&Removal::Removed) {
                Removal::Removed
            } else {
                Removal::AlreadyGone
            },
        )
    }

    fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().notes)
    }

    fn instances(&self) -> Option<u32> {
        (self.members.len() > 1).then_some(self.members.len() as u32)
    }

    fn error_kind(error: &Self::Error) -> &'static str {
        match error {
            SeveralError::One(e) => B::error_kind(e),
            SeveralError::NoneAnswers(_) => "no_instance",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("fake: {0}")]
    struct FakeError(String);

    /// A balancer instance in memory: servers, a counter and a pid; `down` refuses calls.
    #[derive(Debug, Default)]
    struct Fake {
        servers: Mutex<Vec<ServerView>>,
        counter: Mutex<u64>,
        pid: u32,
        down: AtomicBool,
    }

    fn view(name: &str, admin: Admin, healthy: bool, sessions: u64) -> ServerView {
        ServerView {
            name: name.to_owned(),
            addr: Some(format!("127.0.0.1:{}", 9000 + name.len()).parse().unwrap()),
            admin,
            checks_enabled: true,
            healthy,
            takes_traffic: healthy && admin == Admin::Ready,
            sessions,
            detail: String::new(),
        }
    }

    impl Fake {
        fn new(pid: u32, servers: Vec<ServerView>) -> Fake {
            Fake {
                servers: Mutex::new(servers),
                pid,
                ..Fake::default()
            }
        }
        fn up(&self) -> Result<MutexGuard<'_, Vec<ServerView>>, FakeError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(FakeError("connection refused".into()));
            }
            Ok(self.servers.lock().unwrap())
        }
        fn set(&self, name: &ServerName, admin: Admin) -> Result<(), FakeError> {
            let mut s = self.up()?;
            let s = s
                .iter_mut()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| FakeError(format!("no {name}")))?;
            s.admin = admin;
            s.takes_traffic = s.healthy && admin == Admin::Ready;
            Ok(())
        }
        fn admins(&self) -> Vec<(String, Admin)> {
            let s = self.servers.lock().unwrap();
            s.iter().map(|s| (s.name.clone(), s.admin)).collect()
        }
    }

    impl Balancer for Fake {
        type Error = FakeError;
        fn observe(&self, _: Metric) -> Result<BalancerView, FakeError> {
            let servers = self.up()?.clone();
            Ok(BalancerView {
                counter: *self.counter.lock().unwrap(),
                pid: Some(self.pid),
                uptime_sec: Some(100),
                servers,
                instances: None,
            })
        }
        fn add(&self, name: &ServerName, addr: ServerAddr) -> Result<(), FakeError> {
            let mut s = self.up()?;
            if !s.iter().any(|s| s.name == name.as_str()) {
                s.push(ServerView {
                    addr: Some(addr),
                    ..view(name.as_str(), Admin::Maint, false, 0)
                });
            }
            Ok(())
        }
        fn ready(&self, name: &ServerName) -> Result<(), FakeError> {
            self.set(name, Admin::Ready)
        }
        fn drain(&self, name: &ServerName) -> Result<(), FakeError> {
            self.set(name, Admin::Drain)
        }
        fn maint(&self, name: &ServerName) -> Result<(), FakeError> {
            self.set(name, Admin::Maint)
        }
        fn remove(&self, name: &ServerName) -> Result<Removal, FakeError> {
            let mut s = self.up()?;
            match s.iter().position(|s| s.name == name.as_str()) {
                None => Ok(Removal::AlreadyGone),
                Some(i) if s[i].sessions > 0 => {
                    s[i].admin = Admin::Maint;
                    Ok(Removal::Busy("busy".into()))
                }
                Some(i) => {
                    s.remove(i);
                    Ok(Removal::Removed)
                }
            }
        }
    }

    fn n(s: &str) -> ServerName {
        ServerName::new(s).unwrap()
    }

    fn two(a: Vec<ServerView>, b: Vec<ServerView>) -> Several<Fake> {
        Several::new(vec![
            ("a".to_owned(), Fake::new(1, a)),
            ("b".to_owned(), Fake::new(2, b)),
        ])
    }

    fn member(s: &Several<Fake>, i: usize) -> &Fake {
        s.members().nth(i).unwrap().1
    }

    #[test]
    fn repairs_add_missing_copy_states_and_remove_extras() {
        let reference = vec![
            view("n1", Admin::Ready, true, 0),
            view("n2", Admin::Drain, true, 0),
            view("n3", Admin::Ready, true, 0),
            view("n4", Admin::Maint, false, 0),
            view("n5", Admin::Ready, false, 0),
        ];
        let other = vec![
            view("n1", Admin::Ready, false, 3),
            view("n2", Admin::Ready, true, 0),
            view("n3", Admin::Maint, false, 0),
            view("n4", Admin::Ready, true, 0),
            view("n5", Admin::Maint, false, 0),
            view("x9", Admin::Ready, true, 0),
        ];
        assert_eq!(
            repairs(&reference, &other, &["n3".to_owned()]),
            vec![
                Repair::Drain(n("n2")),
                Repair::WaitCheck(n("n3")),
                Repair::Maint(n("n4")),
                // Down in the reference too: no check to wait for.
                Repair::Ready(n("n5")),
                Repair::Remove(n("x9")),
            ]
        );
        // Put in maintenance by hand (no check runs there): made ready at once.
        assert_eq!(
            repairs(&reference[2..3], &other[2..3], &[]),
            vec![Repair::Ready(n("n3"))]
        );
        let missing = repairs(&reference[..1], &[], &[]);
        assert_eq!(
            missing,
            vec![Repair::Add(n("n1"), reference[0].addr.unwrap())]
        );
        assert!(repairs(&reference, &reference, &[]).is_empty());
    }

    #[test]
    fn one_instance_is_a_pass_through() {
        let one = Several::new(vec![(
            "a".to_owned(),
            Fake::new(7, vec![view("n1", Admin::Ready, true, 2)]),
        )]);
        let v = one.observe(Metric::Sessions).unwrap();
        assert_eq!((v.pid, v.instances.clone()), (Some(7), None));
        assert_eq!(
            v.counters(),
            vec![Counter {
                source: 0,
                value: 0,
                pid: Some(7),
                uptime_sec: Some(100)
            }]
        );
        assert_eq!(one.instances(), None);
        member(&one, 0).down.store(true, Ordering::SeqCst);
        assert!(matches!(
            one.observe(Metric::Sessions),
            Err(SeveralError::One(_))
        ));
    }

    #[test]
    fn changes_reach_every_instance_and_views_are_merged() {
        let s = two(Vec::new(), Vec::new());
        *member(&s, 0).counter.lock().unwrap() = 10;
        *member(&s, 1).counter.lock().unwrap() = 5;
        s.observe(Metric::Sessions).unwrap();
        s.add(&n("n1"), "127.0.0.1:9002".parse().unwrap()).unwrap();
        // Healthy in one instance only: not yet healthy for the controller.
        member(&s, 0).servers.lock().unwrap()[0].healthy = true;
        let v = s.observe(Metric::Sessions).unwrap();
        assert!(!v.servers[0].healthy);
        member(&s, 1).servers.lock().unwrap()[0].healthy = true;
        let v = s.observe(Metric::Sessions).unwrap();
        assert!(v.servers[0].healthy);
        s.ready(&n("n1")).unwrap();
        let v = s.observe(Metric::Sessions).unwrap();
        assert_eq!(v.taking_traffic(), 1);
        assert_eq!(v.counter, 15);
        let i = v.instances.unwrap();
        assert_eq!((i.total, i.answering), (2, 2));
        assert_eq!(
            i.counters
                .iter()
                .map(|c| (c.source, c.value))
                .collect::<Vec<_>>(),
            [(0, 10), (1, 5)]
        );
        // Drained in one, busy in the other: the sessions add up, the removal is busy.
        member(&s, 1).servers.lock().unwrap()[0].sessions = 4;
        s.drain(&n("n1")).unwrap();
        assert_eq!(s.observe(Metric::Sessions).unwrap().servers[0].sessions, 4);
        assert!(matches!(s.remove(&n("n1")).unwrap(), Removal::Busy(_)));
        member(&s, 1).servers.lock().unwrap()[0].sessions = 0;
        assert_eq!(s.remove(&n("n1")).unwrap(), Removal::Removed);
        assert!(member(&s, 0).admins().is_empty() && member(&s, 1).admins().is_empty());
        assert!(s.take_notes().is_empty());
    }

    #[test]
    fn a_silent_instance_is_skipped_then_brought_in_step_before_it_counts() {
        let s = two(
            vec![view("n1", Admin::Ready, true, 0)],
            vec![view("n1", Admin::Ready, true, 0)],
        );
        s.observe(Metric::Sessions).unwrap();
        member(&s, 1).down.store(true, Ordering::SeqCst);
        let v = s.observe(Metric::Sessions).unwrap();
        let i = v.instances.clone().unwrap();
        assert_eq!((i.answering, i.counters.len()), (1, 1));
        let notes = s.take_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("instance b does not answer"), "{notes:?}");
        // Said once per change.
        s.observe(Metric::Sessions).unwrap();
        assert!(s.take_notes().is_empty());
        // Changes meanwhile reach the instance that answers only.
        s.add(&n("n22"), "127.0.0.1:9003".parse().unwrap()).unwrap();
        s.drain(&n("n1")).unwrap();
        // It comes back: repaired, not counted this tick.
        member(&s, 1).down.store(false, Ordering::SeqCst);
        member(&s, 1)
            .servers
            .lock()
            .unwrap()
            .push(view("x9", Admin::Ready, true, 0));
        let v = s.observe(Metric::Sessions).unwrap();
        let i = v.instances.clone().unwrap();
        assert_eq!((i.answering, i.counters.len()), (2, 1));
        assert_eq!(
            member(&s, 1).admins(),
            vec![
                ("n1".to_owned(), Admin::Drain),
                ("n22".to_owned(), Admin::Maint)
            ]
        );
        let notes = s.take_notes().join("\n");
        assert!(
            notes.contains("answers again") && notes.contains("added n22"),
            "{notes}"
        );
        // In step now: counted.
        let v = s.observe(Metric::Sessions).unwrap();
        assert_eq!(v.instances.unwrap().counters.len(), 2);
        assert!(s.take_notes().join("\n").contains("is in step"));
        // Both silent: an error naming each.
        member(&s, 0).down.store(true, Ordering::SeqCst);
        member(&s, 1).down.store(true, Ordering::SeqCst);
        let e = s.observe(Metric::Sessions).unwrap_err().to_string();
        assert!(e.contains("a: fake") && e.contains("b: fake"), "{e}");
        assert!(s.add(&n("n3"), "127.0.0.1:9004".parse().unwrap()).is_err());
    }

    #[test]
    fn at_the_start_an_empty_instance_is_filled_not_the_others_emptied() {
        let s = two(
            Vec::new(),
            vec![
                view("n1", Admin::Ready, true, 0),
                view("n2", Admin::Ready, true, 0),
            ],
        );
        let v = s.observe(Metric::Sessions).unwrap();
        assert_eq!(v.servers.len(), 2);
        let i = v.instances.unwrap();
        // b counts; a is being filled; nothing takes traffic in both yet.
        assert_eq!(
            (
                i.answering,
                i.counters.len(),
                i.counters[0].source,
                i.taking_traffic
            ),
            (2, 1, 1, 0)
        );
        assert_eq!(
            member(&s, 0).admins(),
            vec![
                ("n1".to_owned(), Admin::Maint),
                ("n2".to_owned(), Admin::Maint)
            ]
        );
        assert_eq!(member(&s, 1).admins().len(), 2);
    }

    #[test]
    fn a_restarted_reference_is_not_trusted_over_one_that_stayed_up() {
        let s = two(
            vec![view("n1", Admin::Ready, true, 0)],
            vec![view("n1", Admin::Ready, true, 0)],
        );
        s.observe(Metric::Sessions).unwrap();
        // Instance a restarts (new pid) with a stale list: b, unchanged, is the reference.
        let restarted = Fake::new(3, Vec::new());
        let s = Several {
            members: vec![
                ("a".to_owned(), restarted),
                (
                    "b".to_owned(),
                    Fake::new(2, vec![view("n1", Admin::Ready, true, 0)]),
                ),
            ],
            state: s.state,
        };
        let v = s.observe(Metric::Sessions).unwrap();
        assert_eq!(v.servers.len(), 1);
        assert_eq!(
            member(&s, 0).admins(),
            vec![("n1".to_owned(), Admin::Maint)]
        );
    }
}
