//! Client ports held in TIME_WAIT towards the server, and the wait for them before a run.
//!
//! The side of a TCP connection that closes first keeps it in TIME_WAIT for 60 s, and while
//! it does, its local port cannot be used for another connection to the same address and
//! port. HAProxy and nginx close first after a `Connection: close` reply, so the entries are
//! theirs; Pound 4.16 closes a moment after httperf has read the reply and closed, so the
//! entries are httperf's, one client port each. The client has about 28,000 ephemeral ports
//! (`ip_local_port_range` 32768–60999), so through Pound two 20-s runs at 800 conn/s in a row
//! run out of them and the second one stalls (docs/lbbench-lab.md). Before each run the
//! sweep counts the client's TIME_WAIT entries towards the server (`/proc/net/tcp`) and, when
//! the run would not find enough free ports, waits for them to expire (at most a minute).

use std::net::{Ipv4Addr, SocketAddrV4};

/// The TCP state number of TIME_WAIT in `/proc/net/tcp` (`include/net/tcp_states.h`).
const TIME_WAIT: &str = "06";

/// How many connections in `/proc/net/tcp` text are in TIME_WAIT with `remote` as their
/// remote address (on this side: the client's ports towards `remote`). Lines that do not
/// parse are skipped.
pub fn time_wait_towards(proc_net_tcp: &str, remote: SocketAddrV4) -> usize {
    time_wait_left(proc_net_tcp, remote, 100).len()
}

/// The seconds each of those TIME_WAIT entries has left: the kernel prints the time until
/// its timer fires in the `tm->when` column (`03:00001644`: timer 3, TIME_WAIT, then clock
/// ticks in hex, `ticks_per_s` of them a second). An entry whose time cannot be read counts
/// as a full 60 s.
pub fn time_wait_left(proc_net_tcp: &str, remote: SocketAddrV4, ticks_per_s: u64) -> Vec<f64> {
    proc_net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let (Some(_sl), Some(_local), Some(rem), Some(state), Some(_queues), Some(timer)) = (
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
            ) else {
                return None;
            };
            if state != TIME_WAIT || parse_addr(rem) != Some(remote) {
                return None;
            }
            let ticks = timer
                .split_once(':')
                .and_then(|(_, when)| u64::from_str_radix(when, 16).ok());
            Some(match ticks {
                Some(t) => t as f64 / ticks_per_s.max(1) as f64,
                None => TIME_WAIT_S,
            })
        })
        .collect()
}

/// How long Linux keeps a connection in TIME_WAIT (`TCP_TIMEWAIT_LEN`).
pub const TIME_WAIT_S: f64 = 60.0;

/// The most ports towards the server in use at once during a run of `connections` new
/// connections at `rate` per second that starts now, when the entries already in TIME_WAIT
/// have `left` seconds to go: at each moment, the old entries not yet expired plus the new
/// connections made so far (each of which stays in TIME_WAIT for 60 s after it closes, so
/// none of them frees a port within the run's first minute).
pub fn peak_in_use(left: &[f64], rate: f64, connections: u64) -> u64 {
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        f64::INFINITY
    };
    let new_by = |t: f64| (rate * t.min(TIME_WAIT_S)).min(connections as f64);
    let issue = (connections as f64 / rate).min(TIME_WAIT_S);
    let mut sorted: Vec<f64> = left.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // Just before each old entry expires (it still counts), and at the end of the issue.
    let mut peak = n as f64;
    for (i, &t) in sorted.iter().enumerate() {
        if t >= issue {
            break;
        }
        peak = peak.max((n - i) as f64 + new_by(t));
    }
    let still_old = sorted.iter().filter(|&&t| t > issue).count();
    peak = peak.max(still_old as f64 + new_by(issue));
    peak.ceil() as u64
}

/// `0100007F:1F90` (the address as the kernel's u32 in host byte order, then the port, both
/// in hex) as `127.0.0.1:8080`.
fn parse_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The kernel prints the address's bytes read as a native u32.
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

/// The number of ephemeral ports in `ip_local_port_range` text (`32768\t60999`).
pub fn port_range_size(text: &str) -> Option<u64> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(lo)), Some(Ok(hi))) = (it.next(), it.next()) else {
        return None;
    };
    (hi >= lo).then(|| hi - lo + 1)
}

/// Whether a run of `connections` new connections at `rate` should wait for the TIME_WAIT
/// entries with `left` seconds to go: only when there are some, and at some moment of the
/// run the ports in use ([`peak_in_use`]) would not fit in the range with a tenth of it
/// spare for anything else. Entries that expire while the run is still ramping up free
/// their ports in time, so runs back to back that each fit the range do not wait.
pub fn should_wait(left: &[f64], rate: f64, connections: u64, range: u64) -> bool {
    !left.is_empty() && peak_in_use(left, rate, connections) > range - range / 10
}

/// Reads the TIME_WAIT entries towards `remote` (seconds left each) and the port range from
/// `/proc`; `None` when `/proc` cannot be read (the sweep then does not wait).
pub fn read(remote: SocketAddrV4) -> Option<(Vec<f64>, u64)> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    Some((
        time_wait_left(&tcp, remote, ticks),
        port_range_size(&range)?,
    ))
}

