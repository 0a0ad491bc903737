//! The numbers of the report: the runs of each balancer at each demanded rate, summed up over
//! the repeats (mean, min, max, standard deviation). Pure functions over [`Run`]s.
//!
//! - Every run counts, flagged or not: a flagged run at a high rate is usually the balancer
//!   falling behind, which is the finding, not noise. Flagged runs are counted and named so
//!   the reader can judge.
//! - A value is left out where it means nothing: the reply time of a run without replies
//!   (httperf prints 0.0), the CPU of a run without CPU columns.
//! - The standard deviation is the sample one (n − 1); with one run there is none.

use std::collections::BTreeMap;

use super::data::Run;
use crate::httperf::Tls;

/// Summary statistics of one value over the repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The sample standard deviation (n − 1); `None` for a single value.
    pub stddev: Option<f64>,
}

impl Stats {
    /// The statistics of the finite values (`None` if there are none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let stddev = (n > 1).then(|| {
            let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Stats {
            n,
            mean,
            min,
            max,
            stddev,
        })
    }
}

/// One balancer (plain or TLS) at one demanded rate (and reply size), over its repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePoint {
    /// The series: the balancer (`server` column), with the TLS mode for TLS runs
    /// (`haproxy TLS`, see [`Run::series`]).
    pub server: String,
    /// The balancer alone (`server` column).
    pub balancer: String,
    /// How its clients connected.
    pub tls: Tls,
    /// The reply size a size sweep asked for.
    pub reply_size: Option<u64>,
    /// The demanded connection rate.
    pub rate: f64,
    /// How many runs.
    pub runs: usize,
    /// How many of them are flagged.
    pub flagged: usize,
    /// The achieved request rate (req/s).
    pub achieved: Stats,
    /// The reply time (ms), over runs that had replies.
    pub reply_ms: Option<Stats>,
    /// The balancer's CPU, % of one CPU.
    pub balancer_cpu_pct: Option<Stats>,
    /// The balancer's CPU-seconds per 1,000 requests.
    pub cpu_s_per_1k: Option<Stats>,
    /// The backends' CPU together, % of one CPU.
    pub backends_cpu_pct: Option<Stats>,
    /// The whole machine's busy %, over the runs.
    pub machine_busy_pct: Option<Stats>,
    /// httperf's errors per run.
    pub errors: Stats,
    /// 5xx replies per run.
    pub status_5xx: Stats,
    /// Errors and 5xx replies as % of the connections, per run.
    pub failed_pct: Stats,
    /// Errors where httperf itself ran out (fd-unavail, addrunavail, ftab-full), all runs.
    pub client_limit_total: u64,
    /// Client timeouts, all runs.
    pub client_timeouts_total: u64,
    /// Refused or reset connections, all runs.
    pub refused_or_reset_total: u64,
    /// The most connections httperf had open at once, over the runs.
    pub max_open: u64,
    /// Reply throughput, MB/s (10^6 bytes).
    pub reply_mb_s: Option<Stats>,
    /// The balancer's CPU-seconds per GB (10^9 bytes) of replies.
    pub cpu_s_per_gb: Option<Stats>,
    /// The time from a reply's first byte to its last, ms.
    pub transfer_ms: Option<Stats>,
    /// httperf's own CPU, %.
    pub client_cpu_pct: Option<Stats>,
    /// Replies ÷ connections, %, per run.
    pub replied_pct: Stats,
}

/// The failed share of a run: (errors + 5xx) / connections, in %.
pub fn failed_pct(run: &Run) -> f64 {
    if run.connections == 0 {
        0.0
    } else {
        (run.errors + run.status_5xx) as f64 / run.connections as f64 * 100.0
    }
}

/// What a group of runs shares: the balancer's rank, the balancer, how clients connected,
/// the reply size and the rate (as its bits).
type GroupKey = (usize, String, Tls, Option<u64>, u64);

