//! The client for HAProxy's CLIs: the runtime API (`stats socket ... level admin`) and the
//! master CLI (`haproxy -W -S path`), on a Unix socket (a path) or over TCP
//! (`ipv4@ADDR:PORT`, `ipv6@[ADDR]:PORT`, as HAProxy spells `stats socket ipv4@...`: how a
//! webscaler on one host drives the HAProxy of another).
//!
//! One connection per command: connect (with a timeout), send the command and a newline,
//! half-close the write side, read to EOF (with a timeout on each read and on the whole
//! reply). The worker socket closes after one command by itself; the master CLI waits for
//! more input until the client half-closes, which is why the half-close is always done.
//! Every error names the socket path.

use std::io::{self, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// The lab report's admin socket (`haconn.py`).
pub const DEFAULT_ADMIN_SOCKET: &str = "/var/run/haproxy/admin.sock";

/// Default time allowed to connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time allowed for a whole reply.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Which CLI a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// A worker's `stats socket`: the runtime API.
    Admin,
    /// The master CLI of a master-worker HAProxy (`-S`): `show proc`, `reload`, and `@1 …`
    /// to reach the first worker's runtime API.
    Master,
}

/// A failure talking to a socket. The message always starts with the socket path.
#[derive(Debug, thiserror::Error)]
#[error("HAProxy socket {path}: {kind}")]
pub struct SocketError {
    pub path: PathBuf,
    /// What went wrong.
    pub kind: SocketErrorKind,
}

/// What went wrong on a socket.
#[derive(Debug, thiserror::Error)]
pub enum SocketErrorKind {
    /// Connecting failed (no such file, refused, permission denied, ...).
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// The connection did not complete in time.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// Sending the command failed.
    #[error("cannot send {command:?}: {source}")]
    Send {
        command: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the reply failed.
    #[error("cannot read the reply to {command:?}: {source}")]
    Read {
        command: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The reply did not end in time.
    #[error("no complete reply to {command:?} within {timeout:?}")]
    ReadTimeout {
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// The command held a byte that would split it into several commands.
    #[error("refusing to send {0:?}: commands must be one line without ';'")]
    UnsafeCommand(String),
}

/// A HAProxy CLI socket with its timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    path: PathBuf,
    kind: SocketKind,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Socket {
    /// A worker's admin socket (the runtime API).
    pub fn admin(path: impl Into<PathBuf>) -> Socket {
        Socket::new(path, SocketKind::Admin)
    }

    /// A master CLI socket.
    pub fn master(path: impl Into<PathBuf>) -> Socket {
        Socket::new(path, SocketKind::Master)
    }

    fn new(path: impl Into<PathBuf>, kind: SocketKind) -> Socket {
        Socket {
            path: path.into(),
            kind,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Sets the connect and read timeouts.
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Socket {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// A read timeout of `t`, and a connect timeout of `t` but at most 5 s (a local socket
    /// that does not accept within seconds is not coming back).
    pub fn with_timeout(self, t: Duration) -> Socket {
        self.with_timeouts(t.min(Duration::from_secs(5)), t)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which CLI it speaks.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    fn err(&self, kind: SocketErrorKind) -> SocketError {
        SocketError {
            path: self.path.clone(),
            kind,
        }
    }

    /// Sends one command and returns the whole reply.
    ///
    /// The command must be a single line without `;`; on a master socket it goes to the
    /// master itself (prefix it with `@1 ` to reach the worker, see [`Socket::worker_command`]).
    /// On a master socket, a refused connection (the master re-executes itself during a
    /// reload, for about 0.1 s) is retried until the connect timeout runs out; a command is
    /// never sent twice.
    pub fn command(&self, command: &str) -> Result<String, SocketError> {
        if command.contains(['\n', '\r', '\0', ';']) {
            return Err(self.err(SocketErrorKind::UnsafeCommand(command.to_owned())));
        }
        match self.kind {
            SocketKind::Admin => self.exchange(command),
            SocketKind::Master => {
                let deadline = Instant::now() + self.connect_timeout;
                loop {
                    match self.exchange(command) {
                        Err(e) if is_transient(&e) && Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        r => return r,
                    }
                }
            }
        }
    }

    /// Sends a runtime-API command to the worker: as is on an admin socket, as `@1 command`
    /// on a master socket.
    pub fn worker_command(&self, command: &str) -> Result<String, SocketError> {
        match self.kind {
            SocketKind::Admin => self.command(command),
            SocketKind::Master => self.command(&format!("@1 {command}")),
        }
    }

    fn exchange(&self, command: &str) -> Result<String, SocketError> {
        let mut stream = self.connect()?;
        let send = |e| {
            self.err(SocketErrorKind::Send {
                command: command.to_owned(),
                source: e,
            })
        };
        stream
            .set_write_timeout(Some(self.read_timeout))
            .map_err(send)?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(send)?;
        // The master CLI keeps reading commands until it sees EOF.
        stream.shutdown(NetShutdown::Write).map_err(send)?;
        self.read_reply(&mut stream, command)
    }

    fn read_reply(&self, stream: &mut Stream, command: &str) -> Result<String, SocketError> {
        let deadline = Instant::now() + self.read_timeout;
        let timeout = || {
            self.err(SocketErrorKind::ReadTimeout {
                command: command.to_owned(),
                timeout: self.read_timeout,
            })
        };
        let mut reply = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout());
            }
            stream.set_read_timeout(Some(left)).map_err(|e| {
                self.err(SocketErrorKind::Read {
                    command: command.to_owned(),
                    source: e,
                })
            })?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timeout());
                }
                Err(e) => {
                    return Err(self.err(SocketErrorKind::Read {
                        command: command.to_owned(),
                        source: e,
                    }));
                }
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// The TCP address, when the socket is `ipv4@ADDR:PORT` or `ipv6@[ADDR]:PORT`.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        tcp_addr(&self.path)
    }

    /// Connects with a timeout: a non-blocking `connect(2)`, retried while the listen queue
    /// is full (`EAGAIN`), then switched back to blocking mode.
    fn connect(&self) -> Result<Stream, SocketError> {
        let connect_err = |e: io::Error| self.err(SocketErrorKind::Connect(e));
        if let Some(addr) = self.tcp_addr() {
            return match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => Ok(Stream::Tcp(s)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    Err(self.err(SocketErrorKind::ConnectTimeout(self.connect_timeout)))
                }
                Err(e) => Err(connect_err(e)),
            };
        }
        let addr = SocketAddrUnix::new(self.path.as_path()).map_err(|e| {
            connect_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a usable socket path ({e})"),
            ))
        })?;
        let deadline = Instant::now() + self.connect_timeout;
        loop {
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| connect_err(e.into()))?;
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => {
                    let stream = UnixStream::from(fd);
                    stream.set_nonblocking(false).map_err(&connect_err)?;
                    return Ok(Stream::Unix(stream));
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => {
                    if Instant::now() >= deadline {
                        return Err(self.err(SocketErrorKind::ConnectTimeout(self.connect_timeout)));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(connect_err(e.into())),
            }
        }
    }
}

/// `ipv4@ADDR:PORT` or `ipv6@[ADDR]:PORT` (HAProxy's prefixes) as a TCP address.
fn tcp_addr(path: &Path) -> Option<SocketAddr> {
    let s = path.to_str()?;
    let addr = s
        .strip_prefix("ipv4@")
        .or_else(|| s.strip_prefix("ipv6@"))?;
    addr.parse().ok()
}

/// A connection to a CLI: a Unix socket or TCP.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }

