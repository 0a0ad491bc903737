//! The HTTP server of `webscaler run --metrics ADDR`: `GET /metrics` answers the last
//! published exposition ([`super::metrics`]), anything else 404.
//!
//! It runs on a thread of its own (a single-threaded tokio runtime with hyper, the stack of
//! `lbbench backend`), and shares one thing with the loop: the bytes of the last
//! exposition, behind a mutex held only to swap or clone a reference-counted buffer. So the
//! loop never waits for a scrape, and a scrape never waits for a tick. A connection is a
//! task, not a thread: a client that sends its request slowly, or reads the answer slowly,
//! or not at all, holds a task and a few kilobytes, never the loop or another scrape. Each
//! request's head must arrive within [`HEADER_TIMEOUT`] and fit in [`MAX_HEAD`] bytes; a
//! connection is closed after [`CONNECTION_LIFETIME`] (Prometheus just opens another); at
//! most [`MAX_CONNECTIONS`] are open at once, and any more are closed at once.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, oneshot};

/// The path that answers.
pub const PATH: &str = "/metrics";
/// How long a client may take to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request head read (hyper's smallest buffer limit).
pub const MAX_HEAD: usize = 8 * 1024;
/// How long one connection lives at most (a scraper opens another).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Connections open at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 64;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// The address cannot be listened on (taken, not local, not allowed).
    #[error("--metrics {addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The server's thread or runtime could not be started.
    #[error("--metrics {addr}: cannot start the server: {source}")]
    Start {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl ExporterError {
    /// Whether the error is the address's fault (exit status 2) rather than the machine's.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ExporterError::Bind { .. })
    }
}

/// A running `/metrics` server (see the module documentation); stopped when dropped.
#[derive(Debug)]
pub struct Exporter {
    addr: SocketAddr,
    body: Arc<Mutex<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Listens on `addr` (port 0: any free port) and serves `body` until the next
    /// [`Exporter::publish`]. The address is bound before this returns, so a taken port is
    /// an error here and not later.
    pub fn start(addr: SocketAddr, body: Bytes) -> Result<Exporter, ExporterError> {
        let bind = |source| ExporterError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let start = |source| ExporterError::Start { addr, source };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(start)?;
        let body = Arc::new(Mutex::new(body));
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::clone(&body);
        let thread = std::thread::Builder::new()
            .name("metrics".to_owned())
            .spawn(move || rt.block_on(serve(listener, shared, stopped)))
            .map_err(start)?;
        Ok(Exporter {
            addr: local,
            body,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` from now on. Never waits for a scrape: the lock is held by a scrape
    /// only to clone the reference to the bytes.
    pub fn publish(&self, body: Bytes) {
        *self.body.lock().unwrap_or_else(|e| e.into_inner()) = body;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts connections until `stop`; each is served by a task of its own.
async fn serve(
    listener: std::net::TcpListener,
    body: Arc<Mutex<Bytes>>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, or an aborted connection: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let body = Arc::clone(&body);
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let body = Arc::clone(&body);
                async move { Ok::<_, Infallible>(respond(&req, &body)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}

/// The answer to one request.
fn respond<B>(req: &Request<B>, body: &Mutex<Bytes>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, msg: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.uri().path() != PATH {
        return text(
            StatusCode::NOT_FOUND,
            "not found: webscaler's metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let bytes = body.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut r = Response::new(Full::new(bytes));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::net::{HttpReply, http_get};
    use std::io::{Read, Write};
    use std::net::TcpStream;

    const T: Duration = Duration::from_secs(10);

    fn local() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn get(addr: SocketAddr, path: &str) -> HttpReply {
        http_get(addr, path, T).unwrap()
    }

    /// The raw reply to `request`, read to the end.
    fn raw(addr: SocketAddr, request: &str) -> String {
        let mut s = common::net::connect(addr, T).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_the_last_published_bytes_at_metrics_only() {
        let e = Exporter::start(local(), Bytes::from_static(b"a 1\n")).unwrap();
        let addr = e.local_addr();
        assert_eq!(
            get(addr, "/metrics"),
            HttpReply {
                status: 200,
                body: "a 1\n".into()
            }
        );
        e.publish(Bytes::from_static(b"a 2\n"));
        assert_eq!(get(addr, "/metrics").body, "a 2\n");
        assert_eq!(get(addr, "/metrics?x=1").body, "a 2\n");
        assert_eq!(get(addr, "/").status, 404);
        assert_eq!(get(addr, "/metrics/").status, 404);
        let r = raw(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{r}"
        );
        let r = raw(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.starts_with("HTTP/1.1 405") && r.contains("allow: GET, HEAD"),
            "{r}"
        );
        let r = raw(
            addr,
            "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"),
            "no body: {r}"
        );
    }

    #[test]
    fn a_taken_address_is_an_error_naming_it() {
        let taken = std::net::TcpListener::bind(local()).unwrap();
        let addr = taken.local_addr().unwrap();
        let e = Exporter::start(addr, Bytes::new()).unwrap_err();
        assert!(e.is_bad_input());
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("--metrics {addr}: cannot listen: ")),
            "{msg}"
        );
        assert!(msg.contains("in use"), "{msg}");
        let e = Exporter::start("192.0.2.1:9".parse().unwrap(), Bytes::new()).unwrap_err();
        assert!(e.to_string().contains("192.0.2.1:9"), "{e}");
    }

    #[test]
    fn slow_stalled_and_huge_clients_block_neither_scrapes_nor_publishing() {
        // 4 MB: more than the socket buffers hold, so a client that does not read stalls
        // its own answer half-way.
        let big = Bytes::from(vec![b'#'; 4 << 20]);
        let e = Exporter::start(local(), big.clone()).unwrap();
        let addr = e.local_addr();
        let mut held = Vec::new();
        // Half a request head, never finished.
        for _ in 0..5 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metr").unwrap();
            held.push(s);
        }
        // A whole request whose answer is never read.
        for _ in 0..5 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            held.push(s);
        }
        // A head far beyond the limit is refused, and only its connection is closed.
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(64 << 10)
        );
        let r = raw(addr, &huge);
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 431"), "{r:.80}");
        // Publishing and scraping go on.
        for i in 0..20 {
            e.publish(Bytes::from(format!("n {i}\n")));
            assert_eq!(get(addr, "/metrics").body, format!("n {i}\n"));
        }
        drop(held);
    }

    #[test]
    fn connections_beyond_the_limit_are_closed_and_the_slots_come_back() {
        let e = Exporter::start(local(), Bytes::from_static(b"ok\n")).unwrap();
        let addr = e.local_addr();
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        // Every slot is taken once the server has accepted them all: one more is closed
        // without an answer.
        common::wait::poll_until(
            "a connection beyond the limit closed",
            T,
            Duration::from_millis(20),
            || {
                let mut s = common::net::connect(addr, T).ok()?;
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .ok()?;
                let mut buf = [0u8; 1];
                matches!(s.read(&mut buf), Ok(0) | Err(_)).then_some(())
            },
        )
        .unwrap();
        drop(idle);
        common::wait::poll_until("a slot free again", T, Duration::from_millis(20), || {
            http_get(addr, "/metrics", T)
                .ok()
                .filter(|r| r.body == "ok\n")
        })
        .unwrap();
    }
}
