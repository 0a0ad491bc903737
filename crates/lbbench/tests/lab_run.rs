//! `lbbench lab` for real, reduced: backends, HAProxy and Pound, httperf, the CPU sampling
//! and the report, on 127.0.0.1; then nothing the lab started is left (process, listening
//! socket, temp dir), also after Ctrl-C, and an interrupted lab resumes where it stopped.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::wait::poll_until;
use lbbench::httperf::parse_report;
use lbbench::lab::info::LabInfo;
use support::{LAB_DEADLINE, read_rows, start_lab};

/// The lab tests load the machine; one at a time.
static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Everything the lab recorded as started (lab.json) is gone: no process, nobody listening
/// on its addresses, no run dir.
fn assert_all_gone(dir: &Path) -> LabInfo {
    let info = LabInfo::load(dir).unwrap().expect("lab.json");
    let started: Vec<_> = info.invocations.iter().flat_map(|s| &s.started).collect();
    assert!(!started.is_empty(), "{info:?}");
    for s in started {
        for pid in &s.pids {
            assert!(
                !common::process::is_alive(*pid),
                "{} pid {pid} still runs",
                s.what
            );
        }
        for addr in &s.addrs {
            let addr: SocketAddr = addr.parse().unwrap();
            let err = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .expect_err(&format!("{} still listens on {addr}", s.what));
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{addr}");
        }
        if let Some(d) = &s.run_dir {
            assert!(!d.exists(), "{} left {}", s.what, d.display());
        }
    }
    info
}

