//! The summary tables in Markdown (`lbbench report --markdown`, and the end of `lbbench
//! lab`), for a README or an issue: the rate sweep's numbers, plain and TLS side by side
//! with the cost of TLS, and the size sweep.

use super::aggregate::{RatePoint, Stats};
use super::compare::{highest_clean_rate, size_limit, tls_costs, tls_pairs};
use super::fmt_num;
use crate::httperf::{Tls, fmt_rate};
use crate::sweep::fmt_size;

/// The summary's columns.
pub const HEAD: &[&str] = &[
    "balancer",
    "conn/s",
    "runs",
    "achieved req/s",
    "reply ms (min–max)",
    "CPU % of 1 core (min–max)",
    "CPU-s / 1k req",
    "errors / run",
    "5xx / run",
    "flagged",
];

fn mean_range(s: Option<Stats>, decimals: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n > 1 => format!(
            "{} ({}–{})",
            fmt_num(s.mean, decimals),
            fmt_num(s.min, decimals),
            fmt_num(s.max, decimals)
        ),
        Some(s) => fmt_num(s.mean, decimals),
    }
}

/// The cells of one row.
pub fn row(p: &RatePoint) -> Vec<String> {
    vec![
        p.server.clone(),
        fmt_rate(p.rate),
        p.runs.to_string(),
        fmt_num(p.achieved.mean, 1),
        mean_range(p.reply_ms, 1),
        mean_range(p.balancer_cpu_pct, 1),
        p.cpu_s_per_1k.map_or("–".into(), |s| fmt_num(s.mean, 3)),
        fmt_num(p.errors.mean, 1),
        fmt_num(p.status_5xx.mean, 1),
        if p.flagged == 0 {
            "0".into()
        } else {
            format!("{} of {}", p.flagged, p.runs)
        },
    ]
}

/// A Markdown table: the header, the alignment line (the first `text` columns to the left,
/// numbers to the right), the rows.
pub fn markdown_table(head: &[&str], text: usize, rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let head: Vec<String> = head.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&head);
    let align: Vec<String> = (0..head.len())
        .map(|i| {
            if i < text {
                "---".into()
            } else {
                "---:".into()
            }
        })
        .collect();
    out.push_str(&line(&align));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The table of a rate sweep: one line per point (size-sweep points are left out).
pub fn table(points: &[RatePoint]) -> String {
    let rows: Vec<Vec<String>> = points
        .iter()
        .filter(|p| p.reply_size.is_none())
        .map(row)
        .collect();
    markdown_table(HEAD, 1, &rows)
}

/// Plain and TLS side by side: the columns.
pub const TLS_HEAD: &[&str] = &[
    "balancer",
    "conn/s",
    "reply ms plain",
    "reply ms TLS",
    "CPU-s / 1k req plain",
    "CPU-s / 1k req TLS",
    "TLS CPU-ms / handshake",
    "flagged plain",
    "flagged TLS",
];

/// Plain and TLS side by side, per balancer and rate.
pub fn tls_rows(points: &[RatePoint]) -> Vec<Vec<String>> {
    let flagged = |p: &RatePoint| {
        if p.flagged == 0 {
            "0".to_owned()
        } else {
            format!("{} of {}", p.flagged, p.runs)
        }
    };
    tls_pairs(points)
        .iter()
        .map(|pair| {
            vec![
                match pair.tls.tls {
                    Tls::Resumed => format!("{} (resumed)", pair.balancer),
                    _ => pair.balancer.to_owned(),
                },
                fmt_rate(pair.rate),
                pair.plain
                    .reply_ms
                    .map_or("–".into(), |s| fmt_num(s.mean, 1)),
                pair.tls.reply_ms.map_or("–".into(), |s| fmt_num(s.mean, 1)),
                pair.plain
                    .cpu_s_per_1k
                    .map_or("–".into(), |s| fmt_num(s.mean, 3)),
                pair.tls
                    .cpu_s_per_1k
                    .map_or("–".into(), |s| fmt_num(s.mean, 3)),
                pair.cost_per_1k().map_or("–".into(), |c| fmt_num(c, 3)),
                flagged(pair.plain),
                flagged(pair.tls),
            ]
        })
        .collect()
}

/// The TLS cost table: the columns.
pub const COST_HEAD: &[&str] = &[
    "balancer",
    "TLS",
    "highest conn/s without flags, plain",
    "highest conn/s without flags, TLS",
    "TLS cost: CPU-s / 1,000 handshakes (min–max)",
    "TLS ÷ plain CPU per request",
];

