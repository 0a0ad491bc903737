//! The benchmark backend, run for real: as the `lbbench backend` binary and in-process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::net::http_get;
use common::process::Supervised;
use common::wait::poll_until;
use lbbench::backend::{BackendConfig, BackendHandle};

const T: Duration = Duration::from_secs(10);

/// Starts the binary on a free port and returns it with its address (read from its stderr).
fn start_binary(name: &str) -> (Supervised, SocketAddr) {
    let mut p = Supervised::spawn(
        "lbbench backend",
        Command::new(env!("CARGO_BIN_EXE_lbbench"))
            .args(["backend", "--port", "0", "--name", name, "--grace", "5s"])
            .args(["--threads", "2"])
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let stderr = p.child_mut().stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no address in {line:?}"));
    (p, addr)
}

fn status(addr: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&http_get(addr, "/server-status", T).unwrap().body).unwrap()
}

#[test]
fn binary_serves_the_pages_and_stops_gracefully_on_sigterm() {
    let (mut p, addr) = start_binary("node-7");

    let home = http_get(addr, "/", T).unwrap();
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("It works!") && home.body.contains("node-7"),
        "{}",
        home.body
    );

    let perf = http_get(addr, "/perf.php?sleep=0.05&rounds=3", T).unwrap();
    assert_eq!(perf.status, 200);
    let n: u64 = perf.body.strip_prefix("Rounds ").unwrap().parse().unwrap();
    assert!(
        n.is_multiple_of(3) && (3..=30).contains(&n),
        "{}",
        perf.body
    );
    assert_eq!(http_get(addr, "/perf.php", T).unwrap().body, "Rounds 0");
    assert_eq!(http_get(addr, "/nope", T).unwrap().status, 404);
    // 5 requests so far (this one included), 2 of them to /perf.php.
    let s = status(addr);
    assert_eq!(s["requests"], 5, "{s}");
    assert_eq!(s["perf_requests"], 2, "{s}");

    // A slow request is in flight when SIGTERM arrives: it still completes.
    let slow = std::thread::spawn(move || http_get(addr, "/perf.php?sleep=1&rounds=1", T));
    poll_until(
        "the slow request to be in flight",
        T,
        Duration::from_millis(10),
        || (status(addr)["in_flight"].as_u64() >= Some(2)).then_some(()),
    )
    .unwrap();
    p.signal(rustix::process::Signal::TERM).unwrap();
    let reply = slow.join().unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.starts_with("Rounds "));
    let exit = p
        .wait_timeout(T)
        .unwrap()
        .expect("exits after the in-flight request");
    assert!(exit.success(), "{exit:?}");
    // No longer listening.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["backend", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
}

fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(want.min(hard));
        setrlimit(Resource::Nofile, lim).unwrap();
    }
}

#[test]
fn holds_two_thousand_sleeping_requests_at_once() {
    const N: usize = 2000;
    raise_fd_limit(3 * N as u64 + 256);
    let backend = BackendHandle::start(BackendConfig {
        threads: Some(2),
        ..BackendConfig::default()
    })
    .unwrap();
    let addr = backend.addr();
    let mut conns: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = TcpStream::connect_timeout(&addr, T)
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.write_all(
                b"GET /perf.php?sleep=2&rounds=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            s
        })
        .collect();
    // All of them are asleep in the server at the same time.
    poll_until(
        "2000 requests in flight",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || (backend.counters().in_flight() == N as u64).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; in flight: {}", backend.counters().in_flight()));
    for (i, c) in conns.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200 OK"),
            "request {i}: {reply:.60}"
        );
        assert!(reply.contains("Rounds "), "request {i}");
    }
    assert_eq!(backend.counters().max_in_flight(), N as u64);
    assert_eq!(backend.counters().requests(), N as u64);
    backend.stop().unwrap();
}

/// A process's resident memory, from `/proc/PID/status`, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

#[test]
fn a_100_mb_reply_is_streamed_with_bounded_memory() {
    const SIZE: u64 = 100_000_000;
    let (mut p, addr) = start_binary("big");
    let before = vm_rss_kib(p.pid());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET /perf.php?sleep=0&rounds=2&size={SIZE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Read the reply in 64 KiB pieces; every 8 MiB, while the backend is still sending (the
    // socket buffers hold a few MiB at most), read its resident memory.
    let mut buf = vec![0u8; 64 * 1024];
    let (mut head, mut total, mut next_sample) = (Vec::new(), 0u64, 8u64 << 20);
    let mut peak = before;
    let mut samples = 0;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        total += n as u64;
        if total >= next_sample && total < SIZE - (8 << 20) {
            peak = peak.max(vm_rss_kib(p.pid()));
            samples += 1;
            next_sample += 8 << 20;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let header_end = head.find("\r\n\r\n").unwrap() + 4;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {SIZE}")),
        "{head}"
    );
    assert_eq!(
        total - header_end as u64,
        SIZE,
        "the body is exactly the size asked for"
    );
    assert!(head[header_end..].starts_with("Rounds "), "{head}");
    assert!(samples >= 8, "only {samples} samples during the transfer");
    // Holding the body would add 100 MB; streaming adds the socket's and hyper's buffers.
    assert!(
        peak < before + 16 * 1024,
        "the backend grew from {before} KiB to {peak} KiB while sending 100 MB"
    );
    p.stop().unwrap();
}
