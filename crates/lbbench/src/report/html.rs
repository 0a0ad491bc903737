//! The HTML page: an askama template with inline SVG charts (`common::chart`), so the page is
//! one self-contained file. The page is well-formed XML as well as HTML (every element
//! closed, no named entities), so tools and tests can read it with an XML parser.

use askama::Template;
use common::chart::{Chart, ChartError, Series, XAxis};

use super::aggregate::{RatePoint, Stats, servers};
use super::data::Run;
use super::markdown::{COST_HEAD, SIZE_HEAD, TLS_HEAD, cost_rows, size_rows, tls_rows};
use super::{ReportInput, fmt_num};
use crate::httperf::fmt_rate;

/// A chart on the page.
pub struct Figure {
    /// Its element id (`reply-time`, `balancer-cpu`, ...).
    pub id: &'static str,
    /// The SVG document.
    pub svg: String,
    /// The caption under it.
    pub caption: String,
}

/// A program and its version, for the setup table.
pub struct ProgramRow {
    name: String,
    version: String,
    path: String,
    max_connections: String,
    processes: String,
}

/// One row of the numbers table.
pub struct TableRow {
    server: String,
    rate: String,
    flagged: bool,
    cells: Vec<String>,
}

/// One flagged run.
pub struct FlaggedRow {
    server: String,
    rate: String,
    run: u32,
    timestamp: String,
    reasons: String,
    achieved: String,
    errors: u64,
    client_limit: u64,
    max_open: u64,
}

#[derive(Template)]
#[template(path = "report/report.html")]
struct Page<'a> {
    tool: &'a str,
    title: String,
    summary: String,
    generated: String,
    setup: Vec<(String, String)>,
    programs: Vec<ProgramRow>,
    hosts_head: &'a [&'a str],
    hosts: Vec<Vec<String>>,
    warnings: &'a [String],
    figures: Vec<Figure>,
    missing_figures: Vec<String>,
    table_head: &'a [&'a str],
    table: Vec<TableRow>,
    tls_head: &'a [&'a str],
    tls_table: Vec<Vec<String>>,
    cost_head: &'a [&'a str],
    cost_table: Vec<Vec<String>>,
    size_head: &'a [&'a str],
    size_table: Vec<Vec<String>>,
    size_figures: Vec<Figure>,
    flagged: Vec<FlaggedRow>,
    sources: Vec<String>,
}

/// The hosts table's columns (a lab across hosts).
pub const HOSTS_HEAD: &[&str] = &[
    "host",
    "role",
    "ssh",
    "address",
    "host name",
    "machine",
    "runs",
    "clock offset [ms]",
];

/// The hosts table of a lab across hosts (empty on one machine): one row per host.
fn hosts_rows(info: &crate::lab::info::LabInfo) -> Vec<Vec<String>> {
    info.hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.role.clone(),
                h.ssh.clone(),
                h.address.clone(),
                h.hostname.clone(),
                machine_text(&h.machine),
                std::iter::once(h.lbbench.clone())
                    .chain(h.programs.iter().map(|p| {
                        let name = p
                            .program
                            .file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                        format!("{name} {}", p.version)
                    }))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{:+}", h.clock_offset_ms),
            ]
        })
        .collect()
}

/// A machine in one line: CPUs, model, kernel, OS.
fn machine_text(m: &crate::lab::info::MachineInfo) -> String {
    format!(
        "{} CPU{}{}; kernel {}{}",
        m.cpus,
        if m.cpus == 1 { "" } else { "s" },
        m.cpu_model
            .as_ref()
            .map_or(String::new(), |c| format!(" ({c})")),
        m.kernel,
        m.os.as_ref().map_or(String::new(), |o| format!("; {o}")),
    )
}

