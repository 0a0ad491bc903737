//! httperf's report, parsed line by line into typed fields.
//!
//! httperf prints its report on stdout (`src/stat/basic.c` `dump()`, `src/core.c`,
//! `src/stat/sess_stat.c`):
//!
//! ```text
//! httperf --hog --timeout=5 --client=0/1 --server=127.0.0.1 --port=18080 --uri=/ --rate=50 ...
//! Maximum connect burst length: 1
//!
//! Total: connections 200 requests 200 replies 200 test-duration 3.982 s
//!
//! Connection rate: 50.2 conn/s (19.9 ms/conn, <=1 concurrent connections)
//! Connection time [ms]: min 1.3 avg 3.4 max 14.4 median 3.5 stddev 2.0
//! Connection time [ms]: connect 0.0
//! Connection length [replies/conn]: 1.000
//!
//! Request rate: 50.2 req/s (19.9 ms/req)
//! Request size [B]: 62.0
//!
//! Reply rate [replies/s]: min 0.0 avg 0.0 max 0.0 stddev 0.0 (0 samples)
//! Reply time [ms]: response 3.4 transfer 0.0
//! Reply size [B]: header 209.0 content 58.0 footer 0.0 (total 267.0)
//! Reply status: 1xx=0 2xx=200 3xx=0 4xx=0 5xx=0
//!
//! CPU time [s]: user 0.48 system 2.83 (user 12.0% system 71.1% total 83.0%)
//! Net I/O: 16.1 KB/s (0.1*10^6 bps)
//!
//! Errors: total 0 client-timo 0 socket-timo 0 connrefused 0 connreset 0
//! Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0
//! ```
//!
//! Besides these lines, which every report has, the parser reads the optional ones:
//! `httperf: maximum number of open descriptors = N`, the `reply-rate = X` and
//! `session-rate = X` samples (`--verbose`), the connection lifetime histogram
//! (`--verbose --verbose`), `Periodic stats:` (httperf 0.9.1+ with `--periodic-stats`), and the
//! session block (`--wsess`, `--wsesslog`). Lines it does not know (warnings, `--print-reply`
//! output) are ignored. A known line whose numbers cannot be read is an error naming the line,
//! and so is a report that lacks a line httperf always prints, or whose last line lacks the
//! newline httperf ends it with (the output was cut, maybe inside a number).
//!
//! Reports pasted from terminals, blog posts and READMEs often lack the command line echo:
//! they are read all the same, with an empty `command` (so the target rate is unknown), and
//! several of them back to back are told apart at the lines that can only begin a report
//! ([`parse_reports`]).
//!
//! [`Report::COLUMNS`] lists the fields in httperf's print order under the names of the
//! report's CSV (its listing 2.2), which came from httperfpy.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Serialize;

use crate::csvcell::{CsvCell, fmt_f64};

/// One bin of the connection lifetime histogram (`--verbose --verbose`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistogramBin {
    /// The bin's centre, in ms.
    pub ms: f64,
    /// Connections whose lifetime fell in the bin.
    pub count: u64,
}

impl CsvCell for Vec<HistogramBin> {
    /// `ms:count` pairs separated by spaces.
    fn to_cell(&self) -> String {
        self.iter()
            .map(|b| format!("{}:{}", fmt_f64(b.ms), b.count))
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.split_whitespace()
            .map(|pair| {
                let (ms, count) = pair.split_once(':')?;
                Some(HistogramBin {
                    ms: ms.parse().ok()?,
                    count: count.parse().ok()?,
                })
            })
            .collect()
    }
}

/// Declares [`Report`] once, so the struct, its column names and its CSV cells cannot drift
/// apart.
macro_rules! report_struct {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty ),* $(,)?) => {
        /// Everything httperf reports about one run, typed: counts are `u64`, measured values
        /// `f64`. Optional lines are `None` (or empty lists) when httperf did not print them.
        #[derive(Debug, Clone, PartialEq, Default, Serialize)]
        pub struct Report {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl Report {
            /// The field names, in httperf's print order: the columns of lbbench's CSV files.
            pub const COLUMNS: &'static [&'static str] = &[ $( stringify!($name) ),* ];

            /// The fields as CSV cells, in the order of [`Report::COLUMNS`].
            pub fn to_cells(&self) -> Vec<String> {
                vec![ $( CsvCell::to_cell(&self.$name) ),* ]
            }

            /// Reads back the cells written by [`Report::to_cells`]. On failure, returns the
            /// name of the first column whose cell is not a value of its type.
            pub fn from_cells<S: AsRef<str>>(cells: &[S]) -> Result<Report, &'static str> {
                let mut it = cells.iter();
                Ok(Report {
                    $( $name: it
                        .next()
                        .and_then(|c| CsvCell::from_cell(c.as_ref()))
                        .ok_or(stringify!($name))?, )*
                })
            }
        }
    };
}

