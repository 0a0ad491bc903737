//! Running httperf: find it, start it, wait for it with a deadline, parse its report.
//!
//! httperf needs watching: `--num-conns 0` never ends, a hung server can keep it waiting
//! without `--timeout`, and it exits 0 even when every connection failed. So:
//!
//! - each run has a deadline (by default the time to issue every connection, plus the reply
//!   timeout, plus half again and at least 30 s of slack); past it, httperf gets SIGINT (on
//!   which it prints its report and exits), then SIGKILL, and the run is an error;
//! - a non-zero exit, or an exit without a complete report, is an error that carries
//!   httperf's stderr;
//! - httperf runs in a process group of its own, and the watchdog signals the whole group:
//!   a wrapper script given as `--httperf` (whose httperf, a child of the script, holds the
//!   output pipes) is stopped as surely as httperf itself, and the pipes are read for at
//!   most a few seconds after the group is gone;
//! - httperf is killed if the thread that started it dies (`PR_SET_PDEATHSIG`), so a sweep
//!   killed with SIGKILL leaves no load generator running.
//!
//! [`Httperf::start`] returns at once with a [`RunningHttperf`], so several runs can go at the
//! same time (each has its own reader threads); [`RunningHttperf::wait`] finishes one.

use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::Shutdown;
use common::process::{SpawnOptions, Supervised};
use rustix::process::Signal;

use super::args::{ArgsError, HttperfArgs};
use super::report::{Report, ReportError, parse_report};

/// The warning httperf 0.9.0 prints on stderr on every run; it says nothing about the run.
const FD_SETSIZE_WARNING: &str = "open file limit > FD_SETSIZE";

