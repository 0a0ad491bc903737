//! The processes of a running program, from `/proc`: a balancer is a tree (HAProxy's master
//! and its worker, nginx's master and its workers), and the lab samples the CPU of every
//! process in it and stops every one of them.
//!
//! `/proc/PID/stat` is read by [`crate::cpu::process`] (one parser for the whole crate);
//! this module adds what stopping needs: the tree under a PID, root first, and a process
//! identity that survives PID reuse.
//!
//! Only thread-group leaders are listed in `/proc`, so a multi-threaded process (Pound, the
//! HAProxy worker) is one entry, and its `utime`/`stime` already add up all its threads.

use std::collections::HashMap;
use std::path::Path;

use crate::cpu::process::{PidStat, read_pid_stat, scan_proc};

/// `root` and all its descendants in `procs`, root first, then breadth first. Zombies are
/// left out (they use no CPU and are about to go). Empty if `root` is not in `procs`.
pub fn tree_of(root: u32, procs: &HashMap<u32, PidStat>) -> Vec<u32> {
    let live = |pid: &u32| procs.get(pid).is_some_and(|p| p.state != 'Z');
    if !live(&root) {
        return Vec::new();
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs.values() {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            let mut kids: Vec<u32> = kids
                .iter()
                .copied()
                .filter(|k| live(k) && !out.contains(k))
                .collect();
            kids.sort_unstable();
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// The PIDs of `root` and all its descendants now, root first.
pub fn tree(root: u32) -> Vec<u32> {
    scan_proc(Path::new("/proc"))
        .map(|all| tree_of(root, &all))
        .unwrap_or_default()
}

/// One process for good: its PID and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The PID.
    pub pid: u32,
    /// Its start time (clock ticks after boot): with the PID, it names one process for good
    /// (PIDs are reused, start times are not).
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, if it runs.
    pub fn of(pid: u32) -> Option<ProcessId> {
        let s = read_pid_stat(pid)?;
        Some(ProcessId {
            pid,
            start_time: s.starttime,
        })
    }

    /// Whether this very process still runs (not a zombie, and its PID not reused).
    pub fn is_running(&self) -> bool {
        read_pid_stat(self.pid).is_some_and(|s| s.starttime == self.start_time && s.state != 'Z')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, state: char) -> (u32, PidStat) {
        (
            pid,
            PidStat {
                pid,
                comm: "x".into(),
                state,
                ppid,
                utime: 0,
                stime: 0,
                cutime: 0,
                cstime: 0,
                starttime: 0,
            },
        )
    }

    #[test]
    fn tree_is_root_then_descendants_without_zombies() {
        let procs: HashMap<u32, PidStat> = [
            p(1, 0, 'S'),
            p(10, 1, 'S'),
            p(11, 10, 'S'),
            p(12, 10, 'S'),
            p(13, 10, 'Z'),
            p(20, 11, 'R'),
            p(30, 1, 'S'),
        ]
        .into_iter()
        .collect();
        assert_eq!(tree_of(10, &procs), vec![10, 11, 12, 20]);
        assert_eq!(tree_of(30, &procs), vec![30]);
        assert_eq!(tree_of(13, &procs), Vec::<u32>::new());
        assert_eq!(tree_of(99, &procs), Vec::<u32>::new());
    }

    #[test]
    fn finds_a_real_child_and_its_own_process() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let t = tree(me);
        assert_eq!(t[0], me);
        assert!(t.contains(&child.id()), "{t:?}");
        let id = ProcessId::of(child.id()).unwrap();
        assert!(id.is_running());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!id.is_running());
    }
}
