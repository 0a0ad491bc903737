//! The CPU time of a set of processes and all their descendants, from `/proc/<pid>/stat`.
//!
//! - A process's `utime`/`stime` already add up all its threads.
//! - Live descendants (HAProxy's workers under its master, forked helpers) are found through
//!   the parent links of every process in `/proc`, at each sample.
//! - `cutime`/`cstime` (the time of children that exited and were reaped) are counted too, so
//!   a child that ends during an interval is not lost: its time moves into its parent's
//!   `cutime`, which is in the set.
//! - Processes are identified by (pid, start time), so a reused pid is a new process. A process
//!   that appears during an interval counts in full if it started during it, and from the next
//!   interval otherwise; one that disappears loses its last partial interval unless a parent in
//!   the set reaps it.
//! - Selection is redone at every sample: by name, every process whose name matches; by pid,
//!   the same process, or, once it is gone (a restart), the processes that now run the same
//!   command line.
//!
//! For the lab: [`ProcessSampler::sample`] at the start and at the end of a run, then
//! [`process_usage`] of the two samples.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::CpuError;

/// The fields of `/proc/<pid>/stat` that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidStat {
    /// Process id.
    pub pid: u32,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent's pid.
    pub ppid: u32,
    /// User-mode time of all threads, in clock ticks.
    pub utime: u64,
    /// Kernel-mode time of all threads, in clock ticks.
    pub stime: u64,
    /// User-mode time of reaped children, in clock ticks.
    pub cutime: u64,
    /// Kernel-mode time of reaped children, in clock ticks.
    pub cstime: u64,
    /// Start time, in clock ticks after boot.
    pub starttime: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name may contain spaces and parentheses,
/// so it is taken between the first `(` and the *last* `)`.
pub fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // `rest[0]` is field 3 (state); field n is rest[n - 3].
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(PidStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
        starttime: field(22)?,
    })
}

/// Which processes to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSelector {
    /// These processes (and, after a restart, those running the same command line).
    Pids(Vec<u32>),
    /// Every process with this name: its `comm`, or the file name of its `argv[0]` (for names
    /// longer than `comm`'s 15 bytes).
    Name(String),
}

impl ProcessSelector {
    /// A short name for file names and the CSV: the name, or the first pid's command name.
    pub fn label(&self) -> String {
        match self {
            ProcessSelector::Name(n) => n.clone(),
            ProcessSelector::Pids(pids) => pids
                .first()
                .and_then(|p| read_pid_stat(*p))
                .map(|s| s.comm)
                .unwrap_or_else(|| "pids".to_owned()),
        }
    }

    /// How the CSV's `proc_selector` column shows it: `name:haproxy`, `pid:12,13`.
    pub fn describe(&self) -> String {
        match self {
            ProcessSelector::Name(n) => format!("name:{n}"),
            ProcessSelector::Pids(p) => format!(
                "pid:{}",
                p.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            ),
        }
    }
}

/// CPU ticks of one process, its threads and its reaped children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticks {
    /// utime + cutime.
    pub user: u64,
    /// stime + cstime.
    pub system: u64,
}

/// The processes of a set at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSample {
    /// When (monotonic clock).
    pub taken: Instant,
    /// When (wall clock).
    pub at: DateTime<Utc>,
    /// Seconds since boot, from `/proc/uptime`, to tell which processes started after it.
    pub uptime_s: f64,
    /// Each process of the set, by (pid, start time in ticks).
    pub procs: BTreeMap<(u32, u64), Ticks>,
    /// Clock ticks per second.
    pub ticks_per_s: u64,
}

impl ProcessSample {
    /// The pids in the set.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.keys().map(|(pid, _)| *pid).collect()
    }
}

