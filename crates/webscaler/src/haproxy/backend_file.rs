//! The generated backend file: the backend section with one `server` line per server,
//! rendered from an askama template (`templates/haproxy-backend.cfg`, the lab report's HAProxy configuration template, its listing 1.8)
//! into its own file that HAProxy loads with an extra `-f`.
//!
//! It is installed atomically and only if HAProxy accepts it: write a temp file next to it,
//! run `haproxy -c` over the whole set of config files with the temp file in its place, then
//! `rename(2)`. A file that fails the check is never installed; the error names the file and
//! quotes HAProxy's message, and the old file stays as it was. Writers take an exclusive
//! `flock` on a lock file next to it, so an operator's command and a running scaler do not
//! interleave.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use askama::Template;
use common::lock::{FileLock, LockMode};

use crate::balancer::{BackendName, InvalidValue, ServerAddr, ServerName};

/// The options spelled out on every server line and `add server` (dynamic servers do not
/// inherit `default-server`, so nothing is left to it): the health check, and how fast idle
/// pooled connections are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Time between two checks (`inter`).
    pub inter: Duration,
    /// Consecutive passed checks to go up (`rise`).
    pub rise: u32,
    /// Consecutive failed checks to go down (`fall`).
    pub fall: u32,
    /// `pool-purge-delay`: HAProxy keeps idle server connections in a pool and closes them
    /// over about three of these periods; `del server` waits for them. HAProxy's default is
    /// 5 s (a removal then waits about 15 s after the last request); 1 s makes it about 3 s.
    pub pool_purge_delay: Duration,
}

impl Default for ServerOptions {
    /// `check inter 1s rise 2 fall 3 pool-purge-delay 1s`: HAProxy's rise and fall, and a
    /// 1 s interval so a new server is ready about 2 s after it answers.
    fn default() -> Self {
        ServerOptions {
            inter: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            pool_purge_delay: Duration::from_secs(1),
        }
    }
}

impl ServerOptions {
    /// Checks the values HAProxy would refuse (`inter` must be 1 ms to about 24.8 days,
    /// `pool-purge-delay` at most that; `rise` and `fall` at least 1).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let bad = |what, value: String, reason: &str| InvalidValue {
            what,
            value,
            reason: reason.to_owned(),
        };
        let ms = self.inter.as_millis();
        if ms == 0 || ms > i32::MAX as u128 {
            return Err(bad(
                "check interval",
                format!("{:?}", self.inter),
                "must be from 1 ms to 2147483647 ms",
            ));
        }
        if self.pool_purge_delay.as_millis() > i32::MAX as u128 {
            return Err(bad(
                "pool purge delay",
                format!("{:?}", self.pool_purge_delay),
                "must be at most 2147483647 ms",
            ));
        }
        if self.rise == 0 {
            return Err(bad("check rise", "0".into(), "must be at least 1"));
        }
        if self.fall == 0 {
            return Err(bad("check fall", "0".into(), "must be at least 1"));
        }
        Ok(())
    }

    /// The keywords for a `server` line or `add server`:
    /// `check inter 1000ms rise 2 fall 3 pool-purge-delay 1000ms`.
    pub fn keywords(&self) -> String {
        format!(
            "check inter {}ms rise {} fall {} pool-purge-delay {}ms",
            self.inter.as_millis(),
            self.rise,
            self.fall,
            self.pool_purge_delay.as_millis()
        )
    }
}

/// One server of the backend file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackendServer {
    pub name: ServerName,
    pub addr: ServerAddr,
}

#[derive(Template)]
#[template(path = "haproxy-backend.cfg", escape = "none")]
struct BackendTemplate<'a> {
    backend: &'a BackendName,
    servers: &'a [BackendServer],
    check: String,
}

/// Renders the backend section. Every value is a validated name, address or number, so
/// nothing can break out of its line.
pub fn render_backend(
    backend: &BackendName,
    servers: &[BackendServer],
    check: &ServerOptions,
) -> String {
    let t = BackendTemplate {
        backend,
        servers,
        check: check.keywords(),
    };
    // Rendering only fails on a failing Display impl; ours cannot fail.
    let mut out = t.render().unwrap_or_default();
    out.push('\n');
    out
}

/// A failure to write or install the backend file. The file is named in every message.
#[derive(Debug, thiserror::Error)]
pub enum BackendFileError {
    /// A file operation failed.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `haproxy -c` could not be run.
    #[error("cannot run {haproxy} -c to check {path}: {source}")]
    Check {
        /// The backend file.
        path: PathBuf,
        /// The haproxy binary.
        haproxy: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// HAProxy refused the new file; the old one was kept.
    #[error("HAProxy rejected the new {path} (haproxy -c; the old file is kept): \"{message}\"")]
    Rejected {
        /// The backend file.
        path: PathBuf,
        /// HAProxy's own words.
        message: String,
    },
}

/// What [`BackendFile::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The file already had this content: nothing was written or checked.
    Unchanged,
    /// The new content passed `haproxy -c` and replaced the file.
    Written,
}

