//! Whether a run measured what it was meant to measure.
//!
//! httperf exits 0 even when every connection failed, and its numbers only mean something if
//! the client kept up. A run is flagged when:
//!
//! - the achieved request rate is more than 5% off the target (connections/s × calls), so the
//!   offered load was not what the row says (an overloaded server, or a client that lagged);
//! - `fd-unavail`, `addrunavail` or `ftab-full` is above 0: the man page calls such a run
//!   meaningless, because the client ran out of descriptors or ports;
//! - httperf's own CPU total is below 90%: httperf is a CPU hog by design, so less means
//!   another process competed with it and its timings are suspect.

use serde::Serialize;

use super::report::Report;
use crate::csvcell::{CsvCell, fmt_f64};

/// The limits of a valid run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The largest allowed |achieved − target| / target, in %.
    pub rate_tolerance_pct: f64,
    /// The smallest allowed httperf CPU total, in %.
    pub min_client_cpu_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            rate_tolerance_pct: 5.0,
            min_client_cpu_pct: 90.0,
        }
    }
}

/// The verdict on one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Validity {
    /// The request rate aimed at (req/s), if known.
    pub target_request_rate: Option<f64>,
    /// (achieved − target) / target, in %, if the target is known.
    pub request_rate_deviation_pct: Option<f64>,
    /// The achieved request rate is off the target by more than the tolerance; `None` (an
    /// empty cell) when the target is unknown (a report pasted without its command line).
    pub flag_rate_off_target: Option<bool>,
    /// fd-unavail, addrunavail or ftab-full is above 0.
    pub flag_resource_errors: bool,
    /// httperf's CPU total is below the minimum.
    pub flag_client_cpu_low: bool,
    /// No flag is set; `None` when none of the known flags is set but the rate check could
    /// not be made.
    pub valid: Option<bool>,
}

impl Validity {
    /// The CSV columns, in the order of [`Validity::to_cells`].
    pub const COLUMNS: &'static [&'static str] = &[
        "target_request_rate",
        "request_rate_deviation_pct",
        "flag_rate_off_target",
        "flag_resource_errors",
        "flag_client_cpu_low",
        "valid",
    ];

    /// Judges `report` against `target_request_rate` (req/s; `None` skips the rate check).
    pub fn assess(report: &Report, target_request_rate: Option<f64>, limits: &Thresholds) -> Self {
        let deviation = target_request_rate
            .filter(|t| *t > 0.0)
            .map(|t| (report.request_rate_per_sec - t) / t * 100.0);
        // NaN (httperf divided by a zero duration) counts as off target.
        let flag_rate_off_target =
            deviation.map(|d| d.is_nan() || d.abs() > limits.rate_tolerance_pct);
        let flag_resource_errors =
            report.errors_fd_unavail + report.errors_addr_unavail + report.errors_ftab_full > 0;
        let flag_client_cpu_low = report.cpu_time_total_pct.is_nan()
            || report.cpu_time_total_pct < limits.min_client_cpu_pct;
        Validity {
            target_request_rate,
            request_rate_deviation_pct: deviation,
            flag_rate_off_target,
            flag_resource_errors,
            flag_client_cpu_low,
            valid: if flag_resource_errors
                || flag_client_cpu_low
                || flag_rate_off_target == Some(true)
            {
                Some(false)
            } else {
                flag_rate_off_target.map(|_| true)
            },
        }
    }

    /// The CSV cells, in the order of [`Validity::COLUMNS`].
    pub fn to_cells(&self) -> Vec<String> {
        vec![
            self.target_request_rate.to_cell(),
            self.request_rate_deviation_pct
                .map(|d| fmt_f64((d * 100.0).round() / 100.0))
                .unwrap_or_default(),
            self.flag_rate_off_target.to_cell(),
            self.flag_resource_errors.to_cell(),
            self.flag_client_cpu_low.to_cell(),
            self.valid.to_cell(),
        ]
    }

    /// One sentence per flag that is set, for warnings.
    pub fn warnings(&self, report: &Report, limits: &Thresholds) -> Vec<String> {
        let mut w = Vec::new();
        if self.flag_rate_off_target == Some(true)
            && let (Some(t), Some(d)) = (self.target_request_rate, self.request_rate_deviation_pct)
        {
            w.push(format!(
                "achieved {} req/s, {:.1}% {} the target {} req/s (tolerance {}%)",
                fmt_f64(report.request_rate_per_sec),
                d.abs(),
                if d < 0.0 { "below" } else { "above" },
                super::args::fmt_rate(t),
                limits.rate_tolerance_pct
            ));
        }
        if self.flag_resource_errors {
            if at_fd_setsize(report) {
                w.push(format!(
                    "httperf reached its limit of {FD_SETSIZE} open connections (it had {} \
                     open) and could not open {} more (fd-unavail): the server answered slower \
                     than requests came, so the load was less than demanded",
                    report.max_concurrent_connections, report.errors_fd_unavail
                ));
            } else {
                w.push(format!(
                    "the client ran out of resources (fd-unavail {}, addrunavail {}, ftab-full \
                     {}): httperf's man page calls such a run meaningless; raise `ulimit -n` or \
                     use --hog",
                    report.errors_fd_unavail, report.errors_addr_unavail, report.errors_ftab_full
                ));
            }
        }
        if self.flag_client_cpu_low {
            w.push(format!(
                "httperf used {}% CPU (below {}%): it was starved by other processes, \
                 so its timings are suspect",
                fmt_f64(report.cpu_time_total_pct),
                limits.min_client_cpu_pct
            ));
        }
        w
    }
}