report_struct! {
    /// The command line httperf echoes first, with every default filled in.
    command: String,
    /// `httperf: maximum number of open descriptors = N` (`--verbose`).
    max_open_descriptors: Option<u64>,
    /// The `reply-rate = X` samples, one every 5 s (`--verbose`), in replies/s.
    reply_rate_series: Vec<f64>,
    /// `Maximum connect burst length`.
    max_connect_burst_length: u64,
    /// Connection lifetime histogram (`--verbose --verbose`).
    connection_lifetime_histogram: Vec<HistogramBin>,
    /// `Total: connections`.
    total_connections: u64,
    /// `Total: requests`.
    total_requests: u64,
    /// `Total: replies`.
    total_replies: u64,
    /// `Total: test-duration`, in s (includes waiting for the last replies).
    total_test_duration: f64,
    /// `Connection rate`, in conn/s.
    connection_rate_per_sec: f64,
    /// `Connection rate`, in ms between connections.
    connection_rate_ms_conn: f64,
    /// `Connection rate`: the most connections open at once.
    max_concurrent_connections: u64,
    /// `Connection time [ms]: min`.
    connection_time_min: f64,
    /// `Connection time [ms]: avg`.
    connection_time_avg: f64,
    /// `Connection time [ms]: max`.
    connection_time_max: f64,
    /// `Connection time [ms]: median` (from a histogram of 1 ms bins).
    connection_time_median: f64,
    /// `Connection time [ms]: stddev`.
    connection_time_stddev: f64,
    /// `Connection time [ms]: connect`: the mean time to establish a connection.
    connection_time_connect: f64,
    /// `Connection length [replies/conn]`.
    connection_length: f64,
    /// `Request rate`, in req/s: the achieved rate.
    request_rate_per_sec: f64,
    /// `Request rate`, in ms between requests.
    request_rate_ms_request: f64,
    /// `Request size [B]`.
    request_size: f64,
    /// `Reply rate [replies/s]: min` over the 5 s samples.
    reply_rate_min: f64,
    /// `Reply rate [replies/s]: avg`.
    reply_rate_avg: f64,
    /// `Reply rate [replies/s]: max`.
    reply_rate_max: f64,
    /// `Reply rate [replies/s]: stddev`.
    reply_rate_stddev: f64,
    /// `Reply rate`: the number of 5 s samples (0 for runs shorter than 5 s).
    reply_rate_samples: u64,
    /// `Reply time [ms]: response`: first byte sent to first byte of the reply.
    reply_time_response: f64,
    /// `Reply time [ms]: transfer`: reading the reply.
    reply_time_transfer: f64,
    /// `Reply size [B]: header`.
    reply_size_header: f64,
    /// `Reply size [B]: content`.
    reply_size_content: f64,
    /// `Reply size [B]: footer`.
    reply_size_footer: f64,
    /// `Reply size [B]: total`.
    reply_size_total: f64,
    /// `Reply status: 1xx`.
    reply_status_1xx: u64,
    /// `Reply status: 2xx`.
    reply_status_2xx: u64,
    /// `Reply status: 3xx`.
    reply_status_3xx: u64,
    /// `Reply status: 4xx`.
    reply_status_4xx: u64,
    /// `Reply status: 5xx`.
    reply_status_5xx: u64,
    /// `Periodic stats: 200=` (httperf 0.9.1+ with `--periodic-stats`).
    periodic_stats_200: Option<u64>,
    /// `Periodic stats: 302=`.
    periodic_stats_302: Option<u64>,
    /// `CPU time [s]: user`: httperf's own CPU, not the server's.
    cpu_time_user_sec: f64,
    /// `CPU time [s]: system`.
    cpu_time_system_sec: f64,
    /// `CPU time`: user, in % of the test duration.
    cpu_time_user_pct: f64,
    /// `CPU time`: system, in %.
    cpu_time_system_pct: f64,
    /// `CPU time`: total, in %; well below 100% means httperf was starved.
    cpu_time_total_pct: f64,
    /// `Net I/O`, in KB/s (1 KB = 1024 bytes).
    net_io_kb_sec: f64,
    /// `Net I/O`, in bits/s (httperf prints `0.2*10^6 bps`, which is 200000.0 here).
    net_io_bps: f64,
    /// `Errors: total` (does not count HTTP 5xx replies).
    errors_total: u64,
    /// `Errors: client-timo`: replies not received within `--timeout`.
    errors_client_timeout: u64,
    /// `Errors: socket-timo`.
    errors_socket_timeout: u64,
    /// `Errors: connrefused`.
    errors_conn_refused: u64,
    /// `Errors: connreset`.
    errors_conn_reset: u64,
    /// `Errors: fd-unavail`: httperf ran out of file descriptors (the run is meaningless).
    errors_fd_unavail: u64,
    /// `Errors: addrunavail`: httperf ran out of local ports (the run is meaningless).
    errors_addr_unavail: u64,
    /// `Errors: ftab-full`: the file table was full (the run is meaningless).
    errors_ftab_full: u64,
    /// `Errors: other`.
    errors_other: u64,
    /// `Session rate [sess/s]: min` (`--wsess`/`--wsesslog`).
    session_rate_min: Option<f64>,
    /// `Session rate [sess/s]: avg` (completed sessions / test duration).
    session_rate_avg: Option<f64>,
    /// `Session rate [sess/s]: max`.
    session_rate_max: Option<f64>,
    /// `Session rate [sess/s]: stddev`.
    session_rate_stddev: Option<f64>,
    /// `Session rate`: sessions completed (the first number of `(N/M)`).
    sessions_completed: Option<u64>,
    /// `Session rate`: sessions started, completed or failed (the second number of `(N/M)`).
    sessions_total: Option<u64>,
    /// `Session: avg ... connections/session`.
    session_connections_avg: Option<f64>,
    /// `Session lifetime [s]`.
    session_lifetime_sec: Option<f64>,
    /// `Session failtime [s]`.
    session_failtime_sec: Option<f64>,
    /// `Session length histogram`: sessions by number of calls, from 0 calls up.
    session_length_histogram: Vec<u64>,
    /// The `session-rate = X` samples (`--verbose` with sessions), in sessions/s.
    session_rate_series: Vec<f64>,
}

