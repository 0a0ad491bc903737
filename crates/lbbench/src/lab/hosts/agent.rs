//! `lbbench agent`: what runs on each host of a lab across hosts, started by the lab over
//! ssh. It reads [`Request`]s on stdin and answers each on stdout ([`super::protocol`]);
//! everything it starts (backends, a balancer and its `lbbench cpu`, httperf) is its child,
//! started from its main thread, and is stopped when it exits.
//!
//! It exits, stopping everything, on `bye`, on SIGINT or SIGTERM, and when its stdin ends:
//! that is what a lost connection looks like from the host (sshd closes the session's pipes),
//! so a lab whose machine or network fails leaves nothing running on the hosts. A signal or
//! the end of stdin also interrupts the request in progress, as [`Request::Cancel`] does. If
//! the agent itself is killed, its children get their parent-death signal.

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use common::Shutdown;
use common::process::Supervised;

use super::protocol::{
    BalancerRequest, CheckReport, CheckRequest, HostFacts, HttperfFailure, HttperfReply,
    HttperfRequest, Measured, PROTOCOL, Reply, Request, StartedBalancer, StartedProcess, Stopped,
    decode, encode,
};
use crate::cpu::machine::{CpuTimes, machine_usage, read_machine};
use crate::cpu::{ProcessSample, ProcessSampler, ProcessSelector, process_usage};
use crate::httperf::{Httperf, HttperfError};
use crate::lab::info::MachineInfo;
use crate::lab::{
    Balancer, BalancerOptions, Fleet, FleetOptions, LabTls, RunningBalancer, Upstream, fd_limit,
    spawn_options,
};
use crate::sweep::ports;

/// The request in progress can be interrupted through this.
type Current = Arc<Mutex<Option<Shutdown>>>;

enum Input {
    Request(Request),
    Garbage(String),
}

/// Runs the agent until `bye`, a signal or the end of `input`; replies go to `output`.
pub fn run_agent(
    input: impl BufRead + Send + 'static,
    mut output: impl Write,
    signals: &Shutdown,
) -> std::io::Result<()> {
    let current: Current = Arc::new(Mutex::new(None));
    let requests = read_requests(input, Arc::clone(&current));
    watch_signals(signals, Arc::clone(&current));
    let mut agent = Agent::new()?;
    loop {
        let input = match requests.recv_timeout(Duration::from_millis(200)) {
            Ok(i) => i,
            Err(RecvTimeoutError::Timeout) => {
                if signals.requested() {
                    say("signalled; stopping everything");
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                say("stdin ended (the lab is gone); stopping everything");
                break;
            }
        };
        let request = match input {
            Input::Request(r) => r,
            Input::Garbage(message) => {
                output.write_all(encode(&Reply::Error { message }).as_bytes())?;
                output.flush()?;
                continue;
            }
        };
        if request == Request::Bye {
            agent.stop_all();
            output.write_all(encode(&Reply::Bye).as_bytes())?;
            output.flush()?;
            return Ok(());
        }
        let op = Shutdown::new()?;
        if signals.requested() {
            op.trigger();
        }
        set_current(&current, Some(op.clone()));
        let reply = agent.handle(request, &op);
        set_current(&current, None);
        output.write_all(encode(&reply).as_bytes())?;
        output.flush()?;
    }
    agent.stop_all();
    Ok(())
}

/// A line on the agent's log (its stderr, which the lab keeps). Never fails: when the lab is
/// gone, so is stderr, and stopping everything must go on.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "agent: {msg}");
}

fn set_current(current: &Current, op: Option<Shutdown>) {
    let mut c = current.lock().unwrap_or_else(|e| e.into_inner());
    *c = op;
}

fn interrupt_current(current: &Current) {
    let c = current.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(op) = c.as_ref() {
        op.trigger();
    }
}

