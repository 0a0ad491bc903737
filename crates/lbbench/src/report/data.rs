//! Reading sweep CSV files (`lbbench sweep`'s or the lab's) into typed runs.
//!
//! Columns are found by name, so any file with lbbench's sweep header works, with or without
//! the lab's CPU columns. Only complete lines count (up to the last newline): a file that a
//! running lab is still appending to never yields half a row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The lab's extra columns (after lbbench's own sweep columns), which the report reads when
/// they are there: the balancer's and the backends' CPU ([`crate::sweep::CpuObserver`] with
/// the prefixes `balancer` and `backends`), CPU-seconds per 1,000 requests, and how busy the
/// whole machine was.
pub const BALANCER_PREFIX: &str = "balancer";
/// See [`BALANCER_PREFIX`].
pub const BACKENDS_PREFIX: &str = "backends";
/// CPU-seconds of the balancer per 1,000 requests httperf sent.
pub const CPU_PER_1K_COLUMN: &str = "balancer_cpu_s_per_1k_req";
/// The whole machine's busy time over the run, in % of all CPUs (100 − `%idle` − `%iowait`
/// of `sar -u`).
pub const MACHINE_BUSY_COLUMN: &str = "machine_busy_pct";

/// One run (one CSV row), with the values the report uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The file it came from.
    pub file: PathBuf,
    /// Its line in that file.
    pub line: usize,
    /// `timestamp`.
    pub timestamp: String,
    /// `server`: the balancer.
    pub server: String,
    /// `tls` (`off` in files from before the column).
    pub tls: crate::httperf::Tls,
    /// `reply_size`: the reply size a size sweep asked for, in bytes.
    pub reply_size: Option<u64>,
    /// `target_rate`: the demanded connection rate.
    pub target_rate: f64,
    /// `run`.
    pub run: u32,
    /// `total_connections`.
    pub connections: u64,
    /// `total_requests`.
    pub requests: u64,
    /// `total_replies`.
    pub replies: u64,
    /// `request_rate_per_sec`: the achieved request rate.
    pub request_rate: f64,
    /// `reply_time_response`, in ms.
    pub reply_ms: f64,
    /// `reply_time_transfer`, in ms: from the reply's first byte to its last (NaN when the
    /// file lacks the column; so for the next three).
    pub transfer_ms: f64,
    /// `reply_size_total`: bytes per reply (header, content and footer), on average.
    pub reply_bytes: f64,
    /// `total_test_duration`, in s.
    pub duration_s: f64,
    /// `cpu_time_total_pct`: httperf's own CPU.
    pub client_cpu_pct: f64,
    /// `connection_time_avg`, in ms.
    pub connection_ms: f64,
    /// `max_concurrent_connections`: the most open at once on httperf's side.
    pub max_open: u64,
    /// `errors_total`.
    pub errors: u64,
    /// `errors_client_timeout`.
    pub client_timeouts: u64,
    /// `errors_conn_refused + errors_conn_reset`.
    pub refused_or_reset: u64,
    /// `errors_fd_unavail + errors_addr_unavail + errors_ftab_full`: httperf itself ran out.
    pub client_limit: u64,
    /// `reply_status_5xx`.
    pub status_5xx: u64,
    /// `valid`.
    pub valid: bool,
    /// `flag_rate_off_target`.
    pub flag_rate_off_target: bool,
    /// `flag_resource_errors`.
    pub flag_resource_errors: bool,
    /// `flag_client_cpu_low`.
    pub flag_client_cpu_low: bool,
    /// `balancer_cpu_pct`: the balancer's CPU over the run, in % of one CPU.
    pub balancer_cpu_pct: Option<f64>,
    /// `balancer_cpu_user_s + balancer_cpu_system_s`.
    pub balancer_cpu_s: Option<f64>,
    /// `backends_cpu_pct`.
    pub backends_cpu_pct: Option<f64>,
    /// [`MACHINE_BUSY_COLUMN`].
    pub machine_busy_pct: Option<f64>,
}