impl Report {
    /// The value of `--NAME=VALUE` in the echoed command line, if it is there.
    pub fn command_option(&self, name: &str) -> Option<&str> {
        command_option(&self.command, name)
    }
}

/// The value of `--NAME=VALUE` (or `--NAME VALUE`) in a command line. A value httperf
/// echoes between single quotes (`--add-header='Connection: close\n'`) is returned without
/// them.
pub fn command_option<'a>(command: &'a str, name: &str) -> Option<&'a str> {
    let flag = format!("--{name}");
    let mut tokens = command_words(command).into_iter();
    let mut found = None;
    while let Some(t) = tokens.next() {
        if let Some(v) = t.strip_prefix(&flag) {
            if let Some(v) = v.strip_prefix('=') {
                found = Some(unquote(v));
            } else if v.is_empty() {
                found = tokens.next().map(unquote);
            }
        }
    }
    found
}

/// The words of a command line echo: split at whitespace, except inside single quotes, which
/// httperf puts around values that may hold spaces (`--add-header='Connection: close\n'`,
/// `--method=`, `--wsesslog=`). An unclosed quote runs to the end of the line.
pub fn command_words(line: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '\'' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    words.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        words.push(&line[s..]);
    }
    words
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(v)
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// The text has no httperf report at all.
    #[error(
        "no httperf report found (no line like `httperf --client=0/1 --server=...` or \
         `Total: connections ...`)"
    )]
    Empty,
    /// The report's last line lacks the newline httperf prints after every line: the output
    /// was cut, perhaps inside its last number.
    #[error(
        "incomplete httperf report: line {line_no} (`{text}`) lacks the newline httperf prints \
         after it, so the output may have been cut inside it; if the report is whole, end the \
         file with a newline"
    )]
    Unterminated {
        /// 1-based line number.
        line_no: usize,
        /// The line.
        text: String,
    },
    /// The text holds more than one report where one was expected.
    #[error("{count} httperf reports where one was expected (the second starts at line {second})")]
    Several {
        /// How many.
        count: usize,
        /// 1-based line number where the second starts.
        second: usize,
    },
    /// A line httperf always prints is missing: the report is truncated or not httperf's.
    #[error("incomplete httperf report: the `{missing}` line is missing{}", more_missing(.also))]
    Missing {
        /// The first missing line, in print order, by its start (`Net I/O:`).
        missing: &'static str,
        /// Other missing lines.
        also: Vec<&'static str>,
    },
    /// A line that starts like one of httperf's has numbers that cannot be read.
    #[error("line {line_no}: cannot read httperf's `{kind}` line: `{text}`")]
    Malformed {
        /// 1-based line number in the text given to the parser.
        line_no: usize,
        /// Which line it should have been.
        kind: &'static str,
        /// The line.
        text: String,
    },
    /// A line that appears once per report appears twice.
    #[error(
        "line {line_no}: a second `{kind}` line in one report; \
         are these two reports without their command lines?"
    )]
    Duplicate {
        /// 1-based line number of the second occurrence.
        line_no: usize,
        /// Which line.
        kind: &'static str,
    },
}

fn more_missing(also: &[&'static str]) -> String {
    if also.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = also.iter().map(|n| format!("`{n}`")).collect();
        format!(" (and {} more: {})", also.len(), names.join(", "))
    }
}

/// One report found in a text that may hold several.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundReport {
    /// 1-based line number of the report's first line (its command line, or its first
    /// line httperf prints when the command line is not there).
    pub line_no: usize,
    /// The report, or why it could not be read.
    pub result: Result<Report, ReportError>,
}

/// Parses the single report in `text` (httperf's stdout, or one report pasted from a
/// terminal). Text before the report (a typed command, warnings) is ignored. Without its
/// command line echo, the report is read all the same, with an empty `command`.
pub fn parse_report(text: &str) -> Result<Report, ReportError> {
    let mut found = parse_reports(text);
    match found.len() {
        0 => Err(ReportError::Empty),
        1 => found.remove(0).result,
        count => Err(ReportError::Several {
            count,
            second: found[1].line_no,
        }),
    }
}

/// Parses every report in `text`: saved outputs of several runs one after another, or
/// reports pasted without their command lines. A report starts at httperf's command line
/// echo, or, without one, at a line that can only begin a report: one that httperf prints
/// before its `Total:` line (the descriptors line, `reply-rate =` samples, the burst line, the
/// histogram) coming after the statistics of the report before, or a second `Total:` line.
/// Text that holds no line of a report is ignored.
///
/// httperf ends every line with a newline: a text whose last line lacks it was cut, and if
/// that line is one of the report's, the report is incomplete
/// ([`ReportError::Unterminated`]), since its last number may be cut short.
pub fn parse_reports(text: &str) -> Vec<FoundReport> {
    let lines: Vec<&str> = text.lines().collect();
    let unterminated_last = (!text.is_empty() && !text.ends_with('\n'))
        .then(|| lines.len().saturating_sub(1))
        .filter(|&i| known_kind(lines[i].trim()).is_some());
    split_reports(&lines)
        .into_iter()
        .map(|seg| {
            let body_start = seg.start + usize::from(seg.command.is_some());
            let result = match unterminated_last {
                Some(i) if (seg.start..seg.end).contains(&i) => Err(ReportError::Unterminated {
                    line_no: i + 1,
                    text: lines[i].trim().to_owned(),
                }),
                _ => parse_lines(
                    &lines[body_start..seg.end],
                    body_start,
                    seg.command.map(|c| lines[c].trim()),
                ),
            };
            FoundReport {
                line_no: seg.start + 1,
                result,
            }
        })
        .collect()
}

