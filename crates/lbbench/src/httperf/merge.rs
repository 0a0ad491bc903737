//! One run made by several clients at once, as one report.
//!
//! Across hosts, each client host runs httperf with its share of the demanded rate and of
//! the connections (`--client i/N` tells each which share it is). Each prints its own report;
//! the lab's row for the run is their [`merge`], so that it has the same columns as a run
//! from one machine and reads the same way:
//!
//! - counts (connections, requests, replies, statuses, errors, CPU seconds) and rates
//!   (connection, request and reply rates, net I/O) are **summed**; the ms-per-connection and
//!   ms-per-request figures are recomputed from the summed rates;
//! - times and sizes (connection and reply times, request and reply sizes, connection
//!   length) are **means weighted by each client's requests**; the connection time's standard
//!   deviation is the pooled one (each client's spread and its distance from the overall
//!   mean), its median the weighted mean of the medians (an approximation: httperf does not
//!   print its histogram), its minimum the least and its maximum the most;
//! - the test duration, the burst length and the most concurrent connections are the
//!   **largest** of any client: httperf's limit of 1,024 open connections is per httperf, so
//!   what the report's "httperf at 1,024" flag needs is the most any one of them had;
//! - httperf's CPU total is the **lowest** of any client (its user and system shares stay
//!   weighted means): one starved client is enough to make the run's timings suspect;
//! - the reply-rate min/avg/max are the sums of each client's (the clients sample at the
//!   same 5 s period from about the same start), their standard deviation the root of the
//!   summed variances, the sample count the smallest;
//! - `command` is the first client's command line with `--rate` and `--num-conns` set to
//!   the totals; each client's own is in its raw output.

use super::args::fmt_rate;
use super::report::{HistogramBin, Report};

