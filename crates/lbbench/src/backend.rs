//! The benchmark backend: the lab report's `perf.php` (listing 2.4) as an async HTTP server.
//!
//! - `GET /perf.php?sleep=S&rounds=N` waits `S` seconds (fractions allowed, without holding
//!   a thread) and answers `Rounds <N × random 1..10>`, as the PHP page did.
//! - `&size=BYTES` makes that reply exactly `BYTES` long (0 to [`MAX_REPLY_SIZE`]): the
//!   `Rounds` line, then filler, streamed from one static block, so a reply of 100 MB costs
//!   the backend no more memory than one of 1 KB.
//! - `GET /` answers a page containing `It works!`, which HAProxy's
//!   `http-check expect string It\ works!` looks for.
//! - `GET /server-status` answers JSON counters (`requests`, `perf_requests`, `in_flight`,
//!   `max_in_flight`).
//! - Any other path is a 404; any method other than GET or HEAD a 405.
//!
//! The listener has a backlog of 1024 (so bursts of new connections are not dropped), and on
//! SIGTERM or SIGINT the server stops accepting, lets in-flight requests finish for up to a
//! grace period, then exits.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};

/// The longest `sleep` a request may ask for; longer values are capped, so a typo cannot
/// park a connection for hours.
pub const MAX_SLEEP: Duration = Duration::from_secs(300);

/// The largest `size` a request may ask for (16 GiB); larger values are capped.
pub const MAX_REPLY_SIZE: u64 = 16 << 30;

/// How the backend is started.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Address to listen on (127.0.0.1 by default).
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// The backend's name, shown on its home page and in the `X-Backend` header.
    pub name: String,
    /// The listen backlog (`listen(2)`); 1024 by default, so bursts of connections are kept.
    pub backlog: u32,
    /// How long in-flight requests may run after a shutdown request.
    pub grace: Duration,
    /// Threads: `Some(1)` (the default) is one current-thread runtime, the least CPU per
    /// request for sleeping requests; `Some(n)` a multi-thread runtime with `n` workers;
    /// `None` one worker per CPU.
    pub threads: Option<usize>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            name: "node-1".to_owned(),
            backlog: 1024,
            grace: Duration::from_secs(10),
            threads: Some(1),
        }
    }
}

/// The parameters of a `/perf.php` request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfParams {
    /// How long to wait before answering.
    pub sleep: Duration,
    /// The `rounds` multiplier.
    pub rounds: u64,
    /// The reply's length in bytes, if asked for (`size=`); `None` is the short `Rounds`
    /// reply of the lab report's page.
    pub size: Option<u64>,
}

/// What a request asks for (pure routing, no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// The home page with `It works!`.
    Home,
    /// The benchmark page.
    Perf(PerfParams),
    /// The JSON counters.
    Status,
    /// Unknown path.
    NotFound,
    /// A method other than GET or HEAD.
    MethodNotAllowed,
}

/// Routes a request by method, path and query string.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Route {
    if method != Method::GET && method != Method::HEAD {
        return Route::MethodNotAllowed;
    }
    match path {
        "/" | "/index.html" => Route::Home,
        "/perf.php" => Route::Perf(parse_perf_query(query.unwrap_or(""))),
        "/server-status" => Route::Status,
        _ => Route::NotFound,
    }
}

