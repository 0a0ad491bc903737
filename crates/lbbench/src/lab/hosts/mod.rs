//! The lab across hosts (`lbbench lab --hosts FILE`), as the lab report ran it: httperf on
//! client machines, the balancer on its own, the backends on theirs.
//!
//! - [`file`]: the hosts file (TOML), checked as it is read.
//! - [`check`]: `lbbench lab --hosts FILE --check`, whether every host is ready.
//! - [`ssh`]: the transport, the system's `ssh` with one control master per host.
//! - [`protocol`]: what lbbench and `lbbench agent` on each host say to each other.
//! - [`agent`]: `lbbench agent`, which starts, measures and stops things on its host.
//! - [`remote`]: a host as the lab sees it, with deadlines and a clear error when it is lost.
//! - [`connected`]: all the lab's hosts, connected, and the lab's steps as requests to them.

pub mod agent;
pub mod check;
pub mod connected;
pub mod file;
pub mod protocol;
pub mod remote;
pub mod ssh;

pub use file::{Host, HostsFile, HostsFileError, Role, SshSettings};
pub use remote::{HostError, RemoteHost, receive_all};
