//! HAProxy in the lab: the lab report's HAProxy configuration (its listing 2.5: round robin,
//! `option httpchk GET /`, `http-check expect string It\ works!`), run as `haproxy -W -f
//! haproxy.cfg` in the foreground: a master (the supervised child) and one worker with a thread per
//! CPU.
//!
//! Its admin socket (`admin.sock`, `level admin`) is in its run dir; HAProxy leaves it
//! behind when it exits, so the stop removes it. `noreuseport` makes a port clash a hard
//! error instead of a silently shared port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use askama::Template;

use super::{ConfigSpec, Flavor, Upstream, config_path_str};

/// The admin socket's file name in the run dir.
pub const ADMIN_SOCKET: &str = "admin.sock";

#[derive(Template)]
#[template(path = "lab/haproxy.cfg", escape = "none")]
struct Config<'a> {
    listen: SocketAddr,
    admin_socket: &'a str,
    max_connections: u32,
    request_log: bool,
    tls: Option<&'a str>,
    servers: &'a [Upstream],
}

/// HAProxy as a lab balancer: its config, checked with `haproxy -c`, run in the foreground.
#[derive(Debug, Clone, Copy)]
pub struct Haproxy;

impl Flavor for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn package(&self) -> &'static str {
        "haproxy"
    }

    fn config_file_name(&self) -> &'static str {
        "haproxy.cfg"
    }

    fn render(&self, spec: &ConfigSpec) -> askama::Result<String> {
        let custom = |e: super::LabError| askama::Error::Custom(e.into());
        let socket = spec.run_dir.join(ADMIN_SOCKET);
        let socket = config_path_str(&socket).map_err(custom)?;
        let tls = spec
            .tls
            .as_deref()
            .map(config_path_str)
            .transpose()
            .map_err(custom)?;
        Config {
            listen: spec.listen,
            admin_socket: socket,
            max_connections: spec.max_connections,
            request_log: spec.request_log,
            tls,
            servers: &spec.upstreams,
        }
        .render()
    }

    fn check_flag(&self) -> &'static str {
        "-c"
    }

    fn check_command(&self, program: &Path, config: &Path, _run_dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-c").arg("-f").arg(config);
        c
    }

    fn run_command(&self, program: &Path, config: &Path, _run_dir: &Path) -> Command {
        // -W: master-worker in the foreground (no -D); -db is not used, as it would turn
        // the master-worker mode off.
        let mut c = Command::new(program);
        c.arg("-W").arg("-f").arg(config);
        c
    }

    fn version_command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-v");
        c
    }

    fn parse_version(&self, stdout: &str, _stderr: &str) -> Option<String> {
        parse_version(stdout)
    }

    fn runtime_files(&self, run_dir: &Path) -> Vec<PathBuf> {
        vec![run_dir.join(ADMIN_SOCKET)]
    }

    fn process_count(&self) -> usize {
        // The master and one worker (with a thread per CPU).
        2
    }
}

/// The version in `haproxy -v`'s first line:
/// `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/` → `2.6.12-1+deb12u4`.
pub fn parse_version(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.contains("version"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "version")?;
    let v = words.next()?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version() {
        assert_eq!(
            parse_version(
                "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n\
                 Status: long-term supported branch\n"
            )
            .as_deref(),
            Some("2.6.12-1+deb12u4")
        );
        assert_eq!(
            parse_version("HA-Proxy version 1.5.8 2014/10/31\n").as_deref(),
            Some("1.5.8")
        );
        assert_eq!(parse_version("command not found"), None);
        assert_eq!(parse_version("version: unknown"), None);
    }

    #[test]
    fn config_has_the_reports_settings() {
        let spec = ConfigSpec::example(18080, 2, "/tmp/lbbench-haproxy-x", 4096);
        let cfg = Haproxy.render(&spec).unwrap();
        for line in [
            "stats socket \"/tmp/lbbench-haproxy-x/admin.sock\" mode 600 level admin",
            "noreuseport",
            "maxconn 4096",
            "bind 127.0.0.1:18080",
            "balance roundrobin",
            "option httpchk GET /",
            "http-check expect string It\\ works!",
            "server node-1 127.0.0.1:18081 check",
            "server node-2 127.0.0.1:18082 check",
            "option dontlog-normal",
        ] {
            assert!(
                cfg.lines().any(|l| l.trim() == line),
                "missing {line:?} in\n{cfg}"
            );
        }
        let logged = Haproxy
            .render(&ConfigSpec {
                request_log: true,
                ..spec
            })
            .unwrap();
        assert!(!logged.contains("dontlog-normal"));
        let tls = Haproxy
            .render(&ConfigSpec {
                tls: Some("/lab/tls/balancer.pem".into()),
                ..ConfigSpec::example(18080, 1, "/tmp/x", 64)
            })
            .unwrap();
        assert!(
            tls.lines()
                .any(|l| l.trim() == "bind 127.0.0.1:18080 ssl crt \"/lab/tls/balancer.pem\""),
            "{tls}"
        );
    }
}