/// The lines `start..end` of one report, its command line echo at `start` if it has one.
struct Segment {
    start: usize,
    end: usize,
    command: Option<usize>,
}

/// Where each report of a text starts and ends (see [`parse_reports`]).
fn split_reports(lines: &[&str]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut cur = Segment {
        start: 0,
        end: 0,
        command: None,
    };
    // Whether the current segment has a line of a report, its statistics began, and its
    // `Total:` line was seen.
    let (mut content, mut in_stats, mut seen_total) = (false, false, false);
    let mut close = |cur: &mut Segment, content: bool, at: usize| {
        cur.end = at;
        if content || cur.command.is_some() {
            out.push(Segment { ..*cur });
        }
        cur.start = at;
        cur.command = None;
    };
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if is_command_echo(line) {
            close(&mut cur, content, i);
            cur.command = Some(i);
            (content, in_stats, seen_total) = (false, false, false);
            continue;
        }
        let Some(kind) = known_kind(line) else {
            continue;
        };
        let starts_new = (kind.before_total() && in_stats) || (kind.is_total() && seen_total);
        if starts_new {
            close(&mut cur, content, i);
            (in_stats, seen_total) = (false, false);
        } else if !content && cur.command.is_none() {
            // Text before a report's first line (a typed command, warnings) is not its own.
            cur.start = i;
        }
        content = true;
        in_stats |= !kind.before_total();
        seen_total |= kind.is_total();
    }
    close(&mut cur, content, lines.len());
    out
}

/// Which kind of report line `line` is (by its start; the descriptors line by what it holds).
fn known_kind(line: &str) -> Option<LineKindRef> {
    if line == HISTOGRAM_HEADER {
        return Some(LineKindRef::Histogram);
    }
    KINDS
        .iter()
        .enumerate()
        .find(|(k, kind)| {
            line.contains(kind.key) && (line.starts_with(kind.key) || REGEXES[*k].is_match(line))
        })
        .map(|(_, kind)| LineKindRef::Kind(kind))
}

/// A line of a report: one of [`KINDS`], or the histogram's header.
enum LineKindRef {
    Kind(&'static LineKind),
    Histogram,
}

impl LineKindRef {
    /// Lines httperf prints before `Total:` (after its command line).
    fn before_total(&self) -> bool {
        match self {
            LineKindRef::Histogram => true,
            LineKindRef::Kind(k) => BEFORE_TOTAL.contains(&k.key),
        }
    }

