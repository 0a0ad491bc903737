//! A pair of HAProxy hosts behind a virtual IP, as etc/keepalived/ describes it, in network
//! namespaces: hosts `a` (10.213.0.1) and `b` (10.213.0.2), each with HAProxy (the shipped
//! haproxy.cfg) and keepalived (the shipped keepalived.conf: VRRP with unicast peers,
//! check_haproxy.sh), joined by a bridge in namespace `c` (10.213.0.3), where `webscaler
//! run` drives both HAProxy over their TCP admin sockets, its local backends listen, and
//! httperf sends a constant rate to the virtual IP 10.213.0.100.
//!
//! The active HAProxy is killed (SIGKILL to its master): keepalived moves the virtual IP,
//! requests keep being served by the other host, and webscaler goes on with the host that
//! answers. HAProxy is started again on the first host (empty, as after a reboot): webscaler
//! brings it back in step, so both have the same servers in the same states. The `pair:`
//! lines on stderr are the figures docs/benchmarks.md reports.
//!
//! Namespaces are named `wsmulti-<pid>-{a,b,c}` and removed by a guard, also when the test
//! fails.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{SpawnOptions, Supervised};
use common::wait::poll_until;
use rustix::process::Signal;
use support::{POLL, Teardown, httperf_in};
use testkit::{workspace_bin, workspace_root};
use webscaler::balancer::{BackendName, Balancer, Metric};
use webscaler::haproxy::{Haproxy, Socket};

const T: Duration = Duration::from_secs(30);
const VIP: &str = "10.213.0.100";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and what runs in them; dropping it stops everything and removes them.
struct Pair {
    prefix: String,
    dir: tempfile::TempDir,
    /// HAProxy then keepalived of each host, by host.
    procs: Vec<Option<Supervised>>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = p.stop();
        }
        for n in ["a", "b", "c"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}-{n}", self.prefix)])
                .status();
        }
    }
}

impl Pair {
    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn host_dir(&self, host: &str) -> PathBuf {
        self.dir.path().join(host)
    }

