//! `lbbench`: benchmarks HTTP load balancers with httperf (chapter 2 of the lab report).
//!
//! - [`backend`]: the benchmark backend, the report's `perf.php` as an async server.

pub mod backend;
pub mod cli;