/// The numbers table's columns.
pub const TABLE_HEAD: &[&str] = &[
    "balancer",
    "demanded [conn/s]",
    "runs",
    "flagged",
    "achieved [req/s]",
    "reply time [ms]",
    "reply time range",
    "reply time sd",
    "balancer CPU [%]",
    "balancer CPU range",
    "CPU-s / 1,000 req",
    "backends CPU [%]",
    "machine busy [%]",
    "errors / run",
    "5xx / run",
    "client-limit errors",
    "client timeouts",
    "max open conns",
];

const WIDTH: u32 = 960;
const HEIGHT: u32 = 420;

/// Why the page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// A chart failed.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// The template failed.
    #[error("cannot render the report: {0}")]
    Template(#[from] askama::Error),
}

/// The runs to mark when flagged, and the value of a run to mark.
type FlaggedMarks<'a> = (&'a [Run], fn(&Run) -> Option<f64>);

/// A mean line and a min–max band per balancer, in the balancer's colour; and markers for
/// the flagged runs' own values if `flagged_runs` is given.
fn per_balancer_chart(
    chart: Chart,
    points: &[RatePoint],
    pick: impl Fn(&RatePoint) -> Option<Stats>,
    flagged_runs: Option<FlaggedMarks<'_>>,
) -> Option<Chart> {
    per_series_chart(chart, points, |p| Some(p.rate), pick, flagged_runs)
}

/// [`per_balancer_chart`] with the x value of each point picked by `x`.
fn per_series_chart(
    chart: Chart,
    points: &[RatePoint],
    x: impl Fn(&RatePoint) -> Option<f64>,
    pick: impl Fn(&RatePoint) -> Option<Stats>,
    flagged_runs: Option<FlaggedMarks<'_>>,
) -> Option<Chart> {
    let mut chart = chart;
    let mut any = false;
    for (k, server) in servers(points).iter().enumerate() {
        let stats: Vec<(f64, Stats)> = points
            .iter()
            .filter(|p| &p.server == server)
            .filter_map(|p| Some((x(p)?, pick(p)?)))
            .collect();
        if stats.is_empty() {
            continue;
        }
        any = true;
        if stats.iter().any(|(_, s)| s.n > 1) {
            chart = chart.with(
                Series::band(
                    format!("{server} min–max"),
                    stats.iter().map(|(r, s)| (*r, s.min)).collect(),
                    stats.iter().map(|(r, s)| (*r, s.max)).collect(),
                )
                .colored(k),
            );
        }
        chart = chart.with(
            Series::line(
                server.clone(),
                stats.iter().map(|(r, s)| (*r, s.mean)).collect(),
            )
            .colored(k),
        );
        if let Some((runs, value)) = flagged_runs {
            let marks: Vec<(f64, f64)> = runs
                .iter()
                .filter(|r| &r.series() == server && r.reply_size.is_none() && !r.valid)
                .filter_map(|r| value(r).map(|v| (r.target_rate, v)))
                .collect();
            if !marks.is_empty() {
                chart =
                    chart.with(Series::points(format!("{server} flagged runs"), marks).colored(k));
            }
        }
    }
    any.then_some(chart)
}

