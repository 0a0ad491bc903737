//! httperf's command line, built from typed arguments.
//!
//! httperf 0.9.0 (Debian's) has no duration flag: a run of `S` seconds at `R` connections/s
//! is `--num-conns = R·S` ([`num_conns_for`]). Every option is written as `--name=value`, the
//! form httperf echoes, so the echoed command line in the report matches what was run.

use std::fmt;
use std::time::Duration;

use crate::csvcell::fmt_f64;

/// The options lbbench sets itself; passing them again among the extra arguments is refused,
/// because httperf would silently take the last one.
pub const MANAGED_OPTIONS: &[&str] = &[
    "server",
    "port",
    "uri",
    "rate",
    "num-conns",
    "num-calls",
    "timeout",
    "hog",
    "ssl",
    "ssl-no-reuse",
];

/// How a run's connections use TLS (httperf's `--ssl`), as written in the CSV's `tls` column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Tls {
    /// Plain HTTP.
    #[default]
    Off,
    /// TLS, every connection a full handshake (`--ssl --ssl-no-reuse`): the worst case for
    /// the server.
    On,
    /// TLS with session resumption: httperf resumes TLS sessions only between the
    /// connections of one of its sessions (`--wsess`), so the run is sessions of
    /// [`RESUMED_SESSION_CONNECTIONS`] connections one after another (each request on a
    /// connection of its own, which needs a server that closes after each reply, as with the
    /// lab's `Connection: close`): the first a full handshake, the others resumed.
    Resumed,
}

/// The connections of one session when TLS sessions are resumed: one full handshake and
/// three resumed ones.
pub const RESUMED_SESSION_CONNECTIONS: u64 = 4;

impl Tls {
    /// All of them, in the order reports show them.
    pub const ALL: [Tls; 3] = [Tls::Off, Tls::On, Tls::Resumed];

    /// The CSV cell: `off`, `on` or `resumed`.
    pub fn cell(self) -> &'static str {
        match self {
            Tls::Off => "off",
            Tls::On => "on",
            Tls::Resumed => "resumed",
        }
    }

    /// Reads a CSV cell; an empty one (a file from before the column) is `off`.
    pub fn from_cell(cell: &str) -> Option<Tls> {
        match cell.trim() {
            "" | "off" => Some(Tls::Off),
            "on" => Some(Tls::On),
            "resumed" => Some(Tls::Resumed),
            _ => None,
        }
    }

    /// Whether the connections use TLS at all.
    pub fn is_on(self) -> bool {
        self != Tls::Off
    }

    /// How reports name it: `plain`, `TLS`, `TLS resumed`.
    pub fn label(self) -> &'static str {
        match self {
            Tls::Off => "plain",
            Tls::On => "TLS",
            Tls::Resumed => "TLS resumed",
        }
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cell())
    }
}

/// The arguments of one httperf run (serializable: the lab sends them to its client hosts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttperfArgs {
    /// Host name or address of the server (`--server`).
    pub server: String,
    /// TCP port (`--port`).
    pub port: u16,
    /// The URI requested (`--uri`).
    pub uri: String,
    /// New connections per second (`--rate`).
    pub rate: f64,
    /// Connections in total (`--num-conns`); the run lasts about `num_conns / rate` seconds.
    pub num_conns: u64,
    /// Requests per connection (`--num-calls`).
    pub num_calls: u64,
    /// Seconds to wait for a reply before counting a client timeout (`--timeout`); `None`
    /// waits forever.
    pub timeout: Option<f64>,
    /// Use every local port, not just 1024..5000 (`--hog`); needed for high rates.
    pub hog: bool,
    /// TLS (`--ssl`, and how sessions are resumed).
    pub tls: Tls,
    /// More arguments, passed to httperf as they are, after lbbench's own.
    pub extra: Vec<String>,
}

/// Arguments that httperf would refuse or that make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
    /// An extra argument sets an option lbbench already sets.
    #[error("`{arg}` sets an option lbbench already sets; use lbbench's --{option} instead")]
    Managed {
        arg: String,
        /// The option it sets.
        option: &'static str,
    },
}

impl HttperfArgs {
    /// Arguments for `num_conns` connections at `rate`/s to `server`, with the defaults: port
    /// 80, URI `/`, one call per connection, a 5 s timeout, no `--hog`.
    pub fn new(server: impl Into<String>, rate: f64, num_conns: u64) -> Self {
        HttperfArgs {
            server: server.into(),
            port: 80,
            uri: "/".to_owned(),
            rate,
            num_conns,
            num_calls: 1,
            timeout: Some(5.0),
            hog: false,
            tls: Tls::Off,
            extra: Vec::new(),
        }
    }