/// The text of every text node under `node`, trimmed.
fn texts<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<&'a str> {
    node.descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn a_lab_run_measures_haproxy_and_pound_then_leaves_nothing_behind() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let args = [
        "--balancers",
        "haproxy,pound",
        "--backends",
        "2",
        "--from",
        "100",
        "--to",
        "200",
        "--step",
        "100",
        "--repeat",
        "1",
        "--duration",
        "2",
        "--pause",
        "0.5",
    ];
    let (status, stdout, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{status:?}\n{stderr}");

    // A sweep CSV per balancer: one row per run, with its CPU measured.
    let mut csv_reply_ms = HashMap::new();
    for (b, processes) in [("haproxy", "2"), ("pound", "1")] {
        let (header, rows) = read_rows(&dir.join(format!("perf_{b}_combined.csv")));
        for c in [
            "balancer_cpu_pct",
            "balancer_cpu_s_per_1k_req",
            "backends_cpu_pct",
            "machine_busy_pct",
        ] {
            assert!(header.iter().any(|h| h == c), "{b}: no {c} in {header:?}");
        }
        let rates: Vec<&str> = rows.iter().map(|r| r["target_rate"].as_str()).collect();
        assert_eq!(rates, ["100", "200"], "{b}");
        for r in &rows {
            assert_eq!(r["server"], b);
            assert_eq!(r["balancer_processes"], processes, "{b}: {r:?}");
            assert_eq!(r["backends_processes"], "2", "{b}");
            let cpu: f64 = r["balancer_cpu_pct"].parse().unwrap();
            let user: f64 = r["balancer_cpu_user_s"].parse().unwrap();
            let system: f64 = r["balancer_cpu_system_s"].parse().unwrap();
            let per_1k: f64 = r["balancer_cpu_s_per_1k_req"].parse().unwrap();
            let requests: f64 = r["total_requests"].parse().unwrap();
            // Proxying a few hundred requests costs some CPU, far less than a core.
            assert!(cpu > 0.0 && cpu < 100.0, "{b}: {cpu}%");
            let expect = (user + system) / requests * 1000.0;
            assert!((per_1k - expect).abs() < 0.002, "{b}: {per_1k} vs {expect}");
            let busy: f64 = r["machine_busy_pct"].parse().unwrap();
            assert!((0.0..=100.0).contains(&busy), "{busy}");
            // The raw output is kept and is the row's report.
            let raw = dir.join(format!("raw/{b}_r{}_1.txt", r["target_rate"]));
            let report = parse_report(&std::fs::read_to_string(&raw).unwrap()).unwrap();
            assert_eq!(report.total_replies.to_string(), r["total_replies"]);
            assert_eq!(
                report.command_option("add-header"),
                Some("Connection: close\\n")
            );
            assert_eq!(
                report.reply_status_2xx, report.total_replies,
                "{b}: {raw:?}"
            );
            csv_reply_ms.insert(
                (b.to_owned(), r["target_rate"].clone()),
                r["reply_time_response"].parse::<f64>().unwrap(),
            );
        }
        // The CPU file (the lab report's `sar -u 2`) covers the balancer's sweep.
        let (cpu_header, cpu_rows) = read_rows(&dir.join(format!("cpu_mon_{b}.csv")));
        assert_eq!(cpu_header[0], "timestamp");
        assert!(!cpu_rows.is_empty(), "{b}: no CPU rows");
        assert_eq!(cpu_rows[0]["proc_count"], processes);
    }

    // The report: both balancers' series in the charts, and their numbers in the table.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts).expect("well-formed HTML");
    let by_id = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    for fig in [
        "reply-time",
        "balancer-cpu",
        "cpu-per-request",
        "achieved-rate",
        "errors",
    ] {
        let svg = by_id(fig)
            .children()
            .find(|n| n.has_tag_name("svg"))
            .unwrap_or_else(|| panic!("#{fig} has no svg"));
        let t = texts(svg);
        for b in ["haproxy", "pound"] {
            assert!(t.contains(&b), "#{fig}: no {b} series in {t:?}");
        }
        let lines = svg
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count();
        assert!(lines >= 2, "#{fig}: {lines} lines");
    }
    let table = by_id("numbers");
    let rows: Vec<roxmltree::Node> = table.children().filter(|n| n.has_tag_name("tr")).collect();
    let head: Vec<&str> = rows[0]
        .children()
        .filter(|n| n.has_tag_name("th"))
        .map(|n| n.text().unwrap_or(""))
        .collect();
    let reply_col = head.iter().position(|h| *h == "reply time [ms]").unwrap();
    let mut seen = BTreeSet::new();
    for row in &rows[1..] {
        let b = row.attribute("data-balancer").unwrap().to_owned();
        let rate = row.attribute("data-rate").unwrap().to_owned();
        let cells: Vec<&str> = row
            .children()
            .filter(|n| n.has_tag_name("td"))
            .map(|n| n.text().unwrap_or(""))
            .collect();
        assert_eq!(cells.len(), head.len());
        let want = csv_reply_ms[&(b.clone(), rate.clone())];
        assert_eq!(cells[reply_col], format!("{want:.1}"), "{b} {rate}");
        seen.insert((b, rate));
    }
    let want: BTreeSet<(String, String)> = ["haproxy", "pound"]
        .iter()
        .flat_map(|b| ["100", "200"].map(|r| ((*b).to_owned(), r.to_owned())))
        .collect();
    assert_eq!(seen, want);
    // The versions of each balancer and of httperf, and the machine.
    let programs = texts(by_id("programs"));
    for p in ["haproxy", "pound", "httperf", "4.16", "0.9.0"] {
        assert!(programs.contains(&p), "{p} not in {programs:?}");
    }
    let setup = texts(by_id("setup-table")).join(" ");
    assert!(setup.contains("kernel") && setup.contains("CPU"), "{setup}");

    // The Markdown summary on stdout: a row per balancer and rate.
    let md: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(md.len(), 2 + 4, "{stdout}");
    assert!(md[2].starts_with("| haproxy | 100 | 1 |"), "{stdout}");
    assert!(md[5].starts_with("| pound | 200 | 1 |"), "{stdout}");

    let info = assert_all_gone(&dir);
    assert_eq!(info.invocations.len(), 1);
    assert_eq!(info.invocations[0].outcome, "complete");
    assert_eq!(info.httperf.version, "0.9.0");
    let started: Vec<&str> = info.invocations[0]
        .started
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert_eq!(started, ["backends", "haproxy", "pound"]);
}

