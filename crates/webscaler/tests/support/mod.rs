//! Shared harness for tests that run the real HAProxy, `lbbench backend` and httperf.
//!
//! - [`HaproxyLab`]: the library's own HAProxy (`webscaler::haproxy::process`, the embedded
//!   mode of `webscaler run`) in a temp dir (main config + generated backend file, admin and
//!   master sockets, a frontend and a stats listener on free 127.0.0.1 ports,
//!   `noreuseport`), stopped by PID and its sockets removed on drop.
//! - [`Backend`]: one `lbbench backend` (answers `It works!` on `/`, `/perf.php?sleep=S`).
//! - [`httperf`]: a bounded httperf run and the counts its report gives.
//!
//! Include with `mod support;` from an integration test.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::net::{HttpReply, free_ports, http_get};
use common::process::Supervised;
use testkit::workspace_bin;
use webscaler::balancer::{BackendName, ServerAddr, ServerName};
use webscaler::haproxy::process::{EmbeddedConfig, HaproxyProcess, ProcessError};
use webscaler::haproxy::{BackendFile, BackendServer, Haproxy, ServerOptions, Socket};

/// Generous limits: the machine has 2 cores shared with other jobs.
pub const T: Duration = Duration::from_secs(20);
/// How often to look.
pub const POLL: Duration = Duration::from_millis(20);

/// One `lbbench backend` process.
pub struct Backend {
    /// Its name (`node-1`).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    proc: Supervised,
}