/// Waits (at most 61 s, the TIME_WAIT period and a second) while this machine's ports
/// towards `target` in TIME_WAIT would leave too few for a run of `connections`, telling
/// `note` why; returns how long it waited. The sweep calls it before each run, and so does
/// each client host of a lab across hosts (where the ports counted are that host's own).
pub fn wait_for_ports(
    target: SocketAddrV4,
    rate: f64,
    connections: u64,
    shutdown: &common::Shutdown,
    note: &mut dyn FnMut(&str),
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let Some((left, range)) = read(target) else {
        return start.elapsed();
    };
    if !should_wait(&left, rate, connections, range) {
        return start.elapsed();
    }
    note(&format!(
        "{} client ports towards {target} are in TIME_WAIT (the server let the client close \
         first) and the run would need up to {} of {range} at once: waiting for them to expire",
        left.len(),
        peak_in_use(&left, rate, connections)
    ));
    let deadline = start + std::time::Duration::from_secs(61);
    while std::time::Instant::now() < deadline
        && shutdown.sleep(std::time::Duration::from_millis(500))
    {
        match read(target) {
            Some((l, r)) if should_wait(&l, rate, connections, r) => {}
            _ => break,
        }
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:8A2C 0100007F:1F90 06 00000000:00000000 03:00001644 00000000     0        0 0 3 0000000000000000\n\
   2: 0100007F:8A2E 0100007F:1F90 06 00000000:00000000 03:00001644 00000000     0        0 0 3 0000000000000000\n\
   3: 0100007F:1F90 0100007F:8A30 06 00000000:00000000 03:00001644 00000000     0        0 0 3 0000000000000000\n\
   4: 0100007F:8A32 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1\n\
   5: 0200007F:8A34 0100007F:1F91 06 00000000:00000000 03:00001644 00000000     0        0 0 3 0000000000000000\n\
   garbage\n";

    #[test]
    fn counts_only_time_wait_towards_the_address() {
        let server = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080);
        // Lines 1 and 2; not the listener (0A), the server-side entry (3), the established
        // connection (4) or another port (5).
        assert_eq!(time_wait_towards(SAMPLE, server), 2);
        assert_eq!(
            time_wait_towards(SAMPLE, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8081)),
            1
        );
        assert_eq!(
            time_wait_towards(SAMPLE, SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 8080)),
            0
        );
        assert_eq!(
            parse_addr("0200007F:8A34"),
            Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 0x8A34))
        );
        assert_eq!(parse_addr("zz:1"), None);
    }

    #[test]
    fn the_range_and_the_decision() {
        assert_eq!(port_range_size("32768\t60999\n"), Some(28232));
        assert_eq!(port_range_size("60999 32768"), None);
        assert_eq!(port_range_size("x"), None);
        // 16,000 connections at 800/s with 16,000 ports in TIME_WAIT for another minute:
        // wait; with none: never; with 5,000: fits.
        let minute = |n: usize| vec![60.0; n];
        assert!(should_wait(&minute(16_000), 800.0, 16_000, 28_232));
        assert!(!should_wait(&[], 2000.0, 120_000, 28_232));
        assert!(!should_wait(&minute(5_000), 800.0, 16_000, 28_232));
        // A 60-s run at 400/s that ended 5 s ago left 24,000 entries expiring over the next
        // 55 s: they free their ports as fast as the same run again takes them, so it need
        // not wait (counting them all at once, it would). Twice the rate does not fit.
        let spread: Vec<f64> = (0..24_000).map(|i| 55.0 * i as f64 / 24_000.0).collect();
        assert!(!should_wait(&spread, 400.0, 24_000, 28_232));
        assert!(peak_in_use(&spread, 400.0, 24_000) <= 24_000 + 1);
        assert!(should_wait(&spread, 800.0, 48_000, 28_232));
    }

    #[test]
    fn the_peak_counts_old_entries_until_they_expire_and_new_ones_all_run_long() {
        assert_eq!(peak_in_use(&[], 100.0, 1000), 1000);
        // 10 s at 100/s with 500 entries for another 5 s: at 5 s, 500 + 500.
        assert_eq!(peak_in_use(&[5.0; 500], 100.0, 1000), 1000);
        assert_eq!(peak_in_use(&[20.0; 500], 100.0, 1000), 1500);
        // A run longer than a minute holds at most a minute of connections.
        assert_eq!(peak_in_use(&[], 100.0, 100_000), 6000);
        // No rate: every connection at once.
        assert_eq!(peak_in_use(&[1.0], 0.0, 10), 11);
    }

    #[test]
    fn sees_the_clients_time_wait_on_the_real_kernel() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(server) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let before = read(server).unwrap().0.len();
        for _ in 0..3 {
            // The client closes first, so the client's side stays in TIME_WAIT.
            let mut client = std::net::TcpStream::connect(server).unwrap();
            let (mut accepted, _) = listener.accept().unwrap();
            client.write_all(b"x").unwrap();
            drop(client);
            let mut buf = Vec::new();
            accepted.read_to_end(&mut buf).unwrap();
        }
        let (left, _) = common::wait::poll_until(
            "three client-side TIME_WAIT entries towards the listener",
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            || read(server).filter(|(l, _)| l.len() >= before + 3),
        )
        .unwrap();
        // Each has at most a minute left, and more than 50 s: they were just made.
        assert!(left.iter().all(|&s| s > 50.0 && s <= 60.0), "{left:?}");
        assert!(read(server).unwrap().1 > 1000);
    }
}
