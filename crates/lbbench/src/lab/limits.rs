//! The limits the lab's children run with: open files (each child's soft limit raised to the
//! hard one), the connection budget that fits them, and how children are started.

use common::process::SpawnOptions;

/// The hard limit on open files (`RLIMIT_NOFILE`), which each child gets as its soft limit.
pub fn fd_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX)
}

/// The connection limit for a balancer: `wanted`, or less if `fd_limit` descriptors cannot
/// hold that many. Each proxied connection takes two descriptors (client and server side),
/// plus a few for listeners, sockets and logs. HAProxy refuses to start when its `maxconn`
/// needs more descriptors than the hard limit allows, so the limit is applied to all three
/// alike.
pub fn connection_budget(wanted: u32, fd_limit: u64) -> u32 {
    let fits = fd_limit.saturating_sub(64) / 2;
    wanted.min(u32::try_from(fits).unwrap_or(u32::MAX)).max(1)
}

/// How the lab starts its children: each in its own process group, so a Ctrl-C in the
/// terminal reaches only lbbench, which then stops everything in order; SIGTERM when
/// lbbench dies (even by SIGKILL or a second Ctrl-C), so nothing is left behind; and the
/// soft limit on open files raised to the hard limit, so that all three balancers (and the
/// backends) can use the same number of descriptors, whether or not they raise it
/// themselves.
///
/// Linux sends the parent-death signal when the *thread* that started the child ends, so
/// children must be started from a thread that outlives them (the main thread, or the test's
/// own thread, which owns and drops them).
pub(crate) fn spawn_options() -> SpawnOptions {
    SpawnOptions::isolated()
}

/// Raises this process's soft limit on open files to the hard limit, for httperf (which
/// inherits it and can then use its full `FD_SETSIZE` of 1,024).
pub(crate) fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_budget_fits_the_descriptors() {
        assert_eq!(connection_budget(4096, 1_048_576), 4096);
        assert_eq!(connection_budget(4096, 4096), 2016);
        assert_eq!(connection_budget(4096, 20_000), 4096);
        assert_eq!(connection_budget(4096, 10), 1);
        assert_eq!(connection_budget(100, u64::MAX), 100);
    }
}