/// CPU use of a set of processes over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct ProcessUsage {
    /// Length of the interval, in s.
    pub interval_s: f64,
    /// User-mode CPU time, in s.
    pub user_s: f64,
    /// Kernel-mode CPU time, in s.
    pub system_s: f64,
    /// User-mode CPU, in % of one CPU (like `top` and `pidstat`: 200% is two CPUs busy).
    pub user_pct: f64,
    /// Kernel-mode CPU, in % of one CPU.
    pub system_pct: f64,
    /// Total CPU, in % of one CPU.
    pub cpu_pct: f64,
    /// Processes in the set at the end.
    pub processes: usize,
}

/// The CPU use between two samples of the same set (see the [module docs](self) for how
/// processes that come and go are counted).
pub fn process_usage(a: &ProcessSample, b: &ProcessSample) -> ProcessUsage {
    let hz = b.ticks_per_s.max(1) as f64;
    let (mut user, mut system) = (0u64, 0u64);
    for (key, tb) in &b.procs {
        match a.procs.get(key) {
            Some(ta) => {
                user += tb.user.saturating_sub(ta.user);
                system += tb.system.saturating_sub(ta.system);
            }
            // Started after the first sample: all of its time is in the interval.
            None if key.1 as f64 / hz >= a.uptime_s => {
                user += tb.user;
                system += tb.system;
            }
            None => {}
        }
    }
    let interval_s = b.taken.saturating_duration_since(a.taken).as_secs_f64();
    let (user_s, system_s) = (user as f64 / hz, system as f64 / hz);
    let pct = |s: f64| {
        if interval_s > 0.0 {
            s / interval_s * 100.0
        } else {
            0.0
        }
    };
    ProcessUsage {
        interval_s,
        user_s,
        system_s,
        user_pct: pct(user_s),
        system_pct: pct(system_s),
        cpu_pct: pct(user_s + system_s),
        processes: b.procs.len(),
    }
}

/// One process we follow by pid, with what is needed to find it again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tracked {
    pid: u32,
    starttime: u64,
    cmdline: Vec<String>,
}

/// Samples the CPU time of a set of processes and their descendants.
#[derive(Debug, Clone)]
pub struct ProcessSampler {
    selector: ProcessSelector,
    tracked: Vec<Tracked>,
    ticks_per_s: u64,
}

impl ProcessSampler {
    /// A sampler for `selector`. With pids, every pid must name a live process now.
    pub fn new(selector: ProcessSelector) -> Result<Self, CpuError> {
        let mut tracked = Vec::new();
        if let ProcessSelector::Pids(pids) = &selector {
            if pids.is_empty() {
                return Err(CpuError::NoSuchProcess("no pid given".into()));
            }
            for &pid in pids {
                let stat = read_pid_stat(pid)
                    .filter(|s| s.state != 'Z')
                    .ok_or_else(|| CpuError::NoSuchProcess(format!("no process with pid {pid}")))?;
                tracked.push(Tracked {
                    pid,
                    starttime: stat.starttime,
                    cmdline: common::process::cmdline(pid).unwrap_or_default(),
                });
            }
        }
        if let ProcessSelector::Name(n) = &selector
            && n.is_empty()
        {
            return Err(CpuError::NoSuchProcess("empty process name".into()));
        }
        Ok(ProcessSampler {
            selector,
            tracked,
            ticks_per_s: rustix::param::clock_ticks_per_second(),
        })
    }

    /// What is measured.
    pub fn selector(&self) -> &ProcessSelector {
        &self.selector
    }

    /// Reads every process in `/proc`, finds the set's roots and their descendants, and
    /// returns their CPU ticks.
    pub fn sample(&mut self) -> Result<ProcessSample, CpuError> {
        let uptime_s = read_uptime()?;
        let taken = Instant::now();
        let at = Utc::now();
        let all = scan_proc(Path::new("/proc"))?;
        let roots = self.roots(&all);
        let set = descendants(&all, &roots);
        let procs = set
            .iter()
            .filter_map(|pid| all.get(pid))
            .map(|s| {
                (
                    (s.pid, s.starttime),
                    Ticks {
                        user: s.utime + s.cutime,
                        system: s.stime + s.cstime,
                    },
                )
            })
            .collect();
        Ok(ProcessSample {
            taken,
            at,
            uptime_s,
            procs,
            ticks_per_s: self.ticks_per_s,
        })
    }

