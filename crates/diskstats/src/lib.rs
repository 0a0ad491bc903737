//! `diskstats`: samples `/proc/diskstats` to CSV (the lab report's disk monitor, its
//! chapter 3), and reports the samples the way `iostat -x` does.
//!
//! - [`parse`]: one line of `/proc/diskstats` (7, 14, 18 or 20 tokens) to counters;
//! - [`record`]: the CSV columns, file names, and row encoding and decoding;
//! - [`clock`]: the timestamp and the monotonic `uptime` of a sample;
//! - [`sample`]: reading the file and appending one batch of rows per sample, once or in a
//!   loop;
//! - [`iostat`]: sysstat's `iostat -x` formulas over two samples, with the 32-bit wrap of the
//!   millisecond fields and device resets;
//! - [`textfile`]: the counters as a node_exporter textfile-collector file (Prometheus);
//! - [`report`]: intervals from a CSV file, as a text table or CSV;
//! - [`plot`]: throughput, IOPS and utilisation over time, as SVG;
//! - [`cli`]: the command line.

pub mod cli;
pub mod clock;
pub mod iostat;
pub mod parse;
pub mod plot;
pub mod record;
pub mod report;
pub mod sample;
pub mod textfile;
