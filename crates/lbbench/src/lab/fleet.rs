//! The lab's backends: N `lbbench backend` processes on free ports of 127.0.0.1 (the
//! report's four `perf.php` VMs).
//!
//! They run as separate processes rather than inside the lab's own process, so that
//! - the lab process (which also runs httperf and samples CPU) does not share a scheduler,
//!   an allocator or a tokio runtime with what it measures;
//! - their CPU can be read from `/proc` by PID like the balancer's, to show that the backends
//!   are never the bottleneck;
//! - each is the very program a user runs on a real VM, with its own listen socket.
//!
//! Each backend gets one thread (a current-thread runtime, the cheapest per request, see
//! `scripts/bench-backend.sh`); four of them are plenty for two cores. A backend binds port
//! 0 and reports the port it got, so there is no race for ports.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Shutdown;
use common::process::Supervised;

use super::{LabError, Upstream, log_tail, spawn_options};

/// How the backends are started.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// How many.
    pub count: usize,
    /// The number in the first one's name (`node-1`); the others follow.
    pub first: usize,
    /// The address they listen on (127.0.0.1 unless the lab runs across hosts).
    pub bind: IpAddr,
    /// The `lbbench` binary to run `lbbench backend` from.
    pub program: PathBuf,
    /// Worker threads per backend.
    pub threads: usize,
    /// How long a backend may take to answer.
    pub ready_timeout: Duration,
    /// Where their logs go; `None` is a temp dir removed at the stop.
    pub log_dir: Option<PathBuf>,
}

impl FleetOptions {
    /// `count` backends run from this very program (for the `lbbench` binary itself).
    pub fn new(count: usize) -> Result<FleetOptions, LabError> {
        let program = std::env::current_exe()
            .map_err(LabError::io("cannot find the lbbench binary (current_exe)"))?;
        Ok(FleetOptions::with_program(count, program))
    }

    /// `count` backends run from `program` (tests pass `CARGO_BIN_EXE_lbbench` or
    /// `testkit::workspace_bin("lbbench")`).
    pub fn with_program(count: usize, program: impl Into<PathBuf>) -> FleetOptions {
        FleetOptions {
            count,
            first: 1,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            program: program.into(),
            threads: 1,
            ready_timeout: Duration::from_secs(30),
            log_dir: None,
        }
    }
}

/// One backend process.
#[derive(Debug)]
pub struct BackendProcess {
    name: String,
    addr: SocketAddr,
    log: PathBuf,
    process: Supervised,
}

