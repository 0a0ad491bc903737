//! `webscaler run --metrics ADDR`: what the loop exposes to Prometheus.
//!
//! [`Metrics`] keeps the values (the last tick's gauges, the counters and the tick-duration
//! histogram since the start) and is updated once per tick by the loop ([`Metrics::tick`]),
//! which then encodes it in the Prometheus text format (0.0.4, with `prometheus-client`) and
//! hands the bytes to the HTTP server ([`super::exporter`]). A scrape only copies the last
//! published bytes: it never sees half a tick and never waits for one.
//!
//! Names follow Prometheus' conventions: the `webscaler_` prefix, base units in the name
//! (`_seconds`), `_total` on counters. A value that is not known (no rate before the second
//! tick, no `needed` or roles in a tick that could not observe both sides, no quota when it
//! is unlimited) is left out rather than written as 0, so a graph shows a gap, not a lie.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::controller::{Change, Role, Side, TickReport};

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The upper bounds of the tick-duration histogram, in seconds: a local tick takes
/// milliseconds; an OpenStack call retried with its pauses and timeouts can take a minute.
pub const TICK_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A histogram's observations: per bucket (not cumulative), their sum and count.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, and one for above the last (`+Inf`).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// (upper bound, count in that bucket alone), `+Inf` last.
    fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