fn figures(
    input: &ReportInput,
    points: &[RatePoint],
) -> Result<(Vec<Figure>, Vec<String>), HtmlError> {
    const X: &str = "demanded rate [connections/s]";
    let mut figs = Vec::new();
    let mut missing = Vec::new();
    let mut add = |id: &'static str,
                   chart: Option<Chart>,
                   caption: String,
                   absent: &str|
     -> Result<(), HtmlError> {
        match chart {
            Some(c) => figs.push(Figure {
                id,
                svg: c.to_svg(WIDTH, HEIGHT)?,
                caption,
            }),
            None => missing.push(absent.to_owned()),
        }
        Ok(())
    };
    add(
        "reply-time",
        per_balancer_chart(
            // From the data, not from zero: replies take the backend's sleep (200 ms) plus
            // what the balancer adds, and what it adds is what differs.
            Chart {
                y_from_zero: false,
                ..Chart::new("Reply time", X, "reply time [ms]")
            },
            points,
            |p| p.reply_ms,
            Some((&input.runs, |r| (r.replies > 0).then_some(r.reply_ms))),
        ),
        "Reply time (httperf's response time: request sent to first byte of the reply), the mean \
         over repeats with the min–max band; crosses mark flagged runs. The lab report's figure 2.1."
            .into(),
        "No reply time to plot: no run had replies.",
    )?;
    add(
        "balancer-cpu",
        per_balancer_chart(
            Chart::new("Balancer CPU", X, "CPU [% of one CPU]"),
            points,
            |p| p.balancer_cpu_pct,
            None,
        ),
        "The balancer's CPU over each run, from /proc for exactly its processes (master and \
         workers, all threads), in % of one CPU: the mean over repeats and the min–max band. \
         The lab report's figure 2.2 (which used sar -u on a machine of its own)."
            .into(),
        "No balancer CPU to plot: these files have no balancer_cpu_* columns (a plain \
         `lbbench sweep`; `lbbench lab` measures it).",
    )?;
    add(
        "cpu-per-request",
        per_balancer_chart(
            Chart::new(
                "Balancer CPU per request",
                X,
                "CPU-seconds per 1,000 requests",
            ),
            points,
            |p| p.cpu_s_per_1k,
            None,
        ),
        "The balancer's CPU-seconds per 1,000 requests httperf sent: its cost per request, \
         which should stay flat while it keeps up."
            .into(),
        "No CPU per request to plot.",
    )?;
    let achieved = per_balancer_chart(
        Chart::new("Achieved request rate", X, "requests/s"),
        points,
        |p| Some(p.achieved),
        None,
    )
    .map(|c| {
        let mut rates: Vec<f64> = points.iter().map(|p| p.rate).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        c.with(Series::line("demanded", rates.iter().map(|r| (*r, *r)).collect()).colored(6))
    });
    add(
        "achieved-rate",
        achieved,
        "httperf's achieved request rate against the demanded one (grey): below it, the \
         balancer did not keep up or httperf could not open connections."
            .into(),
        "No achieved rate to plot.",
    )?;
    add(
        "errors",
        per_balancer_chart(
            Chart::new("Failed requests", X, "errors + 5xx [% of connections]"),
            points,
            |p| Some(p.failed_pct),
            None,
        ),
        "httperf's errors (timeouts, refused or reset connections, and its own fd-unavail when \
         it reaches 1,024 open connections) plus 5xx replies, in % of the connections: mean \
         and min–max over repeats."
            .into(),
        "No errors to plot.",
    )?;
    let backends = per_balancer_chart(
        Chart::new(
            "Backends' CPU and the machine",
            X,
            "backends' CPU [% of one CPU]",
        )
        .with_y2("machine busy [% of all CPUs]"),
        points,
        |p| p.backends_cpu_pct,
        None,
    )
    .map(|mut c| {
        for (k, server) in servers(points).iter().enumerate() {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| &p.server == server)
                .filter_map(|p| p.machine_busy_pct.map(|s| (p.rate, s.mean)))
                .collect();
            if !pts.is_empty() {
                c = c.with(
                    Series::points(format!("machine busy during {server}"), pts)
                        .colored(k)
                        .on_right(),
                );
            }
        }
        c
    });
    add(
        "backends-cpu",
        backends,
        "All the backends' CPU together (lines, left axis), to show they are not what limits \
         a run; and how busy the whole machine was during the runs (crosses, right axis: the \
         balancer, the backends, httperf and anything else running)."
            .into(),
        "No backends' CPU to plot.",
    )?;
    Ok((figs, missing))
}

