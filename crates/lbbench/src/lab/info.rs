//! What a lab run records about itself in `lab.json`, next to its CSV files: the settings of
//! the sweep, the programs and their versions, the machine, and when each invocation of `lbbench lab` ran. The
//! report reads it for its header; a resumed lab reads it to refuse settings that would mix
//! different measurements in one file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in the lab's directory.
pub const FILE_NAME: &str = "lab.json";

/// Everything `lab.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabInfo {
    /// The lbbench that ran it (`lbbench 0.1.0`).
    pub tool: String,
    /// The sweep's settings.
    pub settings: LabSettings,
    /// The machine.
    pub machine: MachineInfo,
    /// httperf.
    pub httperf: ProgramInfo,
    /// Each balancer measured, in the order of the runs.
    pub balancers: Vec<BalancerInfo>,
    /// Each time the lab ran in this directory (a resumed lab adds one). Files written
    /// before this name was chosen call it `sessions`.
    #[serde(alias = "sessions")]
    pub invocations: Vec<Invocation>,
    /// The hosts of a lab across hosts (`--hosts`), as the last invocation found them; empty
    /// for a lab on one machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostInfo>,
}

/// One host of a lab across hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Its name in the hosts file (`client-1`).
    pub name: String,
    /// `client`, `balancer` or `backend`.
    pub role: String,
    /// How ssh reached it (`user@host:port`).
    pub ssh: String,
    /// The address the other hosts reached it at.
    pub address: String,
    /// Its host name.
    pub hostname: String,
    /// The lbbench there (`lbbench 0.1.0`).
    pub lbbench: String,
    /// Its CPUs, model, kernel, OS and load.
    pub machine: MachineInfo,
    /// Its clock minus the lab machine's, in ms.
    pub clock_offset_ms: i64,
    /// What the lab runs there: httperf on a client, the balancers on the balancer's host.
    pub programs: Vec<ProgramInfo>,
}

/// The settings that define what the rows measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabSettings {
    /// How many backends.
    pub backends: usize,
    /// The URI requested.
    pub uri: String,
    /// Seconds per run.
    pub duration_s: f64,
    /// Pause between runs, in s.
    pub pause_s: f64,
    /// The demanded rates, in connections/s.
    pub rates: Vec<f64>,
    /// Runs per rate.
    pub repeat: u32,
    /// httperf's reply timeout, in s.
    pub timeout_s: f64,
    /// The extra httperf arguments (the `Connection: close` header).
    pub httperf_extra: Vec<String>,
    /// How clients connected in the last invocation: `off` (plain HTTP), `on` (TLS, full
    /// handshakes), `resumed` (TLS, resumed sessions). Absent in older files: plain.
    #[serde(default)]
    pub tls: Vec<String>,
    /// The reply sizes of a size lab, in bytes (empty for a rate lab).
    #[serde(default)]
    pub sizes: Vec<u64>,
    /// Where it ran, for a lab across hosts: each host as `role name address` (empty on one
    /// machine). Rows from other machines measure something else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl LabSettings {
    /// What differs between the settings that decide what a row measures (backends, URI,
    /// duration, timeout, httperf's extra arguments): the rates, repeats and pause may change
    /// between invocations, these may not. One line per difference.
    pub fn measurement_differences(&self, other: &LabSettings) -> Vec<String> {
        let mut d = Vec::new();
        if self.backends != other.backends {
            d.push(format!(
                "--backends {} (now {})",
                self.backends, other.backends
            ));
        }
        if self.uri != other.uri {
            d.push(format!("--uri {} (now {})", self.uri, other.uri));
        }
        if self.duration_s != other.duration_s {
            d.push(format!(
                "--duration {} (now {})",
                self.duration_s, other.duration_s
            ));
        }
        if self.timeout_s != other.timeout_s {
            d.push(format!(
                "--timeout {} (now {})",
                self.timeout_s, other.timeout_s
            ));
        }
        if self.httperf_extra != other.httperf_extra {
            d.push(format!(
                "httperf arguments {:?} (now {:?})",
                self.httperf_extra, other.httperf_extra
            ));
        }
        if self.hosts != other.hosts {
            let show = |h: &[String]| {
                if h.is_empty() {
                    "this machine".to_owned()
                } else {
                    format!("--hosts {}", h.join(", "))
                }
            };
            d.push(format!(
                "ran on {} (now {})",
                show(&self.hosts),
                show(&other.hosts)
            ));
        }
        d
    }
}

