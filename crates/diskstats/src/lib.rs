//! `diskstats`: samples `/proc/diskstats` to CSV (chapter 3 of the lab report).

pub mod cli;
