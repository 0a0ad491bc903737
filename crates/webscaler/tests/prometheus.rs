//! Monitoring end to end: a real Prometheus server (the Debian package, on 127.0.0.1 with its
//! own port, configuration and data directory) scrapes `webscaler run --metrics` and a real
//! node_exporter whose textfile collector reads a `diskstats --prometheus` file, and its
//! HTTP API answers with the values that webscaler's CSV and diskstats' CSV hold. Both
//! expositions pass `promtool check metrics`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::net::{free_port, http_get};
use common::process::Supervised;
use common::wait::poll_until;
use support::{POLL, Teardown, WebscalerRun};
use testkit::assert_promtool_accepts;
use webscaler::controller::record::read_csv;

/// Generous: 2 shared cores.
const T: Duration = Duration::from_secs(60);

fn local(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// The value of the sample `key` (`name{labels}`) in an exposition.
fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(k, _)| *k == key))
        .and_then(|(_, v)| v.parse().ok())
}

/// A node_exporter with only its textfile collector, reading `dir`; killed when dropped.
fn node_exporter(dir: &Path, log: &Path) -> (SocketAddr, Supervised) {
    let addr = local(free_port().unwrap());
    let mut cmd = Command::new("prometheus-node-exporter");
    cmd.args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let proc = Supervised::spawn("node_exporter", &mut cmd)
        .expect("prometheus-node-exporter (the Debian package; scripts/setup.sh installs it)");
    (addr, proc)
}

/// A Prometheus server scraping `targets` (job name, address) every second; killed when
/// dropped.
struct Prometheus {
    addr: SocketAddr,
    _proc: Supervised,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, targets: &[(&str, SocketAddr)]) -> Prometheus {
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, addr) in targets {
            config +=
                &format!("  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n");
        }
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let addr = local(free_port().unwrap());
        let log = dir.join("prometheus.log");
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let proc = Supervised::spawn("prometheus", &mut cmd)
            .expect("prometheus (the Debian package; scripts/setup.sh installs it)");
        let p = Prometheus {
            addr,
            _proc: proc,
            log,
        };
        poll_until("Prometheus ready", T, POLL * 5, || {
            http_get(addr, "/-/ready", T)
                .ok()
                .filter(|r| r.status == 200)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of an instant query that selects one series, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let q: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let r = http_get(self.addr, &format!("/api/v1/query?query={q}"), T).ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let result = v["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{promql}: {result:?}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Polls until `promql` has the value `want`.
    fn wait_for(&self, promql: &str, want: f64) {
        poll_until(
            &format!("{promql} = {want} in Prometheus"),
            T,
            POLL * 10,
            || (self.query(promql) == Some(want)).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e} (it has {:?})\n{}", self.query(promql), self.log()));
    }
}

/// A real disk of this machine (not loop, ram or zram) if there is one, else the first device.
fn real_device() -> String {
    let text = std::fs::read_to_string("/proc/diskstats").unwrap();
    let all: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    all.iter()
        .find(|d| !["loop", "ram", "zram"].iter().any(|p| d.starts_with(p)))
        .or(all.first())
        .expect("a device in /proc/diskstats")
        .to_string()
}

#[test]
fn prometheus_scrapes_webscaler_and_diskstats_and_finds_their_values() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    // diskstats, once (the cron mode): its CSV row and its textfile.
    let dev = real_device();
    let textfile = h.join("textfile/diskstats.prom");
    std::fs::create_dir(h.join("textfile")).unwrap();
    let out = Command::new(testkit::workspace_bin("diskstats"))
        .args(["-d", &dev, "-o"])
        .arg(h)
        .arg("--prometheus")
        .arg(&textfile)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&textfile).unwrap();
    assert_promtool_accepts(&text);
    let row = last_row(&h.join(format!("mon_{dev}.csv")));

    // webscaler run, embedded, with its metrics.
    let state = h.join("state");
    let _teardown = Teardown(state.clone());
    let csv = h.join("run.csv");
    let frontend = local(free_port().unwrap());
    let metrics = local(free_port().unwrap());
    let run = WebscalerRun::start(
        h,
        &state,
        frontend,
        &[
            "--min",
            "1",
            "--metrics",
            &metrics.to_string(),
            "-o",
            csv.to_str().unwrap(),
        ],
        &[],
    );
    let body = poll_until("one backend serving in /metrics", T, POLL * 5, || {
        http_get(metrics, "/metrics", T)
            .ok()
            .filter(|r| sample(&r.body, "webscaler_servers{role=\"serving\"}") == Some(1.0))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run.log()))
    .body;
    assert_promtool_accepts(&body);
    assert_eq!(http_get(metrics, "/nope", T).unwrap().status, 404);

    let (node, _node_exporter) = node_exporter(&h.join("textfile"), &h.join("node.log"));
    let prom = Prometheus::start(h, &[("webscaler", metrics), ("node", node)]);
    prom.wait_for("up{job=\"webscaler\"}", 1.0);
    prom.wait_for("up{job=\"node\"}", 1.0);
    // node_exporter read the file without complaint.
    prom.wait_for("node_textfile_scrape_error", 0.0);

    // webscaler: what the CSV says (steady: one server, no traffic).
    prom.wait_for("webscaler_servers{role=\"serving\"}", 1.0);
    let records = read_csv(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    let last = records.last().unwrap();
    assert_eq!(last.haactive, 1);
    assert_eq!(last.needed, Some(1));
    prom.wait_for("webscaler_servers_needed", 1.0);
    prom.wait_for(
        "webscaler_servers{role=\"stopped\"}",
        f64::from(last.stopped),
    );
    prom.wait_for("webscaler_requests_per_second", last.rate.unwrap());
    prom.wait_for("webscaler_actions_total{kind=\"create\"}", 1.0);
    prom.wait_for("webscaler_actions_total{kind=\"ready\"}", 1.0);
    prom.wait_for("webscaler_haproxy_instances_answering", 1.0);
    // docs/monitoring.md's first query: nothing missing.
    prom.wait_for(
        "webscaler_servers_needed - ignoring(role) webscaler_servers{role=\"serving\"}",
        0.0,
    );
    assert!(
        prom.query("webscaler_tick_duration_seconds_count").unwrap()
            >= f64::from(records.len() as u32 - 1),
        "a tick observed per row"
    );

    // diskstats: what its CSV row says, in bytes and seconds.
    let sel = |name: &str| format!("diskstats_{name}{{job=\"node\",device=\"{dev}\"}}");
    prom.wait_for(&sel("read_bytes_total"), row["sectors_read"] * 512.0);
    prom.wait_for(&sel("written_bytes_total"), row["sectors_written"] * 512.0);
    prom.wait_for(
        &sel("reads_completed_total"),
        row["read_completed_successfully"],
    );
    prom.wait_for(
        &sel("io_time_seconds_total"),
        row["time_spent_doing_IO(ms)"] / 1000.0,
    );
    // The second query: one sample, scraped again and again, so no I/O between them.
    prom.wait_for(&format!("rate({}[5s])", sel("io_time_seconds_total")), 0.0);

    run.terminate();
}

/// The last row of a diskstats CSV file: column name → value.
fn last_row(path: &Path) -> std::collections::HashMap<String, f64> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let row = r.records().last().unwrap().unwrap();
    header
        .iter()
        .zip(row.iter())
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}
