//! `lbbench`: benchmarks HTTP load balancers with httperf (chapter 2 of the lab report).
//!
//! - [`backend`]: the benchmark backend, the report's `perf.php` as an async server.
//! - [`lab`]: the balancers (HAProxy, Pound, nginx) and backends of the lab on 127.0.0.1:
//!   generated and checked configs, supervised processes, their PIDs for CPU sampling.

pub mod backend;
pub mod cli;
pub mod lab;
