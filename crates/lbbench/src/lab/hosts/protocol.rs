//! What lbbench on the lab's machine and `lbbench agent` on a host say to each other: one
//! JSON object per line, a [`Request`] on the agent's stdin, one [`Reply`] per request on its
//! stdout (over the host's ssh session), in order. [`Request::Cancel`] is the exception: it
//! interrupts the request in progress (which then replies, as interrupted) and has no reply
//! of its own. The agent's stderr is its log.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cpu::ProcessUsage;
use crate::httperf::{HttperfArgs, RawOutput};
use crate::lab::info::MachineInfo;

/// The protocol's version: both ends must speak the same one.
pub const PROTOCOL: u32 = 1;

/// What lbbench asks of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who are you: the protocol, lbbench's version, the machine and its clock.
    Hello,
    /// What is there: programs and their versions, addresses and ports.
    Check(CheckRequest),
    /// Start `count` backends named `node-<first>`.., listening on `bind`.
    StartBackends {
        /// The number in the first one's name.
        first: usize,
        /// How many.
        count: usize,
        /// The address they listen on.
        bind: Ipv4Addr,
    },
    /// Start a balancer in front of `upstreams`, listening on `bind`, and `lbbench cpu` on
    /// its processes.
    StartBalancer(BalancerRequest),
    /// Sample the CPU of what runs here (and the machine) at the start of a run.
    MeasureStart,
    /// The CPU used since [`Request::MeasureStart`].
    MeasureEnd,
    /// Run httperf once.
    Httperf(HttperfRequest),
    /// Stop the balancer (and its `lbbench cpu`) and return its log, config and CPU file.
    StopBalancer,
    /// Stop the backends and return their logs.
    StopBackends,
    /// Interrupt the request in progress (no reply of its own).
    Cancel,
    /// Stop everything and exit.
    Bye,
}

impl Request {
    /// Its name in messages (`start balancer`).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Check(_) => "check",
            Request::StartBackends { .. } => "start backends",
            Request::StartBalancer(_) => "start balancer",
            Request::MeasureStart => "measure start",
            Request::MeasureEnd => "measure end",
            Request::Httperf(_) => "httperf",
            Request::StopBalancer => "stop balancer",
            Request::StopBackends => "stop backends",
            Request::Cancel => "cancel",
            Request::Bye => "bye",
        }
    }
}

/// [`Request::Check`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// httperf to find and ask for its version (clients).
    pub httperf: Option<PathBuf>,
    /// Balancers to find (name, program if given) and ask for their versions.
    pub balancers: Vec<(String, Option<PathBuf>)>,
    /// An address that must be this host's: bound with a free port, and with each of
    /// `ports`.
    pub bind: Option<Ipv4Addr>,
    /// Ports that must be free on `bind`.
    pub ports: Vec<u16>,
}

/// [`Request::StartBalancer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalancerRequest {
    /// `haproxy`, `pound` or `nginx`.
    pub balancer: String,
    /// Its program, if not found in PATH and the sbin directories.
    pub program: Option<PathBuf>,
    /// The backends (name, address).
    pub upstreams: Vec<(String, SocketAddr)>,
    /// Where it listens.
    pub bind: Ipv4Addr,
    /// Its port; `None` picks a free one.
    pub port: Option<u16>,
    /// `lbbench cpu`'s interval, in s.
    pub cpu_interval_s: f64,
    /// Timestamps of the CPU file in UTC.
    pub cpu_utc: bool,
    /// Terminate TLS with the lab's certificate: (the authority's certificate, the
    /// balancer's certificate and key), PEM.
    pub tls: Option<(String, String)>,
}

/// [`Request::Httperf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttperfRequest {
    /// The program.
    pub program: PathBuf,
    /// This client's share of the run.
    pub args: HttperfArgs,
    /// Wait first while this host's ports towards the server are in TIME_WAIT (as the
    /// sweep does on one machine).
    pub wait_for_ports: bool,
}

/// What an agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// To [`Request::Hello`].
    Hello(HostFacts),
    /// To [`Request::Check`].
    Checked(CheckReport),
    /// To [`Request::StartBackends`].
    Backends {
        /// Each backend started.
        backends: Vec<StartedProcess>,
    },
    /// To [`Request::StartBalancer`].
    Balancer(StartedBalancer),
    /// To [`Request::MeasureStart`].
    Measuring,
    /// To [`Request::MeasureEnd`].
    Measured(Measured),
    /// To [`Request::Httperf`].
    Httperf(HttperfReply),
    /// To [`Request::StopBalancer`] and [`Request::StopBackends`].
    Stopped(Stopped),
    /// To [`Request::Bye`].
    Bye,
    /// The request failed.
    Error {
        /// What went wrong, one line.
        message: String,
    },
}

