//! The lab's settings: the balancers, the backends, the sweep run against each, and what of
//! them is recorded in `lab.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::TimeFormat;

use super::LabRunError;
use crate::httperf::{Httperf, HttperfArgs, Tls, fmt_rate, num_conns_for};
use crate::lab::Balancer;
use crate::lab::hosts::HostsFile;
use crate::lab::hosts::check::CheckSettings;
use crate::lab::info::LabSettings;
use crate::sweep::{ProgressMode, SweepConfig, default_output, rates};

/// One sweep of the lab: a balancer, and how clients connect to it. The lab starts the
/// balancer for each leg (terminating TLS for a TLS leg) and runs the leg's sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// The balancer.
    pub balancer: Balancer,
    /// Plain HTTP or TLS.
    pub tls: Tls,
}

impl std::fmt::Display for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tls {
            Tls::Off => write!(f, "{}", self.balancer),
            t => write!(f, "{} ({})", self.balancer, t.label()),
        }
    }
}

/// The header every lab request carries. httperf closes each connection first after its
/// reply, which leaves a TIME_WAIT entry on the client side for 60 s; on loopback, runs of
/// 2,000 connections/s then run out of client ports (`fd-unavail`, `addrunavail`) after
/// about 28,000 connections. With `Connection: close` the balancer closes first and holds
/// the TIME_WAIT instead, on its listening port, which needs no client port.
pub const CONNECTION_CLOSE: &str = "--add-header=Connection: close\\n";

/// Everything a lab run needs.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The balancers, in the order they are measured.
    pub balancers: Vec<Balancer>,
    /// How many backends.
    pub backends: usize,
    /// The demanded connection rates (one rate for a size lab).
    pub rates: Vec<f64>,
    /// How clients connect, each a sweep of its own per balancer: `[Off]`, or with `--tls`
    /// `[Off, On]` (`[Off, Resumed]` with `--tls-resumption on`), plain first so the two
    /// are measured side by side.
    pub tls: Vec<Tls>,
    /// Reply sizes in bytes: a size lab sweeps them at `rates[0]` (`size=` added to the
    /// URI); empty for a rate lab.
    pub sizes: Vec<u64>,
    /// Runs per rate.
    pub repeat: u32,
    /// Seconds per run.
    pub duration_s: f64,
    /// Pause between runs.
    pub pause: Duration,
    /// The URI every request asks for (`/perf.php?sleep=0.2` by default).
    pub uri: String,
    /// httperf's reply timeout, in s.
    pub timeout_s: f64,
    /// The lab's directory: CSV files, raw outputs, logs, `lab.json`, `report.html`.
    pub output: PathBuf,
    /// The httperf program and its settings for every run.
    pub httperf: Httperf,
    /// The `lbbench` binary the backends run from.
    pub lbbench: PathBuf,
    /// A balancer's program, where it is not the one found in `PATH` and the sbin
    /// directories.
    pub programs: BTreeMap<Balancer, PathBuf>,
    /// The sweep's progress display.
    pub progress: ProgressMode,
    /// Timestamps in the CSV files.
    pub time_format: TimeFormat,
    /// The CPU file's interval (the lab report's `sar -u 2`).
    pub cpu_interval: Duration,
    /// Raise the limits that bound the lab before it starts (`--tune`, see
    /// [`crate::lab::limits::Tuning`]); without it nothing system-wide changes.
    pub tune: bool,
    /// The hosts of a lab across hosts (`--hosts FILE`); `None` runs everything on this
    /// machine, on 127.0.0.1.
    pub hosts: Option<HostsFile>,
}

impl LabConfig {
    /// The connection rate of a size lab unless `--rate` says otherwise: 20 conn/s, which
    /// every balancer holds with small replies, so that what changes along the sweep is the
    /// size (at 16 MiB that is 335 MB/s).
    pub const SIZE_LAB_RATE: f64 = 20.0;

    /// The lab report's sweep (100 to 2,000 conn/s by 100, 3 runs of 60 s each) against every
    /// balancer, with 4 backends, a 5 s pause and `/perf.php?sleep=0.2`.
    pub fn full(output: PathBuf, httperf: Httperf, lbbench: PathBuf) -> LabConfig {
        LabConfig {
            balancers: Balancer::ALL.to_vec(),
            backends: 4,
            rates: rates(100.0, 2000.0, 100.0).unwrap_or_default(),
            tls: vec![Tls::Off],
            sizes: Vec::new(),
            repeat: 3,
            duration_s: 60.0,
            pause: Duration::from_secs(5),
            uri: "/perf.php?sleep=0.2".into(),
            timeout_s: 5.0,
            output,
            httperf,
            lbbench,
            programs: BTreeMap::new(),
            progress: ProgressMode::Auto,
            time_format: TimeFormat::Local,
            cpu_interval: Duration::from_secs(2),
            tune: false,
            hosts: None,
        }
    }

