//! The limits the lab's children run with: open files (each child's soft limit raised to the
//! hard one), the connection budget that fits them, and how children are started; and the
//! machine's limits that bound the lab ([`LabLimits`]: printed before it starts, with the
//! largest rate they allow), which `--tune` raises ([`Tuning`]).

use std::path::Path;

use common::process::SpawnOptions;

use crate::httperf::validity::FD_SETSIZE;

/// The hard limit on open files (`RLIMIT_NOFILE`), which each child gets as its soft limit.
pub fn fd_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX)
}

/// The connection limit for a balancer: `wanted`, or less if `fd_limit` descriptors cannot
/// hold that many. Each proxied connection takes two descriptors (client and server side),
/// plus a few for listeners, sockets and logs. HAProxy refuses to start when its `maxconn`
/// needs more descriptors than the hard limit allows, so the limit is applied to all three
/// alike.
pub fn connection_budget(wanted: u32, fd_limit: u64) -> u32 {
    let fits = fd_limit.saturating_sub(64) / 2;
    wanted.min(u32::try_from(fits).unwrap_or(u32::MAX)).max(1)
}

/// How the lab starts its children: each in its own process group, so a Ctrl-C in the
/// terminal reaches only lbbench, which then stops everything in order; SIGTERM when
/// lbbench dies (even by SIGKILL or a second Ctrl-C), so nothing is left behind; and the
/// soft limit on open files raised to the hard limit, so that all three balancers (and the
/// backends) can use the same number of descriptors, whether or not they raise it
/// themselves.
///
/// Linux sends the parent-death signal when the *thread* that started the child ends, so
/// children must be started from a thread that outlives them (the main thread, or the test's
/// own thread, which owns and drops them).
pub(crate) fn spawn_options() -> SpawnOptions {
    SpawnOptions::isolated()
}

/// Raises this process's soft limit on open files to the hard limit, for httperf (which
/// inherits it and can then use its full `FD_SETSIZE` of 1,024).
pub(crate) fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

/// What bounds the lab on this machine, read from `/proc` and `getrlimit`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabLimits {
    /// This process's open-file limit (soft, hard); children get the hard one as both.
    pub nofile: (u64, u64),
    /// `fs.nr_open`: the most a hard limit can be raised to.
    pub nr_open: Option<u64>,
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u64, u64)>,
    /// `net.core.somaxconn`: listen backlogs are cut to it.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_tw_reuse` (2: for loopback only).
    pub tw_reuse: Option<u64>,
    /// Sockets in TIME_WAIT now (`/proc/net/tcp` and `tcp6`).
    pub time_wait: Option<usize>,
}

/// A bound on the connection rate, and what it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct RateBound {
    /// Connections per second.
    pub rate: f64,
    /// Why.
    pub why: String,
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &str) -> Option<u64> {
    read_proc(path)?.trim().parse().ok()
}

/// Sockets in TIME_WAIT in `/proc/net/tcp`-format text.
pub fn count_time_wait(text: &str) -> usize {
    text.lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(3) == Some("06"))
        .count()
}

