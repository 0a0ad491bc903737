//! `lbbench lab --hosts` for real, on a lab of network namespaces made by
//! `scripts/netns-lab.sh` (2 clients, a balancer host, 2 backend hosts, an sshd in each):
//! `--check`; HAProxy and Pound measured with httperf on both clients at once, the rows, the
//! clients' raw outputs, the CPU measured on the balancer's namespace; nothing left running in
//! any namespace; a client whose sshd is killed mid-lab fails that run, and the rerun
//! completes. Needs root (network namespaces) and openssh-server (scripts/setup.sh).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::wait::poll_until;
use lbbench::httperf::merge::merge;
use lbbench::httperf::{Report, parse_report};
use lbbench::lab::info::LabInfo;
use support::{LAB_DEADLINE, read_rows, start_lab};

fn script() -> PathBuf {
    testkit::workspace_root().join("scripts/netns-lab.sh")
}

/// A netns lab, removed when dropped.
struct NetnsLab {
    name: String,
    dir: PathBuf,
}

impl NetnsLab {
    fn up(dir: &Path, clients: u32, backends: u32) -> NetnsLab {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test makes network namespaces and needs root (CI runs as root)"
        );
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd is missing: run scripts/setup.sh (openssh-server)"
        );
        let name = format!("lb-hosts-{}", std::process::id());
        let out = Command::new("bash")
            .arg(script())
            .args(["up", "--name", &name, "--dir"])
            .arg(dir)
            .args(["--clients", &clients.to_string()])
            .args(["--backends", &backends.to_string()])
            .arg("--lbbench")
            .arg(env!("CARGO_BIN_EXE_lbbench"))
            .output()
            .unwrap();
        let lab = NetnsLab {
            name,
            dir: dir.to_owned(),
        };
        assert!(
            out.status.success(),
            "netns-lab.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(lab.hosts()).unwrap(),
            "up prints the hosts file"
        );
        lab
    }

    fn hosts(&self) -> PathBuf {
        self.dir.join("hosts.toml")
    }

    fn namespace(&self, host: &str) -> String {
        format!("{}-{host}", self.name)
    }

    /// The pids in a host's namespace, and their names.
    fn processes(&self, host: &str) -> Vec<(u32, String)> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.namespace(host)])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns pids: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter_map(|pid: u32| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                Some((pid, comm.trim().to_owned()))
            })
            .collect()
    }

    /// The namespace's inode, as `/proc/PID/ns/net` of a process in it shows it.
    fn netns_inode(&self, host: &str) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.namespace(host)))
            .unwrap()
            .ino()
    }

    fn script(&self, verb: &str, host: &str) {
        let out = Command::new("bash")
            .arg(script())
            .arg(verb)
            .arg(&self.dir)
            .arg(host)
            .output()
            .unwrap();
        assert!(out.status.success(), "netns-lab.sh {verb}: {out:?}");
    }

    /// Waits until only the lab's sshd listener runs in every namespace: whatever a lab
    /// started there (agents, ssh sessions, balancers, backends, httperf) is gone.
    fn assert_only_sshd_left(&self, hosts: &[&str]) {
        for host in hosts {
            let left = poll_until(
                &format!("only sshd in {host}"),
                Duration::from_secs(30),
                support::POLL,
                || {
                    let p = self.processes(host);
                    (p.len() <= 1 && p.iter().all(|(_, c)| c == "sshd")).then_some(())
                },
            );
            assert!(left.is_ok(), "{host} still runs {:?}", self.processes(host));
        }
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .output();
    }
}

const HOSTS: [&str; 5] = ["client-1", "client-2", "balancer", "backend-1", "backend-2"];

