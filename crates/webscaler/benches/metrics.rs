//! What `webscaler run --metrics` costs the loop per tick, and what a scrape waits:
//!
//! - `tick + encode`: [`Metrics::tick`] and [`Metrics::encode`], the work the loop adds to a
//!   tick (after a simulated hour, with failures of every kind counted, so every family is
//!   there);
//! - `publish`: handing the bytes to the server (a mutex held for a pointer swap), alone and
//!   while scrapers hammer the server;
//! - `scrape`: one `GET /metrics` over loopback, connection included.
//!
//! `cargo bench -p webscaler --bench metrics`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use webscaler::controller::{self, Controller, Side};
use webscaler::policy::{self, DefaultPolicy};
use webscaler::service::{Exporter, Metrics};
use webscaler::simulation::trace::synthetic;
use webscaler::simulation::world::{Sim, SimConfig};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Per-iteration time of `f`, the median of 7 rounds of `n`.
fn per_iter(n: u32, mut f: impl FnMut(u32)) -> Duration {
    median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                for i in 0..n {
                    f(i);
                }
                t.elapsed() / n
            })
            .collect(),
    )
}

fn main() {
    let sim = Sim::new(SimConfig::default(), synthetic::constant(45.0, 7200));
    let mut c = Controller::new(
        sim.cloud(),
        sim.balancer(),
        sim.clock(),
        DefaultPolicy::new(policy::Config::default()),
        controller::Config::default(),
    );
    let mut m = Metrics::new(10.0);
    let mut report = c.tick();
    for i in 0..720 {
        sim.advance(Duration::from_secs(5));
        report = c.tick();
        m.tick(&report, Duration::from_millis(i % 300), 0, 1.7e9);
    }
    for (side, call, kind) in [
        (Side::Cloud, "list", "transient"),
        (Side::Cloud, "create", "quota_exceeded"),
        (Side::Cloud, "stop", "transient"),
        (Side::Balancer, "observe", "socket"),
        (Side::Balancer, "drain", "refused"),
    ] {
        report.tally.failed(side, call, kind);
    }
    m.tick(&report, Duration::from_millis(20), 0, 1.7e9);
    let body = m.encode();
    println!(
        "exposition: {} bytes, {} samples",
        body.len(),
        body.lines().filter(|l| !l.starts_with('#')).count()
    );

    let t = per_iter(20_000, |i| {
        m.tick(
            black_box(&report),
            Duration::from_micros(u64::from(i)),
            0,
            1.7e9,
        );
        black_box(m.encode());
    });
    println!("tick + encode: {:.1} µs per tick", t.as_secs_f64() * 1e6);

    let e = Exporter::start(([127, 0, 0, 1], 0).into(), body.clone().into()).unwrap();
    let bytes = bytes::Bytes::from(body);
    let publish = |e: &Exporter| {
        let mut each: Vec<Duration> = (0..200_000)
            .map(|_| {
                let s = Instant::now();
                e.publish(black_box(bytes.clone()));
                s.elapsed()
            })
            .collect();
        each.sort();
        let at = |q: f64| each[((each.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e9;
        format!(
            "median {:.0} ns, 99.9th percentile {:.0} ns, worst {:.0} µs",
            at(0.5),
            at(0.999),
            at(1.0) / 1e3
        )
    };
    println!("publish, idle server: {}", publish(&e));

    let addr = e.local_addr();
    let scrape = || common::net::http_get(addr, "/metrics", Duration::from_secs(5)).unwrap();
    let t = per_iter(500, |_| {
        black_box(scrape());
    });
    println!(
        "scrape (GET /metrics, new connection): {:.0} µs",
        t.as_secs_f64() * 1e6
    );

    // Two scrapers in a loop while the loop publishes.
    let stop = Arc::new(AtomicBool::new(false));
    let scrapers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    black_box(
                        common::net::http_get(addr, "/metrics", Duration::from_secs(5)).unwrap(),
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    let under_load = publish(&e);
    stop.store(true, Ordering::Relaxed);
    let scrapes: u64 = scrapers.into_iter().map(|s| s.join().unwrap()).sum();
    println!("publish under 2 busy scrapers ({scrapes} scrapes meanwhile): {under_load}");
}