    /// A reduced sweep for a first look: 100 to 1,000 conn/s by 300, one 5 s run each, 2 s
    /// apart (under 2 minutes for all three balancers).
    pub fn quick(output: PathBuf, httperf: Httperf, lbbench: PathBuf) -> LabConfig {
        LabConfig {
            rates: rates(100.0, 1000.0, 300.0).unwrap_or_default(),
            repeat: 1,
            duration_s: 5.0,
            pause: Duration::from_secs(2),
            ..LabConfig::full(output, httperf, lbbench)
        }
    }

    /// The settings recorded in `lab.json`.
    pub fn settings(&self) -> LabSettings {
        LabSettings {
            backends: self.backends,
            uri: self.uri.clone(),
            duration_s: self.duration_s,
            pause_s: self.pause.as_secs_f64(),
            rates: self.rates.clone(),
            repeat: self.repeat,
            timeout_s: self.timeout_s,
            httperf_extra: vec![CONNECTION_CLOSE.to_owned()],
            tls: self.tls.iter().map(|t| t.cell().to_owned()).collect(),
            sizes: self.sizes.clone(),
            hosts: self
                .hosts
                .iter()
                .flat_map(|f| &f.hosts)
                .map(|h| format!("{} {} {}", h.role, h.name, h.address))
                .collect(),
        }
    }

    /// What the hosts of a lab across hosts must have (see [`CheckSettings`]): httperf on
    /// the clients, each balancer on its host, and client ports for the longest run (what
    /// one client makes within a minute, the time TIME_WAIT lasts).
    pub fn host_check(&self) -> CheckSettings {
        let clients = self
            .hosts
            .as_ref()
            .map_or(1, |h| h.clients().count())
            .max(1) as f64;
        let top = self.rates.iter().copied().fold(0.0, f64::max);
        CheckSettings {
            balancers: self.balancers.clone(),
            programs: self.programs.clone(),
            httperf: self.httperf.program().to_owned(),
            port: None,
            connections_per_client: (top * self.duration_s.min(60.0) / clients).ceil() as u64,
        }
    }

    /// Where httperf reaches the balancers: 127.0.0.1, or the balancer host's address.
    pub fn server(&self) -> String {
        self.hosts.as_ref().map_or_else(
            || "127.0.0.1".to_owned(),
            |h| h.balancer().address.to_string(),
        )
    }

    /// Every sweep of the lab, in order: each balancer, plain then TLS.
    pub fn legs(&self) -> Vec<Leg> {
        self.balancers
            .iter()
            .flat_map(|&balancer| self.tls.iter().map(move |&tls| Leg { balancer, tls }))
            .collect()
    }

    /// The sweep of one leg against its running balancer. Its rows go to the balancer's
    /// file, told apart by their `tls` and `reply_size` columns.
    pub fn sweep_for(&self, leg: Leg, port: u16) -> SweepConfig {
        let b = leg.balancer;
        let mut base = HttperfArgs::new(self.server(), self.rates[0], 1);
        base.port = port;
        base.uri = self.uri.clone();
        base.hog = true;
        base.timeout = Some(self.timeout_s);
        base.tls = leg.tls;
        base.extra = vec![CONNECTION_CLOSE.to_owned()];
        SweepConfig {
            label: b.name().to_owned(),
            base,
            rates: self.rates.clone(),
            sizes: self.sizes.clone(),
            repeat: self.repeat,
            duration_s: self.duration_s,
            pause: self.pause,
            output: self.output.join(default_output(b.name())),
            save_raw: Some(self.output.join("raw")),
            time_format: self.time_format,
            thresholds: Default::default(),
            progress: self.progress,
        }
    }

    /// About how long a reply takes: the URI's `sleep=` (the backend's wait) and 5 ms.
    pub fn reply_estimate_s(&self) -> f64 {
        let query = self.uri.split_once('?').map_or("", |(_, q)| q);
        crate::backend::parse_perf_query(query).sleep.as_secs_f64() + 0.005
    }

    /// Runs per leg.
    pub fn runs_per_leg(&self) -> usize {
        self.rates.len() * self.sizes.len().max(1) * self.repeat as usize
    }