    /// Checks the values before anything runs.
    pub fn validate(&self) -> Result<(), ArgsError> {
        let bad = |m: String| Err(ArgsError::Invalid(m));
        if self.server.trim().is_empty() {
            return bad("the server name is empty".into());
        }
        if self.port == 0 {
            return bad("the port must be 1..65535".into());
        }
        if !self.uri.starts_with('/') {
            return bad(format!("the URI must start with `/` (got `{}`)", self.uri));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad(format!(
                "the rate must be a positive number (got {})",
                self.rate
            ));
        }
        if self.num_conns == 0 {
            // httperf would run forever.
            return bad("the number of connections must be at least 1".into());
        }
        if self.num_calls == 0 {
            return bad("the number of calls per connection must be at least 1".into());
        }
        if let Some(t) = self.timeout
            && !(t.is_finite() && t > 0.0)
        {
            return bad(format!("the timeout must be a positive number (got {t})"));
        }
        if self.tls == Tls::Resumed {
            if self.num_calls != 1 {
                return bad(
                    "TLS resumption runs one request per connection (--num-calls 1)".into(),
                );
            }
            if let Some(arg) = self
                .extra
                .iter()
                .find(|a| a.starts_with("--wsess") || a.starts_with("--wsesslog"))
            {
                return bad(format!(
                    "`{arg}`: TLS resumption makes its own sessions (--wsess)"
                ));
            }
        }
        for arg in &self.extra {
            if let Some(option) = managed_option(arg) {
                return Err(ArgsError::Managed {
                    arg: arg.clone(),
                    option,
                });
            }
        }
        Ok(())
    }

    /// httperf's arguments (without the program name).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Vec::with_capacity(8 + self.extra.len());
        if self.hog {
            a.push("--hog".to_owned());
        }
        if let Some(t) = self.timeout {
            a.push(format!("--timeout={}", fmt_rate(t)));
        }
        a.push(format!("--server={}", self.server));
        a.push(format!("--port={}", self.port));
        a.push(format!("--uri={}", self.uri));
        match self.tls {
            Tls::Resumed => {
                // Sessions of K connections started at rate / K: the same connections at
                // the same rate, K at a time.
                let k = RESUMED_SESSION_CONNECTIONS;
                a.push(format!("--rate={}", fmt_rate(self.rate / k as f64)));
                a.push(format!("--wsess={},{k},0", self.num_conns.div_ceil(k)));
                a.push("--ssl".to_owned());
            }
            Tls::Off | Tls::On => {
                a.push(format!("--rate={}", fmt_rate(self.rate)));
                a.push(format!("--num-conns={}", self.num_conns));
                a.push(format!("--num-calls={}", self.num_calls));
                if self.tls == Tls::On {
                    a.push("--ssl".to_owned());
                    a.push("--ssl-no-reuse".to_owned());
                }
            }
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// How long issuing all connections takes: `num_conns / rate`. The run itself lasts up to
    /// `timeout` longer, while the last replies come in.
    pub fn issue_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.num_conns as f64 / self.rate).unwrap_or(Duration::MAX)
    }

    /// The request rate the run aims at: connections/s × calls per connection.
    pub fn target_request_rate(&self) -> f64 {
        self.rate * self.num_calls as f64
    }

    /// The request rate httperf's report can be checked against: `None` for resumed TLS
    /// sessions, where httperf sends each later request of a session once on the connection
    /// the server has just closed (a `connreset`) before it sends it again on a new,
    /// resumed one, so its request count holds those extra attempts.
    pub fn checkable_request_rate(&self) -> Option<f64> {
        (self.tls != Tls::Resumed).then(|| self.target_request_rate())
    }
}

impl fmt::Display for HttperfArgs {
    /// The command line as httperf would be run, for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "httperf {}", self.to_args().join(" "))
    }
}

/// Which managed option an extra argument sets, if any (`--rate=5`, `--rate`, `--hog`).
/// For the TLS options, the lbbench option that sets them (`--tls`, `--tls-resumption`).
fn managed_option(arg: &str) -> Option<&'static str> {
    let name = arg.strip_prefix("--")?;
    let name = name.split_once('=').map_or(name, |(n, _)| n);
    MANAGED_OPTIONS
        .iter()
        .copied()
        .find(|m| *m == name)
        .map(|m| match m {
            "ssl" => "tls",
            "ssl-no-reuse" => "tls-resumption",
            m => m,
        })
}