impl Run {
    /// The series it belongs to in the report: the balancer for plain runs, with the TLS
    /// mode for TLS runs (`haproxy TLS`, `nginx TLS resumed`).
    pub fn series(&self) -> String {
        series_name(&self.server, self.tls)
    }

    /// The balancer's CPU-seconds per 1,000 requests sent (`None` without CPU data or
    /// requests); per 1,000 connections for resumed TLS runs, whose requests include
    /// httperf's resent ones (see [`crate::httperf::Tls::Resumed`]).
    pub fn cpu_s_per_1k(&self) -> Option<f64> {
        let n = if self.tls == crate::httperf::Tls::Resumed {
            self.connections
        } else {
            self.requests
        };
        cpu_s_per_1k(self.balancer_cpu_s?, n)
    }

    /// Reply bytes received per second, in MB/s (10^6 bytes): replies × bytes per reply ÷
    /// the run's duration.
    pub fn reply_mb_s(&self) -> Option<f64> {
        reply_mb_s(self.replies, self.reply_bytes, self.duration_s)
    }

    /// The balancer's CPU-seconds per GB (10^9 bytes) of replies it forwarded.
    pub fn cpu_s_per_gb(&self) -> Option<f64> {
        cpu_s_per_gb(self.balancer_cpu_s?, self.replies, self.reply_bytes)
    }

    /// The reasons this run is flagged, in words.
    pub fn flag_reasons(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.flag_rate_off_target {
            r.push("rate off target");
        }
        if self.flag_resource_errors {
            r.push(
                if crate::httperf::validity::near_fd_setsize(self.max_open) {
                    // httperf's select() limit: the balancer fell behind.
                    "httperf at 1,024 open connections (fd-unavail)"
                } else {
                    "client limit (fd-unavail)"
                },
            );
        }
        if self.flag_client_cpu_low {
            r.push("httperf CPU low");
        }
        if r.is_empty() && !self.valid {
            r.push("invalid");
        }
        r
    }
}

/// A series' name: `server` for plain runs, `server TLS` or `server TLS resumed`.
pub fn series_name(server: &str, tls: crate::httperf::Tls) -> String {
    if tls.is_on() {
        format!("{server} {}", tls.label())
    } else {
        server.to_owned()
    }
}

/// CPU-seconds per 1,000 requests: `cpu_s / requests × 1000` (`None` for no requests).
pub fn cpu_s_per_1k(cpu_s: f64, requests: u64) -> Option<f64> {
    (requests > 0 && cpu_s.is_finite()).then(|| cpu_s / requests as f64 * 1000.0)
}

/// Reply throughput in MB/s (10^6 bytes/s): `replies × bytes_per_reply / duration_s`.
pub fn reply_mb_s(replies: u64, bytes_per_reply: f64, duration_s: f64) -> Option<f64> {
    let v = replies as f64 * bytes_per_reply / duration_s / 1e6;
    (duration_s > 0.0 && v.is_finite()).then_some(v)
}

/// CPU-seconds per GB (10^9 bytes) of replies: `cpu_s / (replies × bytes_per_reply) × 10^9`.
pub fn cpu_s_per_gb(cpu_s: f64, replies: u64, bytes_per_reply: f64) -> Option<f64> {
    let bytes = replies as f64 * bytes_per_reply;
    (bytes > 0.0 && cpu_s.is_finite()).then(|| cpu_s / bytes * 1e9)
}

/// The lab's column of [`reply_mb_s`].
pub const REPLY_MB_S_COLUMN: &str = "reply_mb_s";
/// The lab's column of [`cpu_s_per_gb`] for the balancer.
pub const CPU_PER_GB_COLUMN: &str = "balancer_cpu_s_per_gb";

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a sweep CSV.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (naming the line and the column).
        reason: String,
    },
}