/// Reads `sleep` and `rounds` from a query string the way PHP would: a missing or malformed
/// value counts as 0. Negative or non-finite sleeps are 0; sleeps above [`MAX_SLEEP`] are capped.
/// `size` is a number of bytes; a malformed one is ignored, one above [`MAX_REPLY_SIZE`] is
/// capped.
pub fn parse_perf_query(query: &str) -> PerfParams {
    let mut p = PerfParams {
        sleep: Duration::ZERO,
        rounds: 0,
        size: None,
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sleep" => {
                let s: f64 = v.trim().parse().unwrap_or(0.0);
                p.sleep = if s.is_finite() && s > 0.0 {
                    Duration::from_secs_f64(s.min(MAX_SLEEP.as_secs_f64()))
                } else {
                    Duration::ZERO
                };
            }
            "rounds" => p.rounds = v.trim().parse().unwrap_or(0),
            "size" => {
                p.size = match v.trim().parse::<u64>() {
                    Ok(n) => Some(n.min(MAX_REPLY_SIZE)),
                    // More digits than u64 holds: the most there is.
                    Err(_)
                        if !v.trim().is_empty() && v.trim().bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        Some(MAX_REPLY_SIZE)
                    }
                    Err(_) => None,
                }
            }
            _ => {}
        }
    }
    p
}

/// The `perf.php` answer for `rounds` and a die roll in 1..=10.
pub fn perf_body(rounds: u64, roll: u64) -> String {
    format!("Rounds {}", rounds.saturating_mul(roll))
}

/// One block of filler, repeated to make replies of any size: lines of 63 characters and a
/// newline, readable in a terminal.
static FILLER: [u8; 64 * 1024] = filler();

const fn filler() -> [u8; 64 * 1024] {
    let mut b = [b'.'; 64 * 1024];
    let mut i = 63;
    while i < b.len() {
        b[i] = b'\n';
        i += 64;
    }
    b
}

/// A reply body: a head (the page's text), then `filler` bytes taken from [`FILLER`] block
/// by block as the connection can send them. Nothing is built per reply beyond the head, so
/// the backend's memory does not grow with the reply's size; hyper sends `Content-Length`
/// from the exact size hint.
#[derive(Debug)]
pub struct ReplyBody {
    head: Option<Bytes>,
    filler: u64,
}

impl ReplyBody {
    /// A body of exactly `text`.
    pub fn text(text: impl Into<Bytes>) -> Self {
        ReplyBody {
            head: Some(text.into()),
            filler: 0,
        }
    }

    /// A body of exactly `size` bytes: `text` (cut to `size` if it is longer), then filler.
    pub fn sized(text: &str, size: u64) -> Self {
        let keep = text.len().min(usize::try_from(size).unwrap_or(usize::MAX));
        ReplyBody {
            head: Some(Bytes::copy_from_slice(&text.as_bytes()[..keep])),
            filler: size - keep as u64,
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take().filter(|h| !h.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if this.filler == 0 {
            return Poll::Ready(None);
        }
        let n = this.filler.min(FILLER.len() as u64) as usize;
        this.filler -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.as_ref().is_none_or(Bytes::is_empty) && self.filler == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.head.as_ref().map_or(0, |h| h.len() as u64) + self.filler)
    }
}

/// The home page.
pub fn home_page(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><title>{name}</title></head>\
         <body><h1>It works!</h1><p>lbbench backend {name}</p></body></html>\n"
    )
}

/// Live counters of a running backend.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    perf_requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `/perf.php` requests received so far (health checks and status polls not counted).
    pub fn perf_requests(&self) -> u64 {
        self.perf_requests.load(Ordering::Relaxed)
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The most requests served at once.
    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight.load(Ordering::Relaxed)
    }

    fn json(&self, name: &str) -> String {
        serde_json::json!({
            "name": name,
            "requests": self.requests(),
            "perf_requests": self.perf_requests(),
            "in_flight": self.in_flight(),
            "max_in_flight": self.max_in_flight(),
        })
        .to_string()
    }
}

/// Decrements `in_flight` when a request ends, also if its connection is dropped mid-sleep.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(c: &'a Counters) -> Self {
        c.requests.fetch_add(1, Ordering::Relaxed);
        let now = c.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        c.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A die roll in 1..=10 from a shared xorshift generator (statistical quality is irrelevant
/// here; speed and no locking are what matter).
fn roll() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    1 + x % 10
}

