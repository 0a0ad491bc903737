//! `lbbench`: benchmarks HTTP load balancers with httperf (the lab report's HAProxy-vs-Pound
//! comparison, its chapter 2).
//!
//! - [`backend`]: the benchmark backend, the lab report's `perf.php` as an async server.
//! - [`httperf`]: build httperf's command line, run it with a deadline, parse every line of
//!   its report into typed fields, and judge whether a run is valid.
//! - [`sweep`]: the lab report's rate sweep (rates × repeats), one CSV row per run, resumable,
//!   with a hook around each run for callers that measure more (the lab).
//! - [`cpu`]: CPU use of the whole machine (`/proc/stat`) and of process trees
//!   (`/proc/<pid>/stat`), as a library and as the `lbbench cpu` sampler.
//! - [`csvcell`]: how typed values are written to CSV cells and read back.
//! - [`lab`]: the balancers (HAProxy, Pound, nginx) and backends of the lab on 127.0.0.1:
//!   generated and checked configs, supervised processes, their PIDs for CPU sampling.
//! - [`profile`]: plays a staged load profile (several httperf runs at their own offsets,
//!   at the same time), with time compression.
//! - [`report`]: sweep CSV files → one HTML page (reply time, balancer CPU, achieved rate,
//!   errors against the demanded rate) and a Markdown summary.

pub mod backend;
pub mod cli;
pub mod commands;
pub mod cpu;
pub mod csvcell;
pub mod httperf;
pub mod lab;
pub mod profile;
pub mod report;
pub mod sweep;
