//! The lab on one machine: benchmark backends and the balancers in front of them, all on
//! 127.0.0.1, all started and stopped by lbbench (chapter 2 of the lab report, where they
//! were four VMs).
//!
//! - [`balancer`]: HAProxy, Pound or nginx ([`Balancer`]): finding the program and its
//!   version, the config generated from an askama template ([`haproxy`], [`pound`],
//!   [`nginx`]) and checked by the program itself (`haproxy -c`, `pound -c`, `nginx -t`).
//! - [`running`]: a balancer run in the foreground as a
//!   [`Supervised`](common::process::Supervised) child on its own free port with its own temp
//!   dir ([`Balancer::start`] → [`RunningBalancer`]), and stopped with all it left behind.
//! - [`limits`]: open files and connections, and how children are started.
//! - [`logs`]: reading the programs' logs and outputs for error messages.
//! - [`Fleet`]: N `lbbench backend` processes (the lab report's `perf.php`).
//! - [`procs`]: the process tree of a balancer, from `/proc`, for CPU sampling.
//! - [`tls`]: the lab's certificate authority and the certificate the balancers serve when
//!   they terminate TLS ([`LabTls`]).
//! - [`experiment`]: `lbbench lab`, the whole comparison; [`info`]: its `lab.json`.
//! - [`hosts`]: the same lab across several hosts over ssh (`lbbench lab --hosts`), and
//!   `lbbench agent`, which runs on each of them.
//!
//! Everything started here is stopped by PID when its handle is dropped (also on an error or
//! after Ctrl-C), and the sockets and pid files it leaves behind are removed.

pub mod balancer;
pub mod experiment;
pub mod fleet;
pub mod haproxy;
pub mod hosts;
pub mod info;
pub mod limits;
pub mod logs;
pub mod nginx;
pub mod pound;
pub mod procs;
pub mod running;
pub mod tls;

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub(crate) use balancer::Flavor;
pub use balancer::{Balancer, ConfigSpec, Upstream, config_path_str};
pub use fleet::{BackendProcess, BackendStatus, Fleet, FleetOptions};
pub(crate) use limits::spawn_options;
pub use limits::{connection_budget, fd_limit};
pub(crate) use logs::log_tail;
pub use running::{BalancerOptions, RunningBalancer, Stopped};
pub use tls::LabTls;

/// Errors of the lab. Each names the program, file or address involved.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `--balancers` named something other than haproxy, pound or nginx.
    #[error("unknown balancer {0:?} (known: haproxy, pound, nginx)")]
    UnknownBalancer(String),
    /// The balancer's program is not installed.
    #[error("{what}: install the Debian package {package} (scripts/setup.sh installs it{note})")]
    NotInstalled {
        /// What was looked for, and where.
        what: String,
        /// The Debian package that has it.
        package: &'static str,
        /// Anything special about the package.
        note: &'static str,
    },
    /// The program ran but its version could not be read.
    #[error("cannot read the version of {program}: {detail}")]
    Version {
        program: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The generated config was rejected by the program's own check.
    #[error("{program} rejected the generated config {config}: {detail}")]
    InvalidConfig {
        program: String,
        config: PathBuf,
        /// The program's own message.
        detail: String,
    },
    /// A path cannot be written into a config file safely.
    #[error("cannot use {0:?} in a config file: {1}")]
    BadPath(PathBuf, &'static str),
    /// A backend name that cannot go into a config.
    #[error("bad backend name {0:?}: only letters, digits, '-', '_' and '.' are allowed")]
    BadName(String),
    /// A balancer was to be started without backends.
    #[error("no backends to balance")]
    NoBackends,
    /// A config template failed to render.
    #[error("cannot render the {program} config: {source}")]
    Template {
        program: &'static str,
        /// The template error.
        source: askama::Error,
    },
    /// A process exited while it was being started.
    #[error("{name} exited while starting ({status}): {log}")]
    Exited {
        /// What was started.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// A process did not get ready in time.
    #[error("{name} did not {what} within {waited:?}: {log}")]
    NotReady {
        /// What was started.
        name: String,
        /// What it did not do.
        what: String,
        /// How long it was given.
        waited: Duration,
        /// The end of its log, or the last error.
        log: String,
    },
    /// Processes were still running after the stop.
    #[error("{name}: processes still running after the stop: {pids:?}")]
    Leftover {
        /// What was stopped.
        name: String,
        /// Those still running.
        pids: Vec<u32>,
    },
    /// Shutdown was requested (Ctrl-C or SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }
}
