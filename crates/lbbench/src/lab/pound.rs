//! Pound 4 in the lab: the lab report's Pound configuration (its listing 2.6) in 4.x syntax
//! (`Balancer iwrr` for round robin, as Pound 4's default is weighted random; `DeleteHeader` for
//! `HeadRemove`; no `User`/`Group`), run as `pound -F -f pound.cfg -p pound.pid`: in the foreground
//! Pound is one process (no supervisor) with a pool of worker threads.
//!
//! Its control socket (`pound.sock`, HTTP+JSON, see `poundctl`) and pid file are in its run
//! dir. Pound removes both on a clean exit, but leaves the socket behind when it fails to
//! bind its port, so the stop removes both anyway.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use askama::Template;

use super::{ConfigSpec, Flavor, Upstream, config_path_str};

/// The control socket's file name in the run dir.
pub const CONTROL_SOCKET: &str = "pound.sock";
/// The pid file's name in the run dir.
pub const PID_FILE: &str = "pound.pid";

#[derive(Template)]
#[template(path = "lab/pound.cfg", escape = "none")]
struct Config<'a> {
    listen_addr: IpAddr,
    listen_port: u16,
    control_socket: &'a str,
    max_connections: u32,
    request_log: bool,
    tls: Option<&'a str>,
    servers: &'a [Upstream],
}

/// Pound 4 as a lab balancer: `Balancer iwrr`, checked with `pound -c`, run in the foreground.
#[derive(Debug, Clone, Copy)]
pub struct Pound;

impl Flavor for Pound {
    fn name(&self) -> &'static str {
        "pound"
    }

    fn package(&self) -> &'static str {
        "pound"
    }

    fn package_note(&self) -> &'static str {
        "; Debian 12 has no pound package, so it unpacks Debian 13's under /opt/pound"
    }

    fn extra_dirs(&self) -> &'static [&'static str] {
        &["/opt/pound/bin"]
    }

    fn config_file_name(&self) -> &'static str {
        "pound.cfg"
    }

    fn render(&self, spec: &ConfigSpec) -> askama::Result<String> {
        let custom = |e: super::LabError| askama::Error::Custom(e.into());
        let socket = spec.run_dir.join(CONTROL_SOCKET);
        let socket = config_path_str(&socket).map_err(custom)?;
        let tls = spec
            .tls
            .as_deref()
            .map(config_path_str)
            .transpose()
            .map_err(custom)?;
        Config {
            listen_addr: spec.listen.ip(),
            listen_port: spec.listen.port(),
            control_socket: socket,
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
        c.arg("-c").arg("-v").arg("-f").arg(config);
        c
    }

    fn run_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-F")
            .arg("-f")
            .arg(config)
            .arg("-p")
            .arg(run_dir.join(PID_FILE));
        c
    }

    fn version_command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-V");
        c
    }

    fn parse_version(&self, stdout: &str, stderr: &str) -> Option<String> {
        parse_version(stdout).or_else(|| parse_version(stderr))
    }

    fn runtime_files(&self, run_dir: &Path) -> Vec<PathBuf> {
        vec![run_dir.join(CONTROL_SOCKET), run_dir.join(PID_FILE)]
    }

    fn process_count(&self) -> usize {
        // In the foreground: one process, with a pool of threads.
        1
    }
}

/// The version in `pound -V`'s first line: `pound (pound) 4.16` → `4.16`.
pub fn parse_version(out: &str) -> Option<String> {
    let line = out.lines().next()?;
    if !line.trim_start().starts_with("pound") {
        return None;
    }
    let v = line.split_whitespace().last()?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version() {
        assert_eq!(
            parse_version("pound (pound) 4.16\nCopyright (C) 2002-2010 Apsis GmbH\n").as_deref(),
            Some("4.16")
        );
        assert_eq!(parse_version("pound (pound)\n"), None);
        assert_eq!(parse_version("nginx version: nginx/1.22.1"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn config_is_listing_2_6_in_pound_4_syntax() {
        let spec = ConfigSpec::example(18280, 2, "/tmp/lbbench-pound-x", 1024);
        let cfg = Pound.render(&spec).unwrap();
        let lines: Vec<&str> = cfg.lines().map(str::trim).collect();
        for line in [
            "Balancer iwrr",
            "LogLevel 0",
            "WorkerMaxCount 1024",
            "Control \"/tmp/lbbench-pound-x/pound.sock\"",
            "Address 127.0.0.1",
            "Port 18280",
            "DeleteHeader \"X-Forwarded-For\"",
            "Port 18081",
            "Port 18082",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{cfg}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("User")));
        // Every block is closed.
        let opened = lines
            .iter()
            .filter(|l| l.starts_with("ListenHTTP") || **l == "Backend" || l.starts_with("Service"))
            .count();
        assert_eq!(opened, lines.iter().filter(|l| **l == "End").count());
        let tls = Pound
            .render(&ConfigSpec {
                tls: Some("/lab/tls/balancer.pem".into()),
                ..spec
            })
            .unwrap();
        let lines: Vec<&str> = tls.lines().map(str::trim).collect();
        assert!(lines.contains(&"ListenHTTPS \"web\""), "{tls}");
        assert!(lines.contains(&"Cert \"/lab/tls/balancer.pem\""), "{tls}");
        assert!(!lines.iter().any(|l| l.starts_with("ListenHTTP ")));
    }
}