    /// About how long the lab takes: each run's duration plus a second, and the pauses.
    pub fn estimate(&self) -> Duration {
        let runs = self.runs_per_leg() as f64;
        let per_leg =
            runs * (self.duration_s + 1.0) + (runs - 1.0).max(0.0) * self.pause.as_secs_f64();
        Duration::from_secs_f64(per_leg * self.legs().len() as f64)
    }

    pub(super) fn check(&self) -> Result<(), LabRunError> {
        let bad = |m: String| Err(LabRunError::Config(m));
        if self.balancers.is_empty() {
            return bad("no balancer to measure".into());
        }
        if !(1..=64).contains(&self.backends) {
            return bad(format!("--backends must be 1..64 (got {})", self.backends));
        }
        if self.output.as_os_str().is_empty() {
            return bad("the output directory is empty".into());
        }
        if self.tls.is_empty() {
            return bad("no way to connect (tls)".into());
        }
        if !self.sizes.is_empty() && self.rates.len() != 1 {
            return bad("a size lab runs at one rate (--rate)".into());
        }
        if let Some(hosts) = &self.hosts {
            if self.tune {
                return bad(
                    "--tune changes this machine's limits, and across hosts the lab runs \
                     elsewhere: set them on each host (--check shows what is short)"
                        .into(),
                );
            }
            let clients = hosts.clients().count() as u64;
            let least = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
            if num_conns_for(least, self.duration_s) < clients {
                return bad(format!(
                    "a run at {} conn/s for {} s has fewer connections than there are clients \
                     ({clients}): raise the rate or the duration",
                    fmt_rate(least),
                    fmt_rate(self.duration_s)
                ));
            }
        }
        // The sweep checks the rest (rates, repeat, duration, httperf's arguments) before its
        // first run; check it here too, before anything starts.
        for leg in self.legs().into_iter().take(self.tls.len()) {
            let cfg = self.sweep_for(leg, 80);
            crate::sweep::check_config(&cfg).map_err(|e| LabRunError::Config(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg() -> LabConfig {
        LabConfig::quick(
            PathBuf::from("out"),
            Httperf::locate(Some(Path::new("sh"))).unwrap(),
            PathBuf::from("lbbench"),
        )
    }

    #[test]
    fn quick_is_the_issue_s_reduced_sweep_and_under_two_minutes() {
        let c = cfg();
        assert_eq!(c.rates, [100.0, 400.0, 700.0, 1000.0]);
        assert_eq!((c.repeat, c.duration_s), (1, 5.0));
        assert_eq!(c.balancers.len(), 3);
        // 3 × (4 × 6 s + 3 × 2 s) = 90 s of runs and pauses.
        assert_eq!(c.estimate(), Duration::from_secs(90));
        let full = LabConfig::full(PathBuf::from("o"), c.httperf.clone(), PathBuf::new());
        // 3 × (60 × 61 s + 59 × 5 s): about 3 h 18 min.
        assert_eq!(full.estimate(), Duration::from_secs(3 * (60 * 61 + 59 * 5)));
        c.check().unwrap();
    }

    #[test]
    fn each_sweep_has_the_header_and_its_own_files() {
        let c = cfg();
        let s = c.sweep_for(
            Leg {
                balancer: Balancer::Pound,
                tls: Tls::Off,
            },
            4242,
        );
        assert_eq!(s.label, "pound");
        assert_eq!(s.output, PathBuf::from("out/perf_pound_combined.csv"));
        assert_eq!(s.save_raw, Some(PathBuf::from("out/raw")));
        let args = s.args_for(&s.plan()[1]).to_args();
        assert!(args.contains(&"--server=127.0.0.1".to_owned()), "{args:?}");
        assert!(args.contains(&"--port=4242".to_owned()));
        assert!(args.contains(&"--rate=400".to_owned()));
        assert!(args.contains(&"--num-conns=2000".to_owned()));
        assert!(args.contains(&"--hog".to_owned()));
        assert_eq!(args.last().unwrap(), "--add-header=Connection: close\\n");
    }

    #[test]
    fn bad_settings_are_refused_before_anything_starts() {
        let mut c = cfg();
        c.backends = 0;
        assert!(c.check().unwrap_err().is_usage());
        let mut c = cfg();
        c.repeat = 0;
        assert!(c.check().unwrap_err().is_usage());
        let mut c = cfg();
        c.balancers.clear();
        assert!(c.check().unwrap_err().is_usage());
    }
}