/// The runs of one file, and whether its last line was incomplete (a sweep still writing).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFile {
    /// The file.
    pub path: PathBuf,
    /// Its runs, in file order.
    pub runs: Vec<Run>,
    /// Whether text after the last newline was left out.
    pub torn_tail: bool,
    /// 1-based line numbers of rows left out because their server, rate or run cannot be
    /// read (or their cell count is wrong): rows a sweep does again
    /// ([`crate::sweep::resume::row_key`]).
    pub unreadable_lines: Vec<usize>,
}

/// The columns every sweep file must have.
const REQUIRED: &[&str] = &[
    "timestamp",
    "server",
    "target_rate",
    "run",
    "total_connections",
    "total_requests",
    "total_replies",
    "request_rate_per_sec",
    "reply_time_response",
    "connection_time_avg",
    "max_concurrent_connections",
    "errors_total",
    "errors_client_timeout",
    "errors_conn_refused",
    "errors_conn_reset",
    "errors_fd_unavail",
    "errors_addr_unavail",
    "errors_ftab_full",
    "reply_status_5xx",
    "valid",
    "flag_rate_off_target",
    "flag_resource_errors",
    "flag_client_cpu_low",
];

/// Reads a sweep CSV file.
pub fn read_sweep_file(path: &Path) -> Result<SweepFile, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_sweep(&bytes, path)
}

/// [`read_sweep_file`] on the file's bytes (`path` names it in errors and in the runs).
pub fn parse_sweep(bytes: &[u8], path: &Path) -> Result<SweepFile, DataError> {
    let format = |reason: String| DataError::Format {
        path: path.to_owned(),
        reason,
    };
    // The rows a sweep's appender counts as whole (see `common::csvfile::whole_len`).
    let whole = common::csvfile::whole_len(bytes);
    let (complete, torn_tail) = (&bytes[..whole], whole < bytes.len());
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(complete);
    let headers = rdr
        .headers()
        .map_err(|e| format(format!("cannot read the header: {e}")))?
        .clone();
    if headers.is_empty() {
        return Err(format(
            "empty file: no header (is this a sweep CSV?)".into(),
        ));
    }
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| !index.contains_key(c))
        .collect();
    if let Some(first) = missing.first() {
        return Err(format(format!(
            "not a sweep CSV: no `{first}` column{}",
            if missing.len() > 1 {
                format!(" (and {} more)", missing.len() - 1)
            } else {
                String::new()
            }
        )));
    }
    let mut runs = Vec::new();
    let mut unreadable_lines = Vec::new();
    let key_columns = crate::sweep::resume::KeyColumns::find(&headers).map_err(format)?;
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(format(format!("cannot read a row: {e}"))),
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        // As the sweep sees it: a row without a readable key is a run still to do.
        let Some(key) = crate::sweep::resume::row_key(&record, headers.len(), &key_columns) else {
            unreadable_lines.push(line);
            continue;
        };
        let cell = |c: &str| index.get(c).and_then(|&i| record.get(i)).unwrap_or("");
        let bad = |c: &str| {
            format(format!(
                "line {line}: column `{c}`: cannot read `{}`",
                cell(c)
            ))
        };
        macro_rules! get {
            ($c:expr) => {
                crate::csvcell::CsvCell::from_cell(cell($c)).ok_or_else(|| bad($c))?
            };
        }
        // An optional column: absent, or empty, is `None`.
        let opt = |c: &str| -> Result<Option<f64>, DataError> {
            match cell(c).trim() {
                "" => Ok(None),
                t => t.parse().map(Some).map_err(|_| bad(c)),
            }
        };
        let cpu_s = match (
            opt(&format!("{BALANCER_PREFIX}_cpu_user_s"))?,
            opt(&format!("{BALANCER_PREFIX}_cpu_system_s"))?,
        ) {
            (Some(u), Some(s)) => Some(u + s),
            _ => None,
        };
        let u = |c: &str| -> Result<u64, DataError> { Ok(get!(c)) };
        runs.push(Run {
            file: path.to_owned(),
            line,
            timestamp: cell("timestamp").to_owned(),
            server: {
                let s = cell("server");
                if s.is_empty() {
                    return Err(bad("server"));
                }
                s.to_owned()
            },
            tls: key.tls,
            reply_size: key.reply_size,
            target_rate: get!("target_rate"),
            run: get!("run"),
            connections: u("total_connections")?,
            requests: u("total_requests")?,
            replies: u("total_replies")?,
            request_rate: get!("request_rate_per_sec"),
            reply_ms: get!("reply_time_response"),
            // Not needed by the rate report: a hand-made file may lack them (NaN: unknown).
            transfer_ms: opt("reply_time_transfer")?.unwrap_or(f64::NAN),
            reply_bytes: opt("reply_size_total")?.unwrap_or(f64::NAN),
            duration_s: opt("total_test_duration")?.unwrap_or(f64::NAN),
            client_cpu_pct: opt("cpu_time_total_pct")?.unwrap_or(f64::NAN),
            connection_ms: get!("connection_time_avg"),
            max_open: u("max_concurrent_connections")?,
            errors: u("errors_total")?,
            client_timeouts: u("errors_client_timeout")?,
            refused_or_reset: u("errors_conn_refused")? + u("errors_conn_reset")?,
            client_limit: u("errors_fd_unavail")?
                + u("errors_addr_unavail")?
                + u("errors_ftab_full")?,
            status_5xx: u("reply_status_5xx")?,
            // Empty when the rate could not be checked (a resumed TLS run, a report pasted
            // without its command): not flagged for it.
            valid: match cell("valid").trim() {
                "" => true,
                _ => get!("valid"),
            },
            flag_rate_off_target: match cell("flag_rate_off_target").trim() {
                "" => false,
                _ => get!("flag_rate_off_target"),
            },
            flag_resource_errors: get!("flag_resource_errors"),
            flag_client_cpu_low: get!("flag_client_cpu_low"),
            balancer_cpu_pct: opt(&format!("{BALANCER_PREFIX}_cpu_pct"))?,
            balancer_cpu_s: cpu_s,
            backends_cpu_pct: opt(&format!("{BACKENDS_PREFIX}_cpu_pct"))?,
            machine_busy_pct: opt(MACHINE_BUSY_COLUMN)?,
        });
    }
    Ok(SweepFile {
        path: path.to_owned(),
        runs,
        torn_tail,
        unreadable_lines,
    })
}

