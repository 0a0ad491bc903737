//! `lbbench cpu`: one CSV row per interval with the machine's CPU use and that of the
//! selected processes, timestamped so that sweep rows can be joined to it by time.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{CsvAppender, Shutdown, Ticker, TimeFormat};

use super::CpuError;
use super::machine::{MachineUsage, machine_usage, read_machine};
use super::process::{ProcessSampler, ProcessSelector, ProcessUsage, process_usage};
use crate::csvcell::fmt_f64;

/// The columns of a CPU file.
pub const COLUMNS: &[&str] = &[
    "timestamp",
    "interval_s",
    "cpu_user_pct",
    "cpu_nice_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "cpu_steal_pct",
    "cpu_idle_pct",
    "proc_selector",
    "proc_count",
    "proc_pids",
    "proc_user_pct",
    "proc_system_pct",
    "proc_cpu_pct",
];

/// What `lbbench cpu` does.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Time between rows.
    pub interval: Duration,
    /// Rows to write; `None` runs until shutdown.
    pub count: Option<u64>,
    /// The CSV file.
    pub output: PathBuf,
    /// The processes to measure besides the machine, if any.
    pub selector: Option<ProcessSelector>,
    /// The `timestamp` format.
    pub time_format: TimeFormat,
}

/// One interval.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuRow {
    /// The end of the interval (wall clock).
    pub at: DateTime<Utc>,
    /// The interval's length, in s.
    pub interval_s: f64,
    /// The machine's CPU use.
    pub machine: MachineUsage,
    /// The processes' CPU use and their pids at the end of the interval.
    pub processes: Option<(ProcessUsage, Vec<u32>)>,
}

impl CpuRow {
    /// The CSV cells, in the order of [`COLUMNS`].
    pub fn to_cells(&self, cfg: &MonitorConfig) -> Vec<String> {
        let p = |v: f64| fmt_f64((v * 100.0).round() / 100.0);
        let m = &self.machine;
        let mut cells = vec![
            cfg.time_format.format(self.at),
            fmt_f64((self.interval_s * 1000.0).round() / 1000.0),
            p(m.user_pct),
            p(m.nice_pct),
            p(m.system_pct),
            p(m.iowait_pct),
            p(m.steal_pct),
            p(m.idle_pct),
        ];
        match (&self.processes, &cfg.selector) {
            (Some((u, pids)), Some(sel)) => cells.extend([
                sel.describe(),
                u.processes.to_string(),
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                p(u.user_pct),
                p(u.system_pct),
                p(u.cpu_pct),
            ]),
            _ => cells.extend(std::iter::repeat_n(String::new(), 6)),
        }
        cells
    }

    /// One line for the terminal, like `sar -u`.
    pub fn summary(&self, cfg: &MonitorConfig) -> String {
        let m = &self.machine;
        let mut s = format!(
            "{}  all  %user {:>6.2}  %system {:>6.2}  %iowait {:>6.2}  %idle {:>6.2}",
            self.at.with_timezone(&chrono::Local).format("%H:%M:%S"),
            m.user_pct,
            m.system_pct,
            m.iowait_pct,
            m.idle_pct
        );
        if let (Some((u, _)), Some(sel)) = (&self.processes, &cfg.selector) {
            s.push_str(&format!(
                "  |  {} ({} processes) %cpu {:>7.2}",
                sel.describe(),
                u.processes,
                u.cpu_pct
            ));
        }
        s
    }
}