#[test]
fn an_interrupted_lab_stops_everything_and_resumes_where_it_stopped() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let args = [
        "--balancers",
        "haproxy",
        "--backends",
        "1",
        "--from",
        "50",
        "--to",
        "150",
        "--step",
        "50",
        "--repeat",
        "1",
        "--duration",
        "2",
        "--pause",
        "1",
        "-q",
    ];
    let csv = dir.join("perf_haproxy_combined.csv");
    let mut lab = start_lab(&dir, &args);
    poll_until("the first row", LAB_DEADLINE, support::POLL, || {
        (support::line_count(&csv) >= 2).then_some(())
    })
    .unwrap();
    // Ctrl-C: SIGINT to lbbench (and httperf, if a run is on, as a terminal would).
    lab.process.signal(rustix::process::Signal::INT).unwrap();
    let (status, _, stderr) = lab.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted:"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let info = assert_all_gone(&dir);
    assert_eq!(info.invocations[0].outcome, "interrupted");
    let before = std::fs::read(&csv).unwrap();
    let rows_before = support::line_count(&csv) - 1;
    assert!((1..3).contains(&rows_before), "{rows_before}");

    let (status, _, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{stderr}");
    let after = std::fs::read(&csv).unwrap();
    assert!(
        after.starts_with(&before),
        "earlier rows are kept as they were"
    );
    let (_, rows) = read_rows(&csv);
    let runs: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["target_rate"].as_str(), r["run"].as_str()))
        .collect();
    let mut sorted = runs.clone();
    sorted.sort_by_key(|(r, _)| r.parse::<u32>().unwrap());
    assert_eq!(
        sorted,
        [("50", "1"), ("100", "1"), ("150", "1")],
        "{runs:?}"
    );
    let info = assert_all_gone(&dir);
    let outcomes: Vec<&str> = info
        .invocations
        .iter()
        .map(|s| s.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["interrupted", "complete"]);
    assert!(dir.join("report.html").exists());

    // Once more: nothing to do, so nothing is started; the report is made again.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let (status, _, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(std::fs::read(&csv).unwrap(), after);
    let info = LabInfo::load(&dir).unwrap().unwrap();
    let last = info.invocations.last().unwrap();
    assert_eq!(last.outcome, "complete");
    assert!(last.started.is_empty(), "{last:?}");
    assert!(dir.join("report.html").exists());
}

#[test]
fn a_lab_directory_measured_with_other_settings_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    std::fs::create_dir(&dir).unwrap();
    let json = r#"{"tool":"lbbench 0.1.0","settings":{"backends":4,"uri":"/perf.php?sleep=0.2",
        "duration_s":60.0,"pause_s":5.0,"rates":[100.0],"repeat":3,"timeout_s":5.0,
        "httperf_extra":["--add-header=Connection: close\\n"]},
        "machine":{"cpus":2,"cpu_model":null,"kernel":"6","os":null,"load_at_start":null},
        "httperf":{"program":"/usr/bin/httperf","version":"0.9.0"},"balancers":[],"sessions":[]}"#;
    std::fs::write(dir.join("lab.json"), json).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["lab", "--quick", "--balancers", "haproxy", "-o"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("other settings") && stderr.contains("--duration 60 (now 5)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Nothing was started or written.
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn a_missing_balancer_program_names_its_package_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let out = Command::new(env!("CARGO_BIN_EXE_lbbench"))
        .args(["lab", "--quick", "--balancers", "haproxy,pound", "--pound"])
        .arg(tmp.path().join("no-pound-here"))
        .arg("-o")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.contains("no-pound-here does not exist")
            && last.contains("install the Debian package pound"),
        "{stderr}"
    );
    // Nothing ran, nothing was written.
    assert!(!dir.exists());
}

