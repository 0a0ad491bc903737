//! The hosts of a lab, connected: an agent on each, and the lab's steps as requests to the
//! hosts that do them (backends on the backend hosts, the balancer on its host, httperf on
//! every client at once, CPU where the processes run). Dropping it says `bye` to every host
//! still reachable, which stops whatever the lab started there.

use std::path::Path;
use std::time::{Duration, Instant};

use common::Shutdown;

use super::file::HostsFile;
use super::protocol::{
    BalancerRequest, HttperfReply, HttperfRequest, Measured, Reply, Request, StartedBalancer,
    StartedProcess, Stopped,
};
use super::remote::{HostError, REQUEST_TIMEOUT, RemoteHost, receive_all};
use crate::cpu::ProcessUsage;
use crate::httperf::{HttperfArgs, RawOutput, default_deadline};

/// How long a balancer may take to start (it waits up to 30 s to answer through to a
/// backend) and its check to run.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Hosts that could not be reached: each, with why.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Unreachable(pub Vec<HostError>);

/// A backend started on a host.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteBackend {
    /// The host it runs on.
    pub host: String,
    /// Its name, address and PID there.
    pub process: StartedProcess,
}

/// The lab's hosts, each with its agent.
#[derive(Debug)]
pub struct LabHosts {
    clients: Vec<RemoteHost>,
    balancer: RemoteHost,
    backends: Vec<RemoteHost>,
    // Dropped after the hosts: their control sockets are in it.
    _control: tempfile::TempDir,
}