impl LabLimits {
    /// Reads them now.
    pub fn read() -> LabLimits {
        let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let port_range = read_proc("/proc/sys/net/ipv4/ip_local_port_range").and_then(|t| {
            let mut it = t.split_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if hi >= lo => Some((lo, hi)),
                _ => None,
            }
        });
        let time_wait = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .map(|p| read_proc(p).map(|t| count_time_wait(&t)))
            .sum::<Option<usize>>();
        LabLimits {
            nofile: (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX)),
            nr_open: read_u64("/proc/sys/fs/nr_open"),
            port_range,
            somaxconn: read_u64("/proc/sys/net/core/somaxconn"),
            tw_reuse: read_u64("/proc/sys/net/ipv4/tcp_tw_reuse"),
            time_wait,
        }
    }

    /// The client's ephemeral ports.
    pub fn ports(&self) -> Option<u64> {
        self.port_range.map(|(lo, hi)| hi - lo + 1)
    }

    /// What bounds the connection rate when each reply takes `reply_s` seconds and runs last
    /// `duration_s`, the lowest first: httperf's 1,024 open connections (`select()`), the
    /// balancers' connection limit (two descriptors per connection under the hard limit),
    /// and, for a server that lets the client close first (Pound 4), the client's ports,
    /// each held 60 s in TIME_WAIT.
    pub fn rate_bounds(&self, reply_s: f64, duration_s: f64) -> Vec<RateBound> {
        let reply_s = reply_s.max(0.001);
        let mut b = vec![
            RateBound {
                rate: (FD_SETSIZE - 24) as f64 / reply_s,
                why: format!(
                    "httperf holds at most {FD_SETSIZE} connections (select()) and each is \
                     open about {} s",
                    crate::httperf::fmt_rate((reply_s * 1000.0).round() / 1000.0)
                ),
            },
            RateBound {
                rate: f64::from(connection_budget(4096, self.nofile.1)) / reply_s,
                why: format!(
                    "the balancers serve at most {} connections at once (open files {})",
                    connection_budget(4096, self.nofile.1),
                    self.nofile.1
                ),
            },
        ];
        if let Some(ports) = self.ports() {
            let window = duration_s.clamp(1.0, 60.0);
            b.push(RateBound {
                rate: (ports - ports / 10) as f64 / window,
                why: format!(
                    "through a balancer that lets the client close first (Pound 4), each \
                     connection holds one of the client's {ports} ports for 60 s (TIME_WAIT)"
                ),
            });
        }
        b.sort_by(|x, y| x.rate.total_cmp(&y.rate));
        b
    }

    /// The printout: one line per limit, then the largest rate they allow.
    pub fn lines(&self, reply_s: f64, duration_s: f64) -> Vec<String> {
        let opt = |v: Option<u64>| v.map_or("unknown".to_owned(), |v| v.to_string());
        let mut out = vec![
            format!(
                "open files: soft {}, hard {} (every balancer and backend gets {}; nr_open {}); \
                 httperf holds at most {FD_SETSIZE} connections (select's FD_SETSIZE)",
                self.nofile.0,
                self.nofile.1,
                self.nofile.1,
                opt(self.nr_open)
            ),
            format!(
                "local port range: {} ({} ports); TIME_WAIT now: {}; tcp_tw_reuse {}",
                self.port_range
                    .map_or("unknown".to_owned(), |(lo, hi)| format!("{lo}-{hi}")),
                opt(self.ports()),
                self.time_wait
                    .map_or("unknown".to_owned(), |t| t.to_string()),
                opt(self.tw_reuse)
            ),
            format!(
                "somaxconn: {} (listen backlogs are cut to it; the backends ask for 1024)",
                opt(self.somaxconn)
            ),
        ];
        let bounds = self.rate_bounds(reply_s, duration_s);
        let general: Vec<&RateBound> = bounds.iter().filter(|b| !b.why.contains("Pound")).collect();
        if let Some(first) = general.first() {
            out.push(format!(
                "the largest rate these allow: about {:.0} conn/s ({})",
                first.rate, first.why
            ));
        }
        if let Some(p) = bounds.iter().find(|b| b.why.contains("Pound")) {
            out.push(format!(
                "and about {:.0} conn/s for runs of {} s {}",
                p.rate,
                crate::httperf::fmt_rate(duration_s),
                p.why
            ));
        }
        out
    }
}

/// What `--tune` changes, and how to undo it: the open-file limit of lbbench and so of all
/// it starts (for the lab's own processes), and, system-wide, `somaxconn` and the local port
/// range when they are below what the lab can use. The system-wide values are put back when
/// the [`Tuning`] is dropped (at the end of the lab, also after an error or Ctrl-C; a
/// SIGKILL leaves them, and the printout says how to put them back).
#[derive(Debug, Default)]
pub struct Tuning {
    restore: Vec<(String, String)>,
    /// What was changed, one line each.
    pub changes: Vec<String>,
}

/// The somaxconn `--tune` sets when it is lower.
pub const TUNED_SOMAXCONN: u64 = 4096;
/// The local port range `--tune` sets when it is narrower.
pub const TUNED_PORT_RANGE: (u64, u64) = (1024, 65535);
/// The open-file limit `--tune` raises to (or `fs.nr_open`, if lower).
pub const TUNED_NOFILE: u64 = 1 << 20;

impl Tuning {
    /// The system-wide settings to change, `(path, old, new)`: the pure part of [`apply`].
    ///
    /// [`apply`]: Tuning::apply
    pub fn plan(limits: &LabLimits) -> Vec<(&'static str, String, String)> {
        let mut p = Vec::new();
        if let Some(s) = limits.somaxconn.filter(|s| *s < TUNED_SOMAXCONN) {
            p.push((
                "/proc/sys/net/core/somaxconn",
                s.to_string(),
                TUNED_SOMAXCONN.to_string(),
            ));
        }
        if let Some((lo, hi)) = limits.port_range
            && (lo > TUNED_PORT_RANGE.0 || hi < TUNED_PORT_RANGE.1)
        {
            p.push((
                "/proc/sys/net/ipv4/ip_local_port_range",
                format!("{lo}\t{hi}"),
                format!("{}\t{}", TUNED_PORT_RANGE.0, TUNED_PORT_RANGE.1),
            ));
        }
        p
    }