    fn is_total(&self) -> bool {
        matches!(self, LineKindRef::Kind(k) if k.key == "Total:")
    }
}

/// The lines httperf prints between its command line and `Total:`.
const BEFORE_TOTAL: &[&str] = &[
    "maximum number of open descriptors",
    "reply-rate =",
    "session-rate =",
    "Maximum connect burst length:",
];

/// Whether a line is httperf's echo of its command line: the program's name, then only
/// options, among them `--server=` (httperf always echoes `--client=` and `--server=`).
/// Values in single quotes may hold spaces ([`command_words`]).
pub fn is_command_echo(line: &str) -> bool {
    let mut tokens = command_words(line).into_iter();
    let Some(prog) = tokens.next() else {
        return false;
    };
    if prog.starts_with('-') || prog.contains(':') {
        return false;
    }
    let mut has_server = false;
    let mut n = 0;
    for t in tokens {
        if !t.starts_with('-') {
            return false;
        }
        has_server |= t.starts_with("--server=");
        n += 1;
    }
    n > 0 && has_server
}

type Apply = fn(&Captures<'_>, &mut Report) -> Option<()>;

/// One kind of line httperf prints.
struct LineKind {
    /// How the line starts; a line that starts so but does not match is malformed.
    key: &'static str,
    /// Must every report have it?
    required: bool,
    /// May it appear more than once (samples, the burst line printed again on SIGINT)?
    repeats: bool,
    /// `{u}` stands for an unsigned count, `{f}` for a float, a space for any whitespace.
    pattern: &'static str,
    apply: Apply,
}

fn u(c: &Captures<'_>, i: usize) -> Option<u64> {
    c.get(i)?.as_str().parse().ok()
}

fn f(c: &Captures<'_>, i: usize) -> Option<f64> {
    c.get(i)?.as_str().parse().ok()
}

/// The kinds of lines, in httperf's print order.
const KINDS: &[LineKind] = &[
    LineKind {
        key: "maximum number of open descriptors",
        required: false,
        repeats: false,
        pattern: r"\S+: maximum number of open descriptors = {u}",
        apply: |c, r| {
            r.max_open_descriptors = Some(u(c, 1)?);
            Some(())
        },
    },
    LineKind {
        key: "reply-rate =",
        required: false,
        repeats: true,
        pattern: r"reply-rate = {f}",
        apply: |c, r| {
            r.reply_rate_series.push(f(c, 1)?);
            Some(())
        },
    },
    LineKind {
        key: "Maximum connect burst length:",
        required: true,
        repeats: true,
        pattern: r"Maximum connect burst length: {u}",
        apply: |c, r| {
            r.max_connect_burst_length = u(c, 1)?;
            Some(())
        },
    },
    LineKind {
        key: "Total:",
        required: true,
        repeats: false,
        pattern: r"Total: connections {u} requests {u} replies {u} test-duration {f} s",
        apply: |c, r| {
            r.total_connections = u(c, 1)?;
            r.total_requests = u(c, 2)?;
            r.total_replies = u(c, 3)?;
            r.total_test_duration = f(c, 4)?;
            Some(())
        },
    },
    LineKind {
        key: "Connection rate:",
        required: true,
        repeats: false,
        pattern: r"Connection rate: {f} conn/s \({f} ms/conn, <={u} concurrent connections\)",
        apply: |c, r| {
            r.connection_rate_per_sec = f(c, 1)?;
            r.connection_rate_ms_conn = f(c, 2)?;
            r.max_concurrent_connections = u(c, 3)?;
            Some(())
        },
    },
    LineKind {
        key: "Connection time [ms]: min",
        required: true,
        repeats: false,
        pattern: r"Connection time \[ms\]: min {f} avg {f} max {f} median {f} stddev {f}",
        apply: |c, r| {
            r.connection_time_min = f(c, 1)?;
            r.connection_time_avg = f(c, 2)?;
            r.connection_time_max = f(c, 3)?;
            r.connection_time_median = f(c, 4)?;
            r.connection_time_stddev = f(c, 5)?;
            Some(())
        },
    },
    LineKind {
        key: "Connection time [ms]: connect",
        required: true,
        repeats: false,
        pattern: r"Connection time \[ms\]: connect {f}",
        apply: |c, r| {
            r.connection_time_connect = f(c, 1)?;
            Some(())
        },
    },
    LineKind {
        key: "Connection length [replies/conn]:",
        required: true,
        repeats: false,
        pattern: r"Connection length \[replies/conn\]: {f}",
        apply: |c, r| {
            r.connection_length = f(c, 1)?;
            Some(())
        },
    },
    LineKind {
        key: "Request rate:",
        required: true,
        repeats: false,
        pattern: r"Request rate: {f} req/s \({f} ms/req\)",
        apply: |c, r| {
            r.request_rate_per_sec = f(c, 1)?;
            r.request_rate_ms_request = f(c, 2)?;
            Some(())
        },
    },
    LineKind {
        key: "Request size [B]:",
        required: true,
        repeats: false,
        pattern: r"Request size \[B\]: {f}",
        apply: |c, r| {
            r.request_size = f(c, 1)?;
            Some(())
        },
    },
    LineKind {
        key: "Reply rate [replies/s]:",
        required: true,
        repeats: false,
        pattern: r"Reply rate \[replies/s\]: min {f} avg {f} max {f} stddev {f} \({u} samples\)",
        apply: |c, r| {
            r.reply_rate_min = f(c, 1)?;
            r.reply_rate_avg = f(c, 2)?;
            r.reply_rate_max = f(c, 3)?;
            r.reply_rate_stddev = f(c, 4)?;
            r.reply_rate_samples = u(c, 5)?;
            Some(())
        },
    },
    LineKind {
        key: "Reply time [ms]:",
        required: true,
        repeats: false,
        pattern: r"Reply time \[ms\]: response {f} transfer {f}",
        apply: |c, r| {
            r.reply_time_response = f(c, 1)?;
            r.reply_time_transfer = f(c, 2)?;
            Some(())
        },
    },
    LineKind {
        key: "Reply size [B]:",
        required: true,
        repeats: false,
        pattern: r"Reply size \[B\]: header {f} content {f} footer {f} \(total {f}\)",
        apply: |c, r| {
            r.reply_size_header = f(c, 1)?;
            r.reply_size_content = f(c, 2)?;
            r.reply_size_footer = f(c, 3)?;
            r.reply_size_total = f(c, 4)?;
            Some(())
        },
    },
    LineKind {
        key: "Reply status:",
        required: true,
        repeats: false,
        pattern: r"Reply status: 1xx={u} 2xx={u} 3xx={u} 4xx={u} 5xx={u}",
        apply: |c, r| {
            r.reply_status_1xx = u(c, 1)?;
            r.reply_status_2xx = u(c, 2)?;
            r.reply_status_3xx = u(c, 3)?;
            r.reply_status_4xx = u(c, 4)?;
            r.reply_status_5xx = u(c, 5)?;
            Some(())
        },
    },
    LineKind {
        key: "Periodic stats:",
        required: false,
        repeats: false,
        pattern: r"Periodic stats: 200={u} 302={u}",
        apply: |c, r| {
            r.periodic_stats_200 = Some(u(c, 1)?);
            r.periodic_stats_302 = Some(u(c, 2)?);
            Some(())
        },
    },
    LineKind {
        key: "CPU time [s]:",
        required: true,
        repeats: false,
        pattern: r"CPU time \[s\]: user {f} system {f} \(user {f}% system {f}% total {f}%\)",
        apply: |c, r| {
            r.cpu_time_user_sec = f(c, 1)?;
            r.cpu_time_system_sec = f(c, 2)?;
            r.cpu_time_user_pct = f(c, 3)?;
            r.cpu_time_system_pct = f(c, 4)?;
            r.cpu_time_total_pct = f(c, 5)?;
            Some(())
        },
    },
    LineKind {
        key: "Net I/O:",
        required: true,
        repeats: false,
        pattern: r"Net I/O: {f} KB/s \({f}\*10\^([-+]?\d+) bps\)",
        apply: |c, r| {
            r.net_io_kb_sec = f(c, 1)?;
            let mantissa = f(c, 2)?;
            let exponent: i32 = c.get(3)?.as_str().parse().ok()?;
            r.net_io_bps = scale10(mantissa, exponent);
            Some(())
        },
    },
    LineKind {
        key: "Errors: total",
        required: true,
        repeats: false,
        pattern: r"Errors: total {u} client-timo {u} socket-timo {u} connrefused {u} connreset {u}",
        apply: |c, r| {
            r.errors_total = u(c, 1)?;
            r.errors_client_timeout = u(c, 2)?;
            r.errors_socket_timeout = u(c, 3)?;
            r.errors_conn_refused = u(c, 4)?;
            r.errors_conn_reset = u(c, 5)?;
            Some(())
        },
    },
    LineKind {
        key: "Errors: fd-unavail",
        required: true,
        repeats: false,
        // `addrnavail` is how the lab report's sample output (its listing 2.1) spells it.
        pattern: r"Errors: fd-unavail {u} addru?navail {u} ftab-full {u} other {u}",
        apply: |c, r| {
            r.errors_fd_unavail = u(c, 1)?;
            r.errors_addr_unavail = u(c, 2)?;
            r.errors_ftab_full = u(c, 3)?;
            r.errors_other = u(c, 4)?;
            Some(())
        },
    },
    LineKind {
        key: "Session rate [sess/s]:",
        required: false,
        repeats: false,
        pattern: r"Session rate \[sess/s\]: min {f} avg {f} max {f} stddev {f} \({u}/{u}\)",
        apply: |c, r| {
            r.session_rate_min = Some(f(c, 1)?);
            r.session_rate_avg = Some(f(c, 2)?);
            r.session_rate_max = Some(f(c, 3)?);
            r.session_rate_stddev = Some(f(c, 4)?);
            r.sessions_completed = Some(u(c, 5)?);
            r.sessions_total = Some(u(c, 6)?);
            Some(())
        },
    },
    LineKind {
        key: "Session: avg",
        required: false,
        repeats: false,
        pattern: r"Session: avg {f} connections/session",
        apply: |c, r| {
            r.session_connections_avg = Some(f(c, 1)?);
            Some(())
        },
    },
    LineKind {
        key: "Session lifetime [s]:",
        required: false,
        repeats: false,
        pattern: r"Session lifetime \[s\]: {f}",
        apply: |c, r| {
            r.session_lifetime_sec = Some(f(c, 1)?);
            Some(())
        },
    },
    LineKind {
        key: "Session failtime [s]:",
        required: false,
        repeats: false,
        pattern: r"Session failtime \[s\]: {f}",
        apply: |c, r| {
            r.session_failtime_sec = Some(f(c, 1)?);
            Some(())
        },
    },
    LineKind {
        key: "Session length histogram:",
        required: false,
        repeats: false,
        pattern: r"Session length histogram:((?: \d+)*)",
        apply: |c, r| {
            r.session_length_histogram = c
                .get(1)?
                .as_str()
                .split_whitespace()
                .map(|t| t.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            Some(())
        },
    },
    LineKind {
        key: "session-rate =",
        required: false,
        repeats: true,
        pattern: r"session-rate = {f}",
        apply: |c, r| {
            r.session_rate_series.push(f(c, 1)?);
            Some(())
        },
    },
];

/// The session lines come as a block: if the first is there, the others must be.
const SESSION_BLOCK: &[&str] = &[
    "Session rate [sess/s]:",
    "Session: avg",
    "Session lifetime [s]:",
    "Session failtime [s]:",
    "Session length histogram:",
];

const HISTOGRAM_HEADER: &str = "Connection lifetime histogram (time in ms):";

/// A number as C's printf prints a double (`%.1f`, and `nan`, `-nan`, `inf` after a division
/// by zero).
const FLOAT: &str = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+|(?i:nan|inf(?:inity)?)))";
const COUNT: &str = r"(\d+)";

static REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    KINDS
        .iter()
        .map(|k| {
            let body = k
                .pattern
                .replace(' ', r"\s+")
                .replace("{u}", COUNT)
                .replace("{f}", FLOAT);
            // The patterns are constants, checked by the tests.
            Regex::new(&format!(r"^{body}$")).expect("a valid line pattern")
        })
        .collect()
});

