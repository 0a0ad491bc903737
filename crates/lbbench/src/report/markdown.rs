//! The summary table in Markdown (`lbbench report --markdown`), for a README or an issue.

use super::aggregate::{RatePoint, Stats};
use super::fmt_num;
use crate::httperf::fmt_rate;

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

/// The table: a header, the alignment line (numbers to the right), one line per point.
pub fn table(points: &[RatePoint]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let head: Vec<String> = HEAD.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&head);
    let align: Vec<String> = (0..HEAD.len())
        .map(|i| if i == 0 { "---".into() } else { "---:".into() })
        .collect();
    out.push_str(&line(&align));
    for p in points {
        out.push_str(&line(&row(p)));
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