    /// Namespaces a and b, each with `eth0` on the bridge of c.
    fn new() -> Pair {
        let mut pair = Pair {
            prefix: format!("wsmulti-{}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
            procs: (0..4).map(|_| None).collect(),
        };
        for n in ["a", "b", "c"] {
            let ns = pair.ns(n);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        let c = pair.ns("c");
        ip(&["-n", &c, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &c, "link", "set", "br0", "up"]);
        ip(&["-n", &c, "addr", "add", "10.213.0.3/24", "dev", "br0"]);
        for (n, addr) in [("a", "10.213.0.1/24"), ("b", "10.213.0.2/24")] {
            let ns = pair.ns(n);
            let peer = format!("to-{n}");
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &peer,
                "netns", &c,
            ]);
            ip(&["-n", &c, "link", "set", &peer, "master", "br0"]);
            ip(&["-n", &c, "link", "set", &peer, "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "addr", "add", addr, "dev", "eth0"]);
            std::fs::create_dir_all(pair.host_dir(n)).unwrap();
        }
        for (i, n) in ["a", "b"].into_iter().enumerate() {
            pair.render(n);
            pair.start_haproxy(i);
            pair.procs[2 + i] = Some(pair.spawn_in(
                n,
                "keepalived",
                &[
                    "-n",
                    "-l",
                    "-D",
                    "-f",
                    &path(&pair.host_dir(n).join("keepalived.conf")),
                    "-p",
                    &path(&pair.host_dir(n).join("keepalived.pid")),
                    "-r",
                    &path(&pair.host_dir(n).join("vrrp.pid")),
                    "-c",
                    &path(&pair.host_dir(n).join("checkers.pid")),
                ],
            ));
        }
        pair
    }

    /// The shipped examples with this host's addresses, interface and files.
    fn render(&self, host: &str) {
        let etc = workspace_root().join("etc/keepalived");
        let (me, peer, priority) = match host {
            "a" => ("10.213.0.1", "10.213.0.2", "101"),
            _ => ("10.213.0.2", "10.213.0.1", "100"),
        };
        let dir = self.host_dir(host);
        let haproxy = std::fs::read_to_string(etc.join("haproxy.cfg"))
            .unwrap()
            .replace("10.0.0.11", me)
            .replace("/run/haproxy/admin.sock", &path(&dir.join("admin.sock")))
            .replace("bind :80\n", "bind :8080\n");
        std::fs::write(dir.join("haproxy.cfg"), haproxy).unwrap();
        let keepalived = std::fs::read_to_string(etc.join("keepalived.conf"))
            .unwrap()
            .replace("10.0.0.11", me)
            .replace("10.0.0.12", peer)
            .replace("10.0.0.10", VIP)
            .replace("priority 101", &format!("priority {priority}"))
            .replace("router_id ha1", &format!("router_id {}", self.ns(host)))
            .replace(
                "/etc/keepalived/check_haproxy.sh",
                &path(&etc.join("check_haproxy.sh")),
            )
            // The checkout may sit under a directory others can write to.
            .replace("    enable_script_security\n", "");
        std::fs::write(dir.join("keepalived.conf"), keepalived).unwrap();
    }

    fn spawn_in(&self, host: &str, program: &str, args: &[&str]) -> Supervised {
        let log =
            std::fs::File::create(self.host_dir(host).join(format!("{program}.log"))).unwrap();
        Supervised::spawn_with(
            program,
            Command::new("ip")
                .args(["netns", "exec", &self.ns(host), program])
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
            &SpawnOptions::isolated().stop_group(),
        )
        .unwrap()
    }

    /// HAProxy of host `i` (0: a, 1: b), master-worker in the foreground.
    fn start_haproxy(&mut self, i: usize) {
        let host = ["a", "b"][i];
        let cfg = path(&self.host_dir(host).join("haproxy.cfg"));
        self.procs[i] = Some(self.spawn_in(host, "haproxy", &["-W", "-f", &cfg]));
        poll_until("HAProxy to answer", T, POLL, || self.haproxy(i).info().ok())
            .unwrap_or_else(|e| panic!("{e}: {}", self.log(host, "haproxy")));
    }

    /// HAProxy of host `i` through its Unix admin socket (the test runs outside the
    /// namespaces).
    fn haproxy(&self, i: usize) -> Haproxy {
        let host = ["a", "b"][i];
        Haproxy::new(
            Socket::admin(self.host_dir(host).join("admin.sock")),
            BackendName::default(),
        )
    }

    /// (name, address, state) of each server of host `i`, or `None` if it does not answer.
    fn servers(&self, i: usize) -> Option<Vec<(String, String, String, bool)>> {
        let v = self.haproxy(i).observe(Metric::Sessions).ok()?;
        let mut s: Vec<_> = v
            .servers
            .into_iter()
            .map(|s| {
                (
                    s.name,
                    s.addr.map(|a| a.to_string()).unwrap_or_default(),
                    s.admin.to_string(),
                    s.takes_traffic,
                )
            })
            .collect();
        s.sort();
        Some(s)
    }

    fn replies(&self, i: usize) -> u64 {
        self.haproxy(i)
            .stats()
            .ok()
            .and_then(|s| s.backend.get_u64("hrsp_2xx").ok().flatten())
            .unwrap_or(0)
    }

    fn holds_vip(&self, host: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.ns(host), "-4", "addr", "show", "dev", "eth0"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(VIP))
    }

    fn log(&self, host: &str, program: &str) -> String {
        std::fs::read_to_string(self.host_dir(host).join(format!("{program}.log")))
            .unwrap_or_default()
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_pair_behind_a_virtual_ip_keeps_serving_when_the_active_haproxy_dies() {
    let started = Instant::now();
    let mut pair = Pair::new();
    // Both start as BACKUP: a has the higher priority, but b takes the address if a's
    // check has not risen yet when the election ends (and keeps it: nopreempt).
    let active = poll_until(
        "keepalived to give a host the virtual IP",
        T,
        POLL,
        || match (pair.holds_vip("a"), pair.holds_vip("b")) {
            (true, false) => Some(0),
            (false, true) => Some(1),
            _ => None,
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            pair.log("a", "keepalived"),
            pair.log("b", "keepalived")
        )
    });
    let other = 1 - active;
    let (active_host, other_host) = (["a", "b"][active], ["a", "b"][other]);
    let active_socket = ["ipv4@10.213.0.1:9999", "ipv4@10.213.0.2:9999"][active];

    // webscaler in c drives both HAProxy over TCP; its backends listen on c's address.
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let _teardown = Teardown(state.clone());
    let lbbench = workspace_bin("lbbench");
    let log = home.path().join("run.log");
    let mut run = Supervised::spawn(
        "webscaler run",
        Command::new("ip")
            .args(["netns", "exec", &pair.ns("c")])
            .arg(assert_cmd::cargo::cargo_bin("webscaler"))
            .args(["run", "--provider", "local", "--haproxy", "system"])
            .args(["--socket", "ipv4@10.213.0.1:9999"])
            .args(["--socket", "ipv4@10.213.0.2:9999"])
            .args(["--socket-timeout", "2s", "--backend-host", "10.213.0.3"])
            .arg("--command")
            .arg(format!(
                "{} backend --bind {{host}} --port {{port}} --name {{name}} --threads 8 --grace 2s",
                lbbench.display()
            ))
            .arg("--state-dir")
            .arg(&state)
            .args(["--interval", "1s", "--check-inter", "200ms", "--min", "2"])
            .args(["--threshold", "1000", "-o"])
            .arg(home.path().join("pair.csv"))
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    )
    .unwrap()
    .with_grace(Duration::from_secs(20));
    let run_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let in_step = |pair: &Pair| {
        let (a, b) = (pair.servers(0), pair.servers(1));
        (a.is_some() && a == b).then_some(a?)
    };
    let both = poll_until("two servers serving in both HAProxy", T, POLL * 5, || {
        in_step(&pair).filter(|v| v.len() == 2 && v.iter().all(|s| s.3))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run_log()));

    // Constant load on the virtual IP; then the active HAProxy dies.
    let vip: SocketAddr = format!("{VIP}:8080").parse().unwrap();
    let load = httperf_in(
        Some(&pair.ns("c")),
        vip,
        "/perf.php?sleep=0.05",
        40,
        100_000,
    );
    poll_until("the active host to serve 40 requests", T, POLL, || {
        (pair.replies(active) >= 40).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run_log()));
    let killed = Instant::now();
    pair.procs[active]
        .as_mut()
        .unwrap()
        .signal(Signal::KILL)
        .unwrap();
    poll_until("the virtual IP on the peer", T, POLL, || {
        pair.holds_vip(other_host).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", pair.log(other_host, "keepalived")));
    let moved = killed.elapsed();
    poll_until("the peer to serve 40 requests", T, POLL, || {
        (pair.replies(other) >= 40).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run_log()));
    let served = killed.elapsed();
    assert!(!pair.holds_vip(active_host));

    // HAProxy comes back on the failed host, empty: brought in step with the peer; the
    // address stays on the peer.
    let _ = pair.procs[active].take().map(|mut p| p.stop());
    pair.start_haproxy(active);
    let back = Instant::now();
    let after = poll_until(
        "the failed host back in step with the peer",
        T,
        POLL * 5,
        || in_step(&pair).filter(|v| v.iter().all(|s| s.3)),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?} {:?}\n{}",
            pair.servers(0),
            pair.servers(1),
            run_log()
        )
    });
    let in_step_after = back.elapsed();
    assert_eq!(after, both, "the same servers as before the failover");
    let report = load.interrupt();
    run.signal(Signal::TERM).unwrap();
    let status = run.wait_timeout(T).unwrap().expect("webscaler to exit");
    let log = run_log();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        pair.holds_vip(other_host) && !pair.holds_vip(active_host),
        "nopreempt"
    );
    eprintln!(
        "pair: 40 req/s to the virtual IP; active HAProxy ({active_host}) killed: address on the peer after {:.1} s, 40 requests served there after {:.1} s; httperf {} connections, {} replies, {} errors ({}); HAProxy restarted: in step after {:.1} s; whole test {:.1} s",
        moved.as_secs_f64(),
        served.as_secs_f64(),
        report.connections,
        report.replies,
        report.errors,
        report
            .text
            .lines()
            .find(|l| l.starts_with("Errors: total"))
            .unwrap_or("")
            .trim(),
        in_step_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(report.replies >= 80, "{}", report.text);
    assert_eq!(report.status_5xx, 0, "{}", report.text);
    assert!(
        log.contains(&format!("HAProxy instance {active_socket} does not answer"))
            && log.contains(&format!(
                "bringing HAProxy instance {active_socket} in step"
            )),
        "{log}"
    );
}