/// A rate (or another float option) as lbbench writes it: `100`, `0.5`; integers without a
/// decimal point, so the CSV and file names read naturally.
pub fn fmt_rate(rate: f64) -> String {
    if rate.fract() == 0.0 && rate.abs() < 1e15 {
        format!("{rate:.0}")
    } else {
        let s = fmt_f64(rate);
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The number of connections for a run of `duration_s` seconds at `rate` connections/s
/// (rounded, at least 1): the lab report's `num_conns = rate × length`.
pub fn num_conns_for(rate: f64, duration_s: f64) -> u64 {
    let n = (rate * duration_s).round();
    if n.is_finite() && n >= 1.0 {
        n as u64
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_lab_report_command_line() {
        let mut a = HttperfArgs::new("balance1", 100.0, num_conns_for(100.0, 60.0));
        a.uri = "/perf.php?sleep=0.2".into();
        a.hog = true;
        assert_eq!(
            a.to_args(),
            [
                "--hog",
                "--timeout=5",
                "--server=balance1",
                "--port=80",
                "--uri=/perf.php?sleep=0.2",
                "--rate=100",
                "--num-conns=6000",
                "--num-calls=1"
            ]
        );
        assert_eq!(a.issue_time(), Duration::from_secs(60));
        assert_eq!(a.target_request_rate(), 100.0);
        assert!(a.to_string().starts_with("httperf --hog --timeout=5"));
    }

    #[test]
    fn no_timeout_and_extra_arguments() {
        let mut a = HttperfArgs::new("h", 2.5, 10);
        a.timeout = None;
        a.num_calls = 3;
        a.extra = vec!["--verbose".into()];
        assert_eq!(
            a.to_args(),
            [
                "--server=h",
                "--port=80",
                "--uri=/",
                "--rate=2.5",
                "--num-conns=10",
                "--num-calls=3",
                "--verbose"
            ]
        );
        assert_eq!(a.target_request_rate(), 7.5);
        a.validate().unwrap();
    }

    #[test]
    fn refuses_what_httperf_would_misread() {
        let ok = HttperfArgs::new("h", 10.0, 10);
        let check = |f: &dyn Fn(&mut HttperfArgs)| {
            let mut a = ok.clone();
            f(&mut a);
            a.validate().unwrap_err().to_string()
        };
        assert!(check(&|a| a.num_conns = 0).contains("at least 1"));
        assert!(check(&|a| a.rate = 0.0).contains("positive"));
        assert!(check(&|a| a.rate = f64::NAN).contains("positive"));
        assert!(check(&|a| a.num_calls = 0).contains("calls"));
        assert!(check(&|a| a.timeout = Some(-1.0)).contains("timeout"));
        assert!(check(&|a| a.uri = "x".into()).contains("`/`"));
        assert!(check(&|a| a.server = " ".into()).contains("server"));
        assert!(check(&|a| a.port = 0).contains("port"));
        let msg = check(&|a| a.extra = vec!["--rate=5".into()]);
        assert!(
            msg.contains("`--rate=5`") && msg.contains("--rate"),
            "{msg}"
        );
        assert!(check(&|a| a.extra = vec!["--hog".into()]).contains("--hog"));
        // Unmanaged options and look-alikes pass.
        let mut a = ok.clone();
        a.extra = vec!["--ratex=1".into(), "--wsess=1,2,3".into(), "5".into()];
        a.validate().unwrap();
    }

    #[test]
    fn tls_options() {
        let mut a = HttperfArgs::new("h", 100.0, 1000);
        a.tls = Tls::On;
        let args = a.to_args();
        assert!(args.ends_with(&[
            "--num-calls=1".to_owned(),
            "--ssl".to_owned(),
            "--ssl-no-reuse".to_owned()
        ]));
        a.tls = Tls::Resumed;
        a.validate().unwrap();
        let args = a.to_args();
        assert!(args.contains(&"--rate=25".to_owned()), "{args:?}");
        assert!(args.contains(&"--wsess=250,4,0".to_owned()), "{args:?}");
        assert!(args.contains(&"--ssl".to_owned()));
        assert!(!args.iter().any(|x| x.starts_with("--num-conns")));
        assert_eq!(a.target_request_rate(), 100.0);
        a.num_calls = 2;
        assert!(a.validate().is_err());
        a.num_calls = 1;
        a.extra = vec!["--wsess=1,2,3".into()];
        assert!(a.validate().is_err());
        let mut plain = HttperfArgs::new("h", 1.0, 1);
        plain.extra = vec!["--ssl".into()];
        assert!(plain.validate().unwrap_err().to_string().contains("--ssl"));
        for t in Tls::ALL {
            assert_eq!(Tls::from_cell(t.cell()), Some(t));
        }
        assert_eq!(Tls::from_cell(""), Some(Tls::Off));
        assert_eq!(Tls::from_cell("yes"), None);
    }

    #[test]
    fn rates_format_naturally() {
        assert_eq!(fmt_rate(100.0), "100");
        assert_eq!(fmt_rate(0.5), "0.5");
        assert_eq!(fmt_rate(12.25), "12.25");
        assert_eq!(num_conns_for(0.5, 3.0), 2);
        assert_eq!(num_conns_for(0.01, 1.0), 1);
        assert_eq!(num_conns_for(2000.0, 60.0), 120_000);
    }
}