/// The header of a lab file before the `tls` and `reply_size` key columns and the
/// `reply_mb_s` and `balancer_cpu_s_per_gb` lab columns, with one row in it.
fn old_layout_file(path: &Path) -> String {
    use lbbench::httperf::{Report, Thresholds, Validity};
    let extra = [
        "balancer_cpu_user_s",
        "balancer_cpu_system_s",
        "balancer_cpu_pct",
        "balancer_processes",
        "balancer_cpu_s_per_1k_req",
        "backends_cpu_user_s",
        "backends_cpu_system_s",
        "backends_cpu_pct",
        "backends_processes",
        "machine_busy_pct",
    ];
    let header: Vec<&str> = ["timestamp", "server", "target_rate", "run"]
        .iter()
        .chain(Report::COLUMNS)
        .chain(Validity::COLUMNS)
        .chain(&extra)
        .copied()
        .collect();
    let fixture = format!(
        "{}/tests/fixtures/httperf-add-header.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let report = parse_report(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let validity = Validity::assess(&report, Some(2.0), &Thresholds::default());
    let row: Vec<String> = ["2026-01-01T00:00:00Z", "nginx", "2", "1"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(report.to_cells())
        .chain(validity.to_cells())
        .chain(
            [
                "0.01", "0.01", "1.0", "3", "10.0", "0.01", "0.01", "1.0", "2", "50.0",
            ]
            .map(String::from),
        )
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    w.write_record(&row).unwrap();
    let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
    std::fs::write(path, &text).unwrap();
    text
}

#[test]
fn a_tls_and_size_lab_extends_an_older_file_and_reports_both() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    std::fs::create_dir_all(&dir).unwrap();
    let csv_path = dir.join("perf_nginx_combined.csv");
    let original = old_layout_file(&csv_path);
    let common_args = ["--balancers", "nginx", "--backends", "2", "--repeat", "1"];
    let common_args = [
        &common_args[..],
        &["--duration", "2", "--pause", "0.2", "--tls"],
    ]
    .concat();

    // A size lab with TLS: nginx plain, then terminating TLS, at 1 KiB and 64 KiB.
    let args = [&common_args[..], &["--sizes", "1k,64k", "--rate", "20"]].concat();
    let sysctls = || {
        ["net/core/somaxconn", "net/ipv4/ip_local_port_range"]
            .map(|p| std::fs::read_to_string(format!("/proc/sys/{p}")).unwrap())
    };
    let before = sysctls();
    let (status, stdout, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{status:?}\n{stderr}");
    // The limits are printed before anything starts; without --tune nothing changes.
    assert!(stderr.contains("lab: limits: open files: soft"), "{stderr}");
    assert!(
        stderr.contains("the largest rate these allow: about"),
        "{stderr}"
    );
    assert!(!stderr.contains("--tune"), "{stderr}");
    assert_eq!(sysctls(), before);
    // The older file got the new columns; its original is kept beside it.
    let backup =
        dir.join("perf_nginx_combined.csv.before-tls-reply-size-reply-mb-s-balancer-cpu-s-per-gb");
    assert!(stderr.contains("written by an older lbbench"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    let (header, rows) = read_rows(&csv_path);
    for c in ["tls", "reply_size", "reply_mb_s", "balancer_cpu_s_per_gb"] {
        assert!(header.iter().any(|h| h == c), "no {c} in {header:?}");
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    let old = &rows[0];
    assert_eq!(
        (old["tls"].as_str(), old["reply_size"].as_str()),
        ("off", "")
    );
    assert_eq!(old["target_rate"], "2");
    assert_eq!(old["machine_busy_pct"], "50.0");
    let mut seen = Vec::new();
    for r in &rows[1..] {
        let size: f64 = r["reply_size"].parse().unwrap();
        seen.push((r["tls"].clone(), r["reply_size"].clone()));
        assert_eq!(r["target_rate"], "20");
        assert_eq!(r["total_replies"], "40", "{r:?}");
        assert_eq!(r["reply_status_2xx"], "40", "{r:?}");
        // httperf counts the content of each reply: exactly the size asked for.
        assert_eq!(r["reply_size_content"].parse::<f64>().unwrap(), size);
        // 20 replies/s of `size` bytes, less the wait for the last replies.
        let mb_s: f64 = r["reply_mb_s"].parse().unwrap();
        let want = 20.0 * size / 1e6;
        assert!(mb_s > want * 0.8 && mb_s < want * 1.1, "{mb_s} vs {want}");
        // 40 small replies may cost the balancer less than a clock tick (10 ms): 0 then.
        let per_gb: f64 = r["balancer_cpu_s_per_gb"].parse().unwrap();
        assert!(per_gb >= 0.0, "{r:?}");
        let tls = if r["tls"] == "on" { "_tls" } else { "" };
        let raw = dir.join(format!("raw/nginx{tls}_s{}_r20_1.txt", r["reply_size"]));
        let text = std::fs::read_to_string(&raw).unwrap();
        assert_eq!(text.contains(" --ssl "), r["tls"] == "on", "{raw:?}");
    }
    let want: Vec<(String, String)> = [
        ("off", "1024"),
        ("off", "65536"),
        ("on", "1024"),
        ("on", "65536"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .to_vec();
    assert_eq!(seen, want);
    assert!(stdout.contains("| nginx TLS | 64 KiB | 20 |"), "{stdout}");
    // The lab's key and certificate, private to their owner.
    for f in ["tls/lab-ca.pem", "tls/balancer.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    // Then a rate lab with TLS in the same directory: plain and TLS side by side.
    let args = [&common_args[..], &["--from", "50", "--to", "50"]].concat();
    let (status, stdout, stderr) = start_lab(&dir, &args).wait();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stdout.contains("Plain and TLS side by side"), "{stdout}");
    assert!(stdout.contains("| nginx | full handshakes |"), "{stdout}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts).expect("well-formed HTML");
    let by_id = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    let side = texts(by_id("tls-side-by-side"));
    assert!(side.contains(&"nginx") && side.contains(&"50"), "{side:?}");
    assert!(texts(by_id("tls-cost")).contains(&"full handshakes"));
    let sizes = texts(by_id("size-table"));
    assert!(
        sizes.contains(&"nginx TLS") && sizes.contains(&"64 KiB"),
        "{sizes:?}"
    );
    for fig in ["size-throughput", "size-cpu-per-gb", "reply-time"] {
        let t = texts(by_id(fig));
        assert!(t.contains(&"nginx TLS"), "#{fig}: {t:?}");
    }
    assert_all_gone(&dir);
}

/// Runs `args` in a network namespace of its own (sysctls such as the local port range are
/// per namespace), with its loopback up; removes it after.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("lb-tls-tune-{}", std::process::id());
        let ip = |args: &[&str]| {
            let s = Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2)");
            assert!(s.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]);
        ns
    }

    fn read(&self, sysctl: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.0,
                "cat",
                &format!("/proc/sys/{sysctl}"),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn tune_raises_the_port_range_for_the_lab_and_puts_it_back() {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::new();
    const RANGE: &str = "net/ipv4/ip_local_port_range";
    let host = std::fs::read_to_string(format!("/proc/sys/{RANGE}")).unwrap();
    let before = ns.read(RANGE);
    assert_ne!(before.split_whitespace().next(), Some("1024"), "{before}");
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_lbbench"),
            "lab",
            "--tune",
        ])
        .args([
            "--balancers",
            "nginx",
            "--backends",
            "1",
            "--from",
            "20",
            "--to",
            "20",
        ])
        .args(["--repeat", "1", "--duration", "1", "-o"])
        .arg(tmp.path().join("lab"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--tune: net.ipv4.ip_local_port_range: ")
            && stderr.contains(" -> 1024 65535 (system-wide"),
        "{stderr}"
    );
    // The printout after the change shows the tuned range.
    assert!(
        stderr.contains("local port range: 1024-65535 (64512 ports)"),
        "{stderr}"
    );
    // Put back at the end, and the host's own range never changed.
    assert_eq!(ns.read(RANGE), before);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/sys/{RANGE}")).unwrap(),
        host
    );
}