impl LabHosts {
    /// Connects to every host of `file` at once and starts its agent; their logs go to
    /// `log_dir`. Fails naming every host that could not be reached (the others are left
    /// as they were: nothing was started on them).
    pub fn connect(
        file: &HostsFile,
        log_dir: &Path,
        shutdown: &Shutdown,
    ) -> Result<LabHosts, Unreachable> {
        let control = tempfile::Builder::new()
            .prefix("lbbench-ssh-")
            .tempdir()
            .map_err(|e| {
                Unreachable(vec![HostError::Failed {
                    host: "this machine".into(),
                    message: format!("cannot create a temp dir: {e}"),
                }])
            })?;
        let results =
            RemoteHost::connect_all(&file.hosts, &file.ssh, control.path(), log_dir, shutdown);
        let mut clients = Vec::new();
        let mut balancer = None;
        let mut backends = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(h) => match h.host().role {
                    super::Role::Client => clients.push(h),
                    super::Role::Balancer => balancer = Some(h),
                    super::Role::Backend => backends.push(h),
                },
                Err(e) => errors.push(e),
            }
        }
        match balancer {
            Some(balancer) if errors.is_empty() => Ok(LabHosts {
                clients,
                balancer,
                backends,
                _control: control,
            }),
            _ => Err(Unreachable(errors)),
        }
    }

    /// Every host, clients first, then the balancer's, then the backends'.
    pub fn all(&self) -> impl Iterator<Item = &RemoteHost> {
        self.clients
            .iter()
            .chain(std::iter::once(&self.balancer))
            .chain(&self.backends)
    }

    /// Every host, to send to each (in the order of [`LabHosts::all`]).
    pub fn all_mut(&mut self) -> Vec<&mut RemoteHost> {
        self.clients
            .iter_mut()
            .chain(std::iter::once(&mut self.balancer))
            .chain(self.backends.iter_mut())
            .collect()
    }

    /// Says `bye` to every host still reachable (each agent stops what it started and
    /// exits) and closes the connections; what dropping it does too.
    pub fn close(mut self) {
        for h in self.all_mut() {
            let _ = h.bye(Duration::from_secs(20));
        }
    }

    /// The client hosts.
    pub fn clients(&self) -> &[RemoteHost] {
        &self.clients
    }

    /// The balancer's host.
    pub fn balancer(&self) -> &RemoteHost {
        &self.balancer
    }

    /// Starts `total` backends spread over the backend hosts (`node-1`.. on the first, the
    /// next ones on the next host: as even as can be), each listening on its host's address.
    pub fn start_backends(
        &mut self,
        total: usize,
        shutdown: &Shutdown,
    ) -> Result<Vec<RemoteBackend>, HostError> {
        let n = self.backends.len().max(1);
        let mut first = 1;
        for (i, h) in self.backends.iter_mut().enumerate() {
            let count = total / n + usize::from(i < total % n);
            let bind = h.host().address;
            h.send(&Request::StartBackends { first, count, bind })?;
            first += count;
        }
        let mut refs: Vec<&mut RemoteHost> = self.backends.iter_mut().collect();
        let replies = receive_all(
            &mut refs,
            "start backends",
            Instant::now() + START_TIMEOUT,
            Some(shutdown),
        );
        let mut out = Vec::new();
        for (h, r) in self.backends.iter().zip(replies) {
            match r? {
                Reply::Backends { backends } => {
                    out.extend(backends.into_iter().map(|process| RemoteBackend {
                        host: h.host().name.clone(),
                        process,
                    }))
                }
                other => return Err(h.unexpected(&other)),
            }
        }
        Ok(out)
    }

    /// Starts a balancer on its host, in front of `upstreams`, on the host's address.
    pub fn start_balancer(
        &mut self,
        mut req: BalancerRequest,
        shutdown: &Shutdown,
    ) -> Result<StartedBalancer, HostError> {
        req.bind = self.balancer.host().address;
        match self
            .balancer
            .call(&Request::StartBalancer(req), START_TIMEOUT, Some(shutdown))?
        {
            Reply::Balancer(b) => Ok(b),
            other => Err(self.balancer.unexpected(&other)),
        }
    }

    /// Stops the balancer; its log, config and CPU file come back.
    pub fn stop_balancer(&mut self) -> Result<Stopped, HostError> {
        match self
            .balancer
            .call(&Request::StopBalancer, REQUEST_TIMEOUT, None)?
        {
            Reply::Stopped(s) => Ok(s),
            other => Err(self.balancer.unexpected(&other)),
        }
    }

    /// Stops the backends on every backend host; their logs come back, per host.
    pub fn stop_backends(&mut self) -> Result<Vec<(String, Stopped)>, HostError> {
        let mut out = Vec::new();
        for h in &mut self.backends {
            match h.call(&Request::StopBackends, REQUEST_TIMEOUT, None)? {
                Reply::Stopped(s) => out.push((h.host().name.clone(), s)),
                other => return Err(h.unexpected(&other)),
            }
        }
        Ok(out)
    }

    /// The balancer's and the backends' hosts, which measure a run's CPU.
    fn measured_hosts(&mut self) -> Vec<&mut RemoteHost> {
        std::iter::once(&mut self.balancer)
            .chain(self.backends.iter_mut())
            .collect()
    }

    /// Samples the CPU at a run's start on the balancer's and the backends' hosts (at once).
    pub fn measure_start(&mut self) -> Result<(), HostError> {
        let mut hosts = self.measured_hosts();
        for h in hosts.iter_mut() {
            h.send(&Request::MeasureStart)?;
        }
        let replies = receive_all(
            &mut hosts,
            "measure start",
            Instant::now() + REQUEST_TIMEOUT,
            None,
        );
        for (h, r) in hosts.iter().zip(replies) {
            match r? {
                Reply::Measuring => {}
                other => return Err(h.unexpected(&other)),
            }
        }
        Ok(())
    }

    /// The CPU used since [`LabHosts::measure_start`]: the balancer's processes, the
    /// backends' (all hosts together), and how busy the balancer's machine was.
    pub fn measure_end(&mut self) -> Result<Measured, HostError> {
        let mut hosts = self.measured_hosts();
        for h in hosts.iter_mut() {
            h.send(&Request::MeasureEnd)?;
        }
        let replies = receive_all(
            &mut hosts,
            "measure end",
            Instant::now() + REQUEST_TIMEOUT,
            None,
        );
        let mut measured: Vec<Measured> = Vec::new();
        for (h, r) in hosts.iter().zip(replies) {
            match r? {
                Reply::Measured(m) => measured.push(m),
                other => return Err(h.unexpected(&other)),
            }
        }
        let balancer_host = measured.first().cloned().unwrap_or(Measured {
            balancer: None,
            backends: None,
            machine_busy_pct: 0.0,
        });
        let backends = measured.iter().filter_map(|m| m.backends).reduce(add_usage);
        Ok(Measured {
            balancer: balancer_host.balancer,
            backends,
            machine_busy_pct: balancer_host.machine_busy_pct,
        })
    }

    /// Runs `args` (the whole run) as one share per client, all at once: client `i` of `N`
    /// gets `--client=i/N`, `rate / N` and its part of the connections. Each client's reply,
    /// in order; if any host fails (or Ctrl-C), the others are cancelled and the error comes
    /// back with what each client printed.
    pub fn run_clients(
        &mut self,
        program: &Path,
        args: &HttperfArgs,
        wait_for_ports: bool,
        shutdown: &Shutdown,
    ) -> Result<Vec<(String, HttperfReply)>, ClientsFailed> {
        let shares = client_shares(args, self.clients.len());
        let mut deadline = Duration::ZERO;
        let mut failed = ClientsFailed {
            errors: Vec::new(),
            outputs: Vec::new(),
        };
        let mut sent = Vec::new();
        for (h, share) in self.clients.iter_mut().zip(shares) {
            deadline = deadline.max(default_deadline(&share));
            let r = h.send(&Request::Httperf(HttperfRequest {
                program: program.to_owned(),
                args: share,
                wait_for_ports,
            }));
            if let Err(e) = r {
                failed.errors.push(e);
            }
            sent.push(h.host().name.clone());
        }
        // Each host's own watchdog stops httperf at `deadline`; a wait for ports comes first.
        let deadline =
            Instant::now() + deadline + Duration::from_secs(if wait_for_ports { 91 } else { 30 });
        let mut refs: Vec<&mut RemoteHost> = self.clients.iter_mut().collect();
        let replies = receive_all(&mut refs, "httperf", deadline, Some(shutdown));
        let mut ok = Vec::new();
        for (name, r) in sent.into_iter().zip(replies) {
            match r {
                Ok(Reply::Httperf(h)) => {
                    if let Some(e) = &h.error {
                        failed.errors.push(HostError::Failed {
                            host: name.clone(),
                            message: if e.interrupted {
                                "httperf interrupted".into()
                            } else {
                                e.message.clone()
                            },
                        });
                    }
                    failed.outputs.push((name.clone(), h.raw.clone()));
                    ok.push((name, h));
                }
                Ok(other) => failed.errors.push(HostError::Protocol {
                    host: name,
                    detail: format!("unexpected reply {other:?}"),
                }),
                Err(e) => failed.errors.push(e),
            }
        }
        if failed.errors.is_empty() {
            Ok(ok)
        } else {
            Err(failed)
        }
    }
}