/// The lab report's name for a CPU file: `cpu_mon_<name>.csv`, where the name is the selected
/// processes' (`haproxy`), or the host's when only the machine is sampled (the report ran
/// `sar -u 2 >> cpu_mon_balance1` on each balancer).
pub fn default_output(selector: Option<&ProcessSelector>) -> PathBuf {
    let name = match selector {
        Some(sel) => sel.label(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    PathBuf::from(format!(
        "cpu_mon_{}.csv",
        crate::sweep::file_name_safe(&name)
    ))
}

/// Samples every `interval` and appends one row per interval to `cfg.output`, calling
/// `on_row` for each, until `count` rows are written or shutdown is requested. Returns the
/// number of rows written.
pub fn monitor(
    cfg: &MonitorConfig,
    shutdown: &Shutdown,
    mut on_row: impl FnMut(&CpuRow),
) -> Result<u64, CpuError> {
    if cfg.interval < Duration::from_millis(10) {
        return Err(CpuError::Config(format!(
            "the interval must be at least 0.01 s (got {:?})",
            cfg.interval
        )));
    }
    if cfg.count == Some(0) {
        return Err(CpuError::Config("the count must be at least 1".into()));
    }
    let mut sampler = cfg.selector.clone().map(ProcessSampler::new).transpose()?;
    let mut csv = CsvAppender::open(&cfg.output, COLUMNS)?;
    let mut ticker = Ticker::new(cfg.interval);
    let mut prev = None;
    let mut written = 0;
    while let Some(_tick) = ticker.wait(shutdown) {
        let machine = read_machine()?;
        let procs = sampler.as_mut().map(ProcessSampler::sample).transpose()?;
        let now = std::time::Instant::now();
        if let Some((pm, pp, pt)) = prev.take() {
            let interval_s = now.saturating_duration_since(pt).as_secs_f64();
            let row = CpuRow {
                at: Utc::now(),
                interval_s,
                machine: machine_usage(&pm, &machine),
                processes: match (&pp, &procs) {
                    (Some(a), Some(b)) => Some((process_usage(a, b), b.pids())),
                    _ => None,
                },
            };
            csv.append_rows([row.to_cells(cfg)])?;
            written += 1;
            on_row(&row);
            if cfg.count.is_some_and(|c| written >= c) {
                break;
            }
        }
        prev = Some((machine, procs, now));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_every_column() {
        let cfg = MonitorConfig {
            interval: Duration::from_secs(2),
            count: None,
            output: PathBuf::from("x.csv"),
            selector: Some(ProcessSelector::Name("haproxy".into())),
            time_format: TimeFormat::Utc,
        };
        let row = CpuRow {
            at: DateTime::parse_from_rfc3339("2014-12-14T13:27:07Z")
                .unwrap()
                .with_timezone(&Utc),
            interval_s: 2.0004,
            machine: MachineUsage {
                user_pct: 12.345,
                idle_pct: 87.655,
                ..MachineUsage::default()
            },
            processes: Some((
                ProcessUsage {
                    cpu_pct: 50.0,
                    user_pct: 40.0,
                    system_pct: 10.0,
                    processes: 2,
                    ..ProcessUsage::default()
                },
                vec![10, 11],
            )),
        };
        let cells = row.to_cells(&cfg);
        assert_eq!(cells.len(), COLUMNS.len());
        assert_eq!(
            cells,
            [
                "2014-12-14T13:27:07.000000Z",
                "2.0",
                "12.35",
                "0.0",
                "0.0",
                "0.0",
                "0.0",
                "87.66",
                "name:haproxy",
                "2",
                "10 11",
                "40.0",
                "10.0",
                "50.0"
            ]
        );
        let machine_only = MonitorConfig {
            selector: None,
            ..cfg.clone()
        };
        let row = CpuRow {
            processes: None,
            ..row
        };
        let cells = row.to_cells(&machine_only);
        assert_eq!(cells.len(), COLUMNS.len());
        assert!(cells[8..].iter().all(String::is_empty));
        assert!(row.summary(&machine_only).contains("%user  12.35"));
    }

    #[test]
    fn default_names() {
        assert_eq!(
            default_output(Some(&ProcessSelector::Name("pound".into()))),
            PathBuf::from("cpu_mon_pound.csv")
        );
        let host = default_output(None);
        assert!(host.to_string_lossy().starts_with("cpu_mon_"));
    }

    #[test]
    fn bad_settings_are_refused_before_any_file_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.csv");
        let cfg = MonitorConfig {
            interval: Duration::ZERO,
            count: Some(1),
            output: out.clone(),
            selector: None,
            time_format: TimeFormat::Utc,
        };
        let s = Shutdown::new().unwrap();
        assert!(monitor(&cfg, &s, |_| {}).unwrap_err().is_usage());
        let cfg = MonitorConfig {
            interval: Duration::from_millis(50),
            count: Some(0),
            ..cfg
        };
        assert!(monitor(&cfg, &s, |_| {}).unwrap_err().is_usage());
        assert!(!out.exists());
    }

    #[test]
    fn samples_this_process_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.csv");
        let cfg = MonitorConfig {
            interval: Duration::from_millis(100),
            count: Some(2),
            output: out.clone(),
            selector: Some(ProcessSelector::Pids(vec![std::process::id()])),
            time_format: TimeFormat::Utc,
        };
        let mut rows = Vec::new();
        let n = monitor(&cfg, &Shutdown::new().unwrap(), |r| rows.push(r.clone())).unwrap();
        assert_eq!(n, 2);
        assert_eq!(rows.len(), 2);
        let (usage, pids) = rows[0].processes.clone().unwrap();
        assert!(pids.contains(&std::process::id()));
        assert!(usage.processes >= 1);
        let total: f64 = {
            let m = rows[0].machine;
            m.user_pct + m.nice_pct + m.system_pct + m.iowait_pct + m.steal_pct + m.idle_pct
        };
        assert!((total - 100.0).abs() < 0.01 || total == 0.0, "{total}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("timestamp,interval_s,cpu_user_pct"));
    }
}
