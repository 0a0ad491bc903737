//! How the lab reaches its hosts: the system's `ssh`, so the user's config, agent and
//! known_hosts apply and nothing but `lbbench` is needed on the hosts.
//!
//! Each host gets one control master (`ssh -M -N`, a child of lbbench in its own process
//! group), started once: it authenticates, and every later command to the host is a session
//! multiplexed over its connection (`-o ControlPath`), which costs no new handshake. Every
//! `ssh` runs with `BatchMode=yes` (a host that would ask for a password or a host key fails
//! at once with ssh's own message instead of waiting for a prompt nobody sees), a connect
//! timeout, and keep-alives, so a host that goes silent is lost within
//! `ServerAliveInterval × ServerAliveCountMax` (15 s) rather than never.
//!
//! ssh hands a remote command to the remote user's shell as one string; the words are
//! joined with [`common::process::join_words`], which quotes each so that any value (spaces,
//! quotes, `$`, `;`, newlines) arrives as it was. The remote shell must be a POSIX shell (sh,
//! bash, dash, zsh; not csh or fish).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Shutdown;
use common::process::{QuoteError, Supervised, join_words};

use super::file::{Host, SshSettings};
use crate::lab::{log_tail, spawn_options};

/// The keep-alive: a silent host is lost after `ServerAliveCountMax` unanswered probes,
/// `ServerAliveInterval` seconds apart.
const ALIVE_INTERVAL_S: u32 = 5;
const ALIVE_COUNT: u32 = 3;