static HISTOGRAM_ROW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^{FLOAT}\s+{COUNT}$")).expect("a valid histogram pattern")
});

/// `mantissa · 10^exponent`, computed so that `0.2` and `6` give exactly `200000.0`.
fn scale10(mantissa: f64, exponent: i32) -> f64 {
    if exponent >= 0 {
        mantissa * 10f64.powi(exponent)
    } else {
        mantissa / 10f64.powi(-exponent)
    }
}

/// Parses the lines of one report that follow its command line. `offset` is the index of
/// `lines[0]` in the whole text, for line numbers in errors.
fn parse_lines(
    lines: &[&str],
    offset: usize,
    command: Option<&str>,
) -> Result<Report, ReportError> {
    let mut report = Report {
        command: command.unwrap_or_default().to_owned(),
        ..Report::default()
    };
    let mut seen = vec![false; KINDS.len()];
    let mut in_histogram = false;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let line_no = offset + i + 1;
        if line.is_empty() {
            continue;
        }
        if line == HISTOGRAM_HEADER {
            in_histogram = true;
            continue;
        }
        if in_histogram {
            if line == ":" {
                continue;
            }
            if let Some(c) = HISTOGRAM_ROW.captures(line)
                && let (Some(ms), Some(count)) = (f(&c, 1), u(&c, 2))
            {
                report
                    .connection_lifetime_histogram
                    .push(HistogramBin { ms, count });
                continue;
            }
            in_histogram = false;
        }
        for (k, kind) in KINDS.iter().enumerate() {
            // `contains`, not `starts_with`: the descriptors line starts with the program name.
            if !line.contains(kind.key) {
                continue;
            }
            match REGEXES[k].captures(line) {
                Some(c) => {
                    if seen[k] && !kind.repeats {
                        return Err(ReportError::Duplicate {
                            line_no,
                            kind: kind.key,
                        });
                    }
                    (kind.apply)(&c, &mut report).ok_or_else(|| ReportError::Malformed {
                        line_no,
                        kind: kind.key,
                        text: line.to_owned(),
                    })?;
                    seen[k] = true;
                    break;
                }
                None if line.starts_with(kind.key) => {
                    return Err(ReportError::Malformed {
                        line_no,
                        kind: kind.key,
                        text: line.to_owned(),
                    });
                }
                // Text that merely contains a key (a printed reply body) is not a report line.
                None => {}
            }
        }
    }
    let has_session = KINDS
        .iter()
        .zip(&seen)
        .any(|(k, &s)| s && SESSION_BLOCK.contains(&k.key));
    let mut missing: Vec<&'static str> = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        // A report pasted without its command line may also start at its `Total:` line.
        let needed = (kind.required
            && !(command.is_none() && kind.key == "Maximum connect burst length:"))
            || (has_session && SESSION_BLOCK.contains(&kind.key));
        if needed && !seen[k] {
            missing.push(kind.key);
        }
    }
    if let Some((&first, rest)) = missing.split_first() {
        return Err(ReportError::Missing {
            missing: first,
            also: rest.to_vec(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
httperf --hog --timeout=5 --client=0/1 --server=127.0.0.1 --port=18080 --uri=/ --rate=50 --send-buffer=4096 --recv-buffer=16384 --num-conns=200 --num-calls=1
Maximum connect burst length: 1

Total: connections 200 requests 200 replies 200 test-duration 3.982 s

Connection rate: 50.2 conn/s (19.9 ms/conn, <=1 concurrent connections)
Connection time [ms]: min 1.3 avg 3.4 max 14.4 median 3.5 stddev 2.0
Connection time [ms]: connect 0.0
Connection length [replies/conn]: 1.000

Request rate: 50.2 req/s (19.9 ms/req)
Request size [B]: 62.0

Reply rate [replies/s]: min 0.0 avg 0.0 max 0.0 stddev 0.0 (0 samples)
Reply time [ms]: response 3.4 transfer 0.0
Reply size [B]: header 209.0 content 58.0 footer 0.0 (total 267.0)
Reply status: 1xx=0 2xx=200 3xx=0 4xx=0 5xx=0

CPU time [s]: user 0.48 system 2.83 (user 12.0% system 71.1% total 83.0%)
Net I/O: 16.1 KB/s (0.1*10^6 bps)

Errors: total 0 client-timo 0 socket-timo 0 connrefused 0 connreset 0
Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0
";

    #[test]
    fn the_patterns_compile_and_columns_are_unique() {
        assert_eq!(REGEXES.len(), KINDS.len());
        let mut cols = Report::COLUMNS.to_vec();
        cols.sort_unstable();
        cols.dedup();
        assert_eq!(cols.len(), Report::COLUMNS.len());
    }

    #[test]
    fn every_required_line_is_named_when_it_is_missing() {
        for kind in KINDS.iter().filter(|k| k.required) {
            let text: String = SAMPLE
                .lines()
                .filter(|l| !l.starts_with(kind.key))
                .map(|l| format!("{l}\n"))
                .collect();
            let err = parse_report(&text).unwrap_err();
            assert_eq!(
                err,
                ReportError::Missing {
                    missing: kind.key,
                    also: vec![]
                },
                "without `{}`",
                kind.key
            );
        }
    }

    #[test]
    fn a_malformed_known_line_is_an_error_with_its_number() {
        let text = SAMPLE.replace("Request rate: 50.2 req/s", "Request rate: fast req/s");
        let err = parse_report(&text).unwrap_err();
        assert_eq!(
            err,
            ReportError::Malformed {
                line_no: 11,
                kind: "Request rate:",
                text: "Request rate: fast req/s (19.9 ms/req)".into()
            }
        );
        assert!(err.to_string().starts_with("line 11: cannot read"), "{err}");
    }

    #[test]
    fn a_count_too_large_for_u64_is_malformed() {
        let text = SAMPLE.replace("2xx=200", "2xx=99999999999999999999999");
        assert!(matches!(
            parse_report(&text),
            Err(ReportError::Malformed {
                kind: "Reply status:",
                ..
            })
        ));
    }

    #[test]
    fn a_second_report_without_its_command_line_is_a_second_report() {
        let body = SAMPLE.split_once('\n').unwrap().1;
        let text = format!("{SAMPLE}{body}");
        assert_eq!(
            parse_report(&text),
            Err(ReportError::Several {
                count: 2,
                second: 24
            })
        );
        let found = parse_reports(&text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].result.as_ref().unwrap().command, "");
        // A line that appears once per report, twice inside one, is still a duplicate.
        let twice = SAMPLE.replace(
            "Request size [B]: 62.0\n",
            "Request size [B]: 62.0\nRequest size [B]: 62.0\n",
        );
        assert!(matches!(
            parse_report(&twice),
            Err(ReportError::Duplicate {
                kind: "Request size [B]:",
                ..
            })
        ));
    }

    #[test]
    fn the_burst_line_may_repeat_as_after_sigint() {
        let text = SAMPLE.replace(
            "Maximum connect burst length: 1\n",
            "Maximum connect burst length: 0\nMaximum connect burst length: 2\n",
        );
        assert_eq!(parse_report(&text).unwrap().max_connect_burst_length, 2);
    }

    #[test]
    fn nan_and_inf_from_divisions_by_zero_are_read() {
        let text = SAMPLE
            .replace("50.2 conn/s", "-nan conn/s")
            .replace("Request rate: 50.2", "Request rate: inf");
        let r = parse_report(&text).unwrap();
        assert!(r.connection_rate_per_sec.is_nan());
        assert_eq!(r.request_rate_per_sec, f64::INFINITY);
    }

    #[test]
    fn no_report_at_all() {
        assert_eq!(parse_report(""), Err(ReportError::Empty));
        assert_eq!(
            parse_report("httperf: warning: open file limit > FD_SETSIZE\n"),
            Err(ReportError::Empty)
        );
        assert!(parse_reports("just text\n").is_empty());
    }

    #[test]
    fn stats_without_a_command_line_are_read_with_an_empty_command() {
        let body = SAMPLE.split_once('\n').unwrap().1;
        let r = parse_report(body).unwrap();
        assert_eq!(r.command, "");
        assert_eq!(r.total_connections, 200);
        assert_eq!(r.command_option("rate"), None);
    }

    #[test]
    fn a_report_cut_in_its_last_line_is_incomplete() {
        let cut = SAMPLE.strip_suffix('\n').unwrap();
        assert_eq!(
            parse_report(cut),
            Err(ReportError::Unterminated {
                line_no: 23,
                text: "Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0".into()
            })
        );
        // Cut inside the last number, it would otherwise read as another number.
        let shorter = &cut[..cut.len() - 1];
        assert!(matches!(
            parse_report(&format!("{shorter}1")),
            Err(ReportError::Unterminated { .. })
        ));
        // Text after the report that is not httperf's (a shell prompt) may lack it.
        assert!(parse_report(&format!("{SAMPLE}$ ")).is_ok());
    }

    #[test]
    fn command_echo_detection() {
        assert!(is_command_echo(SAMPLE.lines().next().unwrap()));
        assert!(is_command_echo("/usr/bin/httperf --server=a --client=0/1"));
        // The command as typed (values after spaces) is not the echo.
        assert!(!is_command_echo(
            "httperf --hog --server balance2 --port 80 --num-conns 6000"
        ));
        assert!(!is_command_echo("httperf: warning: --server=x"));
        assert!(!is_command_echo("httperf --hog"));
        assert!(!is_command_echo(""));
    }

    #[test]
    fn command_options() {
        let r = parse_report(SAMPLE).unwrap();
        assert_eq!(r.command_option("rate"), Some("50"));
        assert_eq!(r.command_option("num-calls"), Some("1"));
        assert_eq!(r.command_option("num-conns"), Some("200"));
        assert_eq!(r.command_option("wsess"), None);
        assert_eq!(command_option("x --rate 7 --rate=8", "rate"), Some("8"));
        assert_eq!(command_option("x --rate 7", "rate"), Some("7"));
        // httperf quotes values that may hold spaces.
        let echo = "httperf --client=0/1 --server=127.0.0.1 --port=18999 --uri=/ --rate=2 \
                    --send-buffer=4096 --recv-buffer=16384 \
                    --add-header='Connection: close\\n' --num-conns=2 --num-calls=1";
        assert!(is_command_echo(echo));
        assert_eq!(
            command_option(echo, "add-header"),
            Some("Connection: close\\n")
        );
        assert_eq!(command_option(echo, "num-conns"), Some("2"));
        assert_eq!(
            command_words("a 'b c' d='e f'g"),
            ["a", "'b c'", "d='e f'g"]
        );
        assert_eq!(command_words("  x  'open "), ["x", "'open "]);
    }

    #[test]
    fn net_io_exponents() {
        assert_eq!(scale10(0.2, 6), 200000.0);
        assert_eq!(scale10(7.3, 6), 7300000.0);
        assert_eq!(scale10(5.0, -1), 0.5);
    }

    #[test]
    fn cells_round_trip() {
        let r = parse_report(SAMPLE).unwrap();
        let cells = r.to_cells();
        assert_eq!(cells.len(), Report::COLUMNS.len());
        assert_eq!(Report::from_cells(&cells), Ok(r));
        let mut bad = cells.clone();
        let i = Report::COLUMNS
            .iter()
            .position(|c| *c == "total_replies")
            .unwrap();
        bad[i] = "many".into();
        assert_eq!(Report::from_cells(&bad), Err("total_replies"));
        assert!(Report::from_cells(&cells[..3]).is_err());
    }
}