/// The machine the lab ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPUs available to the lab.
    pub cpus: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// The kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The distribution (`PRETTY_NAME` of `/etc/os-release`).
    pub os: Option<String>,
    /// `/proc/loadavg`'s three load averages when the lab started.
    pub load_at_start: Option<[f64; 3]>,
}

impl MachineInfo {
    /// This machine, now.
    pub fn current() -> MachineInfo {
        let read = |p: &str| fs::read_to_string(p).ok();
        MachineInfo {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: read("/proc/cpuinfo").and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            }),
            kernel: read("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
            os: read("/etc/os-release").and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_owned())
            }),
            load_at_start: read("/proc/loadavg").and_then(|t| parse_loadavg(&t)),
        }
    }
}

/// The three load averages of a `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// A program and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramInfo {
    /// Its path.
    pub program: PathBuf,
    /// Its version.
    pub version: String,
}

/// One balancer of the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalancerInfo {
    /// `haproxy`, `pound`, `nginx`: the `server` column of its rows.
    pub name: String,
    /// Its program and version.
    pub program: ProgramInfo,
    /// Its connection limit (maxconn, WorkerMaxCount, worker_connections / 2).
    pub max_connections: Option<u32>,
    /// How many processes it ran (master, workers).
    pub processes: Option<usize>,
}

/// One run of `lbbench lab` in a directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// How it ended: `complete`, `interrupted`, `failed`, or `running` (still running, or
    /// killed).
    pub outcome: String,
    /// What it started, as it started it.
    #[serde(default)]
    pub started: Vec<Started>,
}

