//! What the integration tests share: the benchmark backend on 127.0.0.1, CSV reading, and
//! process helpers.
#![allow(dead_code)] // each test binary uses a part

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Supervised;

/// `lbbench backend` (the lab report's perf.php) as a separate process on a free port of
/// 127.0.0.1, stopped by pid when dropped.
pub struct Backend {
    process: Supervised,
    addr: SocketAddr,
    status_calls: Cell<u64>,
}

impl Backend {
    /// Starts `lbbench backend --port 0` with one worker thread and reads its address.
    pub fn start() -> Backend {
        let mut process = Supervised::spawn(
            "lbbench backend",
            Command::new(env!("CARGO_BIN_EXE_lbbench"))
                .args(["backend", "--port", "0", "--threads", "1", "--grace", "1s"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .expect("start lbbench backend");
        let stderr = process.child_mut().stderr.take().expect("its stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).expect("its first line");
        let addr: SocketAddr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stderr, so a later message never meets a closed pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Backend {
            process,
            addr,
            status_calls: Cell::new(0),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Requests it answered, not counting these status queries.
    pub fn requests(&self) -> u64 {
        let reply = common::net::http_get(self.addr, "/server-status", Duration::from_secs(10))
            .expect("GET /server-status");
        let v: serde_json::Value = serde_json::from_str(&reply.body).expect("status JSON");
        self.status_calls.set(self.status_calls.get() + 1);
        v["requests"].as_u64().expect("a request count") - self.status_calls.get()
    }
}

/// The rows of a CSV file as maps from column name to cell.
pub fn read_rows(path: &Path) -> (Vec<String>, Vec<std::collections::HashMap<String, String>>) {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Lines in a file (0 if it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Pids of live processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && common::process::is_alive(pid))
        .filter(|&pid| {
            common::process::cmdline(pid).is_some_and(|c| c.iter().any(|a| a.contains(needle)))
        })
        .collect()
}

/// A generous deadline for things that take a few seconds on an idle machine; the tests run
/// on 2 shared cores.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// How often to poll.
pub const POLL: Duration = Duration::from_millis(50);

/// How long a reduced lab may take on the shared test machine.
pub const LAB_DEADLINE: Duration = Duration::from_secs(300);

/// `lbbench lab ARGS -o DIR` in the background, its stdout and stderr in files beside `DIR`.
pub struct LabProcess {
    /// The lab's process.
    pub process: Supervised,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

/// Starts `lbbench lab ARGS -o NAME` in the parent of `dir` (named `NAME`): a relative
/// output directory, as users give it (the configs must still find every file).
pub fn start_lab(dir: &Path, args: &[&str]) -> LabProcess {
    let logs = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy();
    let stdout = logs.join(format!("{name}.stdout"));
    let stderr = logs.join(format!("{name}.stderr"));
    let process = Supervised::spawn(
        "lbbench lab",
        Command::new(env!("CARGO_BIN_EXE_lbbench"))
            .arg("lab")
            .args(args)
            .arg("-o")
            .arg(dir.file_name().unwrap())
            .current_dir(logs)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap()),
    )
    .unwrap();
    LabProcess {
        process,
        stdout,
        stderr,
    }
}

impl LabProcess {
    /// Waits for it (at most [`LAB_DEADLINE`]): its exit status, stdout and stderr.
    pub fn wait(mut self) -> (std::process::ExitStatus, String, String) {
        let status = common::wait::poll_until("the lab to finish", LAB_DEADLINE, POLL, || {
            self.process.try_status().unwrap()
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}; stderr so far:\n{}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            )
        });
        (
            status,
            std::fs::read_to_string(&self.stdout).unwrap(),
            std::fs::read_to_string(&self.stderr).unwrap(),
        )
    }
}