/// Where the backend file lives and how HAProxy loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendFile {
    path: PathBuf,
    config_files: Vec<PathBuf>,
    haproxy: PathBuf,
}

impl BackendFile {
    /// The backend file at `path`, checked on its own until [`BackendFile::with_config_files`]
    /// says what else HAProxy loads.
    pub fn new(path: impl Into<PathBuf>) -> BackendFile {
        BackendFile {
            path: path.into(),
            config_files: Vec::new(),
            haproxy: PathBuf::from("haproxy"),
        }
    }

    /// Every `-f` HAProxy is started with, in order (files or directories). The backend
    /// file is checked in its place in that list, or after all of them if it is not in it.
    pub fn with_config_files(mut self, files: Vec<PathBuf>) -> BackendFile {
        self.config_files = files;
        self
    }

    /// The haproxy binary used for `haproxy -c` (default: `haproxy` from `PATH`).
    pub fn with_haproxy(mut self, haproxy: impl Into<PathBuf>) -> BackendFile {
        self.haproxy = haproxy.into();
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, action: &'static str) -> impl Fn(io::Error) -> BackendFileError + '_ {
        move |source| BackendFileError::Io {
            path: self.path.clone(),
            action,
            source,
        }
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backend".to_owned());
        // A leading dot and no `.cfg` ending: `-f confdir` never loads these.
        self.path.with_file_name(format!(".{name}.{suffix}"))
    }

    /// Writes `content` to the file if `haproxy -c` accepts it, atomically. Content equal
    /// to the current file is left alone.
    pub fn install(&self, content: &str) -> Result<Installed, BackendFileError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(self.io_err("create its directory"))?;
        }
        let _lock = FileLock::wait(&self.sibling("lock"), LockMode::Exclusive)
            .map_err(self.io_err("lock"))?;
        match fs::read_to_string(&self.path) {
            Ok(old) if old == content => return Ok(Installed::Unchanged),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_err("read")(e)),
        }
        self.write_checked(content).map(|()| Installed::Written)
    }

    /// Writes `content` beside the file, checks the whole configuration with it in the file's
    /// place, and only then installs it; a rejected candidate is removed.
    fn write_checked(&self, content: &str) -> Result<(), BackendFileError> {
        let mut f = common::atomic::AtomicFile::create(&self.path, 0o644)
            .map_err(self.io_err("write a temp file"))?;
        f.file()
            .write_all(content.as_bytes())
            .map_err(self.io_err("write a temp file"))?;
        self.check(f.tmp_path())?;
        f.commit().map_err(self.io_err("install the checked file"))
    }

    /// The `-f` arguments with `candidate` in the backend file's place.
    fn check_args(&self, candidate: &Path) -> Vec<PathBuf> {
        let target = normalize(&self.path);
        let mut out = Vec::new();
        let mut placed = false;
        for entry in &self.config_files {
            if entry.is_dir() {
                // HAProxy loads a directory's `*.cfg` files in lexical order.
                let mut files: Vec<PathBuf> = fs::read_dir(entry)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "cfg") && p.is_file())
                    .collect();
                let dir = normalize(entry);
                if target.parent() == Some(dir.as_path())
                    && target.extension().is_some_and(|x| x == "cfg")
                    && !files.iter().any(|f| normalize(f) == target)
                {
                    files.push(self.path.clone());
                }
                files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
                for f in files {
                    if normalize(&f) == target {
                        out.push(candidate.to_path_buf());
                        placed = true;
                    } else {
                        out.push(f);
                    }
                }
            } else if normalize(entry) == target {
                out.push(candidate.to_path_buf());
                placed = true;
            } else {
                out.push(entry.clone());
            }
        }
        if !placed {
            out.push(candidate.to_path_buf());
        }
        out
    }

    /// Runs `haproxy -c` with `candidate` in the backend file's place.
    fn check(&self, candidate: &Path) -> Result<(), BackendFileError> {
        let mut cmd = Command::new(&self.haproxy);
        cmd.arg("-c");
        for f in self.check_args(candidate) {
            cmd.arg("-f").arg(f);
        }
        let out = cmd.output().map_err(|source| BackendFileError::Check {
            path: self.path.clone(),
            haproxy: self.haproxy.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = haproxy_alerts(&stderr).replace(
            &candidate.display().to_string(),
            &self.path.display().to_string(),
        );
        Err(BackendFileError::Rejected {
            path: self.path.clone(),
            message: if message.is_empty() {
                format!("haproxy -c exited with {}", out.status)
            } else {
                message
            },
        })
    }
}

/// An absolute, symlink-free form of `p` when it (or its directory) exists.
fn normalize(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| p.to_path_buf())
        }
        _ => p.to_path_buf(),
    }
}

