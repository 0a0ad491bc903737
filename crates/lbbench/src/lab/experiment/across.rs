//! The lab across hosts (`--hosts FILE`): the same experiment as on one machine, with each
//! part on its own host. The backends run on the backend hosts, each balancer in turn on its
//! host, httperf on every client at once (each its share of the rate, `--client i/N`), the
//! CPU is measured where the processes run (the balancer's host samples the balancer's
//! processes and runs `lbbench cpu` on them; the backend hosts sample theirs), and the sweep,
//! its resume, its rows and the report are the one-machine lab's. Each run's row merges the
//! clients' reports ([`crate::httperf::merge`]); each client's output is kept in `raw/`.
//!
//! A host lost mid-run fails that run with its name; the lab then stops (dropping the
//! connected hosts says `bye` to every host still reachable, which stops what the lab started
//! there; the lost host's agent stops its own when its connection ends), and the same
//! command continues the lab once the host is back.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use common::{CsvAppender, Shutdown};

use super::journal::Journal;
use super::measure::leg_dir;
use super::observer::{lab_cells, lab_columns};
use super::{LabConfig, LabRunError, LabSummary, Leg, Program};
use crate::httperf::merge::merge;
use crate::httperf::{HttperfArgs, HttperfError, HttperfOutput, RawOutput, parse_report};
use crate::lab::hosts::check::check_connected;
use crate::lab::hosts::connected::LabHosts;
use crate::lab::hosts::protocol::{BalancerRequest, HttperfReply, Stopped};
use crate::lab::hosts::{HostError, HostsFile};
use crate::lab::info::{BalancerInfo, HostInfo, ProgramInfo, Started};
use crate::lab::{Balancer, LabTls};
use crate::sweep::{
    LoadGenerator, ObserverError, PlannedRun, RunResult, SweepError, SweepObserver, SweepSummary,
    run_sweep_with,
};

/// The hosts, connected and checked, with what was found on them.
pub(super) struct Connected {
    /// The hosts.
    pub hosts: LabHosts,
    /// httperf's version on the clients.
    pub httperf_version: String,
    /// Each balancer's program and version on the balancer's host.
    pub programs: Vec<Program>,
    /// The hosts table of `lab.json`.
    pub infos: Vec<HostInfo>,
}