/// Why a host cannot be reached or a command not run there.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `ssh` itself could not be started.
    #[error("cannot run ssh: {0} (install openssh-client)")]
    Spawn(std::io::Error),
    /// The connection (or its authentication) failed; ssh's own message.
    #[error("cannot connect to {host} ({destination}): {detail}")]
    Connect {
        host: String,
        /// `user@host:port`.
        destination: String,
        /// What ssh said.
        detail: String,
    },
    /// A command to the host took too long.
    #[error("{host} ({destination}): {what} took more than {}s", after.as_secs())]
    Timeout {
        host: String,
        /// `user@host:port`.
        destination: String,
        /// What was being done.
        what: String,
        /// How long it was given.
        after: Duration,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A word that no shell can carry.
    #[error(transparent)]
    Quote(#[from] QuoteError),
}

/// The `ssh` command lines for one host (pure: no process is started).
#[derive(Debug, Clone, PartialEq)]
pub struct SshCommand {
    host: Host,
    settings: SshSettings,
    control_path: PathBuf,
}

impl SshCommand {
    /// The commands for `host`, with its control socket in `control_dir`.
    pub fn new(host: &Host, settings: &SshSettings, control_dir: &Path) -> SshCommand {
        SshCommand {
            host: host.clone(),
            settings: settings.clone(),
            control_path: control_dir.join(&host.name),
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The control master's socket.
    pub fn control_path(&self) -> &Path {
        &self.control_path
    }

    /// The options every `ssh` to this host gets.
    pub fn options(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(c) = &self.settings.config {
            a.push("-F".to_owned());
            a.push(c.display().to_string());
        }
        let mut o = |s: String| {
            a.push("-o".to_owned());
            a.push(s);
        };
        o("BatchMode=yes".into());
        o(format!(
            "ConnectTimeout={}",
            self.settings.connect_timeout.as_secs().max(1)
        ));
        o(format!("ServerAliveInterval={ALIVE_INTERVAL_S}"));
        o(format!("ServerAliveCountMax={ALIVE_COUNT}"));
        o(format!("ControlPath={}", self.control_path.display()));
        o("LogLevel=ERROR".into());
        if let Some(k) = &self.settings.known_hosts {
            o(format!("UserKnownHostsFile={}", k.display()));
        }
        for extra in &self.settings.options {
            o(extra.clone());
        }
        if let Some(p) = self.host.port {
            a.push("-p".to_owned());
            a.push(p.to_string());
        }
        if let Some(u) = &self.host.user {
            a.push("-l".to_owned());
            a.push(u.clone());
        }
        if let Some(i) = &self.host.identity {
            a.push("-i".to_owned());
            a.push(i.display().to_string());
        }
        // No terminal: a remote command's output is data, and Ctrl-C is lbbench's to handle.
        a.push("-T".to_owned());
        a
    }

    /// The control master: authenticates, then holds the connection until it is stopped.
    pub fn master_args(&self) -> Vec<String> {
        let mut a = self.options();
        a.extend(["-M", "-N", "-o", "ControlPersist=no", "--"].map(String::from));
        a.push(self.host.ssh_host.clone());
        a
    }

    /// A session that runs `words` on the host (through the master, if it is up).
    pub fn session_args<S: AsRef<str>>(&self, words: &[S]) -> Result<Vec<String>, QuoteError> {
        let mut a = self.options();
        a.extend(["-o", "ControlMaster=no", "--"].map(String::from));
        a.push(self.host.ssh_host.clone());
        a.push(join_words(words)?);
        Ok(a)
    }
}

/// An open connection to one host: its control master, and sessions over it.
#[derive(Debug)]
pub struct SshConnection {
    cmd: SshCommand,
    master: Option<Supervised>,
    log: PathBuf,
}

impl SshConnection {
    /// Starts the host's control master and waits until it is connected and authenticated
    /// (its control socket appears), at most the connect timeout plus 10 s. ssh's messages go
    /// to `log`. An error quotes what ssh said.
    pub fn open(
        cmd: SshCommand,
        log: &Path,
        shutdown: &Shutdown,
    ) -> Result<SshConnection, SshError> {
        let mut conn = SshConnection::start(cmd, log)?;
        conn.wait_ready(shutdown)?;
        Ok(conn)
    }

    /// Starts the control master without waiting for it (see [`SshConnection::wait_ready`]),
    /// so that several hosts connect at once. Call it from a thread that outlives the
    /// connection: the master gets SIGTERM when that thread ends.
    pub fn start(cmd: SshCommand, log: &Path) -> Result<SshConnection, SshError> {
        let file = File::create(log).map_err(SshError::Spawn)?;
        let mut c = Command::new("ssh");
        c.args(cmd.master_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let master = Supervised::spawn_with(
            &format!("ssh to {}", cmd.host.name),
            &mut c,
            &spawn_options(),
        )
        .map_err(SshError::Spawn)?
        .with_grace(Duration::from_secs(2));
        Ok(SshConnection {
            cmd,
            master: Some(master),
            log: log.to_owned(),
        })
    }

    /// Waits until the master is connected and authenticated (its control socket appears),
    /// at most the connect timeout plus 10 s. An error quotes what ssh said.
    pub fn wait_ready(&mut self, shutdown: &Shutdown) -> Result<(), SshError> {
        let wait = self.cmd.settings.connect_timeout + Duration::from_secs(10);
        let deadline = Instant::now() + wait;
        loop {
            if self.cmd.control_path.exists() {
                return Ok(());
            }
            if let Some(m) = self.master.as_mut()
                && let Ok(Some(status)) = m.try_status()
            {
                return Err(self.connect_error(format!("ssh exited ({status})")));
            }
            if shutdown.requested() {
                return Err(SshError::Interrupted);
            }
            if Instant::now() >= deadline {
                return Err(SshError::Timeout {
                    host: self.cmd.host.name.clone(),
                    destination: self.cmd.host.destination(),
                    what: "connecting".into(),
                    after: wait,
                });
            }
            shutdown.sleep(Duration::from_millis(20));
        }
    }

    fn connect_error(&self, fallback: String) -> SshError {
        let said = log_tail(&self.log, 0, 3);
        SshError::Connect {
            host: self.cmd.host.name.clone(),
            destination: self.cmd.host.destination(),
            detail: if said.starts_with("(nothing in") {
                fallback
            } else {
                said
            },
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.cmd.host
    }

    /// What ssh said on this connection (its log's last lines).
    pub fn said(&self) -> String {
        log_tail(&self.log, 0, 3)
    }

    /// Whether the control master still runs (the connection is up).
    pub fn is_up(&mut self) -> bool {
        self.master
            .as_mut()
            .is_some_and(|m| matches!(m.try_status(), Ok(None)))
    }

    /// A `Command` that runs `words` on the host, through the master. The caller sets its
    /// stdio and starts it.
    pub fn session<S: AsRef<str>>(&self, words: &[S]) -> Result<Command, SshError> {
        let mut c = Command::new("ssh");
        c.args(self.cmd.session_args(words)?);
        Ok(c)
    }

    /// Runs `words` on the host and collects its output, at most `timeout`.
    pub fn run<S: AsRef<str>>(&self, words: &[S], timeout: Duration) -> Result<Output, SshError> {
        let mut c = self.session(words)?;
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut p = Supervised::spawn_with("ssh", &mut c, &spawn_options())
            .map_err(SshError::Spawn)?
            .with_grace(Duration::from_secs(1));
        let child = p.child_mut();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let read = |r: Option<std::process::ChildStdout>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let _ = std::io::Read::read_to_end(&mut r, &mut v);
                }
                v
            })
        };
        let out_t = read(out);
        let err_t = std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = err {
                let _ = std::io::Read::read_to_end(&mut r, &mut v);
            }
            v
        });
        match p.wait_timeout(timeout) {
            Ok(Some(status)) => Ok(Output {
                status,
                stdout: out_t.join().unwrap_or_default(),
                stderr: err_t.join().unwrap_or_default(),
            }),
            _ => {
                let _ = p.stop();
                Err(SshError::Timeout {
                    host: self.cmd.host.name.clone(),
                    destination: self.cmd.host.destination(),
                    what: format!(
                        "`{}`",
                        words
                            .iter()
                            .map(AsRef::as_ref)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    after: timeout,
                })
            }
        }
    }

    /// Stops the control master, which ends every session still open over it.
    pub fn close(&mut self) {
        if let Some(mut m) = self.master.take() {
            let _ = m.stop();
        }
        let _ = std::fs::remove_file(&self.cmd.control_path);
    }
}