    fn roots(&mut self, all: &HashMap<u32, PidStat>) -> Vec<u32> {
        match &self.selector {
            ProcessSelector::Name(name) => all
                .values()
                .filter(|s| s.state != 'Z' && name_matches(s, name))
                .map(|s| s.pid)
                .collect(),
            ProcessSelector::Pids(_) => {
                let mut roots = Vec::new();
                let mut next = Vec::new();
                for t in &self.tracked {
                    let alive = all
                        .get(&t.pid)
                        .is_some_and(|s| s.starttime == t.starttime && s.state != 'Z');
                    if alive {
                        roots.push(t.pid);
                        next.push(t.clone());
                        continue;
                    }
                    // Gone: follow the processes that now run the same command line, but not
                    // the descendants of another match (workers forked by a master).
                    let matches: Vec<&PidStat> = if t.cmdline.is_empty() {
                        Vec::new()
                    } else {
                        all.values()
                            .filter(|s| s.state != 'Z')
                            .filter(|s| {
                                common::process::cmdline(s.pid).as_ref() == Some(&t.cmdline)
                            })
                            .collect()
                    };
                    let match_pids: BTreeSet<u32> = matches.iter().map(|s| s.pid).collect();
                    let top: Vec<&PidStat> = matches
                        .into_iter()
                        .filter(|s| !match_pids.contains(&s.ppid))
                        .collect();
                    if top.is_empty() {
                        next.push(t.clone()); // keep looking at the next sample
                    }
                    for s in top {
                        roots.push(s.pid);
                        next.push(Tracked {
                            pid: s.pid,
                            starttime: s.starttime,
                            cmdline: t.cmdline.clone(),
                        });
                    }
                }
                next.sort_by_key(|t| t.pid);
                next.dedup_by_key(|t| t.pid);
                self.tracked = next;
                roots
            }
        }
    }
}

fn name_matches(s: &PidStat, name: &str) -> bool {
    if s.comm == name {
        return true;
    }
    // `comm` is cut at 15 bytes; long names are matched on argv[0] instead.
    if name.len() > 15 && name.starts_with(&s.comm) {
        return common::process::cmdline(s.pid)
            .and_then(|c| c.into_iter().next())
            .is_some_and(|argv0| Path::new(&argv0).file_name().is_some_and(|f| f == name));
    }
    false
}

/// The roots and all their live descendants.
fn descendants(all: &HashMap<u32, PidStat>, roots: &[u32]) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in all.values() {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut set = BTreeSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(pid) = stack.pop() {
        if set.insert(pid)
            && let Some(kids) = children.get(&pid)
        {
            stack.extend(kids);
        }
    }
    set.retain(|p| all.contains_key(p));
    set
}

/// Reads `/proc/<pid>/stat`, or `None` if the process is gone.
pub fn read_pid_stat(pid: u32) -> Option<PidStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_pid_stat(&text)
}

/// Every process in a `/proc` directory, by pid. Processes that vanish while it is read are
/// skipped.
pub fn scan_proc(proc_dir: &Path) -> Result<HashMap<u32, PidStat>, CpuError> {
    let entries = std::fs::read_dir(proc_dir).map_err(|error| CpuError::Io {
        file: proc_dir.display().to_string(),
        error,
    })?;
    let mut all = HashMap::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(e.path().join("stat"))
            && let Some(s) = parse_pid_stat(&text)
        {
            all.insert(pid, s);
        }
    }
    Ok(all)
}

