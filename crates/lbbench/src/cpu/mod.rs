//! CPU use: the whole machine's (`/proc/stat`, as `sar -u`) and that of process trees
//! (`/proc/<pid>/stat`), as a library ([`machine`], [`process`]) and as the `lbbench cpu`
//! sampler ([`monitor`]) that replaces the lab report's `sar -u 2` on the balancer host.

pub mod machine;
pub mod monitor;
pub mod process;

use std::io;

pub use machine::{CpuTimes, MachineUsage, machine_usage, parse_proc_stat, read_machine};
pub use monitor::{CpuRow, MonitorConfig, default_output, monitor};
pub use process::{
    ProcessSample, ProcessSampler, ProcessSelector, ProcessUsage, parse_pid_stat, process_usage,
};

/// Why CPU sampling failed.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// A file of `/proc` could not be read.
    #[error("cannot read {file}: {error}")]
    Io { file: String, error: io::Error },
    /// A file of `/proc` has unexpected content.
    #[error("{file}: {reason}")]
    Format {
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The processes to measure do not exist.
    #[error("{0}")]
    NoSuchProcess(String),
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The output file is not usable.
    /// (Its message already has the OS error, so it is not also exposed as a source.)
    #[error("{0}")]
    Csv(common::CsvFileError),
}

impl From<common::CsvFileError> for CpuError {
    fn from(e: common::CsvFileError) -> Self {
        CpuError::Csv(e)
    }
}

impl CpuError {
    /// Whether the error comes from bad input (a pid that does not exist, a bad setting, an
    /// output file of another layout): the CLI exits 2 for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CpuError::NoSuchProcess(_)
                | CpuError::Config(_)
                | CpuError::Csv(common::CsvFileError::HeaderMismatch { .. })
        )
    }
}