/// The size sweep's charts: throughput, CPU per GB and reply time against the reply size (a
/// log scale).
fn size_figures(points: &[RatePoint]) -> Result<Vec<Figure>, HtmlError> {
    const X: &str = "reply size (log scale)";
    let x = |p: &RatePoint| p.reply_size.filter(|s| *s > 0).map(|s| (s as f64).log2());
    let charts = [
        (
            "size-throughput",
            Chart::new("Throughput against the reply size", X, "replies [MB/s]"),
            (|p: &RatePoint| p.reply_mb_s) as fn(&RatePoint) -> Option<Stats>,
            "Reply bytes received per second (10^6 bytes/s) through each balancer at the \
             lab's fixed connection rate: while it keeps up, rate × size.",
        ),
        (
            "size-cpu-per-gb",
            Chart::new(
                "Balancer CPU per GB against the reply size",
                X,
                "CPU-seconds per GB",
            ),
            |p: &RatePoint| p.cpu_s_per_gb,
            "The balancer's CPU-seconds per 10^9 reply bytes it forwarded: per-request costs \
             dominate small replies, copying costs large ones.",
        ),
        (
            "size-reply-time",
            Chart::new("Reply time against the reply size", X, "reply time [ms]"),
            |p: &RatePoint| p.reply_ms,
            "httperf's response time (request sent to the reply's first byte); the transfer \
             time to its last byte is in the table.",
        ),
    ];
    let mut out = Vec::new();
    for (id, chart, pick, caption) in charts {
        if let Some(c) = per_series_chart(
            Chart {
                y_from_zero: false,
                ..chart.with_x_axis(XAxis::Log2Bytes)
            },
            points,
            x,
            pick,
            None,
        ) {
            out.push(Figure {
                id,
                svg: c.to_svg(WIDTH, HEIGHT)?,
                caption: caption.into(),
            });
        }
    }
    Ok(out)
}

/// httperf's options for the setup table. An added header is shown as the header it sends
/// (`--add-header=Connection: close\n` is httperf's escape for the line end, which a reader
/// of the page would take for two stray characters).
fn httperf_setup(timeout_s: f64, extra: &[String]) -> String {
    let mut out = format!("--timeout {} --num-calls 1 --hog", fmt_rate(timeout_s));
    for a in extra {
        match a.strip_prefix("--add-header=") {
            Some(h) => {
                let headers: Vec<&str> = h.split("\\n").filter(|l| !l.is_empty()).collect();
                out.push_str(&format!("; request header {}", headers.join(", ")));
            }
            None => {
                out.push(' ');
                out.push_str(a);
            }
        }
    }
    out
}

fn stats_cells(s: Option<Stats>, decimals: usize) -> [String; 3] {
    match s {
        None => ["–".into(), "–".into(), "–".into()],
        Some(s) => [
            fmt_num(s.mean, decimals),
            if s.n > 1 {
                format!("{}–{}", fmt_num(s.min, decimals), fmt_num(s.max, decimals))
            } else {
                "–".into()
            },
            s.stddev.map_or("–".into(), |d| fmt_num(d, decimals)),
        ],
    }
}

/// The rows of the numbers table (also used by the Markdown summary's tests).
pub fn table_rows(points: &[RatePoint]) -> Vec<Vec<String>> {
    points
        .iter()
        .map(|p| {
            let [reply, reply_range, reply_sd] = stats_cells(p.reply_ms, 1);
            let [cpu, cpu_range, _] = stats_cells(p.balancer_cpu_pct, 1);
            vec![
                p.server.clone(),
                fmt_rate(p.rate),
                p.runs.to_string(),
                p.flagged.to_string(),
                fmt_num(p.achieved.mean, 1),
                reply,
                reply_range,
                reply_sd,
                cpu,
                cpu_range,
                p.cpu_s_per_1k.map_or("–".into(), |s| fmt_num(s.mean, 3)),
                p.backends_cpu_pct
                    .map_or("–".into(), |s| fmt_num(s.mean, 1)),
                p.machine_busy_pct
                    .map_or("–".into(), |s| fmt_num(s.mean, 1)),
                fmt_num(p.errors.mean, 1),
                fmt_num(p.status_5xx.mean, 1),
                p.client_limit_total.to_string(),
                p.client_timeouts_total.to_string(),
                p.max_open.to_string(),
            ]
        })
        .collect()
}