/// How to install httperf, for the "not installed" error.
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install httperf` (Debian, Ubuntu) \
                                or `sudo dnf install httperf` (Fedora), or give its path with \
                                --httperf PATH";

/// What httperf printed, kept with errors so failed runs can be saved and shown.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RawOutput {
    /// Everything on stdout (the report).
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

/// Why a run produced no report.
#[derive(Debug, thiserror::Error)]
pub enum HttperfError {
    /// The program is not there.
    #[error("{}", not_installed(program, *given))]
    NotInstalled {
        /// The program looked for.
        program: PathBuf,
        /// Whether it was given as a path (`--httperf PATH`) rather than looked up in PATH.
        given: bool,
    },
    /// The arguments are wrong.
    #[error("bad httperf arguments: {0}")]
    Args(#[from] ArgsError),
    /// The server name does not resolve to an IPv4 address.
    #[error("cannot resolve the server `{host}`: {reason}")]
    Unresolvable {
        /// The name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The program could not be started.
    #[error("cannot start {}: {error}", program.display())]
    Spawn { program: PathBuf, error: io::Error },
    /// Waiting for the program failed.
    #[error("cannot wait for httperf: {0}")]
    Wait(io::Error),
    /// httperf exited with a non-zero status.
    #[error("httperf failed ({status}): {}", stderr_summary(&.output.stderr))]
    Failed {
        /// How it exited.
        status: ExitStatus,
        /// What it printed.
        output: Box<RawOutput>,
    },
    /// httperf (with `--ssl`) met a TLS handshake that failed, and exited: httperf 0.9
    /// exits at the first failed handshake, without a report.
    #[error("httperf stopped at a failed TLS handshake: {}", tls_failure(&.output.stderr).unwrap_or_default())]
    TlsHandshake {
        /// What it printed.
        output: Box<RawOutput>,
    },
    /// httperf exited 0 but its report is missing or incomplete.
    #[error("httperf printed no usable report: {error}; its stderr: {}", stderr_summary(&.output.stderr))]
    NoReport {
        /// Why the report could not be read.
        error: ReportError,
        /// What it printed.
        output: Box<RawOutput>,
    },
    /// The run went past its deadline and was stopped.
    #[error(
        "httperf was still running after {}s (it should take about {}s); stopped it; its stderr: {}",
        .after.as_secs(), .expected.as_secs(), stderr_summary(&.output.stderr)
    )]
    TimedOut {
        /// The deadline.
        after: Duration,
        /// The expected length of the run.
        expected: Duration,
        /// What it printed.
        output: Box<RawOutput>,
    },
    /// httperf got no reply at all because every connection was refused: nothing listened
    /// on the server's port. A sweep does not record such a run, so that the same command
    /// does it again once the server is back.
    #[error(
        "no replies: {refused} of {connections} connections were refused (is anything \
         listening on the server's port?)"
    )]
    NothingListened {
        /// Connections refused.
        refused: u64,
        /// Connections tried.
        connections: u64,
        /// What it printed.
        output: Box<RawOutput>,
    },
    /// Shutdown was requested (SIGINT, SIGTERM) while the run was going; it was stopped and
    /// its partial report discarded.
    #[error("interrupted; the unfinished httperf run was stopped and discarded")]
    Interrupted {
        /// What it printed before it stopped.
        output: Box<RawOutput>,
    },
    /// A run made by several client hosts failed on one or more of them (each named in the
    /// message); the others were stopped.
    #[error("{message}")]
    Clients {
        /// What went wrong, host by host.
        message: String,
        /// A host was lost: the run cannot be done again until it is back, so the sweep stops.
        lost: bool,
        /// What each client that answered printed.
        outputs: Vec<(String, RawOutput)>,
    },
}

impl HttperfError {
    /// Whether the error comes from bad input (arguments, host names, a missing program)
    /// rather than from the run: the CLI exits 2 for these.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            HttperfError::NotInstalled { .. }
                | HttperfError::Args(_)
                | HttperfError::Unresolvable { .. }
        )
    }

    /// Whether the sweep cannot go on after this error (a client host was lost), however
    /// many runs went well before.
    pub fn is_fatal(&self) -> bool {
        matches!(self, HttperfError::Clients { lost: true, .. })
    }

    /// Each client's output, for a run that several client hosts made together.
    pub fn client_outputs(&self) -> &[(String, RawOutput)] {
        match self {
            HttperfError::Clients { outputs, .. } => outputs,
            _ => &[],
        }
    }

    /// httperf's output, if the run got that far.
    pub fn raw_output(&self) -> Option<&RawOutput> {
        match self {
            HttperfError::Failed { output, .. }
            | HttperfError::TlsHandshake { output }
            | HttperfError::NoReport { output, .. }
            | HttperfError::TimedOut { output, .. }
            | HttperfError::NothingListened { output, .. }
            | HttperfError::Interrupted { output } => Some(output),
            _ => None,
        }
    }
}

fn not_installed(program: &Path, given: bool) -> String {
    if given {
        format!(
            "httperf not found at {} (not an executable file); {INSTALL_HINT}",
            program.display()
        )
    } else {
        format!(
            "httperf is not installed (no `{}` in PATH); {INSTALL_HINT}",
            program.display()
        )
    }
}

/// The version in httperf's `httperf: httperf-0.9.0 compiled without DEBUG ...` line.
pub fn parse_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.split("httperf-").nth(1)?;
        let v = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// What a failed TLS handshake means, from httperf's `failed to connect to SSL server