impl BackendProcess {
    /// Its name (`node-1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its counters, from `GET /server-status`.
    pub fn status(&self) -> Result<BackendStatus, LabError> {
        let what = || format!("GET /server-status from {} ({})", self.name, self.addr);
        let reply = common::net::http_get(self.addr, "/server-status", Duration::from_secs(5))
            .map_err(|e| LabError::io(what())(e))?;
        serde_json::from_str(&reply.body).map_err(|e| {
            LabError::io(what())(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
    }
}

/// A backend's counters (its `/server-status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BackendStatus {
    /// Its name.
    pub name: String,
    /// Requests of any kind (health checks too).
    pub requests: u64,
    /// `/perf.php` requests.
    pub perf_requests: u64,
    /// Requests being served now.
    pub in_flight: u64,
    /// The most served at once.
    pub max_in_flight: u64,
}

/// N running backends. Dropping it stops them all by PID.
#[derive(Debug)]
pub struct Fleet {
    // Declared before the dir, so they stop before their log dir goes.
    backends: Vec<BackendProcess>,
    _dir: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Starts `opts.count` backends named `node-<first>`.. and waits until each answers
    /// `GET /`. On an error or a shutdown request (Ctrl-C), those already started are
    /// stopped before this returns.
    pub fn start(opts: &FleetOptions, shutdown: &Shutdown) -> Result<Fleet, LabError> {
        let dir = match &opts.log_dir {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("lbbench-backends-")
                    .tempdir()
                    .map_err(LabError::io("cannot create a temp dir"))?,
            ),
        };
        let log_dir = match (&opts.log_dir, &dir) {
            (Some(d), _) => {
                fs::create_dir_all(d)
                    .map_err(LabError::io(format!("cannot create {}", d.display())))?;
                d.clone()
            }
            (None, Some(t)) => t.path().to_owned(),
            (None, None) => unreachable!("a temp dir is made when no log dir is given"),
        };
        let mut started: Vec<(String, PathBuf, Supervised)> = Vec::with_capacity(opts.count);
        for i in opts.first..opts.first + opts.count {
            if shutdown.requested() {
                return Err(LabError::Interrupted);
            }
            let name = format!("node-{i}");
            let log = log_dir.join(format!("{name}.log"));
            let file = fs::File::create(&log)
                .map_err(LabError::io(format!("cannot create {}", log.display())))?;
            let mut cmd = Command::new(&opts.program);
            cmd.args(["backend", "--port", "0", "--name", &name, "--grace", "2s"])
                .arg("--bind")
                .arg(opts.bind.to_string())
                .arg("--threads")
                .arg(opts.threads.max(1).to_string())
                .stdin(Stdio::null())
                .stdout(file.try_clone().map_err(LabError::io("log file"))?)
                .stderr(file);
            let p = Supervised::spawn_with(&format!("backend {name}"), &mut cmd, &spawn_options())
                .map_err(LabError::io(format!(
                    "cannot start {} backend",
                    opts.program.display()
                )))?;
            started.push((name, log, p));
        }
        // They start in parallel; now collect the address each one reports.
        let deadline = Instant::now() + opts.ready_timeout;
        let mut backends = Vec::with_capacity(started.len());
        for (name, log, mut process) in started.drain(..) {
            let addr = loop {
                if shutdown.requested() {
                    return Err(LabError::Interrupted);
                }
                if let Some(addr) = fs::read_to_string(&log)
                    .ok()
                    .and_then(|t| parse_listening(&t))
                {
                    break addr;
                }
                if let Ok(Some(status)) = process.try_status() {
                    return Err(LabError::Exited {
                        name: format!("backend {name}"),
                        status,
                        log: log_tail(&log, 0, 3),
                    });
                }
                if Instant::now() >= deadline {
                    return Err(LabError::NotReady {
                        name: format!("backend {name}"),
                        what: "listen".into(),
                        waited: opts.ready_timeout,
                        log: log_tail(&log, 0, 3),
                    });
                }
                shutdown.sleep(Duration::from_millis(10));
            };
            backends.push(BackendProcess {
                name,
                addr,
                log,
                process,
            });
        }
        let fleet = Fleet {
            backends,
            _dir: dir,
        };
        for b in &fleet.backends {
            match common::net::http_get(b.addr, "/", Duration::from_secs(5)) {
                Ok(r) if r.status == 200 && r.body.contains("It works!") => {}
                other => {
                    return Err(LabError::NotReady {
                        name: format!("backend {} on {}", b.name, b.addr),
                        what: "answer GET / with It works!".into(),
                        waited: Duration::from_secs(5),
                        log: format!("{other:?}"),
                    });
                }
            }
        }
        Ok(fleet)
    }

    /// The backends, in order.
    pub fn backends(&self) -> &[BackendProcess] {
        &self.backends
    }

    /// Their addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.backends.iter().map(|b| b.addr).collect()
    }

    /// What a balancer's config needs: names and addresses.
    pub fn upstreams(&self) -> Vec<Upstream> {
        self.backends
            .iter()
            .map(|b| Upstream {
                name: b.name.clone(),
                addr: b.addr,
            })
            .collect()
    }

    /// Their PIDs.
    pub fn pids(&self) -> Vec<u32> {
        self.backends.iter().map(BackendProcess::pid).collect()
    }

    /// Each one's counters.
    pub fn status(&self) -> Result<Vec<BackendStatus>, LabError> {
        self.backends.iter().map(BackendProcess::status).collect()
    }

    /// An error naming the first backend that has exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<(), LabError> {
        for b in &mut self.backends {
            if let Ok(Some(status)) = b.process.try_status() {
                return Err(LabError::Exited {
                    name: format!("backend {}", b.name),
                    status,
                    log: log_tail(&b.log, 0, 3),
                });
            }
        }
        Ok(())
    }

    /// Stops them all (SIGTERM: in-flight requests finish, up to 2 s) and waits for them.
    pub fn stop(mut self) -> Result<(), LabError> {
        for b in &mut self.backends {
            let _ = b.process.signal(rustix::process::Signal::TERM);
        }
        for b in &mut self.backends {
            b.process
                .stop()
                .map_err(LabError::io(format!("cannot stop backend {}", b.name)))?;
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // SIGTERM to all first, so they stop in parallel; each `Supervised` then waits for
        // its own (and kills it after the grace period) as it is dropped.
        for b in &mut self.backends {
            let _ = b.process.signal(rustix::process::Signal::TERM);
        }
    }
}

/// The address in a backend's `lbbench backend node-1: listening on 127.0.0.1:PORT` line.
pub fn parse_listening(log: &str) -> Option<SocketAddr> {
    log.lines()
        .find_map(|l| l.split_once(": listening on ")?.1.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(
            parse_listening("lbbench backend node-1: listening on 127.0.0.1:43425\n"),
            Some("127.0.0.1:43425".parse().unwrap())
        );
        assert_eq!(
            parse_listening("lbbench backend node-1: listening on \n"),
            None
        );
        assert_eq!(parse_listening(""), None);
    }
}
