//! httperf: its command line ([`args`]), running it ([`run`]), its report ([`report`]) and
//! whether a run is valid ([`validity`]); one report from the reports of several clients that
//! made a run together ([`merge`]).
//!
//! The usual call is [`Httperf::run`]: it checks the arguments, starts httperf, waits for it
//! with a deadline and returns the typed [`Report`]. For several concurrent runs, use
//! [`Httperf::start`] for each, then [`RunningHttperf::wait`] on each.

pub mod args;
pub mod merge;
pub mod report;
pub mod run;
pub mod validity;

pub use args::{HttperfArgs, RESUMED_SESSION_CONNECTIONS, Tls, fmt_rate, num_conns_for};
pub use report::{FoundReport, HistogramBin, Report, ReportError, parse_report, parse_reports};
pub use run::{
    Httperf, HttperfError, HttperfOutput, RawOutput, RunningHttperf, default_deadline,
    resolve_server,
};
pub use validity::{Thresholds, Validity, target_from_command};