/// Groups runs by balancer (plain before TLS), then by reply size and demanded rate, and
/// sums each group up. Balancers come in the order given by `order` (unknown ones after, by
/// name), sizes and rates in increasing order.
pub fn aggregate(runs: &[Run], order: &[String]) -> Vec<RatePoint> {
    let mut groups: BTreeMap<GroupKey, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let rank = order
            .iter()
            .position(|o| *o == r.server)
            .unwrap_or(order.len());
        // Rates as their exact bits: non-negative finite floats sort the same way.
        groups
            .entry((
                rank,
                r.server.clone(),
                r.tls,
                r.reply_size,
                r.target_rate.to_bits(),
            ))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((_, balancer, tls, reply_size, rate_bits), rs)| {
            let all = |f: fn(&Run) -> f64| Stats::of(rs.iter().map(|r| f(r)));
            let opt = |f: fn(&Run) -> Option<f64>| Stats::of(rs.iter().filter_map(|r| f(r)));
            // Every group has at least one run, so these are never empty.
            let zero = Stats {
                n: 0,
                mean: 0.0,
                min: 0.0,
                max: 0.0,
                stddev: None,
            };
            RatePoint {
                server: super::data::series_name(&balancer, tls),
                balancer,
                tls,
                reply_size,
                rate: f64::from_bits(rate_bits),
                runs: rs.len(),
                flagged: rs.iter().filter(|r| !r.valid).count(),
                achieved: all(|r| r.request_rate).unwrap_or(zero),
                reply_ms: Stats::of(rs.iter().filter(|r| r.replies > 0).map(|r| r.reply_ms)),
                balancer_cpu_pct: opt(|r| r.balancer_cpu_pct),
                cpu_s_per_1k: opt(Run::cpu_s_per_1k),
                backends_cpu_pct: opt(|r| r.backends_cpu_pct),
                machine_busy_pct: opt(|r| r.machine_busy_pct),
                errors: all(|r| r.errors as f64).unwrap_or(zero),
                status_5xx: all(|r| r.status_5xx as f64).unwrap_or(zero),
                failed_pct: all(failed_pct).unwrap_or(zero),
                client_limit_total: rs.iter().map(|r| r.client_limit).sum(),
                client_timeouts_total: rs.iter().map(|r| r.client_timeouts).sum(),
                refused_or_reset_total: rs.iter().map(|r| r.refused_or_reset).sum(),
                max_open: rs.iter().map(|r| r.max_open).max().unwrap_or(0),
                reply_mb_s: opt(Run::reply_mb_s),
                cpu_s_per_gb: opt(Run::cpu_s_per_gb),
                transfer_ms: Stats::of(rs.iter().filter(|r| r.replies > 0).map(|r| r.transfer_ms)),
                client_cpu_pct: all(|r| r.client_cpu_pct),
                replied_pct: all(|r| {
                    if r.connections == 0 {
                        0.0
                    } else {
                        r.replies as f64 / r.connections as f64 * 100.0
                    }
                })
                .unwrap_or(zero),
            }
        })
        .collect()
}