/// The host, as its agent sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// `lbbench 0.1.0`.
    pub lbbench: String,
    /// Its host name.
    pub hostname: String,
    /// CPUs, model, kernel, OS, load.
    pub machine: MachineInfo,
    /// Its clock, in ms since the Unix epoch, when it answered.
    pub clock_ms: i64,
    /// Its hard limit on open files.
    pub fd_limit: u64,
    /// Its ephemeral port range (`ip_local_port_range`).
    pub port_range: Option<(u32, u32)>,
}

/// A program found (its path and version), or why not.
pub type Found = Result<(PathBuf, String), String>;

/// [`Reply::Checked`]: each item found, or why not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// httperf's path and version.
    pub httperf: Option<Found>,
    /// Each balancer: its name, and its program and version.
    pub balancers: Vec<(String, Found)>,
    /// Whether the address could be bound (with each port asked for).
    pub bind: Option<Result<(), String>>,
}

/// A process an agent started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedProcess {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its PID on the host.
    pub pid: u32,
}

/// [`Reply::Balancer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedBalancer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its program.
    pub program: PathBuf,
    /// Its version.
    pub version: String,
    /// Its processes, main first.
    pub pids: Vec<u32>,
    /// Its connection limit.
    pub max_connections: u32,
    /// Its temp dir on the host.
    pub run_dir: Option<PathBuf>,
    /// Its generated config.
    pub config: String,
    /// The config's file name (`haproxy.cfg`).
    pub config_name: String,
}

/// [`Reply::Measured`]: what ran here over a run's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The balancer's processes, if it runs here.
    pub balancer: Option<ProcessUsage>,
    /// The backends' processes, if they run here.
    pub backends: Option<ProcessUsage>,
    /// 100 − idle − iowait of the whole machine, in %.
    pub machine_busy_pct: f64,
}

/// [`Reply::Httperf`]: httperf's output and times, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttperfReply {
    /// What it printed.
    pub raw: RawOutput,
    /// When it started (RFC 3339, the host's clock).
    pub started_at: String,
    /// When it exited.
    pub finished_at: String,
    /// How long it ran, in s.
    pub wall_s: f64,
    /// How long the host waited for its ports first, in s.
    pub waited_for_ports_s: f64,
    /// Why the run failed, if it did (httperf's own error, with its output in `raw`).
    pub error: Option<HttperfFailure>,
}

/// How a run on a host failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttperfFailure {
    /// One line.
    pub message: String,
    /// Stopped by [`Request::Cancel`] (or a signal to the agent).
    pub interrupted: bool,
    /// Bad arguments or a missing program.
    pub usage: bool,
}

/// [`Reply::Stopped`]: what was kept of what ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stopped {
    /// Logs: (file name, text), e.g. `("haproxy.log", …)`, `("node-1.log", …)`.
    pub logs: Vec<(String, String)>,
    /// The `lbbench cpu` file's text (a CSV with its header), if there was one.
    pub cpu_csv: Option<String>,
    /// Processes still running after the stop (none, normally).
    pub leftover: Vec<u32>,
}

/// Reads one line of the protocol.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| {
        let shown: String = line.chars().take(120).collect();
        format!("not a protocol line ({e}): {shown:?}")
    })
}

/// One line of the protocol, with its newline.
pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serializing these plain structs cannot fail.
    let mut s = serde_json::to_string(msg).unwrap_or_else(|e| {
        serde_json::json!({"reply": "error", "message": format!("cannot encode: {e}")}).to_string()
    });
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_line_each_and_read_back() {
        let mut args = HttperfArgs::new("10.0.0.2", 50.0, 100);
        args.extra = vec!["--add-header=Connection: close\\n".into()];
        let reqs = [
            Request::Hello,
            Request::Httperf(HttperfRequest {
                program: "httperf".into(),
                args,
                wait_for_ports: true,
            }),
            Request::StartBackends {
                first: 3,
                count: 2,
                bind: Ipv4Addr::new(10, 0, 0, 3),
            },
            Request::Cancel,
        ];
        for r in reqs {
            let line = encode(&r);
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(decode::<Request>(&line).unwrap(), r);
        }
        let reply = Reply::Error {
            message: "a\nb".into(),
        };
        let line = encode(&reply);
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(decode::<Reply>(&line).unwrap(), reply);
        assert_eq!(encode(&Request::Bye), "{\"op\":\"bye\"}\n");
        let e = decode::<Request>("bash: lbbench: command not found").unwrap_err();
        assert!(e.contains("not a protocol line"), "{e}");
    }
}