/// httperf 0.9 waits on its sockets with `select()`, so it holds at most `FD_SETSIZE` (1,024)
/// descriptors, whatever `ulimit -n` says (its warning `open file limit > FD_SETSIZE`).
pub const FD_SETSIZE: u64 = 1024;

/// Whether a run's `fd-unavail` errors come from httperf's `FD_SETSIZE` rather than from the
/// open-file limit: it had nearly 1,024 connections open (a few descriptors are its own), which
/// happens when the server answers slower than requests arrive.
pub fn at_fd_setsize(report: &Report) -> bool {
    report.errors_fd_unavail > 0 && near_fd_setsize(report.max_concurrent_connections)
}

/// Whether `max_open` connections are httperf's whole `FD_SETSIZE` (a few descriptors are
/// its own).
pub fn near_fd_setsize(max_open: u64) -> bool {
    max_open + 16 >= FD_SETSIZE
}

/// The request rate a report's own command line aimed at (`--rate` × `--num-calls`), or
/// `None` if the command has no `--rate` or uses sessions (`--wsess`, `--wsesslog`), whose
/// request rate is not a simple product.
pub fn target_from_command(report: &Report) -> Option<f64> {
    if report.command_option("wsess").is_some() || report.command_option("wsesslog").is_some() {
        return None;
    }
    let rate: f64 = report.command_option("rate")?.parse().ok()?;
    let calls: f64 = report
        .command_option("num-calls")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1.0);
    Some(rate * calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(req_rate: f64, cpu: f64, fd: u64) -> Report {
        Report {
            command: "httperf --server=h --rate=100 --num-calls=2".into(),
            request_rate_per_sec: req_rate,
            cpu_time_total_pct: cpu,
            errors_fd_unavail: fd,
            ..Report::default()
        }
    }

    #[test]
    fn a_good_run_is_valid() {
        let v = Validity::assess(&report(196.0, 99.5, 0), Some(200.0), &Thresholds::default());
        assert_eq!(v.valid, Some(true));
        assert_eq!(v.request_rate_deviation_pct, Some(-2.0));
        assert_eq!(
            v.to_cells(),
            ["200.0", "-2.0", "false", "false", "false", "true"]
        );
        assert!(
            v.warnings(&report(196.0, 99.5, 0), &Thresholds::default())
                .is_empty()
        );
    }

    #[test]
    fn each_flag_and_its_warning() {
        let t = Thresholds::default();
        let r = report(180.0, 99.5, 0);
        let v = Validity::assess(&r, Some(200.0), &t);
        assert_eq!((v.flag_rate_off_target, v.valid), (Some(true), Some(false)));
        let w = v.warnings(&r, &t);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("10.0% below the target 200 req/s"), "{w:?}");

        let r = report(200.0, 99.5, 3);
        let v = Validity::assess(&r, Some(200.0), &t);
        assert!(v.flag_resource_errors);
        assert_eq!(
            (v.flag_rate_off_target, v.valid),
            (Some(false), Some(false))
        );
        assert!(v.warnings(&r, &t)[0].contains("fd-unavail 3"));
        // Nearly 1,024 open: httperf's own select() limit, the server fell behind.
        let mut r = report(180.0, 99.5, 554);
        r.max_concurrent_connections = 1020;
        let v = Validity::assess(&r, Some(200.0), &t);
        assert!(at_fd_setsize(&r));
        let w = v.warnings(&r, &t);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[1].starts_with("httperf reached its limit of 1024 open connections (it had 1020 open) and could not open 554 more"),
            "{w:?}"
        );

        let r = report(200.0, 83.0, 0);
        let v = Validity::assess(&r, Some(200.0), &t);
        assert!(v.flag_client_cpu_low && v.valid == Some(false));
        assert!(v.warnings(&r, &t)[0].contains("83.0% CPU"));
    }

    #[test]
    fn exactly_at_the_tolerance_passes_and_no_target_skips_the_check() {
        let t = Thresholds::default();
        let off = |rate, target| Validity::assess(&report(rate, 95.0, 0), target, &t);
        assert_eq!(off(105.0, Some(100.0)).flag_rate_off_target, Some(false));
        assert_eq!(off(105.1, Some(100.0)).flag_rate_off_target, Some(true));
        assert_eq!(off(f64::NAN, Some(100.0)).flag_rate_off_target, Some(true));
        // Without a target, what needs it is unknown: empty cells.
        let v = off(1.0, None);
        assert_eq!((v.flag_rate_off_target, v.valid), (None, None));
        assert!(v.request_rate_deviation_pct.is_none());
        assert_eq!(v.to_cells(), ["", "", "", "false", "false", ""]);
        // Another flag decides validity all the same.
        let v = Validity::assess(&report(1.0, 95.0, 3), None, &t);
        assert_eq!(v.valid, Some(false));
    }

    #[test]
    fn target_from_the_echoed_command() {
        assert_eq!(target_from_command(&report(0.0, 0.0, 0)), Some(200.0));
        let mut r = report(0.0, 0.0, 0);
        r.command = "httperf --server=h --wsess=10,3,0.1 --rate=5".into();
        assert_eq!(target_from_command(&r), None);
        r.command = "httperf --server=h".into();
        assert_eq!(target_from_command(&r), None);
        r.command = "httperf --server=h --rate=50".into();
        assert_eq!(target_from_command(&r), Some(50.0));
    }
}