/// What `/metrics` shows (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Requests per second one server is sized for.
    threshold: f64,
    rate: Option<f64>,
    needed: Option<u32>,
    /// Members by role (every role, 0 included), or `None` when the tick could not join the
    /// cloud and the balancer.
    roles: Option<[(&'static str, u32); Role::LABELS.len()]>,
    quota_left: Option<u64>,
    balancers_answering: u32,
    /// When the last tick ended (Unix time).
    last_tick: Option<f64>,
    changes: BTreeMap<Change, u64>,
    failures: BTreeMap<(Side, &'static str, &'static str), u64>,
    ticks_skipped: u64,
    tick_seconds: Histogram,
}

impl Metrics {
    /// Nothing measured yet; `threshold` is the policy's requests per second per server.
    pub fn new(threshold: f64) -> Metrics {
        Metrics {
            threshold,
            rate: None,
            needed: None,
            roles: None,
            quota_left: None,
            balancers_answering: 0,
            last_tick: None,
            // Every kind from 0, so that `rate()` and `increase()` see the first one.
            changes: Change::ALL.iter().map(|&c| (c, 0)).collect(),
            failures: BTreeMap::new(),
            ticks_skipped: 0,
            tick_seconds: Histogram::new(&TICK_BUCKETS),
        }
    }

    /// Takes in one tick: its report, how long the whole tick took, how many ticks the
    /// ticker skipped before it, and the wall time at its end (Unix seconds).
    pub fn tick(&mut self, report: &TickReport, took: Duration, skipped: u64, now_unix: f64) {
        let joined = report.observation.is_some();
        self.rate = report
            .decision
            .as_ref()
            .and_then(|d| d.rate)
            .map(|r| r.to_f64());
        self.needed = report.decision.as_ref().and_then(|d| d.needed);
        self.roles = joined.then(|| {
            let mut roles = Role::LABELS.map(|l| (l, 0));
            for m in &report.members {
                if let Some(r) = roles.iter_mut().find(|(l, _)| *l == m.role.label()) {
                    r.1 += 1;
                }
            }
            roles
        });
        self.quota_left = report.quota_left;
        self.balancers_answering = report.balancers_answering;
        self.last_tick = Some(now_unix);
        for (&c, &n) in &report.tally.changes {
            *self.changes.entry(c).or_default() += n;
        }
        for f in &report.tally.failures {
            *self.failures.entry((f.side, f.call, f.kind)).or_default() += 1;
        }
        self.ticks_skipped += skipped;
        self.tick_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition (format 0.0.4) of everything.
    pub fn encode(&self) -> String {
        let mut registry = Registry::with_prefix("webscaler");
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// A family of gauges or counters, one sample per label set.
fn family<'a, V: Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    counter: bool,
    samples: impl IntoIterator<Item = (&'a [(&'static str, &'a str)], V)>,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
    ConstCounter<V>: EncodeMetric,
{
    let kind = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut m = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in samples {
        let e = m.encode_family(&labels)?;
        if counter {
            ConstCounter::new(v).encode(e)?;
        } else {
            ConstGauge::new(v).encode(e)?;
        }
    }
    Ok(())
}

/// One sample without labels.
fn single<V: Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    counter: bool,
    v: V,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
    ConstCounter<V>: EncodeMetric,
{
    family(encoder, name, help, unit, counter, [(&[][..], v)])
}

impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        const GAUGE: bool = false;
        const COUNTER: bool = true;
        if let Some(rate) = self.rate {
            single(
                &mut e,
                "requests_per_second",
                "The request rate measured over the last tick (HAProxy's session or request counter, per --metric).",
                None,
                GAUGE,
                rate,
            )?;
        }
        single(
            &mut e,
            "threshold_requests_per_second",
            "Requests per second one server is sized for: servers needed = ceil(rate / threshold).",
            None,
            GAUGE,
            self.threshold,
        )?;
        if let Some(needed) = self.needed {
            single(
                &mut e,
                "servers_needed",
                "Servers needed for the measured rate, within the minimum and the maximum.",
                None,
                GAUGE,
                u64::from(needed),
            )?;
        }
        if let Some(roles) = &self.roles {
            let labels: Vec<[(&str, &str); 1]> =
                roles.iter().map(|(l, _)| [("role", *l)]).collect();
            family(
                &mut e,
                "servers",
                "Backends by the role they played at the last tick (serving, unhealthy, joining, booting, draining, stopping, deleting, stopped, failed, other, orphan).",
                None,
                GAUGE,
                labels
                    .iter()
                    .zip(roles.iter())
                    .map(|(l, (_, n))| (&l[..], u64::from(*n))),
            )?;
        }
        if let Some(left) = self.quota_left {
            single(
                &mut e,
                "quota_left",
                "How many more backends the cloud's quota has room for, as last reported (absent when unlimited).",
                None,
                GAUGE,
                left,
            )?;
        }
        single(
            &mut e,
            "haproxy_instances_answering",
            "HAProxy instances that answered the last tick.",
            None,
            GAUGE,
            u64::from(self.balancers_answering),
        )?;
        if let Some(t) = self.last_tick {
            single(
                &mut e,
                "last_tick_timestamp",
                "When the last tick ended, in seconds since the Unix epoch.",
                Some(&Unit::Seconds),
                GAUGE,
                t,
            )?;
        }
        let labels: Vec<(Change, [(&str, &str); 1])> = self
            .changes
            .keys()
            .map(|&c| (c, [("kind", c.as_str())]))
            .collect();
        family(
            &mut e,
            "actions",
            "Changes made to the cloud (create, start, stop, delete) and to HAProxy (add, ready, drain, undrain, remove) that were accepted.",
            None,
            COUNTER,
            labels.iter().map(|(c, l)| (&l[..], self.changes[c])),
        )?;
        for (side, name, what) in [
            (
                Side::Cloud,
                "cloud_errors",
                "Failed cloud calls (list, quota, create, start, stop, delete), by call and kind of error.",
            ),
            (
                Side::Balancer,
                "haproxy_errors",
                "Failed HAProxy calls (observe, add, ready, drain, undrain, remove), by call and kind of error.",
            ),
        ] {
            let labels: Vec<([(&str, &str); 2], u64)> = self
                .failures
                .iter()
                .filter(|((s, _, _), _)| *s == side)
                .map(|((_, call, kind), n)| ([("call", *call), ("kind", *kind)], *n))
                .collect();
            if !labels.is_empty() {
                family(
                    &mut e,
                    name,
                    what,
                    None,
                    COUNTER,
                    labels.iter().map(|(l, n)| (&l[..], *n)),
                )?;
            }
        }
        single(
            &mut e,
            "ticks_skipped",
            "Ticks skipped because the one before took longer than the interval.",
            None,
            COUNTER,
            self.ticks_skipped,
        )?;
        let h = &self.tick_seconds;
        let mut m = e.encode_descriptor(
            "tick_duration",
            "How long each tick took: observe, decide, act, write the CSV row and the state files.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{self, Controller};
    use crate::policy::{self, DefaultPolicy};
    use crate::simulation::trace::synthetic;
    use crate::simulation::world::{Sim, SimConfig};

    /// `ticks` 5-s ticks of the simulated world at 45 req/s, into a fresh `Metrics`.
    fn simulated(ticks: u32) -> (Metrics, Vec<TickReport>) {
        let sim = Sim::new(SimConfig::default(), synthetic::constant(45.0, 3600));
        let mut c = Controller::new(
            sim.cloud(),
            sim.balancer(),
            sim.clock(),
            DefaultPolicy::new(policy::Config::default()),
            controller::Config::default(),
        );
        let mut m = Metrics::new(10.0);
        let mut reports = Vec::new();
        for i in 0..ticks {
            let r = c.tick();
            m.tick(
                &r,
                Duration::from_millis(u64::from(i) * 7),
                0,
                1.7e9 + f64::from(i),
            );
            reports.push(r);
            sim.advance(Duration::from_secs(5));
        }
        (m, reports)
    }

    /// The samples of an exposition: `name{labels}` → value.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                let v = if v == "+Inf" {
                    f64::INFINITY
                } else {
                    v.parse().unwrap()
                };
                (k.to_owned(), v)
            })
            .collect()
    }

    #[test]
    fn the_values_are_the_ticks_and_the_counters_add_up() {
        let (m, reports) = simulated(40);
        let s = samples(&m.encode());
        let last = reports.last().unwrap();
        assert_eq!(s["webscaler_requests_per_second"], 45.0);
        assert_eq!(s["webscaler_threshold_requests_per_second"], 10.0);
        assert_eq!(s["webscaler_servers_needed"], 5.0);
        assert_eq!(
            s["webscaler_servers{role=\"serving\"}"],
            f64::from(last.counts.serving)
        );
        assert_eq!(last.counts.serving, 5);
        for role in Role::LABELS {
            assert!(
                s.contains_key(&format!("webscaler_servers{{role=\"{role}\"}}")),
                "{role}"
            );
        }
        assert_eq!(
            s["webscaler_quota_left"], 8.0,
            "the simulated quota of 13, 5 used"
        );
        assert_eq!(s["webscaler_haproxy_instances_answering"], 1.0);
        assert_eq!(s["webscaler_last_tick_timestamp_seconds"], 1.7e9 + 39.0);
        for c in Change::ALL {
            let total: u64 = reports.iter().map(|r| r.tally.count(c)).sum();
            assert_eq!(
                s[&format!("webscaler_actions_total{{kind=\"{c}\"}}")],
                total as f64,
                "{c}"
            );
        }
        assert_eq!(s["webscaler_actions_total{kind=\"create\"}"], 5.0);
        assert!(
            !s.keys().any(|k| k.contains("errors_total")),
            "no error yet"
        );
        // Tick i took 7·i ms: 0..=273 ms.
        assert_eq!(s["webscaler_tick_duration_seconds_count"], 40.0);
        assert_eq!(
            s["webscaler_tick_duration_seconds_bucket{le=\"+Inf\"}"],
            40.0
        );
        // 0, 7, ..., 49 ms are ≤ 0.05 s: 8 ticks (49 ms); 0.1 s: i ≤ 14; 0.25 s: i ≤ 35.
        assert_eq!(
            s["webscaler_tick_duration_seconds_bucket{le=\"0.05\"}"],
            8.0
        );
        assert_eq!(
            s["webscaler_tick_duration_seconds_bucket{le=\"0.1\"}"],
            15.0
        );
        assert_eq!(
            s["webscaler_tick_duration_seconds_bucket{le=\"0.25\"}"],
            36.0
        );
        let sum: f64 = (0..40).map(|i| f64::from(i) * 0.007).sum();
        assert!((s["webscaler_tick_duration_seconds_sum"] - sum).abs() < 1e-9);
    }

    #[test]
    fn what_is_not_known_is_left_out() {
        let (m, _) = simulated(1);
        let s = samples(&m.encode());
        assert!(
            !s.contains_key("webscaler_requests_per_second"),
            "no rate at the first tick"
        );
        assert!(!s.contains_key("webscaler_servers_needed"));
        assert!(s.contains_key("webscaler_servers{role=\"booting\"}"));
        let fresh = samples(&Metrics::new(10.0).encode());
        assert!(!fresh.contains_key("webscaler_last_tick_timestamp_seconds"));
        assert!(!fresh.contains_key("webscaler_quota_left"));
        assert_eq!(fresh["webscaler_actions_total{kind=\"remove\"}"], 0.0);
        assert_eq!(fresh["webscaler_tick_duration_seconds_count"], 0.0);
    }

    #[test]
    fn a_tick_that_could_not_observe_counts_its_errors_and_drops_the_roles() {
        let (mut m, mut reports) = simulated(20);
        // What `error_report` gives when HAProxy does not answer.
        let mut r = reports.pop().unwrap();
        r.observation = None;
        r.decision = None;
        r.members.clear();
        r.tally = Default::default();
        r.tally.failed(Side::Balancer, "observe", "socket");
        r.balancers_answering = 0;
        m.tick(&r, Duration::from_millis(3), 2, 1.8e9);
        m.tick(&r, Duration::from_millis(3), 0, 1.8e9 + 5.0);
        let s = samples(&m.encode());
        assert!(!s.keys().any(|k| k.starts_with("webscaler_servers{")));
        assert!(!s.contains_key("webscaler_requests_per_second"));
        assert_eq!(s["webscaler_haproxy_instances_answering"], 0.0);
        assert_eq!(
            s["webscaler_haproxy_errors_total{call=\"observe\",kind=\"socket\"}"],
            2.0
        );
        assert_eq!(s["webscaler_ticks_skipped_total"], 2.0);
        assert!(!s.keys().any(|k| k.starts_with("webscaler_cloud_errors")));
        // The counters keep what earlier ticks added.
        assert_eq!(s["webscaler_actions_total{kind=\"create\"}"], 5.0);
    }

    #[test]
    fn every_role_has_its_label() {
        use std::time::Duration as D;
        let roles = [
            Role::Serving,
            Role::Unhealthy { since: D::ZERO },
            Role::Joining { since: D::ZERO },
            Role::Booting,
            Role::Draining {
                sessions: 0,
                since: D::ZERO,
            },
            Role::Stopping,
            Role::Deleting,
            Role::Stopped,
            Role::Failed { why: String::new() },
            Role::Other {
                status: String::new(),
            },
            Role::Orphan,
        ];
        assert_eq!(roles.map(|r| r.label()), Role::LABELS);
    }

    #[test]
    fn histogram_bounds_are_inclusive() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.1, 0.1000001, 1.0, 7.0] {
            h.observe(v);
        }
        assert_eq!(h.buckets(), [(0.1, 1), (1.0, 2), (f64::INFINITY, 1)]);
        assert_eq!(h.count, 4);
    }
}