/// A run that failed on one or more clients: why, and what each client that answered
/// printed.
#[derive(Debug)]
pub struct ClientsFailed {
    /// Each failure (a lost host first, if there is one).
    pub errors: Vec<HostError>,
    /// Each client's output, as far as it came.
    pub outputs: Vec<(String, RawOutput)>,
}

impl ClientsFailed {
    /// Whether a host was lost (the lab cannot go on without it).
    pub fn lost_host(&self) -> Option<&HostError> {
        self.errors.iter().find(|e| e.is_lost())
    }
}

/// Each client's share of a run: `rate / n`, the connections split as evenly as can be (the
/// first ones get one more), and `--client=i/n`.
pub fn client_shares(args: &HttperfArgs, n: usize) -> Vec<HttperfArgs> {
    let n = n.max(1);
    let n64 = n as u64;
    (0..n)
        .map(|i| {
            let mut a = args.clone();
            a.rate = args.rate / n as f64;
            a.num_conns = args.num_conns / n64 + u64::from((i as u64) < args.num_conns % n64);
            a.extra.insert(0, format!("--client={i}/{n}"));
            a
        })
        .collect()
}

/// Two process sets' usage over the same window, added.
fn add_usage(a: ProcessUsage, b: ProcessUsage) -> ProcessUsage {
    ProcessUsage {
        interval_s: a.interval_s.max(b.interval_s),
        user_s: a.user_s + b.user_s,
        system_s: a.system_s + b.system_s,
        user_pct: a.user_pct + b.user_pct,
        system_pct: a.system_pct + b.system_pct,
        cpu_pct: a.cpu_pct + b.cpu_pct,
        processes: a.processes + b.processes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_run() {
        let mut args = HttperfArgs::new("10.0.0.2", 1000.0, 5001);
        args.extra = vec!["--add-header=Connection: close\\n".into()];
        let shares = client_shares(&args, 3);
        assert_eq!(shares.iter().map(|s| s.num_conns).sum::<u64>(), 5001);
        assert_eq!(
            shares.iter().map(|s| s.num_conns).collect::<Vec<_>>(),
            [1667, 1667, 1667]
        );
        assert!((shares.iter().map(|s| s.rate).sum::<f64>() - 1000.0).abs() < 1e-9);
        assert_eq!(shares[2].extra[0], "--client=2/3");
        assert_eq!(shares[2].extra[1], args.extra[0]);
        shares[1].validate().unwrap();
        assert_eq!(client_shares(&args, 1)[0].extra[0], "--client=0/1");
    }
}