/// Connects to every host of `file` (the agents' logs in `DIR/hosts/`) and checks that each
/// has what the lab needs; fails naming every host that does not.
pub(super) fn connect(
    cfg: &LabConfig,
    file: &HostsFile,
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
) -> Result<Connected, LabRunError> {
    let log_dir = cfg.output.join("hosts");
    std::fs::create_dir_all(&log_dir).map_err(|source| LabRunError::Io {
        what: format!("cannot create {}", log_dir.display()),
        source,
    })?;
    note(&format!(
        "connecting to {} hosts ({}) with ssh",
        file.hosts.len(),
        file.hosts
            .iter()
            .map(|h| format!("{} {}", h.name, h.destination()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut hosts = LabHosts::connect(file, &log_dir, shutdown).map_err(|e| {
        if shutdown.requested() {
            LabRunError::Hosts("interrupted while connecting to the hosts".into())
        } else {
            LabRunError::Hosts(format!(
                "{e} (lbbench lab --hosts {} --check tells what each host lacks)",
                file.path.display()
            ))
        }
    })?;
    let checks = check_connected(&mut hosts.all_mut(), &cfg.host_check(), shutdown);
    let problems: Vec<String> = checks
        .iter()
        .flat_map(|c| {
            c.problems
                .iter()
                .map(move |p| format!("{}: {p}", c.host.name))
        })
        .collect();
    if !problems.is_empty() {
        return Err(LabRunError::Hosts(format!(
            "not every host is ready: {}",
            problems.join("; ")
        )));
    }
    for c in &checks {
        for a in &c.advisories {
            note(&format!("warning: {}: {a}", c.host.name));
        }
    }
    let mut httperf_versions: Vec<(String, String)> = Vec::new();
    let mut programs: Vec<Program> = Vec::new();
    let mut infos = Vec::new();
    for (c, h) in checks.iter().zip(hosts.all()) {
        let mut host_programs = Vec::new();
        if let Some(report) = &c.report {
            if let Some(Ok((path, version))) = &report.httperf {
                httperf_versions.push((c.host.name.clone(), version.clone()));
                host_programs.push(ProgramInfo {
                    program: path.clone(),
                    version: version.clone(),
                });
            }
            for (name, found) in &report.balancers {
                if let (Ok(b), Ok((path, version))) = (name.parse::<Balancer>(), found) {
                    programs.push((b, path.clone(), version.clone()));
                    host_programs.push(ProgramInfo {
                        program: path.clone(),
                        version: version.clone(),
                    });
                }
            }
        }
        let facts = h.facts();
        infos.push(HostInfo {
            name: c.host.name.clone(),
            role: c.host.role.to_string(),
            ssh: c.host.destination(),
            address: c.host.address.to_string(),
            hostname: facts.hostname.clone(),
            lbbench: facts.lbbench.clone(),
            machine: facts.machine.clone(),
            clock_offset_ms: h.clock_offset_ms(),
            programs: host_programs,
        });
    }
    let httperf_version = httperf_versions
        .first()
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if httperf_versions.iter().any(|(_, v)| *v != httperf_version) {
        note(&format!(
            "warning: the clients run different httperf versions ({})",
            httperf_versions
                .iter()
                .map(|(h, v)| format!("{h} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Connected {
        hosts,
        httperf_version,
        programs,
        infos,
    })
}

/// Starts the backends on the backend hosts, then measures each leg of `pending` in turn on
/// the balancer's host with httperf on the clients; stops everything. Returns whether Ctrl-C
/// stopped it.
pub(super) fn run_on_hosts(
    cfg: &LabConfig,
    hosts: LabHosts,
    pending: &[Leg],
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
    journal: &mut Journal,
    summary: &mut LabSummary,
) -> Result<bool, LabRunError> {
    let balancer_addr = IpAddr::V4(hosts.balancer().host().address);
    let hosts = RefCell::new(hosts);
    // The lab's certificate, valid for the balancer host's address too.
    let tls = if pending.iter().any(|l| l.tls.is_on()) {
        let t = LabTls::in_dir_for(&cfg.output, &[balancer_addr])?;
        note(&format!(
            "TLS: the balancer serves {} (CA {})",
            t.pem_path().display(),
            t.ca_path().display()
        ));
        Some(t.pems()?)
    } else {
        None
    };
    let backends = match hosts.borrow_mut().start_backends(cfg.backends, shutdown) {
        Ok(b) => b,
        Err(_) if shutdown.requested() => return Ok(true),
        Err(e) => return Err(host_error(e)),
    };
    note(&format!(
        "backends: {}",
        backends
            .iter()
            .map(|b| format!(
                "{} {} on {} (pid {})",
                b.process.name, b.process.addr, b.host, b.process.pid
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut by_host: Vec<(String, Vec<u32>, Vec<String>)> = Vec::new();
    for b in &backends {
        match by_host.iter_mut().find(|(h, _, _)| *h == b.host) {
            Some((_, pids, addrs)) => {
                pids.push(b.process.pid);
                addrs.push(b.process.addr.to_string());
            }
            None => by_host.push((
                b.host.clone(),
                vec![b.process.pid],
                vec![b.process.addr.to_string()],
            )),
        }
    }
    for (host, pids, addrs) in by_host {
        journal.started(Started {
            what: "backends".into(),
            pids,
            addrs,
            run_dir: None,
            host: Some(host),
        })?;
    }
    let upstreams: Vec<(String, SocketAddr)> = backends
        .iter()
        .map(|b| (b.process.name.clone(), b.process.addr))
        .collect();
    let mut interrupted = false;
    for &leg in pending {
        let req = BalancerRequest {
            balancer: leg.balancer.name().to_owned(),
            program: cfg.programs.get(&leg.balancer).cloned(),
            upstreams: upstreams.clone(),
            bind: hosts.borrow().balancer().host().address,
            port: None,
            cpu_interval_s: cfg.cpu_interval.as_secs_f64(),
            cpu_utc: cfg.time_format == common::TimeFormat::Utc,
            tls: tls.clone().filter(|_| leg.tls.is_on()),
        };
        let started = match hosts.borrow_mut().start_balancer(req, shutdown) {
            Ok(s) => s,
            Err(_) if shutdown.requested() => {
                interrupted = true;
                break;
            }
            Err(e) => return Err(host_error(e)),
        };
        let host_name = hosts.borrow().balancer().host().name.clone();
        note(&format!(
            "{leg} {} on {} of {host_name} (pids {})",
            started.version,
            started.addr,
            started
                .pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
        let work = cfg.output.join(leg_dir(leg));
        write_file(&work, &started.config_name, &started.config)?;
        journal.started(Started {
            what: leg.to_string(),
            pids: started.pids.clone(),
            addrs: vec![started.addr.to_string()],
            run_dir: started.run_dir.clone(),
            host: Some(host_name),
        })?;
        journal.info.record_balancer(BalancerInfo {
            name: leg.balancer.name().to_owned(),
            program: ProgramInfo {
                program: started.program.clone(),
                version: started.version.clone(),
            },
            max_connections: Some(started.max_connections),
            processes: Some(started.pids.len()),
        });
        journal.save()?;
        let sweep = cfg.sweep_for(leg, started.addr.port());
        let result = {
            let mut observer = HostsObserver { hosts: &hosts };
            let mut load = Clients {
                hosts: &hosts,
                program: cfg.httperf.program().to_owned(),
            };
            run_sweep_with(&mut load, &sweep, &mut observer, shutdown)
        };
        // Stopped also when the sweep failed, so its log and CPU file are kept.
        let stopped = hosts.borrow_mut().stop_balancer();
        if let Ok(s) = &stopped {
            keep_balancer_files(cfg, leg, &work, s)?;
        }
        let s = result.map_err(|error| sweep_error(leg, error))?;
        let stopped = stopped.map_err(host_error)?;
        if !stopped.leftover.is_empty() {
            return Err(LabRunError::Hosts(format!(
                "{leg}: processes still running on the balancer's host after the stop: {:?}",
                stopped.leftover
            )));
        }
        note(&format!("{leg} stopped"));
        summary.add(leg, s.clone());
        if s.interrupted {
            interrupted = true;
            break;
        }
    }
    let stopped = hosts.borrow_mut().stop_backends().map_err(host_error)?;
    for (_, s) in stopped {
        for (name, text) in &s.logs {
            write_file(&cfg.output.join("backends"), name, text)?;
        }
    }
    note("backends stopped");
    hosts.into_inner().close();
    Ok(interrupted)
}

/// A host's failure as the lab reports it: a lost host with what to do next.
fn host_error(e: HostError) -> LabRunError {
    if e.is_lost() {
        LabRunError::HostLost(e.to_string())
    } else {
        LabRunError::Host(e)
    }
}

/// A sweep's failure: a lost host (a client during a run, or the balancer's or a backend's
/// host while measuring) with what to do next; anything else as a sweep error.
fn sweep_error(leg: Leg, error: SweepError) -> LabRunError {
    let lost = match &error {
        SweepError::Httperf { error, .. } => error.is_fatal(),
        SweepError::Observer { error, .. } => error
            .downcast_ref::<HostError>()
            .is_some_and(HostError::is_lost),
        _ => false,
    };
    if lost {
        LabRunError::HostLost(format!("{leg}: {error}"))
    } else {
        LabRunError::Sweep {
            balancer: leg.to_string(),
            error,
        }
    }
}

/// The balancer's log and its `lbbench cpu` file, brought back from its host.
fn keep_balancer_files(
    cfg: &LabConfig,
    leg: Leg,
    work: &Path,
    stopped: &Stopped,
) -> Result<(), LabRunError> {
    for (name, text) in &stopped.logs {
        write_file(work, name, text)?;
    }
    // Nothing to add when the balancer stopped before the first sample.
    if let Some(text) = stopped
        .cpu_csv
        .as_ref()
        .filter(|t| t.lines().nth(1).is_some())
    {
        let path = cfg.output.join(format!("cpu_mon_{}.csv", leg_dir(leg)));
        append_cpu_rows(&path, text).map_err(|e| {
            LabRunError::Hosts(format!(
                "cannot add the balancer host's CPU samples to {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

/// Appends the rows of a CPU file's text (`lbbench cpu`'s, from the balancer's host) to the
/// lab's CPU file, which must have the same columns.
fn append_cpu_rows(path: &Path, text: &str) -> Result<(), String> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    if header != crate::cpu::monitor::COLUMNS {
        return Err(format!("the host's CPU file has other columns: {header:?}"));
    }
    let rows: Vec<Vec<String>> = rdr
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    let mut out =
        CsvAppender::open(path, crate::cpu::monitor::COLUMNS).map_err(|e| e.to_string())?;
    out.append_rows(rows).map_err(|e| e.to_string())?;
    Ok(())
}

fn write_file(dir: &Path, name: &str, text: &str) -> Result<(), LabRunError> {
    let path = dir.join(crate::sweep::file_name_safe(name));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|source| LabRunError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })
}

/// Measures each run's CPU on the balancer's and the backends' hosts.
struct HostsObserver<'a> {
    hosts: &'a RefCell<LabHosts>,
}

impl SweepObserver for HostsObserver<'_> {
    fn extra_columns(&self) -> Vec<String> {
        lab_columns()
    }

    fn before_run(&mut self, _run: &PlannedRun) -> Result<(), ObserverError> {
        self.hosts.borrow_mut().measure_start()?;
        Ok(())
    }

    fn after_run(&mut self, result: &RunResult) -> Result<Vec<String>, ObserverError> {
        let m = self.hosts.borrow_mut().measure_end()?;
        Ok(lab_cells(
            m.balancer.as_ref(),
            m.backends.as_ref(),
            Some(m.machine_busy_pct),
            result,
        ))
    }
}

/// httperf on every client host at once.
struct Clients<'a> {
    hosts: &'a RefCell<LabHosts>,
    program: PathBuf,
}

impl LoadGenerator for Clients<'_> {
    fn run(
        &mut self,
        args: &HttperfArgs,
        shutdown: &Shutdown,
    ) -> Result<HttperfOutput, HttperfError> {
        let started_at = Utc::now();
        let started = Instant::now();
        let replies = self
            .hosts
            .borrow_mut()
            .run_clients(&self.program, args, true, shutdown);
        match replies {
            Ok(replies) => combine(replies, started_at, started),
            Err(failed) => {
                let lost = failed.lost_host().is_some();
                if !lost && shutdown.requested() {
                    return Err(HttperfError::Interrupted {
                        output: Box::new(concatenated(&failed.outputs)),
                    });
                }
                let mut errors: Vec<&HostError> = failed.errors.iter().collect();
                // The lost host first: it is why the others were stopped.
                errors.sort_by_key(|e| !e.is_lost());
                Err(HttperfError::Clients {
                    message: errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    lost,
                    outputs: failed.outputs,
                })
            }
        }
    }

    fn is_local(&self) -> bool {
        false
    }
}

/// The clients' runs as one: their reports merged, their outputs one after the other.
fn combine(
    replies: Vec<(String, HttperfReply)>,
    started_at: chrono::DateTime<Utc>,
    started: Instant,
) -> Result<HttperfOutput, HttperfError> {
    let clients: Vec<(String, RawOutput)> = replies
        .iter()
        .map(|(n, r)| (n.clone(), r.raw.clone()))
        .collect();
    let mut reports = Vec::with_capacity(replies.len());
    for (name, r) in &replies {
        match parse_report(&r.raw.stdout) {
            Ok(report) => reports.push(report),
            Err(e) => {
                return Err(HttperfError::Clients {
                    message: format!("{name}: httperf printed no usable report: {e}"),
                    lost: false,
                    outputs: clients,
                });
            }
        }
    }
    Ok(HttperfOutput {
        report: merge(&reports),
        raw: concatenated(&clients),
        started_at,
        finished_at: Utc::now(),
        wall: started.elapsed(),
        clients,
    })
}

fn concatenated(outputs: &[(String, RawOutput)]) -> RawOutput {
    RawOutput {
        stdout: outputs.iter().map(|(_, r)| r.stdout.as_str()).collect(),
        stderr: outputs.iter().map(|(_, r)| r.stderr.as_str()).collect(),
    }
}

impl LabSummary {
    /// Adds what a leg's sweep did.
    pub(super) fn add(&mut self, leg: Leg, s: SweepSummary) {
        self.written += s.written;
        self.skipped += s.skipped;
        self.flagged += s.flagged;
        self.failed
            .extend(s.failed.into_iter().map(|f| (leg.to_string(), f)));
    }
}