/// (err=-1, reason=N)` and OpenSSL's error lines after it (`...:wrong version number:...`);
/// `None` if stderr has no such line. `reason` is OpenSSL's `SSL_get_error` code.
pub fn tls_failure(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("failed to connect to SSL server"))?;
    let reason: Option<i32> = line
        .split("reason=")
        .nth(1)
        .and_then(|r| r.trim_end_matches(')').trim().parse().ok());
    let meaning = match reason {
        Some(1) => "the TLS protocol failed (SSL_ERROR_SSL)",
        Some(5) => {
            "the connection was refused, reset or closed during the handshake \
             (SSL_ERROR_SYSCALL): nothing listened, or the server dropped it"
        }
        Some(6) => "the server closed the TLS session during the handshake",
        _ => "OpenSSL gave no usable reason",
    };
    // OpenSSL's own words: `...:error:0A00010B:SSL routines:ssl3_get_record:wrong version
    // number:...` → `wrong version number`.
    let openssl = stderr
        .lines()
        .filter(|l| l.contains(":error:"))
        .filter_map(|l| l.split(':').nth(5))
        .map(str::trim)
        .collect::<Vec<_>>();
    let hint = if openssl.contains(&"wrong version number") {
        " (the server does not speak TLS on that port)"
    } else {
        ""
    };
    let mut out = format!(
        "{} ({meaning})",
        line.trim().trim_start_matches("httperf: ")
    );
    if !openssl.is_empty() {
        out.push_str(&format!(": {}{hint}", openssl.join("; ")));
    }
    out.push_str("; httperf 0.9 exits at the first failed handshake, so the run has no report");
    Some(out)
}

/// stderr on one line, without httperf 0.9.0's constant FD_SETSIZE warning.
fn stderr_summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(FD_SETSIZE_WARNING))
        .collect();
    if !lines.is_empty() {
        lines.join(" / ")
    } else if stderr.contains(FD_SETSIZE_WARNING) {
        "(nothing but the usual FD_SETSIZE warning)".to_owned()
    } else {
        "(empty)".to_owned()
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct HttperfOutput {
    /// The report parsed from httperf's stdout.
    pub report: Report,
    /// What httperf printed.
    pub raw: RawOutput,
    /// When httperf was started (wall clock).
    pub started_at: DateTime<Utc>,
    /// When it exited (wall clock).
    pub finished_at: DateTime<Utc>,
    /// How long it ran (monotonic clock).
    pub wall: Duration,
    /// Each client's own output, when several clients made the run together (the lab across
    /// hosts): `report` is then their merged report and `raw` their outputs one after the
    /// other. Empty for a run of one httperf.
    pub clients: Vec<(String, RawOutput)>,
}

/// The httperf program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Httperf {
    program: PathBuf,
}

