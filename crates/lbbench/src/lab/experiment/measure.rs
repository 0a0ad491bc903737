//! The measuring part of the lab: the backends started once, then each leg in turn (a
//! balancer, plain or terminating TLS) started, swept while its CPU is sampled, and stopped,
//! so none is measured while another one works.

use std::path::Path;

use common::Shutdown;

use super::journal::Journal;
use super::observer::{CpuFile, LabObserver};
use super::{LabConfig, LabRunError, LabSummary, Leg};
use crate::cpu::{CpuError, MonitorConfig, ProcessSelector};
use crate::httperf::Tls;
use crate::lab::info::{BalancerInfo, ProgramInfo, Started};
use crate::lab::{BalancerOptions, Fleet, FleetOptions, LabError, LabTls, RunningBalancer};
use crate::sweep::{SweepSummary, run_sweep};

/// Starts the backends, then measures each leg of `pending` in turn; stops everything.
/// Returns whether Ctrl-C stopped it.
pub(super) fn run_balancers(
    cfg: &LabConfig,
    pending: &[Leg],
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
    journal: &mut Journal,
    summary: &mut LabSummary,
) -> Result<bool, LabRunError> {
    // The lab's certificate, made before anything starts (kept for later invocations of the lab).
    let tls = if pending.iter().any(|l| l.tls.is_on()) {
        let t = LabTls::in_dir(&cfg.output)?;
        note(&format!(
            "TLS: the balancers serve {} (CA {})",
            t.pem_path().display(),
            t.ca_path().display()
        ));
        Some(t)
    } else {
        None
    };
    let Some(mut fleet) = start_backends(cfg, shutdown, note, journal)? else {
        return Ok(true);
    };
    let mut interrupted = false;
    for &leg in pending {
        let leg_tls = tls.as_ref().filter(|_| leg.tls.is_on());
        let Some(lb) = start_balancer(cfg, leg, leg_tls, &fleet, shutdown, note, journal)? else {
            interrupted = true;
            break;
        };
        let s = sweep_balancer(cfg, leg, lb, &mut fleet, shutdown)?;
        note(&format!("{leg} stopped"));
        let interrupted_now = s.interrupted;
        summary.add(leg, s);
        if interrupted_now {
            interrupted = true;
            break;
        }
    }
    fleet.stop()?;
    note("backends stopped");
    Ok(interrupted)
}

/// The lab's backends, logging to `backends/`, recorded in `lab.json`; `None` on Ctrl-C.
fn start_backends(
    cfg: &LabConfig,
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
    journal: &mut Journal,
) -> Result<Option<Fleet>, LabRunError> {
    let mut fleet_opts = FleetOptions::with_program(cfg.backends, &cfg.lbbench);
    fleet_opts.log_dir = Some(cfg.output.join("backends"));
    let fleet = match Fleet::start(&fleet_opts, shutdown) {
        Ok(f) => f,
        Err(LabError::Interrupted) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    note(&format!(
        "backends: {}",
        fleet
            .backends()
            .iter()
            .map(|b| format!("{} {} (pid {})", b.name(), b.addr(), b.pid()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    journal.started(Started {
        what: "backends".into(),
        pids: fleet.pids(),
        addrs: fleet.addrs().iter().map(ToString::to_string).collect(),
        run_dir: None,
        host: None,
    })?;
    Ok(Some(fleet))
}

/// The balancer of `leg` in front of the fleet (terminating TLS with `tls` for a TLS leg),
/// its config and log in `<output>/<b>/` (`<output>/<b>-tls/` for TLS), recorded in
/// `lab.json` (what it runs, its processes and connection limit); `None` on Ctrl-C.
fn start_balancer(
    cfg: &LabConfig,
    leg: Leg,
    tls: Option<&LabTls>,
    fleet: &Fleet,
    shutdown: &Shutdown,
    note: &mut dyn FnMut(&str),
    journal: &mut Journal,
) -> Result<Option<RunningBalancer>, LabRunError> {
    let b = leg.balancer;
    let opts = BalancerOptions {
        program: cfg.programs.get(&b).cloned(),
        work_dir: Some(cfg.output.join(leg_dir(leg))),
        tls: tls.cloned(),
        ..BalancerOptions::default()
    };
    let lb = match b.start(&fleet.upstreams(), &opts, shutdown) {
        Ok(lb) => lb,
        Err(LabError::Interrupted) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let pids = lb.pids();
    note(&format!(
        "{leg} {} on {} (pids {}), run dir {}",
        lb.version(),
        lb.url(),
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        lb.run_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    ));
    journal.started(Started {
        what: leg.to_string(),
        pids: pids.clone(),
        addrs: vec![lb.addr().to_string()],
        run_dir: lb.run_dir().map(Path::to_owned),
        host: None,
    })?;
    let (program, version) = (lb.program().to_owned(), lb.version().to_owned());
    journal.info.record_balancer(BalancerInfo {
        name: b.name().to_owned(),
        program: ProgramInfo { program, version },
        max_connections: Some(lb.max_connections()),
        processes: Some(pids.len()),
    });
    journal.save()?;
    Ok(Some(lb))
}

/// A leg's name in file and directory names: `haproxy`, `haproxy-tls`,
/// `haproxy-tls-resumed`.
pub(super) fn leg_dir(leg: Leg) -> String {
    match leg.tls {
        Tls::Off => leg.balancer.name().to_owned(),
        Tls::On => format!("{}-tls", leg.balancer),
        Tls::Resumed => format!("{}-tls-resumed", leg.balancer),
    }
}

/// The sweep of `leg` against its running balancer, with its CPU measured over every run and
/// sampled into `cpu_mon_<leg>.csv` all along; then the balancer is stopped (also when the
/// sweep failed).
fn sweep_balancer(
    cfg: &LabConfig,
    leg: Leg,
    mut lb: RunningBalancer,
    fleet: &mut Fleet,
    shutdown: &Shutdown,
) -> Result<SweepSummary, LabRunError> {
    let b = leg.balancer;
    let root = lb.pid().ok_or_else(|| LabError::Io {
        what: format!("{b} has no process"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    let cpu_err = |error: CpuError| LabRunError::Cpu {
        balancer: leg.to_string(),
        error,
    };
    let cpu_file = CpuFile::start(MonitorConfig {
        interval: cfg.cpu_interval,
        count: None,
        output: cfg.output.join(format!("cpu_mon_{}.csv", leg_dir(leg))),
        selector: Some(ProcessSelector::Pids(vec![root])),
        time_format: cfg.time_format,
    })
    .map_err(|source| LabRunError::Io {
        what: "cannot start the CPU sampler".into(),
        source,
    })?;
    let sweep = cfg.sweep_for(leg, lb.addr().port());
    let result = {
        let mut observer = LabObserver::new(&mut lb, fleet, root).map_err(cpu_err)?;
        run_sweep(&cfg.httperf, &sweep, &mut observer, shutdown)
    };
    let cpu_result = cpu_file.finish();
    let stopped = lb.stop();
    let s = result.map_err(|error| LabRunError::Sweep {
        balancer: leg.to_string(),
        error,
    })?;
    cpu_result.map_err(cpu_err)?;
    stopped?;
    Ok(s)
}