#[test]
fn the_lab_runs_across_hosts_in_network_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = NetnsLab::up(&tmp.path().join("netns"), 2, 2);
    let hosts = lab.hosts();
    let hosts = hosts.to_str().unwrap();

    // --check: every host ready, in a table.
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["lab", "--hosts", hosts, "--check", "-b", "haproxy,pound"])
        .args([
            "--from",
            "100",
            "--to",
            "200",
            "--step",
            "100",
            "--duration",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--check: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in HOSTS {
        assert!(text.contains(h), "{text}");
    }
    assert!(text.contains("httperf 0.9"), "{text}");
    assert!(
        text.contains("haproxy 2.") && text.contains("pound 4."),
        "{text}"
    );
    assert!(text.contains("all 5 hosts are ready"), "{text}");
    lab.assert_only_sshd_left(&HOSTS);

    // The lab: HAProxy and Pound, each plain and terminating TLS, one run of 2 s at
    // 100 conn/s, httperf on both clients at once.
    let dir = tmp.path().join("lab");
    let mut args = vec!["--quick", "--tls", "--hosts", hosts];
    args.extend(
        "-b haproxy,pound --backends 2 --from 100 --to 100 --duration 2 --pause 0".split(' '),
    );
    let running = start_lab(&dir, &args);
    // While it runs: the balancer's processes, as lab.json records them, are in the
    // balancer's namespace (the CPU is measured there, of those processes).
    let balancer_ns = lab.netns_inode("balancer");
    let seen = poll_until(
        "a balancer in lab.json",
        LAB_DEADLINE,
        support::POLL,
        || {
            let info = LabInfo::load(&dir).ok().flatten()?;
            let s = info.invocations.last()?;
            let b = s.started.iter().find(|s| s.what == "haproxy")?;
            let root = *b.pids.first()?;
            let ns = std::fs::read_link(format!("/proc/{root}/ns/net")).ok()?;
            Some((b.pids.clone(), ns))
        },
    )
    .unwrap();
    assert_eq!(
        seen.1.to_string_lossy(),
        format!("net:[{balancer_ns}]"),
        "HAProxy runs in the balancer's namespace"
    );
    let (status, stdout, stderr) = running.wait();
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("| haproxy |") && stdout.contains("| pound |"),
        "{stdout}"
    );

    for (b, processes) in [("haproxy", "2"), ("pound", "1")] {
        let (header, rows) = read_rows(&dir.join(format!("perf_{b}_combined.csv")));
        assert!(header.contains(&"balancer_cpu_pct".to_owned()));
        assert_eq!(rows.len(), 2, "{b}: {rows:?}");
        let tls: BTreeSet<&str> = rows.iter().map(|r| r["tls"].as_str()).collect();
        assert_eq!(
            tls,
            ["off", "on"].into_iter().collect(),
            "{b}: plain and TLS"
        );
        for row in &rows {
            let rate = &row["target_rate"];
            let stem = match row["tls"].as_str() {
                "on" => format!("{b}_tls"),
                _ => b.to_owned(),
            };
            assert_eq!(row["balancer_processes"], processes, "{b} {rate}");
            assert_eq!(row["backends_processes"], "2", "{b} {rate}");
            let cpu: f64 = row["balancer_cpu_pct"].parse().unwrap();
            assert!(cpu > 0.0, "{b} {rate}: {cpu}");
            // Each client's own report is kept; together they are the row.
            let raw: Vec<Report> = ["client-1", "client-2"]
                .iter()
                .map(|c| {
                    let p = dir.join(format!("raw/{stem}_r{rate}_1.{c}.txt"));
                    let text = std::fs::read_to_string(&p)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    parse_report(&text).unwrap()
                })
                .collect();
            assert!(
                raw[0].command.contains("--client=0/2"),
                "{}",
                raw[0].command
            );
            assert!(
                raw[1].command.contains("--client=1/2"),
                "{}",
                raw[1].command
            );
            let merged = merge(&raw);
            assert_eq!(row["total_requests"], merged.total_requests.to_string());
            assert_eq!(
                merged.total_connections,
                rate.parse::<u64>().unwrap() * 2,
                "the two clients made the run's connections together"
            );
            assert_eq!(row["reply_status_2xx"], merged.reply_status_2xx.to_string());
        }
        // The balancer's CPU file, sampled on its host, follows its processes.
        let (_, cpu_rows) = read_rows(&dir.join(format!("cpu_mon_{b}.csv")));
        assert!(!cpu_rows.is_empty(), "cpu_mon_{b}.csv");
        for r in &cpu_rows {
            assert_eq!(r["proc_count"], processes, "cpu_mon_{b}.csv: {r:?}");
        }
    }
    let info = LabInfo::load(&dir).unwrap().unwrap();
    let names: BTreeSet<&str> = info.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, HOSTS.iter().copied().collect());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("client-2") && html.contains("backend-1"),
        "hosts table"
    );
    lab.assert_only_sshd_left(&HOSTS);
    drop(seen);

    // A client lost mid-lab: its run fails, naming it; the rest is stopped on every host.
    let dir = tmp.path().join("lost");
    let mut args = vec!["--quick", "--hosts", hosts];
    args.extend(
        "-b pound --backends 2 --from 50 --to 50 --repeat 2 --duration 4 --pause 0".split(' '),
    );
    let running = start_lab(&dir, &args);
    poll_until("httperf on client-2", LAB_DEADLINE, support::POLL, || {
        lab.processes("client-2")
            .iter()
            .any(|(_, c)| c == "httperf")
            .then_some(())
    })
    .unwrap();
    lab.script("cut", "client-2");
    let (status, _, stderr) = running.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lost the connection to client-2"),
        "the lost host is named: {stderr}"
    );
    assert!(stderr.contains("run the same command again"), "{stderr}");
    // client-1's output of the failed run is kept.
    assert!(
        dir.join("raw/pound_r50_1.client-1.txt").exists(),
        "{:?}",
        std::fs::read_dir(dir.join("raw"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    lab.assert_only_sshd_left(&["client-1", "balancer", "backend-1", "backend-2"]);
    lab.assert_only_sshd_left(&["client-2"]);
    // Back again, the same command completes the lab.
    lab.script("restore", "client-2");
    let (status, _, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{stderr}");
    let (_, rows) = read_rows(&dir.join("perf_pound_combined.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    lab.assert_only_sshd_left(&HOSTS);
}