/// HAProxy's `[ALERT]` lines without their `(pid) : ` prefix and without the generic
/// summary lines, joined with ` | `; the last lines of stderr if there is no alert.
pub fn haproxy_alerts(stderr: &str) -> String {
    let alerts: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[ALERT]"))
        .map(|l| {
            let l = l.trim_start();
            // `(12345) : config : ...`
            match l.strip_prefix('(').and_then(|r| r.split_once(") : ")) {
                Some((_, rest)) => rest.trim(),
                None => l.trim(),
            }
        })
        .collect();
    let specific: Vec<&str> = alerts
        .iter()
        .copied()
        .filter(|a| {
            !a.contains("Fatal errors found in configuration")
                && !a.contains("Error(s) found in configuration file")
        })
        .collect();
    let chosen = if specific.is_empty() {
        alerts
    } else {
        specific
    };
    if chosen.is_empty() {
        let tail: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return tail[tail.len().saturating_sub(3)..].join(" | ");
    }
    chosen.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, addr: &str) -> BackendServer {
        BackendServer {
            name: ServerName::new(name).unwrap(),
            addr: ServerAddr::new(addr).unwrap(),
        }
    }

    #[test]
    fn renders_the_seed_backend_with_one_line_per_server() {
        let text = render_backend(
            &BackendName::default(),
            &[
                server("node-1", "192.0.2.1:80"),
                server("node-2", "[2001:db8::2]:8080"),
            ],
            &ServerOptions::default(),
        );
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "backend nodes",
                "    balance roundrobin",
                "    option httpchk GET /",
                r"    http-check expect string It\ works!",
                "    server node-1 192.0.2.1:80 check inter 1000ms rise 2 fall 3 pool-purge-delay 1000ms",
                "    server node-2 [2001:db8::2]:8080 check inter 1000ms rise 2 fall 3 pool-purge-delay 1000ms",
            ]
        );
        assert!(text.ends_with("pool-purge-delay 1000ms\n"));
        let empty = render_backend(&BackendName::default(), &[], &ServerOptions::default());
        assert!(empty.ends_with("It\\ works!\n"), "{empty}");
    }

    #[test]
    fn server_options_are_validated() {
        assert!(ServerOptions::default().validate().is_ok());
        for bad in [
            ServerOptions {
                inter: Duration::ZERO,
                ..Default::default()
            },
            ServerOptions {
                inter: Duration::from_secs(100_000_000),
                ..Default::default()
            },
            ServerOptions {
                rise: 0,
                ..Default::default()
            },
            ServerOptions {
                fall: 0,
                ..Default::default()
            },
            ServerOptions {
                pool_purge_delay: Duration::from_secs(100_000_000),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alerts_are_quoted_without_noise() {
        let stderr = "[NOTICE]   (6905) : haproxy version is 2.6.12-1+deb12u4\n\
[NOTICE]   (6905) : path to executable is /usr/sbin/haproxy\n\
[ALERT]    (6905) : config : [bad2.cfg:2] : 'server nodes/node-1' : unknown keyword 'chek'; did you mean 'check' maybe ?\n\
[ALERT]    (6905) : config : Error(s) found in configuration file : bad2.cfg\n\
[ALERT]    (6905) : config : Fatal errors found in configuration.\n";
        assert_eq!(
            haproxy_alerts(stderr),
            "config : [bad2.cfg:2] : 'server nodes/node-1' : unknown keyword 'chek'; did you mean 'check' maybe ?"
        );
        assert_eq!(
            haproxy_alerts("[ALERT] (1) : config : Fatal errors found in configuration.\n"),
            "config : Fatal errors found in configuration."
        );
        assert_eq!(haproxy_alerts("a\nb\nc\nd\n"), "b | c | d");
    }

    #[test]
    fn the_candidate_takes_the_files_place_in_the_load_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("00-main.cfg"), "").unwrap();
        fs::write(d.join("99-zz.cfg"), "").unwrap();
        fs::write(d.join("README.txt"), "").unwrap();
        let cand = d.join(".50-backends.cfg.tmp-1");
        // As a file in the list.
        let f = BackendFile::new(d.join("50-backends.cfg"))
            .with_config_files(vec![d.join("00-main.cfg"), d.join("50-backends.cfg")]);
        assert_eq!(f.check_args(&cand), [d.join("00-main.cfg"), cand.clone()]);
        // Not in the list: appended.
        let f = BackendFile::new(d.join("50-backends.cfg"))
            .with_config_files(vec![d.join("00-main.cfg")]);
        assert_eq!(f.check_args(&cand), [d.join("00-main.cfg"), cand.clone()]);
        // Inside a directory given with -f, before it exists: in lexical place.
        let f =
            BackendFile::new(d.join("50-backends.cfg")).with_config_files(vec![d.to_path_buf()]);
        assert_eq!(
            f.check_args(&cand),
            [d.join("00-main.cfg"), cand.clone(), d.join("99-zz.cfg")]
        );
    }
}
