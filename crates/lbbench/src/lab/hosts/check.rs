//! `lbbench lab --hosts FILE --check`: whether every host is ready for the lab, before
//! anything starts: reachable over ssh (batch mode: no prompt), `lbbench` there speaking this
//! lbbench's protocol, httperf on the clients and each balancer's program on the balancer's
//! host (with their versions), each host's address really its own (and the balancer's port,
//! if one is fixed, free), the clients' ports enough for the lab's longest run, and every
//! clock within a second of this machine's. It prints a table, then what is missing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Shutdown;
use common::table::Table;

use super::file::{Host, HostsFile, Role};
use super::protocol::{CheckReport, CheckRequest, Found, Reply, Request};
use super::remote::{REQUEST_TIMEOUT, RemoteHost, receive_all};
use crate::lab::{Balancer, connection_budget};

/// The most a host's clock may differ from this machine's.
pub const MAX_CLOCK_OFFSET_MS: i64 = 1000;

/// What to check besides reachability.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// The balancers the lab would measure.
    pub balancers: Vec<Balancer>,
    /// Their programs on the balancer's host, where given.
    pub programs: BTreeMap<Balancer, PathBuf>,
    /// httperf on the clients.
    pub httperf: PathBuf,
    /// The balancer's fixed port, if any.
    pub port: Option<u16>,
    /// The connections one client makes in the lab's longest run (its share).
    pub connections_per_client: u64,
}

/// One host's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCheck {
    /// The host.
    pub host: Host,
    /// `lbbench 0.1.0`, if it answered.
    pub lbbench: Option<String>,
    /// Its clock minus this machine's, in ms, if it answered.
    pub clock_offset_ms: Option<i64>,
    /// What was found there (`httperf 0.9.0`, `haproxy 2.6.12`, `10.0.0.2 is its own`).
    pub found: Vec<String>,
    /// What is missing or wrong: the lab cannot run.
    pub problems: Vec<String>,
    /// What would make its results doubtful (a clock off, too few client ports): the lab
    /// runs and warns; `--check` counts them as problems.
    pub advisories: Vec<String>,
    /// What the host answered.
    pub report: Option<CheckReport>,
}

/// Checks every host of `file` (all at once).
pub fn check_hosts(
    file: &HostsFile,
    settings: &CheckSettings,
    shutdown: &Shutdown,
) -> Vec<HostCheck> {
    let mut checks: Vec<HostCheck> = file
        .hosts
        .iter()
        .map(|h| HostCheck {
            host: h.clone(),
            lbbench: None,
            clock_offset_ms: None,
            found: Vec::new(),
            problems: Vec::new(),
            advisories: Vec::new(),
            report: None,
        })
        .collect();
    let dirs = match tempfile::Builder::new().prefix("lbbench-ssh-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            for c in &mut checks {
                c.problems.push(format!("cannot create a temp dir: {e}"));
            }
            return checks;
        }
    };
    let connected =
        RemoteHost::connect_all(&file.hosts, &file.ssh, dirs.path(), dirs.path(), shutdown);
    let mut reached: Vec<(usize, RemoteHost)> = Vec::new();
    for (i, r) in connected.into_iter().enumerate() {
        match r {
            Ok(h) => reached.push((i, h)),
            Err(e) => checks[i].problems.push(e.to_string()),
        }
    }
    let indices: Vec<usize> = reached.iter().map(|(i, _)| *i).collect();
    let mut refs: Vec<&mut RemoteHost> = reached.iter_mut().map(|(_, h)| h).collect();
    for (c, i) in check_connected(&mut refs, settings, shutdown)
        .into_iter()
        .zip(indices)
    {
        checks[i] = c;
    }
    for (_, mut h) in reached {
        let _ = h.bye(Duration::from_secs(10));
    }
    checks
}

/// Checks hosts already connected (all at once): what `--check` does once it has reached
/// them, and what the lab does before it starts anything.
pub fn check_connected(
    hosts: &mut [&mut RemoteHost],
    settings: &CheckSettings,
    shutdown: &Shutdown,
) -> Vec<HostCheck> {
    let mut checks: Vec<HostCheck> = hosts
        .iter()
        .map(|h| HostCheck {
            host: h.host().clone(),
            lbbench: Some(h.facts().lbbench.clone()),
            clock_offset_ms: Some(h.clock_offset_ms()),
            found: Vec::new(),
            problems: Vec::new(),
            advisories: Vec::new(),
            report: None,
        })
        .collect();
    for (c, h) in checks.iter_mut().zip(hosts.iter_mut()) {
        if h.clock_offset_ms().abs() > MAX_CLOCK_OFFSET_MS {
            c.advisories.push(format!(
                "its clock is {:+} ms off this machine's (more than 1 s): synchronise the clocks \
                 (NTP), or the times in the CPU files will not line up with the runs",
                h.clock_offset_ms()
            ));
        }
        if let Err(e) = h.send(&Request::Check(request_for(&c.host, settings))) {
            c.problems.push(e.to_string());
        }
    }
    let replies = receive_all(
        hosts,
        "check",
        Instant::now() + REQUEST_TIMEOUT,
        Some(shutdown),
    );
    for ((c, h), r) in checks.iter_mut().zip(hosts.iter()).zip(replies) {
        if !c.problems.is_empty() {
            continue;
        }
        match r {
            Ok(Reply::Checked(report)) => {
                judge(c, h, &report, settings);
                c.report = Some(report);
            }
            Ok(other) => c.problems.push(h.unexpected(&other).to_string()),
            Err(e) => c.problems.push(e.to_string()),
        }
    }
    checks
}

