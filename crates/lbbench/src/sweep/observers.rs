//! Ready-made sweep observers: the CPU of a process set over each run, and two observers at
//! once.

use super::{ObserverError, PlannedRun, RunResult, SweepObserver};
use crate::cpu::{ProcessSample, ProcessSampler, ProcessSelector, ProcessUsage, process_usage};
use crate::csvcell::fmt_f64;

/// Measures the CPU of a set of processes (and their threads and children) over each run's
/// window: sampled right before httperf starts and right after it exits. Adds the columns
/// `<prefix>_cpu_user_s`, `<prefix>_cpu_system_s`, `<prefix>_cpu_pct` (% of one CPU over the
/// window) and `<prefix>_processes`.
#[derive(Debug)]
pub struct CpuObserver {
    prefix: String,
    sampler: ProcessSampler,
    start: Option<ProcessSample>,
    last: Option<ProcessUsage>,
}

impl CpuObserver {
    /// An observer of the processes `selector` picks, with columns named `<prefix>_...`.
    pub fn new(prefix: &str, selector: ProcessSelector) -> Result<Self, crate::cpu::CpuError> {
        Ok(CpuObserver {
            prefix: prefix.to_owned(),
            sampler: ProcessSampler::new(selector)?,
            start: None,
            last: None,
        })
    }

    /// The usage measured over the last run, unrounded (what its cells were made from).
    pub fn last_usage(&self) -> Option<&ProcessUsage> {
        self.last.as_ref()
    }
}

/// The columns of a process set's CPU: `<prefix>_cpu_user_s`, `<prefix>_cpu_system_s`,
/// `<prefix>_cpu_pct`, `<prefix>_processes`.
pub fn usage_columns(prefix: &str) -> Vec<String> {
    ["cpu_user_s", "cpu_system_s", "cpu_pct", "processes"]
        .iter()
        .map(|c| format!("{prefix}_{c}"))
        .collect()
}

/// The cells of [`usage_columns`] (empty when nothing was measured).
pub fn usage_cells(u: Option<&ProcessUsage>) -> Vec<String> {
    let r = |v: f64| fmt_f64((v * 1000.0).round() / 1000.0);
    match u {
        Some(u) => vec![
            r(u.user_s),
            r(u.system_s),
            r(u.cpu_pct),
            u.processes.to_string(),
        ],
        None => vec![String::new(); 4],
    }
}

impl SweepObserver for CpuObserver {
    fn extra_columns(&self) -> Vec<String> {
        usage_columns(&self.prefix)
    }

    fn before_run(&mut self, _run: &PlannedRun) -> Result<(), ObserverError> {
        self.start = Some(self.sampler.sample()?);
        Ok(())
    }

    fn after_run(&mut self, _result: &RunResult) -> Result<Vec<String>, ObserverError> {
        let end = self.sampler.sample()?;
        let start = self.start.take().ok_or("after_run without before_run")?;
        let u = process_usage(&start, &end);
        self.last = Some(u);
        Ok(usage_cells(Some(&u)))
    }

    fn run_abandoned(&mut self, _run: &PlannedRun) {
        self.start = None;
        self.last = None;
    }
}

/// Two observers: the first's columns, then the second's.
impl<A: SweepObserver, B: SweepObserver> SweepObserver for (A, B) {
    fn extra_columns(&self) -> Vec<String> {
        let mut c = self.0.extra_columns();
        c.extend(self.1.extra_columns());
        c
    }

    fn before_run(&mut self, run: &PlannedRun) -> Result<(), ObserverError> {
        self.0.before_run(run)?;
        self.1.before_run(run)
    }

    fn after_run(&mut self, result: &RunResult) -> Result<Vec<String>, ObserverError> {
        let mut cells = self.0.after_run(result)?;
        cells.extend(self.1.after_run(result)?);
        Ok(cells)
    }

    fn run_abandoned(&mut self, run: &PlannedRun) {
        self.0.run_abandoned(run);
        self.1.run_abandoned(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_composition() {
        let me = ProcessSelector::Pids(vec![std::process::id()]);
        let a = CpuObserver::new("haproxy", me.clone()).unwrap();
        let b = CpuObserver::new("backends", me).unwrap();
        let both = (a, b);
        assert_eq!(
            both.extra_columns(),
            [
                "haproxy_cpu_user_s",
                "haproxy_cpu_system_s",
                "haproxy_cpu_pct",
                "haproxy_processes",
                "backends_cpu_user_s",
                "backends_cpu_system_s",
                "backends_cpu_pct",
                "backends_processes"
            ]
        );
        assert!(CpuObserver::new("x", ProcessSelector::Pids(vec![])).is_err());
    }
}