    fn shutdown(&self, how: NetShutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// Errors a master socket gives while the master re-executes itself during a reload. Only
/// connection failures count: then the command was never sent, so it is safe to send again.
fn is_transient(e: &SocketError) -> bool {
    match &e.kind {
        SocketErrorKind::Connect(io) => matches!(
            io.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn every_error_names_the_socket() {
        let s = Socket::admin("/nonexistent/dir/admin.sock");
        let e = s.command("show info").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HAProxy socket /nonexistent/dir/admin.sock: cannot connect"),
            "{e}"
        );
        let e = s.command("show info; shutdown sessions").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dir/admin.sock"), "{e}");
        assert!(matches!(e.kind, SocketErrorKind::UnsafeCommand(_)));
        let long = format!("/tmp/{}", "x".repeat(200));
        let e = Socket::admin(&long).command("show info").unwrap_err();
        assert!(e.to_string().contains(&long), "{e}");
    }

    #[test]
    fn sends_one_line_half_closes_and_reads_to_eof() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            // Reads to EOF: only works if the client half-closes, like the master CLI.
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            c.write_all(format!("you said {got:?}\n\n").as_bytes())
                .unwrap();
        });
        let reply = Socket::master(&path).command("show proc").unwrap();
        assert_eq!(reply, "you said \"show proc\\n\"\n\n");
        h.join().unwrap();
    }

    #[test]
    fn tcp_sockets_are_spelled_as_in_haproxy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            c.write_all(format!("tcp {got:?}").as_bytes()).unwrap();
        });
        let s = Socket::admin(format!("ipv4@{addr}"));
        assert_eq!(s.tcp_addr(), Some(addr));
        assert_eq!(s.command("show info").unwrap(), "tcp \"show info\\n\"");
        h.join().unwrap();
        assert_eq!(
            Socket::admin("ipv6@[::1]:9999").tcp_addr(),
            Some("[::1]:9999".parse().unwrap())
        );
        assert_eq!(Socket::admin("/run/ipv4@x").tcp_addr(), None);
        // Nothing listens: the error names the address.
        let e = Socket::admin(format!("ipv4@{addr}"))
            .command("show info")
            .unwrap_err();
        assert!(e.to_string().contains(&format!("ipv4@{addr}")), "{e}");
    }

    #[test]
    fn a_silent_server_times_out_and_the_error_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            // Hold the connection open without answering until the client gives up.
            let mut buf = Vec::new();
            let _ = (&c).read_to_end(&mut buf);
            std::thread::sleep(Duration::from_millis(500));
            drop(c);
        });
        let s =
            Socket::admin(&path).with_timeouts(Duration::from_secs(1), Duration::from_millis(100));
        let e = s.command("show stat").unwrap_err();
        assert!(matches!(e.kind, SocketErrorKind::ReadTimeout { .. }), "{e}");
        assert!(e.to_string().contains(path.to_str().unwrap()));
        assert!(e.to_string().contains("show stat"));
        h.join().unwrap();
    }

    #[test]
    fn worker_commands_on_a_master_socket_are_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            c.write_all(got.as_bytes()).unwrap();
        });
        assert_eq!(
            Socket::master(&path).worker_command("show info").unwrap(),
            "@1 show info\n"
        );
        h.join().unwrap();
    }
}