/// What every request of one server shares, built once.
#[derive(Debug)]
struct Shared {
    name: String,
    /// The `X-Backend` header value (`None` if the name is not a valid header value).
    name_header: Option<HeaderValue>,
    counters: Arc<Counters>,
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<ReplyBody>, Infallible> {
    let counters = &shared.counters;
    let _guard = InFlight::enter(counters);
    let (status, content_type, body) =
        match route(req.method(), req.uri().path(), req.uri().query()) {
            Route::Home => (
                StatusCode::OK,
                "text/html; charset=utf-8",
                ReplyBody::text(home_page(&shared.name)),
            ),
            Route::Perf(p) => {
                counters.perf_requests.fetch_add(1, Ordering::Relaxed);
                if !p.sleep.is_zero() {
                    tokio::time::sleep(p.sleep).await;
                }
                let text = perf_body(p.rounds, roll());
                let body = match p.size {
                    Some(size) => ReplyBody::sized(&format!("{text}\n"), size),
                    None => ReplyBody::text(text),
                };
                (StatusCode::OK, "text/html; charset=utf-8", body)
            }
            Route::Status => (
                StatusCode::OK,
                "application/json",
                ReplyBody::text(counters.json(&shared.name)),
            ),
            Route::NotFound => (
                StatusCode::NOT_FOUND,
                "text/plain",
                ReplyBody::text("Not Found\n"),
            ),
            Route::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                ReplyBody::text("Method Not Allowed\n"),
            ),
        };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(v) = &shared.name_header {
        resp.headers_mut().insert("x-backend", v.clone());
    }
    Ok(resp)
}

/// Binds the listener with the configured backlog.
pub fn bind(cfg: &BackendConfig) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(cfg.bind, cfg.port);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(cfg.backlog)
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight requests for up to
/// `cfg.grace`.
pub async fn serve(
    listener: TcpListener,
    cfg: &BackendConfig,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        name: cfg.name.clone(),
        name_header: HeaderValue::from_str(&cfg.name).ok(),
        counters,
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    // Out of descriptors or a connection reset before accept: keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let svc = service_fn(move |req| handle(req, Arc::clone(&shared)));
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client that goes away mid-request is not an error worth reporting.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(cfg.grace) => {}
    }
    Ok(())
}

