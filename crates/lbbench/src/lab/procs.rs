//! The processes of a running program, from `/proc`: a balancer is a tree (HAProxy's master
//! and its worker, nginx's master and its workers), and the lab samples the CPU of every
//! process in it.
//!
//! Only thread-group leaders are listed in `/proc`, so a multi-threaded process (Pound, the
//! HAProxy worker) is one entry, and its `utime`/`stime` already add up all its threads.

use std::collections::HashMap;
use std::fs;

/// What `/proc/PID/stat` says about a process (the fields the lab needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// The process ID.
    pub pid: u32,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The parent's PID.
    pub ppid: u32,
    /// User-mode CPU time, in clock ticks.
    pub utime: u64,
    /// Kernel-mode CPU time, in clock ticks.
    pub stime: u64,
    /// When the process started, in clock ticks after boot: with the PID, it names one
    /// process for good (PIDs are reused, start times are not).
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name is in parentheses and may itself
/// contain spaces and parentheses, so the fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        start_time: field(22)?,
    })
}

/// Reads `/proc/PID/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process in `/proc` now (those that vanish while being read are skipped).
pub fn all() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// `root` and all its descendants in `procs`, root first, then breadth first. Zombies are
/// left out (they use no CPU and are about to go). Empty if `root` is not in `procs`.
pub fn tree_of(root: u32, procs: &[ProcStat]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut live = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
        live.insert(p.pid, p.state != 'Z');
    }
    if live.get(&root) != Some(&true) {
        return Vec::new();
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            let mut kids: Vec<u32> = kids
                .iter()
                .copied()
                .filter(|k| live.get(k) == Some(&true) && !out.contains(k))
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
    tree_of(root, &all())
}

/// One process for good: its PID and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    /// The PID.
    pub pid: u32,
    /// Its start time (clock ticks after boot).
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, if it runs.
    pub fn of(pid: u32) -> Option<ProcessId> {
        let s = stat(pid)?;
        Some(ProcessId {
            pid,
            start_time: s.start_time,
        })
    }

    /// Whether this very process still runs (not a zombie, and its PID not reused).
    pub fn is_running(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start_time == self.start_time && s.state != 'Z')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, state: char) -> ProcStat {
        ProcStat {
            pid,
            comm: "x".into(),
            state,
            ppid,
            utime: 0,
            stime: 0,
            start_time: 0,
        }
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    17 23 0 0 20 0 8 0 123456 1000000 200 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!((s.utime, s.stime), (17, 23));
        assert_eq!(s.start_time, 123456);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn tree_is_root_then_descendants_without_zombies() {
        let procs = [
            p(1, 0, 'S'),
            p(10, 1, 'S'),
            p(11, 10, 'S'),
            p(12, 10, 'S'),
            p(13, 10, 'Z'),
            p(20, 11, 'R'),
            p(30, 1, 'S'),
        ];
        assert_eq!(tree_of(10, &procs), vec![10, 11, 12, 20]);
        assert_eq!(tree_of(30, &procs), vec![30]);
        assert_eq!(tree_of(13, &procs), Vec::<u32>::new());
        assert_eq!(tree_of(99, &procs), Vec::<u32>::new());
    }

    #[test]
    fn finds_a_real_child_and_its_own_process() {
        let me = std::process::id();
        let stat = stat(me).unwrap();
        assert_eq!(stat.pid, me);
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