    /// Raises what can be raised (see [`Tuning`]); what it could not change is said in
    /// `changes` too.
    pub fn apply(limits: &LabLimits) -> Tuning {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let mut t = Tuning::default();
        let want = limits.nr_open.unwrap_or(TUNED_NOFILE).min(TUNED_NOFILE);
        let cur = getrlimit(Resource::Nofile);
        if cur.maximum.is_some_and(|m| m < want) {
            match setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(want),
                    maximum: Some(want),
                },
            ) {
                Ok(()) => t.changes.push(format!(
                    "open files of lbbench and all it starts: {} -> {want}",
                    cur.maximum.unwrap_or(0)
                )),
                Err(e) => t.changes.push(format!(
                    "open files stay at {} (raising them needs root: {e})",
                    cur.maximum.unwrap_or(0)
                )),
            }
        }
        for (path, old, new) in Tuning::plan(limits) {
            let name = path.trim_start_matches("/proc/sys/").replace('/', ".");
            match std::fs::write(Path::new(path), format!("{new}\n")) {
                Ok(()) => {
                    t.changes.push(format!(
                        "{name}: {} -> {} (system-wide; put back at the end of the lab, or \
                         with `sysctl -w {name}=\"{}\"`)",
                        old.replace('\t', " "),
                        new.replace('\t', " "),
                        old.replace('\t', " ")
                    ));
                    t.restore.push((path.to_owned(), old));
                }
                Err(e) => t.changes.push(format!(
                    "{name} stays {} (changing it needs root: {e})",
                    old.replace('\t', " ")
                )),
            }
        }
        if t.changes.is_empty() {
            t.changes
                .push("nothing to raise: every limit is already at what the lab can use".into());
        }
        t
    }
}

impl Drop for Tuning {
    fn drop(&mut self) {
        for (path, old) in self.restore.drain(..) {
            let _ = std::fs::write(&path, format!("{old}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LabLimits {
        LabLimits {
            nofile: (1024, 4096),
            nr_open: Some(1 << 20),
            port_range: Some((32768, 60999)),
            somaxconn: Some(4096),
            tw_reuse: Some(2),
            time_wait: Some(12),
        }
    }

    #[test]
    fn the_largest_rate_and_what_bounds_it() {
        let l = limits();
        let b = l.rate_bounds(0.2, 60.0);
        // 2,016 balancer connections / 0.2 s; httperf 1,000 / 0.2 s; ports 25,409 / 60 s.
        assert_eq!(b.len(), 3);
        assert!((b[0].rate - 25_409.0 / 60.0).abs() < 1.0, "{b:?}");
        assert!(b[0].why.contains("Pound"));
        assert!((b[1].rate - 5000.0).abs() < 1.0, "{b:?}");
        assert!((b[2].rate - 10_080.0).abs() < 1.0, "{b:?}");
        let lines = l.lines(0.2, 60.0);
        assert!(
            lines[1].contains("32768-60999 (28232 ports); TIME_WAIT now: 12"),
            "{lines:?}"
        );
        assert!(lines[3].contains("about 5000 conn/s"), "{lines:?}");
        let odd = l.lines(0.2 + 0.005, 20.0);
        assert!(odd[3].contains("open about 0.205 s)"), "{odd:?}");
        assert!(
            lines[4].contains("about 423 conn/s for runs of 60 s"),
            "{lines:?}"
        );
        assert_eq!(
            count_time_wait("header\n 0: A B 06 x\n 1: A B 0A x\n 2: A B 06 x\n"),
            2
        );
    }

    #[test]
    fn tune_plans_only_what_is_below_the_lab_s_needs() {
        let mut l = limits();
        let p = Tuning::plan(&l);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "/proc/sys/net/ipv4/ip_local_port_range");
        assert_eq!(p[0].2, "1024\t65535");
        l.somaxconn = Some(128);
        l.port_range = Some((1024, 65535));
        let p = Tuning::plan(&l);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].1.as_str(), p[0].2.as_str()), ("128", "4096"));
    }

    #[test]
    fn the_connection_budget_fits_the_descriptors() {
        assert_eq!(connection_budget(4096, 1_048_576), 4096);
        assert_eq!(connection_budget(4096, 4096), 2016);
        assert_eq!(connection_budget(4096, 20_000), 4096);
        assert_eq!(connection_budget(4096, 10), 1);
        assert_eq!(connection_budget(100, u64::MAX), 100);
    }
}