/// Reads requests in a thread: `cancel` interrupts the request in progress at once; the end
/// of the input does too, and closes the channel.
fn read_requests(input: impl BufRead + Send + 'static, current: Current) -> Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("agent-stdin".into())
        .spawn(move || {
            for line in input.lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let input = match decode::<Request>(&line) {
                    Ok(Request::Cancel) => {
                        interrupt_current(&current);
                        continue;
                    }
                    Ok(r) => Input::Request(r),
                    Err(e) => Input::Garbage(e),
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
            interrupt_current(&current);
        });
    if spawned.is_err() {
        say("cannot start the reader thread");
    }
    rx
}

/// A signal interrupts the request in progress too.
fn watch_signals(signals: &Shutdown, current: Current) {
    let s = signals.clone();
    let _ = std::thread::Builder::new()
        .name("agent-signals".into())
        .spawn(move || {
            while s.sleep(Duration::from_secs(3600)) {}
            interrupt_current(&current);
        });
}

/// What the agent runs and measures.
struct Agent {
    work: tempfile::TempDir,
    fleet: Option<Fleet>,
    fleet_sampler: Option<ProcessSampler>,
    balancer: Option<RunningBalancer>,
    balancer_sampler: Option<ProcessSampler>,
    cpu_monitor: Option<Supervised>,
    cpu_file: PathBuf,
    start: Option<(Option<ProcessSample>, Option<ProcessSample>, CpuTimes)>,
}

fn failed(message: impl std::fmt::Display) -> Reply {
    Reply::Error {
        message: message.to_string().replace('\n', " "),
    }
}

impl Agent {
    fn new() -> std::io::Result<Agent> {
        let work = tempfile::Builder::new()
            .prefix("lbbench-agent-")
            .tempdir()?;
        let cpu_file = work.path().join("cpu.csv");
        Ok(Agent {
            work,
            fleet: None,
            fleet_sampler: None,
            balancer: None,
            balancer_sampler: None,
            cpu_monitor: None,
            cpu_file,
            start: None,
        })
    }

    fn handle(&mut self, request: Request, op: &Shutdown) -> Reply {
        let result = match request {
            Request::Hello => Ok(Reply::Hello(hello())),
            Request::Check(c) => Ok(Reply::Checked(check(&c))),
            Request::StartBackends { first, count, bind } => {
                self.start_backends(first, count, bind, op)
            }
            Request::StartBalancer(b) => self.start_balancer(&b, op),
            Request::MeasureStart => self.measure_start(),
            Request::MeasureEnd => self.measure_end(),
            Request::Httperf(h) => Ok(Reply::Httperf(run_httperf(&h, op))),
            Request::StopBalancer => Ok(Reply::Stopped(self.stop_balancer())),
            Request::StopBackends => Ok(Reply::Stopped(self.stop_backends())),
            // Handled where they are read.
            Request::Cancel | Request::Bye => Err("unexpected request".to_owned()),
        };
        result.unwrap_or_else(failed)
    }

    fn start_backends(
        &mut self,
        first: usize,
        count: usize,
        bind: Ipv4Addr,
        op: &Shutdown,
    ) -> Result<Reply, String> {
        if self.fleet.is_some() {
            return Err("the backends already run".into());
        }
        let program = std::env::current_exe().map_err(|e| format!("cannot find lbbench: {e}"))?;
        let mut opts = FleetOptions::with_program(count, program);
        opts.first = first;
        opts.bind = IpAddr::V4(bind);
        opts.log_dir = Some(self.work.path().join("backends"));
        let fleet = Fleet::start(&opts, op).map_err(|e| e.to_string())?;
        let backends = fleet
            .backends()
            .iter()
            .map(|b| StartedProcess {
                name: b.name().to_owned(),
                addr: b.addr(),
                pid: b.pid(),
            })
            .collect();
        self.fleet_sampler = Some(
            ProcessSampler::new(ProcessSelector::Pids(fleet.pids())).map_err(|e| e.to_string())?,
        );
        say(&format!("{count} backends on {bind}"));
        self.fleet = Some(fleet);
        Ok(Reply::Backends { backends })
    }

    fn start_balancer(&mut self, req: &BalancerRequest, op: &Shutdown) -> Result<Reply, String> {
        if self.balancer.is_some() {
            return Err("a balancer already runs".into());
        }
        let kind: Balancer = req
            .balancer
            .parse()
            .map_err(|e: crate::lab::LabError| e.to_string())?;
        let work_dir = self.work.path().join(kind.name());
        let tls = match &req.tls {
            Some((ca, server)) => {
                Some(LabTls::install(self.work.path(), ca, server).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let opts = BalancerOptions {
            program: req.program.clone(),
            bind: req.bind,
            port: req.port,
            work_dir: Some(work_dir),
            tls,
            ..BalancerOptions::default()
        };
        let upstreams: Vec<Upstream> = req
            .upstreams
            .iter()
            .map(|(name, addr)| Upstream {
                name: name.clone(),
                addr: *addr,
            })
            .collect();
        let lb = kind
            .start(&upstreams, &opts, op)
            .map_err(|e| e.to_string())?;
        let root = lb.pid().ok_or("the balancer has no process")?;
        self.balancer_sampler = Some(
            ProcessSampler::new(ProcessSelector::Pids(vec![root])).map_err(|e| e.to_string())?,
        );
        let _ = std::fs::remove_file(&self.cpu_file);
        self.cpu_monitor = Some(self.start_cpu_monitor(root, req)?);
        let reply = StartedBalancer {
            addr: lb.addr(),
            program: lb.program().to_owned(),
            version: lb.version().to_owned(),
            pids: lb.pids(),
            max_connections: lb.max_connections(),
            run_dir: lb.run_dir().map(Path::to_owned),
            config: std::fs::read_to_string(lb.config_path()).unwrap_or_default(),
            config_name: lb
                .config_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        say(&format!("{kind} on {}", lb.addr()));
        self.balancer = Some(lb);
        Ok(Reply::Balancer(reply))
    }

    /// `lbbench cpu` on the balancer's processes, into the work dir (the lab report's `sar -u 2`
    /// on the balancer's machine).
    fn start_cpu_monitor(&self, root: u32, req: &BalancerRequest) -> Result<Supervised, String> {
        let program = std::env::current_exe().map_err(|e| format!("cannot find lbbench: {e}"))?;
        let mut cmd = Command::new(program);
        cmd.arg("cpu")
            .arg("--pid")
            .arg(root.to_string())
            .arg("--interval")
            .arg(req.cpu_interval_s.to_string())
            .arg("--output")
            .arg(&self.cpu_file)
            .arg("--quiet");
        if req.cpu_utc {
            cmd.arg("--utc");
        }
        let log = std::fs::File::create(self.work.path().join("cpu.log"))
            .map_err(|e| format!("cannot create the CPU log: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        Supervised::spawn_with("lbbench cpu", &mut cmd, &spawn_options())
            .map(|p| p.with_grace(Duration::from_secs(3)))
            .map_err(|e| e.to_string())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        if let Some(b) = self.balancer.as_mut() {
            b.check_alive().map_err(|e| e.to_string())?;
        }
        if let Some(f) = self.fleet.as_mut() {
            f.check_alive().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn measure_start(&mut self) -> Result<Reply, String> {
        self.check_alive()?;
        let lb = self
            .balancer_sampler
            .as_mut()
            .map(ProcessSampler::sample)
            .transpose()
            .map_err(|e| e.to_string())?;
        let backends = self
            .fleet_sampler
            .as_mut()
            .map(ProcessSampler::sample)
            .transpose()
            .map_err(|e| e.to_string())?;
        let machine = read_machine().map_err(|e| e.to_string())?;
        self.start = Some((lb, backends, machine));
        Ok(Reply::Measuring)
    }

    fn measure_end(&mut self) -> Result<Reply, String> {
        let (lb0, be0, m0) = self
            .start
            .take()
            .ok_or("measure_end without measure_start")?;
        let m1 = read_machine().map_err(|e| e.to_string())?;
        let usage = |sampler: Option<&mut ProcessSampler>, start: Option<ProcessSample>| match (
            sampler, start,
        ) {
            (Some(s), Some(a)) => s
                .sample()
                .map(|b| Some(process_usage(&a, &b)))
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        };
        let balancer = usage(self.balancer_sampler.as_mut(), lb0)?;
        let backends = usage(self.fleet_sampler.as_mut(), be0)?;
        let m = machine_usage(&m0, &m1);
        // What died during the run measured nothing.
        self.check_alive()?;
        Ok(Reply::Measured(Measured {
            balancer,
            backends,
            machine_busy_pct: (100.0 - m.idle_pct - m.iowait_pct).clamp(0.0, 100.0),
        }))
    }

    fn stop_balancer(&mut self) -> Stopped {
        let mut out = Stopped::default();
        if let Some(mut cpu) = self.cpu_monitor.take() {
            let _ = cpu.stop();
            out.cpu_csv = std::fs::read_to_string(&self.cpu_file).ok();
        }
        self.balancer_sampler = None;
        if let Some(lb) = self.balancer.take() {
            let name = lb.kind().name().to_owned();
            let log = lb.log_path().to_owned();
            if let Err(e) = lb.stop() {
                say(&format!("stopping {name}: {e}"));
                if let crate::lab::LabError::Leftover { pids, .. } = e {
                    out.leftover = pids;
                }
            }
            out.logs.push((
                format!("{name}.log"),
                std::fs::read_to_string(&log).unwrap_or_default(),
            ));
            say(&format!("{name} stopped"));
        }
        out
    }

    fn stop_backends(&mut self) -> Stopped {
        let mut out = Stopped::default();
        self.fleet_sampler = None;
        if let Some(fleet) = self.fleet.take() {
            let logs: Vec<(String, PathBuf)> = fleet
                .backends()
                .iter()
                .map(|b| (format!("{}.log", b.name()), b.log_path().to_owned()))
                .collect();
            if let Err(e) = fleet.stop() {
                say(&format!("stopping the backends: {e}"));
            }
            for (name, path) in logs {
                out.logs
                    .push((name, std::fs::read_to_string(path).unwrap_or_default()));
            }
            say("backends stopped");
        }
        out
    }

    fn stop_all(&mut self) {
        self.stop_balancer();
        self.stop_backends();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn hello() -> HostFacts {
    HostFacts {
        protocol: PROTOCOL,
        lbbench: format!("lbbench {}", env!("CARGO_PKG_VERSION")),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        machine: MachineInfo::current(),
        clock_ms: Utc::now().timestamp_millis(),
        fd_limit: fd_limit(),
        port_range: std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().map(str::parse::<u32>);
                match (it.next(), it.next()) {
                    (Some(Ok(lo)), Some(Ok(hi))) => Some((lo, hi)),
                    _ => None,
                }
            }),
    }
}

fn check(c: &CheckRequest) -> CheckReport {
    let httperf = c.httperf.as_ref().map(|p| {
        Httperf::locate(Some(p))
            .and_then(|h| Ok((h.program().to_owned(), h.version()?)))
            .map_err(|e| e.to_string())
    });
    let balancers = c
        .balancers
        .iter()
        .map(|(name, program)| {
            let found = name
                .parse::<Balancer>()
                .and_then(|b| {
                    let p = b.locate(program.as_deref())?;
                    let v = b.version(&p)?;
                    Ok((p, v))
                })
                .map_err(|e| e.to_string());
            (name.clone(), found)
        })
        .collect();
    let bind = c.bind.map(|ip| {
        TcpListener::bind((ip, 0))
            .map_err(|e| format!("cannot listen on {ip}: {e} (is it this host's address?)"))?;
        for &port in &c.ports {
            TcpListener::bind((ip, port))
                .map_err(|e| format!("port {port} on {ip} is not free: {e}"))?;
        }
        Ok(())
    });
    CheckReport {
        httperf,
        balancers,
        bind,
    }
}

fn run_httperf(req: &HttperfRequest, op: &Shutdown) -> HttperfReply {
    let now = || Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut reply = HttperfReply {
        raw: Default::default(),
        started_at: now(),
        finished_at: now(),
        wall_s: 0.0,
        waited_for_ports_s: 0.0,
        error: None,
    };
    let fail = |e: &HttperfError| HttperfFailure {
        message: e.to_string(),
        interrupted: matches!(e, HttperfError::Interrupted { .. }),
        usage: e.is_usage(),
    };
    if req.wait_for_ports
        && let Ok(ip) = req.args.server.parse::<Ipv4Addr>()
    {
        let target = SocketAddrV4::new(ip, req.args.port);
        reply.waited_for_ports_s =
            ports::wait_for_ports(target, req.args.rate, req.args.num_conns, op, &mut |m| {
                say(m)
            })
            .as_secs_f64();
    }
    let result =
        Httperf::locate(Some(&req.program)).and_then(|h| h.start(&req.args)?.wait(Some(op)));
    match result {
        Ok(out) => {
            reply.started_at = out.started_at.to_rfc3339_opts(SecondsFormat::Millis, true);
            reply.finished_at = out.finished_at.to_rfc3339_opts(SecondsFormat::Millis, true);
            reply.wall_s = out.wall.as_secs_f64();
            reply.raw = out.raw;
        }
        Err(e) => {
            if let Some(raw) = e.raw_output() {
                reply.raw = raw.clone();
            }
            reply.finished_at = now();
            reply.error = Some(fail(&e));
        }
    }
    reply
}