/// The balancers of `points`, in their order.
pub fn servers(points: &[RatePoint]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in points {
        if out.last() != Some(&p.server) && !out.contains(&p.server) {
            out.push(p.server.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn run(server: &str, rate: f64, n: u32, reply_ms: f64, cpu: Option<f64>) -> Run {
        Run {
            file: PathBuf::from("x.csv"),
            line: 2,
            timestamp: String::new(),
            server: server.into(),
            tls: crate::httperf::Tls::Off,
            reply_size: None,
            target_rate: rate,
            run: n,
            connections: 1000,
            requests: 1000,
            replies: 1000,
            request_rate: rate,
            reply_ms,
            transfer_ms: 0.0,
            reply_bytes: 200.0,
            duration_s: 10.0,
            client_cpu_pct: 99.0,
            connection_ms: reply_ms,
            max_open: 40,
            errors: 0,
            client_timeouts: 0,
            refused_or_reset: 0,
            client_limit: 0,
            status_5xx: 0,
            valid: true,
            flag_rate_off_target: false,
            flag_resource_errors: false,
            flag_client_cpu_low: false,
            balancer_cpu_pct: cpu,
            balancer_cpu_s: cpu.map(|c| c / 10.0),
            backends_cpu_pct: None,
            machine_busy_pct: None,
        }
    }

    #[test]
    fn stats_by_hand() {
        let s = Stats::of([200.0, 210.0, 230.0]).unwrap();
        assert_eq!((s.n, s.min, s.max), (3, 200.0, 230.0));
        assert!((s.mean - 213.333_333).abs() < 1e-5);
        // sqrt(((200-213.33)^2 + (210-213.33)^2 + (230-213.33)^2) / 2) = sqrt(233.33)
        assert!((s.stddev.unwrap() - 15.275_252).abs() < 1e-5);
        let one = Stats::of([5.0]).unwrap();
        assert_eq!(
            (one.mean, one.min, one.max, one.stddev),
            (5.0, 5.0, 5.0, None)
        );
        assert_eq!(Stats::of([]), None);
        assert_eq!(Stats::of([f64::NAN]), None);
        assert_eq!(Stats::of([1.0, f64::NAN, 3.0]).unwrap().mean, 2.0);
    }

    #[test]
    fn groups_by_balancer_in_order_then_by_rate() {
        let mut runs = vec![
            run("pound", 200.0, 1, 205.0, Some(30.0)),
            run("haproxy", 200.0, 1, 201.0, Some(10.0)),
            run("haproxy", 100.0, 2, 202.0, Some(6.0)),
            run("haproxy", 100.0, 1, 200.0, Some(4.0)),
            run("pound", 100.0, 1, 203.0, None),
        ];
        // A run without replies has no reply time; a flagged run still counts.
        runs[0].replies = 0;
        runs[0].reply_ms = 0.0;
        runs[0].valid = false;
        runs[0].errors = 30;
        runs[0].status_5xx = 20;
        runs[0].client_limit = 30;
        let order = ["haproxy".to_owned(), "pound".to_owned()];
        let p = aggregate(&runs, &order);
        let keys: Vec<(&str, f64, usize)> = p
            .iter()
            .map(|p| (p.server.as_str(), p.rate, p.runs))
            .collect();
        assert_eq!(
            keys,
            [
                ("haproxy", 100.0, 2),
                ("haproxy", 200.0, 1),
                ("pound", 100.0, 1),
                ("pound", 200.0, 1)
            ]
        );
        let h100 = &p[0];
        assert_eq!(h100.reply_ms.unwrap().mean, 201.0);
        assert_eq!(h100.reply_ms.unwrap().min, 200.0);
        assert_eq!(h100.balancer_cpu_pct.unwrap().mean, 5.0);
        // 0.4 and 0.6 CPU-s over 1000 requests each.
        assert!((h100.cpu_s_per_1k.unwrap().mean - 0.5).abs() < 1e-12);
        assert_eq!(h100.flagged, 0);
        let p200 = &p[3];
        assert_eq!(p200.reply_ms, None);
        assert_eq!(p200.flagged, 1);
        assert_eq!(p200.errors.mean, 30.0);
        assert_eq!(p200.failed_pct.mean, 5.0);
        assert_eq!(p200.client_limit_total, 30);
        assert_eq!(p[2].balancer_cpu_pct, None);
        assert_eq!(servers(&p), ["haproxy", "pound"]);
        // Unknown balancers come after the known ones.
        let p = aggregate(&runs, &["pound".to_owned()]);
        assert_eq!(servers(&p), ["pound", "haproxy"]);
    }

    proptest! {
        #[test]
        fn stats_are_bounded_and_order_free(mut v in proptest::collection::vec(0.0f64..1e6, 1..20)) {
            let s = Stats::of(v.clone()).unwrap();
            prop_assert!(s.min <= s.mean + 1e-9 && s.mean <= s.max + 1e-9);
            prop_assert_eq!(s.n, v.len());
            if let Some(sd) = s.stddev {
                prop_assert!(sd >= 0.0 && sd <= (s.max - s.min) + 1e-9);
            }
            v.reverse();
            let r = Stats::of(v).unwrap();
            prop_assert_eq!((s.min, s.max), (r.min, r.max));
            prop_assert!((s.mean - r.mean).abs() <= 1e-9 * s.mean.abs().max(1.0));
        }
    }
}