/// The report of a run that `parts` made together (see the module documentation). One part
/// is returned as it is; none gives an empty report.
pub fn merge(parts: &[Report]) -> Report {
    match parts {
        [] => return Report::default(),
        [one] => return one.clone(),
        _ => {}
    }
    let total_requests: u64 = parts.iter().map(|p| p.total_requests).sum();
    // Weights: each client's requests (equal weights if none made any).
    let weights: Vec<f64> = if total_requests > 0 {
        parts.iter().map(|p| p.total_requests as f64).collect()
    } else {
        vec![1.0; parts.len()]
    };
    let wsum: f64 = weights.iter().sum();
    let mean = |f: fn(&Report) -> f64| -> f64 {
        tidy(
            parts
                .iter()
                .zip(&weights)
                .map(|(p, w)| f(p) * w)
                .sum::<f64>()
                / wsum,
        )
    };
    let mean_opt = |f: fn(&Report) -> Option<f64>| -> Option<f64> {
        let present: Vec<(f64, f64)> = parts
            .iter()
            .zip(&weights)
            .filter_map(|(p, w)| f(p).map(|v| (v, *w)))
            .collect();
        let ws: f64 = present.iter().map(|(_, w)| w).sum();
        (!present.is_empty()).then(|| {
            tidy(if ws > 0.0 {
                present.iter().map(|(v, w)| v * w).sum::<f64>() / ws
            } else {
                present.iter().map(|(v, _)| v).sum::<f64>() / present.len() as f64
            })
        })
    };
    let sum_u = |f: fn(&Report) -> u64| parts.iter().map(f).sum::<u64>();
    let sum_f = |f: fn(&Report) -> f64| tidy(parts.iter().map(f).sum::<f64>());
    let max_f = |f: fn(&Report) -> f64| parts.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    let min_f = |f: fn(&Report) -> f64| parts.iter().map(f).fold(f64::INFINITY, f64::min);
    let max_u = |f: fn(&Report) -> u64| parts.iter().map(f).max().unwrap_or(0);
    let sum_opt_u = |f: fn(&Report) -> Option<u64>| {
        parts
            .iter()
            .filter_map(f)
            .fold(None, |acc: Option<u64>, v| Some(acc.unwrap_or(0) + v))
    };
    let sum_opt_f = |f: fn(&Report) -> Option<f64>| {
        parts
            .iter()
            .filter_map(f)
            .fold(None, |acc: Option<f64>, v| Some(acc.unwrap_or(0.0) + v))
    };
    let per = |rate: f64| if rate > 0.0 { tidy(1000.0 / rate) } else { 0.0 };

    let conn_avg = mean(|p| p.connection_time_avg);
    let pooled_var = parts
        .iter()
        .zip(&weights)
        .map(|(p, w)| {
            w * (p.connection_time_stddev.powi(2) + (p.connection_time_avg - conn_avg).powi(2))
        })
        .sum::<f64>()
        / wsum;
    let connection_rate = sum_f(|p| p.connection_rate_per_sec);
    let request_rate = sum_f(|p| p.request_rate_per_sec);
    let rate_option: f64 = parts
        .iter()
        .filter_map(|p| p.command_option("rate")?.parse::<f64>().ok())
        .sum();
    let conns_option: u64 = parts
        .iter()
        .filter_map(|p| p.command_option("num-conns")?.parse::<u64>().ok())
        .sum();

    Report {
        command: with_totals(&parts[0].command, rate_option, conns_option),
        max_open_descriptors: parts.iter().filter_map(|p| p.max_open_descriptors).max(),
        reply_rate_series: elementwise(parts.iter().map(|p| p.reply_rate_series.as_slice())),
        max_connect_burst_length: max_u(|p| p.max_connect_burst_length),
        connection_lifetime_histogram: merge_histograms(parts),
        total_connections: sum_u(|p| p.total_connections),
        total_requests,
        total_replies: sum_u(|p| p.total_replies),
        total_test_duration: max_f(|p| p.total_test_duration),
        connection_rate_per_sec: connection_rate,
        connection_rate_ms_conn: per(connection_rate),
        max_concurrent_connections: max_u(|p| p.max_concurrent_connections),
        connection_time_min: min_f(|p| p.connection_time_min),
        connection_time_avg: conn_avg,
        connection_time_max: max_f(|p| p.connection_time_max),
        connection_time_median: mean(|p| p.connection_time_median),
        connection_time_stddev: tidy(pooled_var.sqrt()),
        connection_time_connect: mean(|p| p.connection_time_connect),
        connection_length: mean(|p| p.connection_length),
        request_rate_per_sec: request_rate,
        request_rate_ms_request: per(request_rate),
        request_size: mean(|p| p.request_size),
        reply_rate_min: sum_f(|p| p.reply_rate_min),
        reply_rate_avg: sum_f(|p| p.reply_rate_avg),
        reply_rate_max: sum_f(|p| p.reply_rate_max),
        reply_rate_stddev: tidy(
            parts
                .iter()
                .map(|p| p.reply_rate_stddev.powi(2))
                .sum::<f64>()
                .sqrt(),
        ),
        reply_rate_samples: parts
            .iter()
            .map(|p| p.reply_rate_samples)
            .min()
            .unwrap_or(0),
        reply_time_response: mean(|p| p.reply_time_response),
        reply_time_transfer: mean(|p| p.reply_time_transfer),
        reply_size_header: mean(|p| p.reply_size_header),
        reply_size_content: mean(|p| p.reply_size_content),
        reply_size_footer: mean(|p| p.reply_size_footer),
        reply_size_total: mean(|p| p.reply_size_total),
        reply_status_1xx: sum_u(|p| p.reply_status_1xx),
        reply_status_2xx: sum_u(|p| p.reply_status_2xx),
        reply_status_3xx: sum_u(|p| p.reply_status_3xx),
        reply_status_4xx: sum_u(|p| p.reply_status_4xx),
        reply_status_5xx: sum_u(|p| p.reply_status_5xx),
        periodic_stats_200: sum_opt_u(|p| p.periodic_stats_200),
        periodic_stats_302: sum_opt_u(|p| p.periodic_stats_302),
        cpu_time_user_sec: sum_f(|p| p.cpu_time_user_sec),
        cpu_time_system_sec: sum_f(|p| p.cpu_time_system_sec),
        cpu_time_user_pct: mean(|p| p.cpu_time_user_pct),
        cpu_time_system_pct: mean(|p| p.cpu_time_system_pct),
        cpu_time_total_pct: min_f(|p| p.cpu_time_total_pct),
        net_io_kb_sec: sum_f(|p| p.net_io_kb_sec),
        net_io_bps: sum_f(|p| p.net_io_bps),
        errors_total: sum_u(|p| p.errors_total),
        errors_client_timeout: sum_u(|p| p.errors_client_timeout),
        errors_socket_timeout: sum_u(|p| p.errors_socket_timeout),
        errors_conn_refused: sum_u(|p| p.errors_conn_refused),
        errors_conn_reset: sum_u(|p| p.errors_conn_reset),
        errors_fd_unavail: sum_u(|p| p.errors_fd_unavail),
        errors_addr_unavail: sum_u(|p| p.errors_addr_unavail),
        errors_ftab_full: sum_u(|p| p.errors_ftab_full),
        errors_other: sum_u(|p| p.errors_other),
        session_rate_min: sum_opt_f(|p| p.session_rate_min),
        session_rate_avg: sum_opt_f(|p| p.session_rate_avg),
        session_rate_max: sum_opt_f(|p| p.session_rate_max),
        session_rate_stddev: sum_opt_f(|p| p.session_rate_stddev.map(|s| s * s)).map(f64::sqrt),
        sessions_completed: sum_opt_u(|p| p.sessions_completed),
        sessions_total: sum_opt_u(|p| p.sessions_total),
        session_connections_avg: mean_opt(|p| p.session_connections_avg),
        session_lifetime_sec: mean_opt(|p| p.session_lifetime_sec),
        session_failtime_sec: mean_opt(|p| p.session_failtime_sec),
        session_length_histogram: elementwise_u(
            parts.iter().map(|p| p.session_length_histogram.as_slice()),
        ),
        session_rate_series: elementwise(parts.iter().map(|p| p.session_rate_series.as_slice())),
    }
}

