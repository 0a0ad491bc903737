//! Loopback helpers: free ports, and a minimal blocking HTTP/1.1 GET for readiness checks.
//!
//! The tools only ever talk to 127.0.0.0/8 in their labs and tests; this module does not
//! resolve names.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A TCP port on `ip` (an address of this machine) that was free a moment ago.
pub fn free_port_on(ip: std::net::IpAddr) -> io::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// `n` distinct free ports on 127.0.0.1 (all held open until all are chosen).
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<_>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code of the reply's status line (`HTTP/1.1 200 OK` gives 200).
    pub status: u16,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

/// `GET path` on `addr` with `Connection: close`, reading to EOF.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<HttpReply> {
    let mut s = connect(addr, timeout)?;
    http_exchange(&mut s, &addr.to_string(), path)
}

/// A TCP connection to `addr` with `timeout` for the connect and for every read and write.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// `GET path` with `Host: host` and `Connection: close` over an open stream (plain TCP, or
/// a TLS stream on top of one), reading the reply to its end. A TLS peer that closes without
/// its `close_notify` (an unexpected EOF after the reply began) ends the reply too.
pub fn http_exchange<S: Read + Write>(s: &mut S, host: &str, path: &str) -> io::Result<HttpReply> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: webscaler-tools\r\n\r\n"
    );
    s.write_all(request.as_bytes())?;
    s.flush()?;
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw)
        && (e.kind() != io::ErrorKind::UnexpectedEof || raw.is_empty())
    {
        return Err(e);
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<HttpReply> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let status_line = head.lines().next().ok_or_else(|| bad("empty reply"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut body = raw[head_end + 4..].to_vec();
    if head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    }) {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(HttpReply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let r =
            parse_reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\nIt works!").unwrap();
        assert_eq!(
            r,
            HttpReply {
                status: 200,
                body: "It works!".into()
            }
        );
        let r = parse_reply(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").unwrap();
        assert_eq!(
            r,
            HttpReply {
                status: 404,
                body: "Wikipedia".into()
            }
        );
        assert!(parse_reply(b"garbage").is_err());
    }

    #[test]
    fn gets_from_a_real_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                req.extend_from_slice(&buf[..n]);
            }
            assert!(String::from_utf8_lossy(&req).starts_with("GET /x HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        });
        let r = http_get(addr, "/x", Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok");
        h.join().unwrap();
    }

    #[test]
    fn free_ports_are_distinct() {
        let p = free_ports(5).unwrap();
        let mut q = p.clone();
        q.sort_unstable();
        q.dedup();
        assert_eq!(q.len(), 5);
        assert!(free_port().unwrap() > 0);
    }
}