/// Processes the lab started, for a post-mortem (and for tests that check they are gone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// `backends`, or the balancer's name.
    pub what: String,
    /// Their PIDs (a balancer's: main process first).
    pub pids: Vec<u32>,
    /// Where they listened.
    pub addrs: Vec<String>,
    /// The balancer's temp dir (removed at its stop).
    pub run_dir: Option<PathBuf>,
    /// The host they ran on, for a lab across hosts (their PIDs are that host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Why `lab.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a lab's `lab.json`.
    #[error("{}: not a lab.json: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl LabInfo {
    /// Reads `dir/lab.json`; `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<LabInfo>, InfoError> {
        let path = dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(InfoError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| InfoError::Format { path, source })
    }

    /// Writes `dir/lab.json` atomically (a temp file renamed over it), so a reader or a crash
    /// never sees half a file.
    pub fn save(&self, dir: &Path) -> Result<(), InfoError> {
        let path = dir.join(FILE_NAME);
        let io_err = |source| InfoError::Io {
            path: path.clone(),
            source,
        };
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| io_err(io::Error::other(e)))?;
        text.push('\n');
        common::atomic::write(&path, text.as_bytes()).map_err(io_err)
    }

    /// The balancer named `name`, if recorded.
    pub fn balancer(&self, name: &str) -> Option<&BalancerInfo> {
        self.balancers.iter().find(|b| b.name == name)
    }

    /// Records a balancer (replacing an earlier record of the same name, which a resumed lab
    /// refreshes). Returns the earlier version if it was another one.
    pub fn record_balancer(&mut self, info: BalancerInfo) -> Option<String> {
        match self.balancers.iter_mut().find(|b| b.name == info.name) {
            Some(old) => {
                let before = (old.program.version != info.program.version)
                    .then(|| old.program.version.clone());
                *old = info;
                before
            }
            None => {
                self.balancers.push(info);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LabSettings {
        LabSettings {
            backends: 4,
            uri: "/perf.php?sleep=0.2".into(),
            duration_s: 60.0,
            pause_s: 5.0,
            rates: vec![100.0, 200.0],
            repeat: 3,
            timeout_s: 5.0,
            httperf_extra: vec!["--add-header=Connection: close\\n".into()],
            tls: vec!["off".into()],
            sizes: Vec::new(),
            hosts: Vec::new(),
        }
    }

    #[test]
    fn only_measurement_settings_must_match() {
        let a = settings();
        let mut b = a.clone();
        b.rates = vec![100.0];
        b.repeat = 1;
        b.pause_s = 0.0;
        assert!(a.measurement_differences(&b).is_empty());
        b.duration_s = 5.0;
        b.backends = 2;
        assert_eq!(
            a.measurement_differences(&b),
            ["--backends 4 (now 2)", "--duration 60 (now 5)"]
        );
    }

    #[test]
    fn round_trips_through_the_file_and_records_balancers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LabInfo::load(dir.path()).unwrap(), None);
        let mut info = LabInfo {
            tool: "lbbench 0.1.0".into(),
            settings: settings(),
            machine: MachineInfo::current(),
            httperf: ProgramInfo {
                program: "/usr/bin/httperf".into(),
                version: "0.9.0".into(),
            },
            balancers: vec![],
            invocations: vec![Invocation {
                started_at: "2025-01-01T00:00:00Z".into(),
                finished_at: None,
                outcome: "running".into(),
                started: vec![],
            }],
            hosts: vec![],
        };
        let hap = |v: &str| BalancerInfo {
            name: "haproxy".into(),
            program: ProgramInfo {
                program: "/usr/sbin/haproxy".into(),
                version: v.into(),
            },
            max_connections: Some(4096),
            processes: Some(2),
        };
        assert_eq!(info.record_balancer(hap("2.6.12")), None);
        assert_eq!(info.record_balancer(hap("2.6.12")), None);
        assert_eq!(info.record_balancer(hap("2.8.1")), Some("2.6.12".into()));
        assert_eq!(info.balancers.len(), 1);
        info.save(dir.path()).unwrap();
        assert_eq!(LabInfo::load(dir.path()).unwrap(), Some(info.clone()));
        assert!(!dir.path().join(".lab.json.tmp").exists());
        fs::write(dir.path().join(FILE_NAME), "{}").unwrap();
        let e = LabInfo::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a lab.json"), "{e}");
    }

    #[test]
    fn reads_the_older_name_of_the_invocations() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"tool":"lbbench 0.1.0","settings":{"backends":4,"uri":"/","duration_s":60.0,
            "pause_s":5.0,"rates":[100.0],"repeat":3,"timeout_s":5.0,"httperf_extra":[]},
            "machine":{"cpus":2,"cpu_model":null,"kernel":"6","os":null,"load_at_start":null},
            "httperf":{"program":"httperf","version":"0.9.0"},"balancers":[],
            "sessions":[{"started_at":"2025-01-01T00:00:00Z","finished_at":null,"outcome":"failed"}]}"#;
        fs::write(dir.path().join(FILE_NAME), old).unwrap();
        let info = LabInfo::load(dir.path()).unwrap().unwrap();
        assert_eq!(info.invocations.len(), 1);
        assert_eq!(info.invocations[0].outcome, "failed");
        info.save(dir.path()).unwrap();
        let saved = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            saved.contains("\"invocations\"") && !saved.contains("\"sessions\""),
            "{saved}"
        );
    }

    #[test]
    fn reads_the_machine() {
        assert_eq!(
            parse_loadavg("1.12 2.80 3.86 2/345 6789\n"),
            Some([1.12, 2.8, 3.86])
        );
        assert_eq!(parse_loadavg("1.0 x"), None);
        let m = MachineInfo::current();
        assert!(m.cpus >= 1);
        assert!(!m.kernel.is_empty());
    }
}