/// The sweep files of a lab directory: its `perf_*_combined.csv`, sorted by name.
pub fn sweep_files_in(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("perf_") && n.ends_with("_combined.csv"))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sweep::header;

    /// A header like the lab's, and a row with `values` set (every other cell "0" or "false").
    pub(crate) fn lab_csv(rows: &[&[(&str, &str)]]) -> String {
        let extra: Vec<String> = [
            "balancer_cpu_user_s",
            "balancer_cpu_system_s",
            "balancer_cpu_pct",
            "balancer_processes",
            CPU_PER_1K_COLUMN,
            "backends_cpu_user_s",
            "backends_cpu_system_s",
            "backends_cpu_pct",
            "backends_processes",
            MACHINE_BUSY_COLUMN,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let h = header(&extra);
        let mut out = h.join(",");
        out.push('\n');
        for values in rows {
            let cells: Vec<String> = h
                .iter()
                .map(|c| {
                    values
                        .iter()
                        .find(|(k, _)| k == c)
                        .map(|(_, v)| (*v).to_owned())
                        .unwrap_or_else(|| match c.as_str() {
                            "valid" => "true".into(),
                            c if c.starts_with("flag_") => "false".into(),
                            "command" | "timestamp" => "x".into(),
                            "server" => "haproxy".into(),
                            "tls" => "off".into(),
                            "reply_size" => String::new(),
                            "max_open_descriptors" | "reply_rate_series" => String::new(),
                            c if c.starts_with("periodic_")
                                || c.starts_with("session")
                                || c.starts_with("connection_lifetime")
                                || c == "request_rate_deviation_pct" =>
                            {
                                String::new()
                            }
                            _ => "0".into(),
                        })
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    #[test]
    fn an_unchecked_rate_is_not_a_flag() {
        let text = lab_csv(&[&[
            ("tls", "resumed"),
            ("flag_rate_off_target", ""),
            ("valid", ""),
        ]]);
        let f = parse_sweep(text.as_bytes(), Path::new("x.csv")).unwrap();
        let r = &f.runs[0];
        assert!(r.valid && !r.flag_rate_off_target);
        // Per 1,000 connections, not the requests httperf resent.
        let text = lab_csv(&[&[
            ("tls", "resumed"),
            ("total_connections", "1000"),
            ("total_requests", "1750"),
            ("balancer_cpu_user_s", "0.2"),
            ("balancer_cpu_system_s", "0.1"),
        ]]);
        let f = parse_sweep(text.as_bytes(), Path::new("x.csv")).unwrap();
        assert!((f.runs[0].cpu_s_per_1k().unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(r.tls, crate::httperf::Tls::Resumed);
        assert_eq!(r.series(), "haproxy TLS resumed");
    }

    #[test]
    fn reads_the_columns_it_needs_by_name() {
        let text = lab_csv(&[&[
            ("server", "pound"),
            ("target_rate", "500"),
            ("run", "2"),
            ("total_requests", "2000"),
            ("reply_time_response", "201.5"),
            ("errors_fd_unavail", "3"),
            ("errors_conn_reset", "1"),
            ("balancer_cpu_user_s", "0.3"),
            ("balancer_cpu_system_s", "0.5"),
            ("balancer_cpu_pct", "20.0"),
            ("valid", "false"),
            ("flag_resource_errors", "true"),
        ]]);
        let f = parse_sweep(text.as_bytes(), Path::new("x.csv")).unwrap();
        assert!(!f.torn_tail);
        let r = &f.runs[0];
        assert_eq!(
            (r.server.as_str(), r.target_rate, r.run),
            ("pound", 500.0, 2)
        );
        assert_eq!(r.line, 2);
        assert_eq!(r.reply_ms, 201.5);
        assert_eq!((r.client_limit, r.refused_or_reset), (3, 1));
        assert_eq!(r.balancer_cpu_pct, Some(20.0));
        assert_eq!(r.balancer_cpu_s, Some(0.8));
        assert_eq!(r.cpu_s_per_1k(), Some(0.4));
        assert_eq!(r.backends_cpu_pct, Some(0.0));
        assert_eq!(r.flag_reasons(), ["client limit (fd-unavail)"]);
    }

    #[test]
    fn a_plain_sweep_file_has_no_cpu_and_a_torn_line_is_left_out() {
        let mut text = header(&[]).join(",");
        text.push('\n');
        let full = lab_csv(&[&[("target_rate", "100")]]);
        // The same row without the lab's 10 extra cells.
        let row = full.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split(',').collect();
        text.push_str(&cells[..cells.len() - 10].join(","));
        text.push_str("\n2025-01-01,haproxy,2");
        let f = parse_sweep(text.as_bytes(), Path::new("s.csv")).unwrap();
        assert!(f.torn_tail);
        assert_eq!(f.runs.len(), 1);
        assert_eq!(f.runs[0].balancer_cpu_pct, None);
        assert_eq!(f.runs[0].cpu_s_per_1k(), None);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_column() {
        let e = parse_sweep(b"a,b\n1,2\n", Path::new("o.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "o.csv: not a sweep CSV: no `timestamp` column (and 22 more)"
        );
        let text = lab_csv(&[&[("reply_time_response", "fast")]]);
        let e = parse_sweep(text.as_bytes(), Path::new("o.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "o.csv: line 2: column `reply_time_response`: cannot read `fast`"
        );
        let e = parse_sweep(b"", Path::new("e.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("e.csv: "), "{e}");
        assert_eq!(cpu_s_per_1k(1.0, 0), None);
        assert_eq!(cpu_s_per_1k(1.5, 3000), Some(0.5));
    }
}
