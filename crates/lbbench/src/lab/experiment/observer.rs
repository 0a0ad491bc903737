//! What the lab measures around each run besides httperf's report: the balancer's and the
//! backends' CPU, CPU per request and how busy the machine was (a [`SweepObserver`]); and the
//! `sar -u 2`-like CPU file sampled in a thread for a balancer's whole sweep.

use std::thread::JoinHandle;

use common::Shutdown;

use crate::cpu::ProcessUsage;
use crate::cpu::machine::{CpuTimes, machine_usage, read_machine};
use crate::cpu::{CpuError, MonitorConfig, ProcessSelector, monitor};
use crate::lab::{Fleet, RunningBalancer};
use crate::report::data::{
    BACKENDS_PREFIX, BALANCER_PREFIX, CPU_PER_1K_COLUMN, CPU_PER_GB_COLUMN, MACHINE_BUSY_COLUMN,
    REPLY_MB_S_COLUMN, cpu_s_per_1k, cpu_s_per_gb, reply_mb_s,
};
use crate::sweep::{
    CpuObserver, ObserverError, PlannedRun, RunResult, SweepObserver, usage_cells, usage_columns,
};

/// Measures each run's CPU for the lab: the balancer's processes, the backends', CPU-seconds
/// per 1,000 requests and how busy the machine was; and stops the sweep if the balancer or a
/// backend died.
pub(super) struct LabObserver<'a> {
    balancer: &'a mut RunningBalancer,
    fleet: &'a mut Fleet,
    lb_cpu: CpuObserver,
    backends_cpu: CpuObserver,
    machine_start: Option<CpuTimes>,
}

impl<'a> LabObserver<'a> {
    /// Measures the processes of the balancer whose main process is `root`, and the fleet's.
    pub(super) fn new(
        balancer: &'a mut RunningBalancer,
        fleet: &'a mut Fleet,
        root: u32,
    ) -> Result<LabObserver<'a>, CpuError> {
        Ok(LabObserver {
            lb_cpu: CpuObserver::new(BALANCER_PREFIX, ProcessSelector::Pids(vec![root]))?,
            backends_cpu: CpuObserver::new(BACKENDS_PREFIX, ProcessSelector::Pids(fleet.pids()))?,
            balancer,
            fleet,
            machine_start: None,
        })
    }

    fn check_alive(&mut self) -> Result<(), ObserverError> {
        self.balancer.check_alive()?;
        self.fleet.check_alive()?;
        Ok(())
    }
}

/// The columns the lab adds after the sweep's: the balancer's CPU, its CPU per 1,000
/// requests, the backends' CPU, how busy the machine was, the reply throughput and the
/// balancer's CPU per GB. The same on one machine and across hosts.
pub(super) fn lab_columns() -> Vec<String> {
    let mut c = usage_columns(BALANCER_PREFIX);
    c.push(CPU_PER_1K_COLUMN.to_owned());
    c.extend(usage_columns(BACKENDS_PREFIX));
    c.push(MACHINE_BUSY_COLUMN.to_owned());
    c.push(REPLY_MB_S_COLUMN.to_owned());
    c.push(CPU_PER_GB_COLUMN.to_owned());
    c
}

/// The cells of [`lab_columns`] for a run: what was measured over its window (`balancer`,
/// `backends`, the machine's busy %), and the run's `result` (httperf's report).
pub(super) fn lab_cells(
    balancer: Option<&ProcessUsage>,
    backends: Option<&ProcessUsage>,
    machine_busy_pct: Option<f64>,
    result: &RunResult,
) -> Vec<String> {
    let r = &result.output.report;
    let mut cells = usage_cells(balancer);
    // Resumed TLS runs resend requests (see `Tls::Resumed`): per connection for them.
    let count = if result.args.tls == crate::httperf::Tls::Resumed {
        r.total_connections
    } else {
        r.total_requests
    };
    let per_1k = balancer.and_then(|u| cpu_s_per_1k(u.user_s + u.system_s, count));
    cells.push(per_1k.map_or(String::new(), |v| round_cell(v, 4)));
    cells.extend(usage_cells(backends));
    cells.push(machine_busy_pct.map_or(String::new(), |v| round_cell(v, 2)));
    let mb_s = reply_mb_s(r.total_replies, r.reply_size_total, r.total_test_duration);
    cells.push(mb_s.map_or(String::new(), |v| round_cell(v, 3)));
    let per_gb = balancer
        .and_then(|u| cpu_s_per_gb(u.user_s + u.system_s, r.total_replies, r.reply_size_total));
    cells.push(per_gb.map_or(String::new(), |v| round_cell(v, 3)));
    cells
}

impl SweepObserver for LabObserver<'_> {
    fn extra_columns(&self) -> Vec<String> {
        lab_columns()
    }

    fn before_run(&mut self, run: &PlannedRun) -> Result<(), ObserverError> {
        self.check_alive()?;
        self.lb_cpu.before_run(run)?;
        self.backends_cpu.before_run(run)?;
        self.machine_start = Some(read_machine()?);
        Ok(())
    }

    fn after_run(&mut self, result: &RunResult) -> Result<Vec<String>, ObserverError> {
        let machine_end = read_machine()?;
        self.lb_cpu.after_run(result)?;
        self.backends_cpu.after_run(result)?;
        let busy = self.machine_start.take().map(|start| {
            let m = machine_usage(&start, &machine_end);
            (100.0 - m.idle_pct - m.iowait_pct).clamp(0.0, 100.0)
        });
        let cells = lab_cells(
            self.lb_cpu.last_usage(),
            self.backends_cpu.last_usage(),
            busy,
            result,
        );
        // A balancer that died during the run measured nothing: no row.
        self.check_alive()?;
        Ok(cells)
    }

    fn run_abandoned(&mut self, run: &PlannedRun) {
        self.lb_cpu.run_abandoned(run);
        self.backends_cpu.run_abandoned(run);
        self.machine_start = None;
    }
}

fn round_cell(v: f64, decimals: i32) -> String {
    let f = 10f64.powi(decimals);
    crate::csvcell::fmt_f64((v * f).round() / f)
}

/// The `lbbench cpu` sampler in a thread for the length of one balancer's sweep; stopped
/// and joined on drop.
pub(super) struct CpuFile {
    stop: Shutdown,
    thread: Option<JoinHandle<Result<u64, CpuError>>>,
}

impl CpuFile {
    pub(super) fn start(cfg: MonitorConfig) -> std::io::Result<CpuFile> {
        let stop = Shutdown::new()?;
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lab-cpu".into())
            .spawn(move || monitor(&cfg, &s, |_| {}))?;
        Ok(CpuFile {
            stop,
            thread: Some(thread),
        })
    }

    pub(super) fn finish(mut self) -> Result<u64, CpuError> {
        self.stop.trigger();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(CpuError::Config("the CPU sampler panicked".into())),
            None => Ok(0),
        }
    }
}

impl Drop for CpuFile {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