impl Httperf {
    /// Finds httperf: `program` if given (a path, or a name looked up in PATH), else `httperf`
    /// in PATH. Fails with [`HttperfError::NotInstalled`] if there is no such executable.
    pub fn locate(program: Option<&Path>) -> Result<Httperf, HttperfError> {
        let wanted = program.unwrap_or(Path::new("httperf"));
        let is_path = wanted.components().count() > 1;
        let found = if is_path {
            is_executable(wanted).then(|| wanted.to_path_buf())
        } else {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(wanted))
                    .find(|p| is_executable(p))
            })
        };
        found
            .map(|program| Httperf { program })
            .ok_or_else(|| HttperfError::NotInstalled {
                program: wanted.to_path_buf(),
                given: is_path,
            })
    }

    /// httperf at `program` on another machine (a client host of the lab): not looked for
    /// here; the host checks it.
    pub fn elsewhere(program: &Path) -> Httperf {
        Httperf {
            program: program.to_owned(),
        }
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Its version (`0.9.0`), from `httperf --version`.
    ///
    /// httperf prints its version when it reads `--version` and then goes on to run a test
    /// with the other options (by default, one connection to `localhost:80`). So the option
    /// after it is a number httperf refuses (`--num-conns=x`): it prints the version, then
    /// exits 1 without opening any connection.
    pub fn version(&self) -> Result<String, HttperfError> {
        let out = Command::new(&self.program)
            .args(["--version", "--num-conns=x"])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|error| HttperfError::Spawn {
                program: self.program.clone(),
                error,
            })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        parse_version(&text).ok_or_else(|| HttperfError::Spawn {
            program: self.program.clone(),
            error: io::Error::other(format!(
                "no version in `httperf --version`: {}",
                stderr_summary(&text)
            )),
        })
    }

    /// Starts a run with the default deadline ([`default_deadline`]).
    pub fn start(&self, args: &HttperfArgs) -> Result<RunningHttperf, HttperfError> {
        self.start_with_deadline(args, default_deadline(args))
    }

    /// Starts a run that is stopped if it is still going after `deadline`.
    ///
    /// httperf gets SIGKILL if the *thread* that calls this exits before the run ends (that is
    /// how `PR_SET_PDEATHSIG` works), so start runs from a thread that outlives them.
    pub fn start_with_deadline(
        &self,
        args: &HttperfArgs,
        deadline: Duration,
    ) -> Result<RunningHttperf, HttperfError> {
        args.validate()?;
        let mut cmd = Command::new(&self.program);
        cmd.args(args.to_args())
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let opts = SpawnOptions::default()
            .stop_group()
            .parent_death(Signal::KILL);
        let started = Instant::now();
        let started_at = Utc::now();
        let mut child = Supervised::spawn_with("httperf", &mut cmd, &opts)
            .map_err(|error| {
                if error.kind() == io::ErrorKind::NotFound {
                    HttperfError::NotInstalled {
                        program: self.program.clone(),
                        given: true,
                    }
                } else {
                    HttperfError::Spawn {
                        program: self.program.clone(),
                        error,
                    }
                }
            })?
            .with_grace(Duration::from_secs(2));
        let stdout = child.child_mut().stdout.take().map(read_all);
        let stderr = child.child_mut().stderr.take().map(read_all);
        Ok(RunningHttperf {
            child,
            stdout,
            stderr,
            started,
            started_at,
            deadline,
            expected: args.issue_time(),
        })
    }

    /// Runs httperf to the end and parses its report. If `cancel` is requested meanwhile,
    /// the run is stopped and [`HttperfError::Interrupted`] returned.
    pub fn run(
        &self,
        args: &HttperfArgs,
        cancel: Option<&Shutdown>,
    ) -> Result<HttperfOutput, HttperfError> {
        self.start(args)?.wait(cancel)
    }
}

impl HttperfOutput {
    /// This run, or [`HttperfError::NothingListened`] if it got no reply because every
    /// connection it made was refused.
    pub fn refused_entirely(self) -> Result<HttperfOutput, HttperfError> {
        let r = &self.report;
        if r.total_replies == 0 && r.errors_conn_refused > 0 {
            return Err(HttperfError::NothingListened {
                refused: r.errors_conn_refused,
                connections: r.total_connections,
                output: Box::new(self.raw),
            });
        }
        Ok(self)
    }
}