impl Drop for SshConnection {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::hosts::file::Role;

    fn host() -> Host {
        Host {
            name: "client-1".into(),
            role: Role::Client,
            ssh_host: "10.0.0.11".into(),
            port: Some(2201),
            user: Some("bench".into()),
            identity: Some("/keys/id".into()),
            address: "10.0.0.11".parse().unwrap(),
            lbbench: "lbbench".into(),
        }
    }

    #[test]
    fn every_ssh_is_batch_with_a_timeout_and_the_host_s_master() {
        let settings = SshSettings {
            known_hosts: Some("/lab/known".into()),
            options: vec!["Compression=no".into()],
            ..SshSettings::default()
        };
        let c = SshCommand::new(&host(), &settings, Path::new("/tmp/cm"));
        let opts = c.options().join(" ");
        for want in [
            "-o BatchMode=yes",
            "-o ConnectTimeout=10",
            "-o ServerAliveInterval=5",
            "-o ControlPath=/tmp/cm/client-1",
            "-o UserKnownHostsFile=/lab/known",
            "-o Compression=no",
            "-p 2201",
            "-l bench",
            "-i /keys/id",
            "-T",
        ] {
            assert!(opts.contains(want), "{opts} lacks {want}");
        }
        let m = c.master_args();
        assert_eq!(
            m[m.len() - 6..],
            ["-M", "-N", "-o", "ControlPersist=no", "--", "10.0.0.11"]
        );
    }

    #[test]
    fn a_session_s_words_are_one_quoted_argument_after_the_destination() {
        let c = SshCommand::new(&host(), &SshSettings::default(), Path::new("/tmp/cm"));
        let words = ["lbbench", "agent", "it's $HOME; rm -rf /"];
        let a = c.session_args(&words).unwrap();
        let n = a.len();
        assert_eq!(a[n - 3..n - 1], ["--", "10.0.0.11"]);
        assert_eq!(common::process::split_words(&a[n - 1]).unwrap(), words);
        assert!(c.session_args(&["a\0b"]).is_err());
    }
}
