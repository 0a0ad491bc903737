//! What the report derives from its points beyond the per-rate numbers: plain and TLS side by
//! side per balancer, the cost of TLS, and the size sweep's throughput with what limited it.
//! Pure functions over [`RatePoint`]s.

use super::aggregate::RatePoint;
use crate::httperf::Tls;

/// One balancer at one rate, plain and with TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPair<'a> {
    /// The balancer.
    pub balancer: &'a str,
    /// The demanded rate.
    pub rate: f64,
    /// Its plain point.
    pub plain: &'a RatePoint,
    /// Its TLS point (full handshakes or resumed).
    pub tls: &'a RatePoint,
}

impl TlsPair<'_> {
    /// The balancer's CPU-seconds per 1,000 connections that TLS added: TLS minus plain
    /// CPU-seconds per 1,000 requests (one request per connection), i.e. CPU-ms per
    /// handshake (with resumption, per connection, of which 3 in 4 resumed).
    pub fn cost_per_1k(&self) -> Option<f64> {
        Some(self.tls.cpu_s_per_1k?.mean - self.plain.cpu_s_per_1k?.mean)
    }
}

/// Every (balancer, rate) of a rate sweep that has both a plain and a TLS point, in the
/// points' order. Size-sweep points are left out.
pub fn tls_pairs(points: &[RatePoint]) -> Vec<TlsPair<'_>> {
    points
        .iter()
        .filter(|t| t.tls.is_on() && t.reply_size.is_none())
        .filter_map(|t| {
            let plain = points.iter().find(|p| {
                p.tls == Tls::Off
                    && p.reply_size.is_none()
                    && p.balancer == t.balancer
                    && p.rate == t.rate
            })?;
            Some(TlsPair {
                balancer: &t.balancer,
                rate: t.rate,
                plain,
                tls: t,
            })
        })
        .collect()
}

/// The highest demanded rate of a series (balancer and TLS mode, rate sweep) up to which no
/// run is flagged: every rate from the lowest to it has only unflagged runs. `None` if its
/// lowest rate already has a flagged run, or it has no points.
pub fn highest_clean_rate(points: &[RatePoint], balancer: &str, tls: Tls) -> Option<f64> {
    let mut best = None;
    for p in points
        .iter()
        .filter(|p| p.balancer == balancer && p.tls == tls && p.reply_size.is_none())
    {
        if p.flagged > 0 {
            break;
        }
        best = Some(p.rate);
    }
    best
}

/// The TLS cost of one balancer over the rates measured both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsCost {
    /// The balancer.
    pub balancer: String,
    /// How the TLS runs connected.
    pub tls: Tls,
    /// Rates with both a plain and a TLS point that have CPU data.
    pub rates: usize,
    /// The mean over those rates of the CPU-seconds per 1,000 connections TLS added.
    pub mean: f64,
    /// The smallest and largest of them.
    pub min: f64,
    /// See `min`.
    pub max: f64,
    /// TLS ÷ plain CPU per request, the mean over the rates.
    pub ratio: f64,
}

/// The TLS cost of each balancer (in the order of `pairs`).
pub fn tls_costs(pairs: &[TlsPair<'_>]) -> Vec<TlsCost> {
    let mut out: Vec<TlsCost> = Vec::new();
    for p in pairs {
        let (Some(cost), Some(plain), Some(tls)) = (
            p.cost_per_1k(),
            p.plain.cpu_s_per_1k.map(|s| s.mean),
            p.tls.cpu_s_per_1k.map(|s| s.mean),
        ) else {
            continue;
        };
        let ratio = if plain > 0.0 { tls / plain } else { f64::NAN };
        match out
            .iter_mut()
            .find(|c| c.balancer == p.balancer && c.tls == p.tls.tls)
        {
            Some(c) => {
                let n = c.rates as f64;
                c.mean = (c.mean * n + cost) / (n + 1.0);
                c.ratio = (c.ratio * n + ratio) / (n + 1.0);
                c.min = c.min.min(cost);
                c.max = c.max.max(cost);
                c.rates += 1;
            }
            None => out.push(TlsCost {
                balancer: p.balancer.to_owned(),
                tls: p.tls.tls,
                rates: 1,
                mean: cost,
                min: cost,
                max: cost,
                ratio,
            }),
        }
    }
    out
}

/// What limited a size-sweep point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// It kept up: every connection got its reply, at the demanded rate (within 5%).
    None,
    /// The balancer used nearly all the CPU it can use.
    Balancer,
    /// The machine's CPUs were all busy (httperf, the balancer, the backends and the
    /// kernel's loopback copies share them), with the balancer below its own limit.
    Machine,
    /// Neither the balancer nor the machine was saturated: the client (httperf, one
    /// process reading with `select()`) or the loopback path.
    ClientOrLoopback,
    /// No CPU data to say.
    Unknown,
}