/// The deadline of a run: the time to issue its connections, plus the reply timeout, plus
/// half the issue time again (at least 30 s) of slack for a loaded machine.
pub fn default_deadline(args: &HttperfArgs) -> Duration {
    let issue = args.issue_time();
    let drain = Duration::try_from_secs_f64(args.timeout.unwrap_or(60.0)).unwrap_or(Duration::MAX);
    issue
        .saturating_add(drain)
        .saturating_add((issue / 2).max(Duration::from_secs(30)))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A pipe read to its end by a thread of its own; what was read so far can be taken at any
/// time, so a pipe held open by a process that escaped the watchdog cannot block the run.
#[derive(Debug)]
struct PipeReader {
    thread: JoinHandle<()>,
    buf: Arc<Mutex<Vec<u8>>>,
}

fn read_all(mut r: impl Read + Send + 'static) -> PipeReader {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&buf);
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        // A read error ends the output; the report check catches a cut report.
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    PipeReader { thread, buf }
}

/// How long the pipes are read after httperf's group is gone (its last bytes in flight).
const PIPE_DRAIN: Duration = Duration::from_secs(2);

impl PipeReader {
    /// What was read, once the pipe reached its end or `deadline` passed.
    fn finish(self, deadline: Instant) -> String {
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        }
        let bytes = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A run in progress.
#[derive(Debug)]
pub struct RunningHttperf {
    child: Supervised,
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
    started: Instant,
    started_at: DateTime<Utc>,
    deadline: Duration,
    expected: Duration,
}

/// How often a waiting run checks its process, the deadline and the shutdown flag.
const POLL: Duration = Duration::from_millis(20);

impl RunningHttperf {
    /// httperf's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// When the run started (wall clock).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Waits for the run to end and parses its report.
    ///
    /// Past the deadline, or when `cancel` is requested, httperf gets SIGINT, a moment to
    /// exit, then SIGKILL; the result is then [`HttperfError::TimedOut`] or
    /// [`HttperfError::Interrupted`].
    pub fn wait(mut self, cancel: Option<&Shutdown>) -> Result<HttperfOutput, HttperfError> {
        enum End {
            Exited(ExitStatus),
            TimedOut,
            Interrupted,
        }
        let end = loop {
            if let Some(status) = self.child.try_status().map_err(HttperfError::Wait)? {
                // A shutdown that came as httperf exited (SIGTERM to lbbench's whole group
                // reaches httperf too): a cut-short run that must not count.
                if cancel.is_some_and(Shutdown::requested) {
                    break End::Interrupted;
                }
                break End::Exited(status);
            }
            if cancel.is_some_and(Shutdown::requested) {
                break End::Interrupted;
            }
            if self.started.elapsed() >= self.deadline {
                break End::TimedOut;
            }
            match cancel {
                Some(c) => {
                    c.sleep(POLL);
                }
                None => std::thread::sleep(POLL),
            }
        };
        if !matches!(end, End::Exited(_)) {
            // SIGINT makes httperf print its report and exit; then SIGTERM/SIGKILL, all to
            // its whole process group.
            let _ = self.child.signal_group(Signal::INT);
            let _ = self.child.wait_timeout(Duration::from_secs(3));
        }
        let wall = self.started.elapsed();
        let finished_at = Utc::now();
        // Reaps httperf and stops whatever is left of its group (a wrapper's children
        // holding the pipes).
        self.child.stop().map_err(HttperfError::Wait)?;
        let drained = Instant::now() + PIPE_DRAIN;
        let raw = RawOutput {
            stdout: self
                .stdout
                .take()
                .map(|r| r.finish(drained))
                .unwrap_or_default(),
            stderr: self
                .stderr
                .take()
                .map(|r| r.finish(drained))
                .unwrap_or_default(),
        };
        match end {
            End::Interrupted => Err(HttperfError::Interrupted {
                output: Box::new(raw),
            }),
            End::TimedOut => Err(HttperfError::TimedOut {
                after: self.deadline,
                expected: self.expected,
                output: Box::new(raw),
            }),
            End::Exited(status) if !status.success() => {
                if tls_failure(&raw.stderr).is_some() {
                    Err(HttperfError::TlsHandshake {
                        output: Box::new(raw),
                    })
                } else {
                    Err(HttperfError::Failed {
                        status,
                        output: Box::new(raw),
                    })
                }
            }
            End::Exited(_) => match parse_report(&raw.stdout) {
                Ok(report) => Ok(HttperfOutput {
                    report,
                    raw,
                    started_at: self.started_at,
                    finished_at,
                    wall,
                    clients: Vec::new(),
                }),
                Err(error) => Err(HttperfError::NoReport {
                    error,
                    output: Box::new(raw),
                }),
            },
        }
    }
}

/// Checks, before any run, that `host` resolves to an IPv4 address (httperf 0.9 resolves
/// with `gethostbyname`, IPv4 only), and returns the addresses.
pub fn resolve_server(host: &str, port: u16) -> Result<Vec<SocketAddr>, HttperfError> {
    let unresolvable = |reason: String| HttperfError::Unresolvable {
        host: host.to_owned(),
        reason,
    };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| unresolvable(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(unresolvable("no address".into()));
    }
    if !addrs.iter().any(SocketAddr::is_ipv4) {
        return Err(unresolvable(
            "it has only IPv6 addresses, and httperf 0.9 connects over IPv4 only".into(),
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_drops_the_constant_warning() {
        let s = "httperf: warning: open file limit > FD_SETSIZE; limiting max. # of open files to FD_SETSIZE\n\
                 httperf.core_addr_intern: invalid server address x\n";
        assert_eq!(
            stderr_summary(s),
            "httperf.core_addr_intern: invalid server address x"
        );
        assert_eq!(
            stderr_summary("httperf: warning: open file limit > FD_SETSIZE; limiting\n"),
            "(nothing but the usual FD_SETSIZE warning)"
        );
        assert_eq!(stderr_summary(""), "(empty)");
    }

    #[test]
    fn explains_a_failed_tls_handshake() {
        // What httperf 0.9.0 --ssl printed against a plain HTTP server and a closed port.
        let plain = "httperf: warning: open file limit > FD_SETSIZE; limiting max. # of open files to FD_SETSIZE\n\
                     httperf: failed to connect to SSL server (err=-1, reason=1)\n\
                     4070AF93217F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:350:\n";
        let msg = tls_failure(plain).unwrap();
        assert!(
            msg.starts_with("failed to connect to SSL server (err=-1, reason=1)"),
            "{msg}"
        );
        assert!(
            msg.contains("wrong version number (the server does not speak TLS"),
            "{msg}"
        );
        let closed = "httperf: failed to connect to SSL server (err=-1, reason=5)\n";
        assert!(
            tls_failure(closed)
                .unwrap()
                .contains("refused, reset or closed")
        );
        assert_eq!(tls_failure("httperf: connection refused\n"), None);
    }

    #[test]
    fn reads_the_version_line() {
        assert_eq!(
            parse_version("httperf: httperf-0.9.0 compiled without DEBUG without TIME_SYSCALLS.\n"),
            Some("0.9.0".into())
        );
        assert_eq!(
            parse_version("httperf: warning: x\nhttperf: httperf-0.9.1.\n").as_deref(),
            Some("0.9.1")
        );
        assert_eq!(parse_version("httperf: illegal number"), None);
    }

    #[test]
    fn deadlines_leave_room() {
        let mut a = HttperfArgs::new("h", 100.0, 6000);
        a.timeout = Some(5.0);
        assert_eq!(default_deadline(&a), Duration::from_secs(60 + 5 + 30));
        a.num_conns = 200_000; // 2000 s
        assert_eq!(default_deadline(&a), Duration::from_secs(2000 + 5 + 1000));
    }

    #[test]
    fn locate_finds_programs_in_path_and_refuses_missing_ones() {
        let sh = Httperf::locate(Some(Path::new("sh"))).unwrap();
        assert!(sh.program().is_absolute());
        let err = Httperf::locate(Some(Path::new("no-such-httperf-here"))).unwrap_err();
        assert!(err.is_usage());
        let msg = err.to_string();
        assert!(
            msg.contains("not installed") && msg.contains("apt-get install httperf"),
            "{msg}"
        );
        let err = Httperf::locate(Some(Path::new("/nonexistent/httperf"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/httperf"), "{err}");
        // A directory or a non-executable file is not a program.
        let err = Httperf::locate(Some(Path::new("/etc/passwd"))).unwrap_err();
        assert!(matches!(
            err,
            HttperfError::NotInstalled { given: true, .. }
        ));
    }

    #[test]
    fn loopback_resolves_and_bad_names_do_not() {
        assert!(!resolve_server("127.0.0.1", 80).unwrap().is_empty());
        assert!(!resolve_server("localhost", 80).unwrap().is_empty());
        // A label longer than 63 bytes fails inside the resolver: no DNS query leaves the host.
        let name = format!("{}.invalid", "x".repeat(70));
        let err = resolve_server(&name, 80).unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains(&name), "{err}");
        let err = resolve_server("::1", 80).unwrap_err();
        assert!(err.to_string().contains("IPv4"), "{err}");
    }
}