/// One thread: a current-thread runtime (no cross-thread wake-ups at all). More: a
/// multi-thread runtime.
fn runtime(cfg: &BackendConfig) -> io::Result<tokio::runtime::Runtime> {
    let mut b = match cfg.threads {
        Some(n) if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all().thread_name("lbbench-backend").build()
}

/// Runs [`serve`] as a task, so that with a multi-thread runtime the accept loop runs on a
/// worker thread too: if it ran in `block_on` on the calling thread, every accepted
/// connection would be a cross-thread hand-over (a futex wake-up) to a worker.
fn serve_on(
    rt: &tokio::runtime::Runtime,
    listener: TcpListener,
    cfg: BackendConfig,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    rt.block_on(async move {
        tokio::spawn(async move { serve(listener, &cfg, counters, shutdown).await })
            .await
            .map_err(|e| io::Error::other(format!("backend server task failed: {e}")))?
    })
}

/// Runs the backend in the foreground until SIGTERM or SIGINT. `on_ready` is called with the
/// bound address once the server accepts connections.
pub fn run(cfg: &BackendConfig, on_ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    let rt = runtime(cfg)?;
    let (listener, mut term) = rt.block_on(async {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        io::Result::Ok((bind(cfg)?, term))
    })?;
    on_ready(listener.local_addr()?);
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    serve_on(
        &rt,
        listener,
        cfg.clone(),
        Arc::new(Counters::default()),
        shutdown,
    )
}

/// A backend running on its own threads inside this process (for tests and the lab).
#[derive(Debug)]
pub struct BackendHandle {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl BackendHandle {
    /// Starts a backend; it is listening when this returns.
    pub fn start(cfg: BackendConfig) -> io::Result<BackendHandle> {
        let rt = runtime(&cfg)?;
        let listener = rt.block_on(async { bind(&cfg) })?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name(format!("backend {}", cfg.name))
            .spawn(move || {
                serve_on(&rt, listener, cfg, c, async {
                    let _ = rx.await;
                })
            })?;
        Ok(BackendHandle {
            addr,
            counters,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops it gracefully and waits for it.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("backend thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for BackendHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, "/", None), Route::Home);
        assert_eq!(route(&Method::HEAD, "/", None), Route::Home);
        assert_eq!(route(&Method::GET, "/nope", None), Route::NotFound);
        assert_eq!(route(&Method::POST, "/", None), Route::MethodNotAllowed);
        assert_eq!(route(&Method::GET, "/server-status", None), Route::Status);
        assert_eq!(
            route(&Method::GET, "/perf.php", Some("sleep=0.2&rounds=3")),
            Route::Perf(PerfParams {
                sleep: Duration::from_millis(200),
                rounds: 3,
                size: None
            })
        );
    }

    #[test]
    fn perf_query_is_as_lenient_as_php() {
        let p = |q| parse_perf_query(q);
        assert_eq!(
            p(""),
            PerfParams {
                sleep: Duration::ZERO,
                rounds: 0,
                size: None
            }
        );
        assert_eq!(
            p("sleep=abc&rounds=x"),
            PerfParams {
                sleep: Duration::ZERO,
                rounds: 0,
                size: None
            }
        );
        assert_eq!(p("sleep=-3").sleep, Duration::ZERO);
        assert_eq!(p("sleep=NaN").sleep, Duration::ZERO);
        assert_eq!(p("sleep=1e9").sleep, MAX_SLEEP);
        assert_eq!(
            p("rounds=7&sleep=1.5"),
            PerfParams {
                sleep: Duration::from_millis(1500),
                rounds: 7,
                size: None
            }
        );
        assert_eq!(p("sleep").sleep, Duration::ZERO);
        assert_eq!(p("size=65536").size, Some(65536));
        assert_eq!(p("size=0").size, Some(0));
        assert_eq!(p("size=-1").size, None);
        assert_eq!(p("size=1k").size, None);
        assert_eq!(p("size=99999999999999999999999").size, Some(MAX_REPLY_SIZE));
    }

    #[test]
    fn bodies() {
        assert_eq!(perf_body(3, 7), "Rounds 21");
        assert_eq!(perf_body(0, 7), "Rounds 0");
        assert_eq!(perf_body(u64::MAX, 10), format!("Rounds {}", u64::MAX));
        let page = home_page("node-<1>");
        assert!(page.contains("It works!"));
        assert!(page.contains("node-&lt;1&gt;"));
    }

    fn collect(mut body: ReplyBody) -> Vec<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        let exact = body.size_hint().exact();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(frame.data_ref().unwrap());
        }
        assert!(body.is_end_stream());
        assert_eq!(exact, Some(out.len() as u64));
        out
    }

    #[test]
    fn sized_bodies_are_exactly_their_size() {
        for size in [0, 1, 9, 10, 64 * 1024, 64 * 1024 + 1, 300_000] {
            let b = collect(ReplyBody::sized("Rounds 21\n", size));
            assert_eq!(b.len() as u64, size);
            assert!(b.starts_with(&b"Rounds 21\n"[..b.len().min(10)]));
        }
        let b = collect(ReplyBody::sized("Rounds 21\n", 200));
        assert!(b[10..].iter().all(|&c| c == b'.' || c == b'\n'));
        assert_eq!(collect(ReplyBody::text("ok")), b"ok");
        assert_eq!(collect(ReplyBody::text("")), b"");
    }

    #[test]
    fn rolls_stay_in_range() {
        let rolls: Vec<u64> = (0..10_000).map(|_| roll()).collect();
        assert!(rolls.iter().all(|r| (1..=10).contains(r)));
        for face in 1..=10 {
            assert!(rolls.contains(&face), "face {face} never came up");
        }
    }
}
