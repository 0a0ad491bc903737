//! The whole machine's CPU use, from the `cpu` line of `/proc/stat`, computed the way
//! `sar -u` does (sysstat `rd_stats.c`, `pr_stats.c`).

use serde::Serialize;

use super::CpuError;

/// The cumulative counters of the `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Normal processes in user mode (includes `guest`).
    pub user: u64,
    /// Niced processes in user mode (includes `guest_nice`).
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle with I/O outstanding.
    pub iowait: u64,
    /// Hardware interrupts.
    pub irq: u64,
    /// Software interrupts.
    pub softirq: u64,
    /// Taken by the hypervisor for other guests.
    pub steal: u64,
    /// Running guests (counted in `user` too).
    pub guest: u64,
    /// Running niced guests (counted in `nice` too).
    pub guest_nice: u64,
}

/// CPU use over an interval, in % of all CPUs' time; the fields of `sar -u`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct MachineUsage {
    /// `%user`: user mode, without guests.
    pub user_pct: f64,
    /// `%nice`.
    pub nice_pct: f64,
    /// `%system`: kernel mode, with hardware and software interrupts (as `sar -u`).
    pub system_pct: f64,
    /// `%iowait`.
    pub iowait_pct: f64,
    /// `%steal`.
    pub steal_pct: f64,
    /// `%idle`.
    pub idle_pct: f64,
}

/// Reads the aggregate `cpu` line of a `/proc/stat` text. Kernels before 2.6.33 have fewer
/// fields; missing ones are 0.
pub fn parse_proc_stat(text: &str) -> Result<CpuTimes, CpuError> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .ok_or_else(|| CpuError::Format {
            file: "/proc/stat".into(),
            reason: "no `cpu` line".into(),
        })?;
    let mut v = [0u64; 10];
    let mut n = 0;
    for (slot, tok) in v.iter_mut().zip(line.split_whitespace().skip(1)) {
        *slot = tok.parse().map_err(|_| CpuError::Format {
            file: "/proc/stat".into(),
            reason: format!("bad number `{tok}` in `{line}`"),
        })?;
        n += 1;
    }
    if n < 4 {
        return Err(CpuError::Format {
            file: "/proc/stat".into(),
            reason: format!("too few fields in `{line}`"),
        });
    }
    Ok(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

/// Reads `/proc/stat` now.
pub fn read_machine() -> Result<CpuTimes, CpuError> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|error| CpuError::Io {
        file: "/proc/stat".into(),
        error,
    })?;
    parse_proc_stat(&text)
}

/// The use between two readings, as `sar -u` computes it. Counters that went backwards
/// (`iowait` may, on some kernels) count as 0. Returns all zeros if no time passed.
pub fn machine_usage(a: &CpuTimes, b: &CpuTimes) -> MachineUsage {
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64;
    let user = d(
        a.user.saturating_sub(a.guest),
        b.user.saturating_sub(b.guest),
    );
    let nice = d(
        a.nice.saturating_sub(a.guest_nice),
        b.nice.saturating_sub(b.guest_nice),
    );
    let system = d(a.system, b.system) + d(a.irq, b.irq) + d(a.softirq, b.softirq);
    let iowait = d(a.iowait, b.iowait);
    let steal = d(a.steal, b.steal);
    let idle = d(a.idle, b.idle);
    let guest = d(a.guest, b.guest) + d(a.guest_nice, b.guest_nice);
    let total = user + nice + system + iowait + steal + idle + guest;
    if total <= 0.0 {
        return MachineUsage::default();
    }
    let pct = |x: f64| x / total * 100.0;
    MachineUsage {
        user_pct: pct(user),
        nice_pct: pct(nice),
        system_pct: pct(system),
        iowait_pct: pct(iowait),
        steal_pct: pct(steal),
        idle_pct: pct(idle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n\
                        cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0\n\
                        intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]\n";

    #[test]
    fn parses_the_cpu_line() {
        let t = parse_proc_stat(STAT).unwrap();
        assert_eq!(t.user, 10132153);
        assert_eq!(t.idle, 46828483);
        assert_eq!(t.guest, 175628);
        let old = parse_proc_stat("cpu 1 2 3 4\n").unwrap();
        assert_eq!(old.iowait, 0);
        assert!(parse_proc_stat("cpu0 1 2 3 4\n").is_err());
        assert!(parse_proc_stat("cpu 1 x 3 4\n").is_err());
        assert!(parse_proc_stat("cpu 1 2\n").is_err());
    }

    #[test]
    fn usage_like_sar() {
        let a = CpuTimes {
            user: 100,
            guest: 10,
            system: 50,
            irq: 5,
            softirq: 5,
            idle: 800,
            iowait: 30,
            ..CpuTimes::default()
        };
        // +60 user (of which +10 guest), +20 system, +10 irq/softirq, +100 idle, +10 iowait.
        let b = CpuTimes {
            user: 160,
            guest: 20,
            system: 70,
            irq: 10,
            softirq: 10,
            idle: 900,
            iowait: 40,
            ..CpuTimes::default()
        };
        let u = machine_usage(&a, &b);
        // total = 50 user + 30 system + 10 iowait + 100 idle + 10 guest = 200 ticks.
        assert_eq!(u.user_pct, 25.0);
        assert_eq!(u.system_pct, 15.0);
        assert_eq!(u.iowait_pct, 5.0);
        assert_eq!(u.idle_pct, 50.0);
        assert_eq!(machine_usage(&a, &a), MachineUsage::default());
    }

    #[test]
    fn counters_going_backwards_do_not_go_negative() {
        let a = CpuTimes {
            idle: 100,
            iowait: 50,
            ..CpuTimes::default()
        };
        let b = CpuTimes {
            idle: 200,
            iowait: 40,
            ..CpuTimes::default()
        };
        let u = machine_usage(&a, &b);
        assert_eq!(u.iowait_pct, 0.0);
        assert_eq!(u.idle_pct, 100.0);
    }

    #[test]
    fn reads_this_machine() {
        let t = read_machine().unwrap();
        assert!(t.user + t.system + t.idle > 0);
    }
}