/// `v` to 6 decimals: sums and means of httperf's 1- to 3-decimal figures, without the
/// binary noise (`91.30000000000001`) that would otherwise reach the CSV.
fn tidy(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}

/// `command` with `--rate` and `--num-conns` replaced by the totals (left as they are when
/// the parts' commands did not have them).
fn with_totals(command: &str, rate: f64, conns: u64) -> String {
    command
        .split(' ')
        .map(|w| {
            if rate > 0.0 && w.starts_with("--rate=") {
                format!("--rate={}", fmt_rate(rate))
            } else if conns > 0 && w.starts_with("--num-conns=") {
                format!("--num-conns={conns}")
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Element-wise sums over the common length of the series.
fn elementwise<'a>(series: impl Iterator<Item = &'a [f64]>) -> Vec<f64> {
    let all: Vec<&[f64]> = series.collect();
    let n = all.iter().map(|s| s.len()).min().unwrap_or(0);
    (0..n).map(|i| all.iter().map(|s| s[i]).sum()).collect()
}

/// Element-wise sums over the longest series (a missing element counts as 0).
fn elementwise_u<'a>(series: impl Iterator<Item = &'a [u64]>) -> Vec<u64> {
    let all: Vec<&[u64]> = series.collect();
    let n = all.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..n)
        .map(|i| all.iter().map(|s| s.get(i).copied().unwrap_or(0)).sum())
        .collect()
}

/// The histograms' counts added bin by bin (bins matched by their centre).
fn merge_histograms(parts: &[Report]) -> Vec<HistogramBin> {
    let mut bins: Vec<HistogramBin> = Vec::new();
    for b in parts.iter().flat_map(|p| &p.connection_lifetime_histogram) {
        match bins.iter_mut().find(|x| x.ms == b.ms) {
            Some(x) => x.count += b.count,
            None => bins.push(*b),
        }
    }
    bins.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    bins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httperf::parse_report;

    fn sample() -> Report {
        parse_report(include_str!("../../tests/fixtures/httperf-sample-1.txt")).unwrap()
    }

    #[test]
    fn one_part_is_itself_and_none_is_empty() {
        let r = sample();
        assert_eq!(merge(std::slice::from_ref(&r)), r);
        assert_eq!(merge(&[]), Report::default());
    }

    #[test]
    fn two_clients_sum_counts_and_rates_and_weigh_times_by_requests() {
        let a = sample();
        let mut b = a.clone();
        b.command = b.command.replace("--client=0/1", "--client=1/2");
        b.total_requests = a.total_requests * 3;
        b.total_connections = a.total_connections * 3;
        b.total_replies = a.total_replies * 3;
        b.reply_time_response = a.reply_time_response + 4.0;
        b.connection_time_avg = a.connection_time_avg + 4.0;
        b.connection_time_stddev = 0.0;
        b.connection_time_min = a.connection_time_min + 1.0;
        b.cpu_time_total_pct = 50.0;
        b.max_concurrent_connections = a.max_concurrent_connections + 7;
        b.errors_fd_unavail = 3;
        let m = merge(&[a.clone(), b.clone()]);
        assert_eq!(m.total_requests, 4 * a.total_requests);
        assert_eq!(m.total_replies, a.total_replies + b.total_replies);
        assert_eq!(m.reply_status_2xx, a.reply_status_2xx + b.reply_status_2xx);
        assert_eq!(m.errors_fd_unavail, 3);
        assert!((m.request_rate_per_sec - 2.0 * a.request_rate_per_sec).abs() < 1e-9);
        let mut c = a.clone();
        c.request_rate_per_sec = 45.6;
        let mut d = a.clone();
        d.request_rate_per_sec = 45.7;
        assert_eq!(merge(&[c, d]).request_rate_per_sec, 91.3, "no binary noise");
        assert!((m.request_rate_ms_request - 1000.0 / m.request_rate_per_sec).abs() < 1e-6);
        // b made 3 of every 4 requests: its reply time weighs 3/4.
        assert!((m.reply_time_response - (a.reply_time_response + 3.0)).abs() < 1e-9);
        assert_eq!(m.connection_time_min, a.connection_time_min);
        assert_eq!(m.cpu_time_total_pct, 50.0);
        assert_eq!(m.max_concurrent_connections, b.max_concurrent_connections);
        // Pooled: a's spread at weight 1/4 plus both means' distance from the overall mean.
        let mean = a.connection_time_avg + 3.0;
        let var = (a.connection_time_stddev.powi(2) + (a.connection_time_avg - mean).powi(2)) / 4.0
            + 3.0 * (b.connection_time_avg - mean).powi(2) / 4.0;
        assert!((m.connection_time_stddev - var.sqrt()).abs() < 1e-9);
        assert!(m.command.contains("--client=0/1"), "{}", m.command);
        let rate: f64 = a.command_option("rate").unwrap().parse().unwrap();
        assert_eq!(
            m.command_option("rate").unwrap().parse::<f64>().unwrap(),
            2.0 * rate
        );
    }

    proptest::proptest! {
        /// Merging N copies of a report multiplies its counts and rates by N and keeps its
        /// times, sizes and percentages.
        #[test]
        fn copies_scale_counts_and_keep_means(n in 2usize..6, requests in 0u64..100_000) {
            let mut r = sample();
            r.total_requests = requests;
            let m = merge(&vec![r.clone(); n]);
            let n64 = n as u64;
            proptest::prop_assert_eq!(m.total_requests, requests * n64);
            proptest::prop_assert_eq!(m.total_connections, r.total_connections * n64);
            proptest::prop_assert_eq!(m.errors_total, r.errors_total * n64);
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
            proptest::prop_assert!(close(m.request_rate_per_sec, r.request_rate_per_sec * n as f64));
            proptest::prop_assert!(close(m.reply_time_response, r.reply_time_response));
            proptest::prop_assert!(close(m.connection_time_avg, r.connection_time_avg));
            proptest::prop_assert!(close(m.connection_time_stddev, r.connection_time_stddev));
            proptest::prop_assert!(close(m.cpu_time_total_pct, r.cpu_time_total_pct));
            proptest::prop_assert!(close(m.reply_size_total, r.reply_size_total));
            proptest::prop_assert_eq!(m.total_test_duration, r.total_test_duration);
        }
    }
}