impl Backend {
    /// Starts `lbbench backend --port 0 --name NAME` and reads its address from stderr.
    pub fn start(name: &str) -> Backend {
        let mut proc = Supervised::spawn(
            "lbbench backend",
            Command::new(workspace_bin("lbbench"))
                .args([
                    "backend",
                    "--port",
                    "0",
                    "--name",
                    name,
                    "--threads",
                    "1",
                    "--grace",
                    "5s",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .expect("start lbbench backend");
        let stderr = proc.child_mut().stderr.take().expect("piped stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).expect("read lbbench's stderr");
        let addr: SocketAddr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in lbbench's first line {line:?}"));
        // Keep draining stderr so the backend can never block on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Backend {
            name: name.to_owned(),
            addr,
            proc,
        }
    }

    /// The address as a validated server address.
    pub fn server_addr(&self) -> ServerAddr {
        ServerAddr::from_socket_addr(self.addr).unwrap()
    }

    /// The name as a validated server name.
    pub fn server_name(&self) -> ServerName {
        ServerName::new(&self.name).unwrap()
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// Options for [`HaproxyLab::start`].
#[derive(Clone)]
pub struct LabOptions {
    /// The backend's name.
    pub backend: String,
    /// Servers in the initial backend file.
    pub servers: Vec<(String, SocketAddr)>,
    /// The admin socket's level (`admin`, `operator`).
    pub level: String,
    /// Check options for the initial file.
    pub check: ServerOptions,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            backend: "nodes".into(),
            servers: Vec::new(),
            level: "admin".into(),
            check: ServerOptions {
                inter: Duration::from_millis(300),
                rise: 2,
                fall: 2,
                pool_purge_delay: Duration::from_secs(1),
            },
        }
    }
}

/// A master-worker HAProxy of our own: the library's [`HaproxyProcess`] (the embedded mode
/// of `webscaler run`) in a temp dir, on free ports, with a stats listener.
pub struct HaproxyLab {
    /// The frontend's address.
    pub frontend: SocketAddr,
    /// The stats listener's address (`/stats;csv`).
    pub stats: SocketAddr,
    /// `main.cfg`.
    pub main_cfg: PathBuf,
    /// The generated `backends.cfg`.
    pub backends_cfg: PathBuf,
    /// The admin socket.
    pub admin: PathBuf,
    /// The master socket.
    pub master: PathBuf,
    /// The server state file HAProxy starts from.
    pub state_file: PathBuf,
    /// Options it was started with.
    pub options: LabOptions,
    proc: Option<HaproxyProcess>,
    // Dropped last: the temp dir with the configs, sockets and log.
    dir: tempfile::TempDir,
}

impl HaproxyLab {
    /// Starts HAProxy with `options` and waits until both sockets answer.
    pub fn start(options: LabOptions) -> HaproxyLab {
        let dir = tempfile::Builder::new()
            .prefix("ws-haproxy-")
            .tempdir()
            .expect("temp dir");
        let servers: Vec<BackendServer> = options
            .servers
            .iter()
            .map(|(n, a)| BackendServer {
                name: ServerName::new(n).unwrap(),
                addr: ServerAddr::from_socket_addr(*a).unwrap(),
            })
            .collect();
        // A port taken between picking and binding makes haproxy exit (noreuseport): retry.
        for _attempt in 0..5 {
            let ports = free_ports(2).unwrap();
            let frontend: SocketAddr = ([127, 0, 0, 1], ports[0]).into();
            let stats: SocketAddr = ([127, 0, 0, 1], ports[1]).into();
            let mut cfg = EmbeddedConfig::new(dir.path(), frontend);
            cfg.stats = Some(stats);
            cfg.backend = BackendName::new(&options.backend).unwrap();
            cfg.check = options.check;
            cfg.level = options.level.clone();
            cfg.initial_servers = servers.clone();
            cfg.start_timeout = T;
            cfg.stop_grace = Duration::from_secs(5);
            match HaproxyProcess::start(cfg) {
                Ok(p) => {
                    let paths = p.paths().clone();
                    return HaproxyLab {
                        frontend,
                        stats,
                        main_cfg: paths.main_cfg,
                        backends_cfg: paths.backends_cfg,
                        admin: paths.admin,
                        master: paths.master,
                        state_file: paths.state_file,
                        options,
                        proc: Some(p),
                        dir,
                    };
                }
                Err(ProcessError::AddressInUse { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("haproxy could not bind free ports in 5 attempts");
    }

    /// The temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master process's PID.
    pub fn pid(&self) -> u32 {
        self.proc.as_ref().map(|p| p.pid()).unwrap_or(0)
    }

    /// HAProxy's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// The admin socket.
    pub fn socket(&self) -> Socket {
        Socket::admin(&self.admin)
    }

    /// The master socket.
    pub fn master_socket(&self) -> Socket {
        Socket::master(&self.master)
    }

    /// The generated backend file, checked with the main config.
    pub fn backend_file(&self) -> BackendFile {
        BackendFile::new(&self.backends_cfg)
            .with_config_files(vec![self.main_cfg.clone(), self.backends_cfg.clone()])
    }

    /// A [`Haproxy`] for this lab: admin socket, master socket, its backend file, fast polls.
    pub fn haproxy(&self) -> Haproxy {
        Haproxy::new(
            self.socket(),
            BackendName::new(&self.options.backend).unwrap(),
        )
        .with_master(self.master_socket())
        .with_check(self.options.check)
        .unwrap()
        .with_backend_file(self.backend_file())
        .with_state_file(&self.state_file)
        .with_poll_interval(Duration::from_millis(50))
    }

    /// `GET path` through the frontend.
    pub fn get(&self, path: &str) -> HttpReply {
        http_get(self.frontend, path, T).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for HaproxyLab {
    fn drop(&mut self) {
        // Stopped by PID (soft stop, then SIGTERM/SIGKILL); its sockets and pid file removed.
        if let Some(p) = self.proc.take() {
            let _ = p.stop();
        }
    }
}

/// What an httperf report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttperfReport {
    /// `Total: connections N`.
    pub connections: u64,
    /// `Total: ... replies N`.
    pub replies: u64,
    /// `Errors: total N`.
    pub errors: u64,
    /// `Reply status: ... 2xx=N`.
    pub status_2xx: u64,
    /// `Reply status: ... 5xx=N`.
    pub status_5xx: u64,
    /// The whole report.
    pub text: String,
}

fn field(text: &str, line_prefix: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .unwrap_or_else(|| panic!("no {line_prefix:?} line in httperf's report:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix(&format!("{key}=")) {
            return v.parse().unwrap();
        }
        if *w == key {
            return words[i + 1].parse().unwrap();
        }
    }
    panic!("no {key} in {line:?}");
}

/// Parses the lines of an httperf report the tests look at.
pub fn parse_httperf(text: &str) -> HttperfReport {
    HttperfReport {
        connections: field(text, "Total: connections", "connections"),
        replies: field(text, "Total: connections", "replies"),
        errors: field(text, "Errors: total", "total"),
        status_2xx: field(text, "Reply status:", "2xx"),
        status_5xx: field(text, "Reply status:", "5xx"),
        text: text.to_owned(),
    }
}

/// A running httperf.
pub struct Httperf {
    proc: Supervised,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `httperf --rate R --num-conns N` against `target` (one call per connection).
pub fn httperf(target: SocketAddr, uri: &str, rate: u32, conns: u32) -> Httperf {
    httperf_in(None, target, uri, rate, conns)
}

/// [`httperf`] in the network namespace `netns` (`ip netns exec`), if given.
pub fn httperf_in(
    netns: Option<&str>,
    target: SocketAddr,
    uri: &str,
    rate: u32,
    conns: u32,
) -> Httperf {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("httperf.txt");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "httperf"]);
            c
        }
        None => Command::new("httperf"),
    };
    let proc = Supervised::spawn(
        "httperf",
        cmd.args(["--hog", "--server"])
            .arg(target.ip().to_string())
            .arg("--port")
            .arg(target.port().to_string())
            .args(["--uri", uri, "--timeout", "10", "--num-calls", "1"])
            .arg("--rate")
            .arg(rate.to_string())
            .arg("--num-conns")
            .arg(conns.to_string())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null()),
    )
    .expect("start httperf (scripts/setup.sh installs it)");
    Httperf {
        proc,
        out,
        _dir: dir,
    }
}

impl Httperf {
    /// Stops the run now with SIGINT (httperf then prints its report; connections still in
    /// flight are not counted as errors) and parses the report.
    pub fn interrupt(mut self) -> HttperfReport {
        self.proc
            .signal(rustix::process::Signal::INT)
            .expect("SIGINT to httperf");
        self.proc
            .wait_timeout(T)
            .unwrap()
            .expect("httperf to exit after SIGINT");
        parse_httperf(&fs::read_to_string(&self.out).unwrap())
    }

    /// Waits for the run to end (bounded) and parses its report.
    pub fn finish(mut self, timeout: Duration) -> HttperfReport {
        let status = self
            .proc
            .wait_timeout(timeout)
            .unwrap()
            .unwrap_or_else(|| panic!("httperf still running after {timeout:?}"));
        let text = fs::read_to_string(&self.out).unwrap();
        assert!(status.success(), "httperf failed: {status}\n{text}");
        parse_httperf(&text)
    }
}

/// One `webscaler run` in its embedded mode (its own HAProxy, local `lbbench backend`s), with
/// an empty environment but for `HOME`, `PATH` and what the test adds, its stderr in a file.
pub struct WebscalerRun {
    pub proc: Supervised,
    pub log: PathBuf,
}

impl WebscalerRun {
    /// Starts `webscaler run --provider local --state-dir STATE --frontend FRONTEND
    /// --interval 1s --check-inter 200ms --command 'lbbench backend ...' EXTRA...` in `home`.
    pub fn start(
        home: &Path,
        state: &Path,
        frontend: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> WebscalerRun {
        workspace_bin("lbbench");
        let log = home.join(format!("run-{}.log", common::net::free_port().unwrap()));
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("webscaler"));
        cmd.env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(home)
            .args(["run", "--provider", "local", "--state-dir"])
            .arg(state)
            .arg("--frontend")
            .arg(frontend.to_string())
            .args([
                "--interval",
                "1s",
                "--check-inter",
                "200ms",
                "--command",
                "lbbench backend --port {port} --name {name} --threads 8 --grace 2s",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Supervised::spawn("webscaler run", &mut cmd)
            .unwrap()
            .with_grace(Duration::from_secs(20));
        WebscalerRun { proc, log }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for it to exit on its own, and returns how.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.proc
            .wait_timeout(timeout)
            .unwrap()
            .unwrap_or_else(|| panic!("still running after {timeout:?}:\n{}", self.log()))
    }

    /// SIGTERM: the current tick finishes and it exits 0; returns its log.
    pub fn terminate(mut self) -> String {
        self.proc.signal(rustix::process::Signal::TERM).unwrap();
        let status = self.wait_exit(Duration::from_secs(40));
        assert!(status.success(), "exit {status}:\n{}", self.log());
        self.log()
    }
}

/// `webscaler down --state-dir STATE` when dropped: whatever a test leaves running in its
/// state directory is stopped, even when it fails half-way.
pub struct Teardown(pub PathBuf);

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = webscaler::service::down(&self.0, Duration::from_secs(1), Duration::from_secs(1));
    }
}

/// The processes that carry a marker of the state directory `state` (its local backends
/// and its embedded HAProxy), as (pid, pgid, kind, marker value).
pub fn processes_of(state: &Path) -> Vec<(u32, u32, &'static str, String)> {
    let dir = fs::canonicalize(state).unwrap_or_else(|_| state.to_path_buf());
    let prefix = dir.display().to_string();
    let mut v = Vec::new();
    for (name, marker) in [
        ("backend", webscaler::cloud::local::MARKER),
        ("haproxy", webscaler::haproxy::process::MARKER),
    ] {
        for m in common::process::find_marked(marker) {
            if m.value.starts_with(&prefix) {
                v.push((m.pid, m.pgid, name, m.value));
            }
        }
    }
    v
}