/// Renders the page.
pub fn render(
    input: &ReportInput,
    points: &[RatePoint],
    generated: &str,
) -> Result<String, HtmlError> {
    let tool = format!("lbbench {}", env!("CARGO_PKG_VERSION"));
    let names = servers(points);
    let title = format!("Load balancers under httperf: {}", names.join(" vs "));
    let runs = input.runs.len();
    let flagged_runs: Vec<&Run> = input.runs.iter().filter(|r| !r.valid).collect();
    let summary = format!(
        "{runs} runs of {} balancer{} at {} demanded rates; {} flagged.",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        {
            let mut r: Vec<u64> = points.iter().map(|p| p.rate.to_bits()).collect();
            r.sort_unstable();
            r.dedup();
            r.len()
        },
        flagged_runs.len()
    );
    let mut setup = Vec::new();
    let mut programs = Vec::new();
    match &input.info {
        Some(info) => {
            let s = &info.settings;
            setup.push((
                "backends".into(),
                format!("{} × lbbench backend on 127.0.0.1", s.backends),
            ));
            setup.push(("URI".into(), s.uri.clone()));
            setup.push((
                "sweep".into(),
                format!(
                    "{} rates from {} to {} conn/s, {} run{} each of {} s, {} s apart",
                    s.rates.len(),
                    s.rates.first().map_or("?".into(), |r| fmt_rate(*r)),
                    s.rates.last().map_or("?".into(), |r| fmt_rate(*r)),
                    s.repeat,
                    if s.repeat == 1 { "" } else { "s" },
                    fmt_rate(s.duration_s),
                    fmt_rate(s.pause_s),
                ),
            ));
            if !s.sizes.is_empty() {
                setup.push((
                    "reply sizes".into(),
                    format!(
                        "{} at {} conn/s (size= added to the URI)",
                        s.sizes
                            .iter()
                            .map(|&b| crate::sweep::fmt_size(b))
                            .collect::<Vec<_>>()
                            .join(", "),
                        s.rates.first().map_or("?".into(), |r| fmt_rate(*r)),
                    ),
                ));
            }
            if s.tls.iter().any(|t| t != "off") {
                setup.push((
                    "TLS".into(),
                    "each balancer measured plain, then terminating TLS with the lab's \
                     certificate (ECDSA P-256, DIR/tls/); httperf --ssl --ssl-no-reuse (every \
                     connection a full handshake), or sessions of 4 connections of which 3 \
                     resume (rows marked resumed); the backends stay plain HTTP"
                        .into(),
                ));
            }
            setup.push((
                "httperf".into(),
                httperf_setup(s.timeout_s, &s.httperf_extra),
            ));
            let m = &info.machine;
            setup.push((
                if info.hosts.is_empty() {
                    "machine".into()
                } else {
                    "lab machine (over ssh)".into()
                },
                machine_text(m),
            ));
            if !info.hosts.is_empty() {
                let count = |role: &str| info.hosts.iter().filter(|h| h.role == role).count();
                setup.push((
                    "hosts".into(),
                    format!(
                        "across hosts: {} client{} running httperf at once (each its share of \
                         the rate), the balancer on its own host, the backends on {} host{} \
                         (see the hosts table)",
                        count("client"),
                        if count("client") == 1 { "" } else { "s" },
                        count("backend"),
                        if count("backend") == 1 { "" } else { "s" },
                    ),
                ));
            }
            if let Some(l) = m.load_at_start {
                setup.push((
                    "load at start".into(),
                    format!("{} {} {} (1, 5, 15 min)", l[0], l[1], l[2]),
                ));
            }
            for (i, sess) in info.invocations.iter().enumerate() {
                setup.push((
                    if info.invocations.len() == 1 {
                        "date".into()
                    } else {
                        format!("invocation {}", i + 1)
                    },
                    format!(
                        "{} to {} ({})",
                        sess.started_at,
                        sess.finished_at.as_deref().unwrap_or("?"),
                        sess.outcome
                    ),
                ));
            }
            for b in &info.balancers {
                programs.push(ProgramRow {
                    name: b.name.clone(),
                    version: b.program.version.clone(),
                    path: b.program.program.display().to_string(),
                    max_connections: b.max_connections.map_or("–".into(), |m| m.to_string()),
                    processes: b.processes.map_or("–".into(), |m| m.to_string()),
                });
            }
            programs.push(ProgramRow {
                name: "httperf".into(),
                version: info.httperf.version.clone(),
                path: info.httperf.program.display().to_string(),
                max_connections: "1024 (FD_SETSIZE)".into(),
                processes: match info.hosts.iter().filter(|h| h.role == "client").count() {
                    0 => "1".into(),
                    n => format!("1 on each of {n} clients"),
                },
            });
        }
        None => setup.push((
            "lab".into(),
            "not recorded: no lab.json next to these files (versions, machine and date are \
             unknown)"
                .into(),
        )),
    }
    let rate_points: Vec<RatePoint> = points
        .iter()
        .filter(|p| p.reply_size.is_none())
        .cloned()
        .collect();
    let size_points: Vec<RatePoint> = points
        .iter()
        .filter(|p| p.reply_size.is_some())
        .cloned()
        .collect();
    let (figures, missing_figures) = if rate_points.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        figures(input, &rate_points)?
    };
    let table = table_rows(&rate_points)
        .into_iter()
        .zip(&rate_points)
        .map(|(cells, p)| TableRow {
            server: p.server.clone(),
            rate: fmt_rate(p.rate),
            flagged: p.flagged > 0,
            cells,
        })
        .collect();
    let flagged = flagged_runs
        .iter()
        .map(|r| FlaggedRow {
            server: r.series(),
            rate: match r.reply_size {
                Some(s) => format!(
                    "{} ({})",
                    fmt_rate(r.target_rate),
                    crate::sweep::fmt_size(s)
                ),
                None => fmt_rate(r.target_rate),
            },
            run: r.run,
            timestamp: r.timestamp.clone(),
            reasons: r.flag_reasons().join(", "),
            achieved: fmt_num(r.request_rate, 1),
            errors: r.errors,
            client_limit: r.client_limit,
            max_open: r.max_open,
        })
        .collect();
    let page = Page {
        tool: &tool,
        title,
        summary,
        generated: generated.to_owned(),
        setup,
        programs,
        hosts_head: HOSTS_HEAD,
        hosts: input.info.as_ref().map(hosts_rows).unwrap_or_default(),
        warnings: &input.warnings,
        figures,
        missing_figures,
        table_head: TABLE_HEAD,
        table,
        tls_head: TLS_HEAD,
        tls_table: tls_rows(points),
        cost_head: COST_HEAD,
        cost_table: cost_rows(points),
        size_head: SIZE_HEAD,
        size_table: size_rows(points, input.cpus()),
        size_figures: size_figures(&size_points)?,
        flagged,
        sources: input
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
    };
    Ok(page.render()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_added_header_is_shown_without_httperf_s_escape() {
        let cell = httperf_setup(5.0, &["--add-header=Connection: close\\n".to_owned()]);
        assert_eq!(
            cell,
            "--timeout 5 --num-calls 1 --hog; request header Connection: close"
        );
        assert!(!cell.contains('\\'));
        assert_eq!(
            httperf_setup(2.5, &["--verbose".to_owned()]),
            "--timeout 2.5 --num-calls 1 --hog --verbose"
        );
    }
}