impl Limit {
    /// In words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Limit::None => "none (kept up)",
            Limit::Balancer => "the balancer's CPU",
            Limit::Machine => {
                "the machine's CPUs (client, backends and loopback copies share them)"
            }
            Limit::ClientOrLoopback => {
                "the client or loopback (balancer and machine not saturated)"
            }
            Limit::Unknown => "unknown (no CPU data)",
        }
    }
}

/// What limited a size-sweep point. `cpus` is the machine's CPU count; a balancer is taken
/// as saturated at 90% of all of them (HAProxy and nginx run a thread or worker per CPU,
/// Pound a thread per connection), the machine at 95% busy. A point keeps up when every
/// connection of every run got its reply and the requests went out at the demanded rate
/// (within 5%), whatever else flagged it.
pub fn size_limit(p: &RatePoint, cpus: usize) -> Limit {
    if p.replied_pct.min >= 100.0 && p.achieved.min >= p.rate * 0.95 {
        return Limit::None;
    }
    let (Some(lb), Some(busy)) = (
        p.balancer_cpu_pct.map(|s| s.mean),
        p.machine_busy_pct.map(|s| s.mean),
    ) else {
        return Limit::Unknown;
    };
    if lb >= 90.0 * cpus.max(1) as f64 {
        Limit::Balancer
    } else if busy >= 95.0 {
        Limit::Machine
    } else {
        Limit::ClientOrLoopback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::aggregate::Stats;

    fn s(v: f64) -> Option<Stats> {
        Stats::of([v])
    }

    fn point(balancer: &str, tls: Tls, rate: f64, cpu_1k: f64, flagged: usize) -> RatePoint {
        let one = Stats::of([1.0]).unwrap();
        RatePoint {
            server: crate::report::data::series_name(balancer, tls),
            balancer: balancer.into(),
            tls,
            reply_size: None,
            rate,
            runs: 1,
            flagged,
            achieved: one,
            reply_ms: s(200.0),
            balancer_cpu_pct: s(10.0),
            cpu_s_per_1k: s(cpu_1k),
            backends_cpu_pct: None,
            machine_busy_pct: s(50.0),
            errors: one,
            status_5xx: one,
            failed_pct: one,
            client_limit_total: 0,
            client_timeouts_total: 0,
            refused_or_reset_total: 0,
            max_open: 0,
            reply_mb_s: None,
            cpu_s_per_gb: None,
            transfer_ms: None,
            client_cpu_pct: None,
            replied_pct: Stats::of([100.0]).unwrap(),
        }
    }

    #[test]
    fn pairs_costs_and_clean_rates() {
        let points = vec![
            point("haproxy", Tls::Off, 100.0, 0.30, 0),
            point("haproxy", Tls::Off, 500.0, 0.25, 0),
            point("haproxy", Tls::Off, 900.0, 0.25, 1),
            point("haproxy", Tls::On, 100.0, 0.50, 0),
            point("haproxy", Tls::On, 500.0, 0.55, 1),
            point("pound", Tls::On, 100.0, 1.0, 1),
        ];
        let pairs = tls_pairs(&points);
        assert_eq!(pairs.len(), 2);
        assert!((pairs[0].cost_per_1k().unwrap() - 0.2).abs() < 1e-9);
        let costs = tls_costs(&pairs);
        assert_eq!(costs.len(), 1);
        assert_eq!(costs[0].rates, 2);
        assert!((costs[0].mean - 0.25).abs() < 1e-9);
        assert!((costs[0].min - 0.2).abs() < 1e-9 && (costs[0].max - 0.3).abs() < 1e-9);
        assert_eq!(
            highest_clean_rate(&points, "haproxy", Tls::Off),
            Some(500.0)
        );
        assert_eq!(highest_clean_rate(&points, "haproxy", Tls::On), Some(100.0));
        assert_eq!(highest_clean_rate(&points, "pound", Tls::On), None);
        assert_eq!(highest_clean_rate(&points, "nginx", Tls::Off), None);
    }

    #[test]
    fn what_limits_a_size_point() {
        let mut p = point("nginx", Tls::Off, 20.0, 0.1, 1);
        p.reply_size = Some(16 << 20);
        p.achieved = Stats::of([19.8]).unwrap();
        // Every connection replied at the demanded rate: kept up, even if flagged.
        assert_eq!(size_limit(&p, 2), Limit::None);
        p.replied_pct = Stats::of([24.0]).unwrap();
        p.balancer_cpu_pct = None;
        assert_eq!(size_limit(&p, 2), Limit::Unknown);
        p.balancer_cpu_pct = s(185.0);
        assert_eq!(size_limit(&p, 2), Limit::Balancer);
        p.balancer_cpu_pct = s(60.0);
        p.machine_busy_pct = s(99.0);
        assert_eq!(size_limit(&p, 2), Limit::Machine);
        p.machine_busy_pct = s(70.0);
        assert_eq!(size_limit(&p, 2), Limit::ClientOrLoopback);
    }
}