fn read_uptime() -> Result<f64, CpuError> {
    let text = std::fs::read_to_string("/proc/uptime").map_err(|error| CpuError::Io {
        file: "/proc/uptime".into(),
        error,
    })?;
    text.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| CpuError::Format {
            file: "/proc/uptime".into(),
            reason: format!("unexpected content `{}`", text.trim()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_an_awkward_name() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    150 25 7 3 20 0 4 0 987654 123456789 300 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_pid_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!((s.utime, s.stime, s.cutime, s.cstime), (150, 25, 7, 3));
        assert_eq!(s.starttime, 987654);
        assert!(parse_pid_stat("4242 (x) S 1 2").is_none());
        assert!(parse_pid_stat("garbage").is_none());
    }

    #[test]
    fn reads_itself() {
        let me = std::process::id();
        let s = read_pid_stat(me).unwrap();
        assert_eq!(s.pid, me);
        let all = scan_proc(Path::new("/proc")).unwrap();
        assert!(all.contains_key(&me));
    }

    /// ((pid, starttime), (user ticks, system ticks))
    type Proc = ((u32, u64), (u64, u64));

    fn sample(t0: Instant, after_s: u64, uptime_s: f64, procs: &[Proc]) -> ProcessSample {
        ProcessSample {
            taken: t0 + std::time::Duration::from_secs(after_s),
            at: Utc::now(),
            uptime_s,
            procs: procs
                .iter()
                .map(|&(k, (user, system))| (k, Ticks { user, system }))
                .collect(),
            ticks_per_s: 100,
        }
    }

    #[test]
    fn usage_counts_survivors_newborns_and_not_old_newcomers() {
        let t0 = Instant::now();
        // At uptime 1000 s: pid 10 (started at tick 500) and pid 11 (dies).
        let a = sample(
            t0,
            0,
            1000.0,
            &[((10, 500), (100, 50)), ((11, 600), (10, 10))],
        );
        // 2 s later: pid 10 used 1 s user + 0.5 s system; pid 12 was born at 1001 s (tick
        // 100100) and used 0.5 s; pid 13 is old (tick 700) and newly matched: not counted.
        let b = sample(
            t0,
            2,
            1002.0,
            &[
                ((10, 500), (200, 100)),
                ((12, 100_100), (50, 0)),
                ((13, 700), (9999, 9999)),
            ],
        );
        let u = process_usage(&a, &b);
        assert_eq!(u.interval_s, 2.0);
        assert_eq!(u.user_s, 1.5);
        assert_eq!(u.system_s, 0.5);
        assert_eq!(u.cpu_pct, 100.0);
        assert_eq!(u.user_pct, 75.0);
        assert_eq!(u.processes, 3);
        // A pid reused by a new process is a new process.
        let c = sample(t0, 4, 1004.0, &[((10, 100_300), (1, 1))]);
        assert_eq!(process_usage(&b, &c).user_s, 0.01);
    }

    #[test]
    fn descendants_follow_parent_links() {
        let mk = |pid, ppid| PidStat {
            pid,
            comm: "x".into(),
            state: 'S',
            ppid,
            utime: 0,
            stime: 0,
            cutime: 0,
            cstime: 0,
            starttime: 0,
        };
        let all: HashMap<u32, PidStat> =
            [mk(1, 0), mk(2, 1), mk(3, 2), mk(4, 2), mk(5, 1), mk(6, 5)]
                .into_iter()
                .map(|s| (s.pid, s))
                .collect();
        assert_eq!(
            descendants(&all, &[2]).into_iter().collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(
            descendants(&all, &[3, 5, 99])
                .into_iter()
                .collect::<Vec<_>>(),
            [3, 5, 6]
        );
    }

    #[test]
    fn a_missing_pid_is_refused() {
        // pid_max is at most 2^22, so this pid cannot exist.
        let err = ProcessSampler::new(ProcessSelector::Pids(vec![4_194_305])).unwrap_err();
        assert!(err.to_string().contains("4194305"), "{err}");
        assert!(ProcessSampler::new(ProcessSelector::Pids(vec![])).is_err());
        assert_eq!(
            ProcessSelector::Name("haproxy".into()).describe(),
            "name:haproxy"
        );
        assert_eq!(ProcessSelector::Pids(vec![1, 2]).describe(), "pid:1,2");
    }
}