fn request_for(host: &Host, settings: &CheckSettings) -> CheckRequest {
    match host.role {
        Role::Client => CheckRequest {
            httperf: Some(settings.httperf.clone()),
            ..CheckRequest::default()
        },
        Role::Balancer => CheckRequest {
            balancers: settings
                .balancers
                .iter()
                .map(|b| (b.name().to_owned(), settings.programs.get(b).cloned()))
                .collect(),
            bind: Some(host.address),
            ports: settings.port.into_iter().collect(),
            ..CheckRequest::default()
        },
        Role::Backend => CheckRequest {
            bind: Some(host.address),
            ..CheckRequest::default()
        },
    }
}

fn judge(c: &mut HostCheck, h: &RemoteHost, report: &CheckReport, settings: &CheckSettings) {
    let mut program = |what: &str, found: &Found| match found {
        Ok((path, version)) => c
            .found
            .push(format!("{what} {version} ({})", path.display())),
        Err(e) => c.problems.push(e.clone()),
    };
    if let Some(found) = &report.httperf {
        program("httperf", found);
    }
    for (name, found) in &report.balancers {
        program(name, found);
    }
    match &report.bind {
        Some(Ok(())) => c.found.push(format!("{} is its own", c.host.address)),
        Some(Err(e)) => c.problems.push(e.clone()),
        None => {}
    }
    let facts = h.facts();
    if c.host.role == Role::Client
        && let Some((lo, hi)) = facts.port_range
    {
        let range = u64::from(hi.saturating_sub(lo)) + 1;
        c.found.push(format!("{range} local ports"));
        if settings.balancers.contains(&Balancer::Pound)
            && settings.connections_per_client > range - range / 10
        {
            c.advisories.push(format!(
                "the lab's longest run makes {} connections from each client within a minute, \
                 more than its {range} local ports ({lo}-{hi}) can hold when the server lets \
                 the client close first (Pound): add clients, shorten the runs, or widen \
                 net.ipv4.ip_local_port_range",
                settings.connections_per_client
            ));
        }
    }
    if c.host.role == Role::Balancer {
        let budget = connection_budget(4096, facts.fd_limit);
        if budget < 4096 {
            c.found.push(format!(
                "open files {} (balancers get {budget} connections)",
                facts.fd_limit
            ));
        }
    }
}

/// The table of hosts, then one line per problem; `true` if there is none.
pub fn render(checks: &[HostCheck]) -> (String, bool) {
    let mut t = Table::new(["HOST", "ROLE", "SSH", "LBBENCH", "CLOCK", "FOUND"]).right([4]);
    for c in checks {
        t.row([
            c.host.name.clone(),
            c.host.role.to_string(),
            c.host.destination(),
            c.lbbench.clone().unwrap_or_else(|| "-".into()),
            c.clock_offset_ms
                .map_or_else(|| "-".into(), |o| format!("{o:+} ms")),
            if c.found.is_empty() {
                "-".into()
            } else {
                c.found.join(", ")
            },
        ]);
    }
    let mut out = t.to_string();
    let problems: Vec<String> = checks
        .iter()
        .flat_map(|c| {
            let prefix = format!("{}: ", c.host.name);
            c.problems
                .iter()
                .chain(&c.advisories)
                .map(move |p| format!("{prefix}{}", p.strip_prefix(&prefix).unwrap_or(p)))
        })
        .collect();
    if problems.is_empty() {
        out.push_str(&format!("all {} hosts are ready\n", checks.len()));
    } else {
        out.push_str(&format!("{} problem(s):\n", problems.len()));
        for p in &problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    (out, problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_host_then_each_problem() {
        let host = |name: &str, role| Host {
            name: name.into(),
            role,
            ssh_host: "10.0.0.1".into(),
            port: Some(2201),
            user: None,
            identity: None,
            address: "10.0.0.1".parse().unwrap(),
            lbbench: "lbbench".into(),
        };
        let ok = HostCheck {
            host: host("client-1", Role::Client),
            lbbench: Some("lbbench 0.1.0".into()),
            clock_offset_ms: Some(3),
            found: vec!["httperf 0.9.0 (/usr/bin/httperf)".into()],
            problems: vec![],
            advisories: vec![],
            report: None,
        };
        let (text, ready) = render(std::slice::from_ref(&ok));
        assert!(ready);
        assert!(
            text.contains("client-1  client  10.0.0.1:2201  lbbench 0.1.0  +3 ms  httperf 0.9.0"),
            "{text}"
        );
        assert!(text.ends_with("all 1 hosts are ready\n"), "{text}");
        let bad = HostCheck {
            host: host("balancer", Role::Balancer),
            lbbench: None,
            clock_offset_ms: None,
            found: vec![],
            problems: vec!["cannot connect".into()],
            advisories: vec![],
            report: None,
        };
        let (text, ready) = render(&[ok, bad]);
        assert!(!ready);
        assert!(
            text.contains("balancer  balancer  10.0.0.1:2201  -   "),
            "{text}"
        );
        assert!(
            text.ends_with("1 problem(s):\n  balancer: cannot connect\n"),
            "{text}"
        );
    }
}