/// The TLS cost per balancer.
pub fn cost_rows(points: &[RatePoint]) -> Vec<Vec<String>> {
    let pairs = tls_pairs(points);
    tls_costs(&pairs)
        .iter()
        .map(|c| {
            let clean =
                |tls| highest_clean_rate(points, &c.balancer, tls).map_or("none".into(), fmt_rate);
            vec![
                c.balancer.clone(),
                match c.tls {
                    Tls::Resumed => "resumed (3 in 4)".into(),
                    _ => "full handshakes".into(),
                },
                clean(Tls::Off),
                clean(c.tls),
                if c.rates > 1 {
                    format!(
                        "{} ({}–{})",
                        fmt_num(c.mean, 3),
                        fmt_num(c.min, 3),
                        fmt_num(c.max, 3)
                    )
                } else {
                    fmt_num(c.mean, 3)
                },
                format!("{}×", fmt_num(c.ratio, 1)),
            ]
        })
        .collect()
}

/// The size sweep's columns.
pub const SIZE_HEAD: &[&str] = &[
    "balancer",
    "reply size",
    "conn/s",
    "MB/s",
    "replied %",
    "reply ms",
    "transfer ms",
    "balancer CPU %",
    "CPU-s / GB",
    "backends CPU %",
    "machine busy %",
    "flagged",
    "limit",
];

/// The size sweep: one row per balancer and size. `cpus` is the machine's CPU count.
pub fn size_rows(points: &[RatePoint], cpus: usize) -> Vec<Vec<String>> {
    let mean = |s: Option<Stats>, d| s.map_or("–".into(), |s| fmt_num(s.mean, d));
    points
        .iter()
        .filter_map(|p| {
            let size = p.reply_size?;
            Some(vec![
                p.server.clone(),
                fmt_size(size),
                fmt_rate(p.rate),
                mean(p.reply_mb_s, 1),
                fmt_num(p.replied_pct.mean, 0),
                mean(p.reply_ms, 1),
                mean(p.transfer_ms, 1),
                mean(p.balancer_cpu_pct, 1),
                mean(p.cpu_s_per_gb, 2),
                mean(p.backends_cpu_pct, 1),
                mean(p.machine_busy_pct, 1),
                if p.flagged == 0 {
                    "0".into()
                } else {
                    format!("{} of {}", p.flagged, p.runs)
                },
                size_limit(p, cpus).describe().to_owned(),
            ])
        })
        .collect()
}

/// Everything in Markdown: the rate sweep's table, then (when there are such runs) plain and
/// TLS side by side with the TLS cost, and the size sweep.
pub fn summary(points: &[RatePoint], cpus: usize) -> String {
    let mut out = String::new();
    if points.iter().any(|p| p.reply_size.is_none()) {
        out.push_str(&table(points));
    }
    let tls = tls_rows(points);
    if !tls.is_empty() {
        out.push_str("\nPlain and TLS side by side:\n\n");
        out.push_str(&markdown_table(TLS_HEAD, 1, &tls));
        out.push_str("\nThe cost of TLS:\n\n");
        out.push_str(&markdown_table(COST_HEAD, 2, &cost_rows(points)));
    }
    let sizes = size_rows(points, cpus);
    if !sizes.is_empty() {
        if !out.is_empty() {
            out.push_str("\nReply sizes:\n\n");
        }
        out.push_str(&markdown_table(SIZE_HEAD, 2, &sizes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::aggregate::aggregate;
    use crate::report::data::{parse_sweep, tests::lab_csv};
    use std::path::Path;

    #[test]
    fn a_table_from_hand_made_runs() {
        let run = |rate: &'static str, n: &'static str, ms: &'static str, cpu: &'static str| {
            [
                ("server", "haproxy"),
                ("target_rate", rate),
                ("run", n),
                ("total_connections", "1000"),
                ("total_requests", "1000"),
                ("total_replies", "1000"),
                ("request_rate_per_sec", rate),
                ("reply_time_response", ms),
                ("balancer_cpu_pct", cpu),
                ("balancer_cpu_user_s", "0.1"),
                ("balancer_cpu_system_s", "0.1"),
            ]
        };
        let rows = [
            run("100", "1", "200.0", "4.0"),
            run("100", "2", "210.0", "6.0"),
            run("500", "1", "250.5", "20.0"),
        ];
        let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| &r[..]).collect();
        let f = parse_sweep(lab_csv(&refs).as_bytes(), Path::new("t.csv")).unwrap();
        let t = table(&aggregate(&f.runs, &[]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("| --- | ---: |"));
        assert_eq!(
            lines[2],
            "| haproxy | 100 | 2 | 100.0 | 205.0 (200.0–210.0) | 5.0 (4.0–6.0) | 0.200 | 0.0 | 0.0 | 0 |"
        );
        assert_eq!(
            lines[3],
            "| haproxy | 500 | 1 | 500.0 | 250.5 | 20.0 | 0.200 | 0.0 | 0.0 | 0 |"
        );
    }
}
