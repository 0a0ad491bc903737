//! nginx in the lab: a round-robin `upstream` (in a shared-memory `zone`, so that all the
//! workers share one rotation), run as `nginx -c nginx.conf -p RUN_DIR -e stderr` with
//! `daemon off; master_process on;`: a master (the supervised child) and a worker per CPU.
//!
//! Every path nginx writes is in its run dir: the pid file and the temp dirs of each proxy
//! module the build has (otherwise nginx wants `/var/lib/nginx`, which only root can write).
//! Started by root, it would switch its workers to `nobody`; a `user` line keeps them as
//! the invoking user. `nginx -t` writes the pid file too, so the check removes it again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use askama::Template;

use super::{ConfigSpec, Flavor, Upstream, config_path_str};

/// The pid file's name in the run dir.
pub const PID_FILE: &str = "nginx.pid";

/// The temp-path directive of each module that has one, and its dir name.
const TEMP_PATHS: [(&str, &str, &str); 5] = [
    ("client_body_temp_path", "client_body", "http_client_body"),
    ("proxy_temp_path", "proxy", "http_proxy"),
    ("fastcgi_temp_path", "fastcgi", "http_fastcgi"),
    ("uwsgi_temp_path", "uwsgi", "http_uwsgi"),
    ("scgi_temp_path", "scgi", "http_scgi"),
];

#[derive(Template)]
#[template(path = "lab/nginx.conf", escape = "none")]
struct Config<'a> {
    listen: SocketAddr,
    workers: usize,
    pid_file: &'a str,
    user: Option<String>,
    access_log: &'a str,
    request_log: bool,
    temp_paths: Vec<(&'static str, String)>,
    max_connections: u32,
    tls: Option<&'a str>,
    servers: &'a [Upstream],
}

/// nginx as a lab balancer: a round-robin upstream, checked with `nginx -t`, in the foreground.
#[derive(Debug, Clone, Copy)]
pub struct Nginx;

impl Flavor for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn package(&self) -> &'static str {
        "nginx-light"
    }

    fn package_note(&self) -> &'static str {
        "; the nginx package works too"
    }

    fn config_file_name(&self) -> &'static str {
        "nginx.conf"
    }

    fn render(&self, spec: &ConfigSpec) -> askama::Result<String> {
        let custom = |e: super::LabError| askama::Error::Custom(e.into());
        let pid = spec.run_dir.join(PID_FILE);
        let access = spec.work_dir.join("access.log");
        let temp_paths = TEMP_PATHS
            .iter()
            .filter(|(_, _, module)| !module_disabled(module))
            .map(|(directive, dir, _)| {
                let p = spec.run_dir.join("temp").join(dir);
                Ok((*directive, config_path_str(&p).map_err(custom)?.to_owned()))
            })
            .collect::<askama::Result<Vec<_>>>()?;
        Config {
            listen: spec.listen,
            workers: workers(),
            pid_file: config_path_str(&pid).map_err(custom)?,
            user: user_line(),
            access_log: config_path_str(&access).map_err(custom)?,
            request_log: spec.request_log,
            temp_paths,
            max_connections: spec.max_connections,
            tls: spec
                .tls
                .as_deref()
                .map(config_path_str)
                .transpose()
                .map_err(custom)?,
            servers: &spec.upstreams,
        }
        .render()
    }

    fn check_flag(&self) -> &'static str {
        "-t"
    }

    fn check_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-t")
            .arg("-q")
            .arg("-c")
            .arg(config)
            .arg("-p")
            .arg(run_dir)
            .args(["-e", "stderr"]);
        c
    }

    fn prepare(&self, run_dir: &Path) -> std::io::Result<()> {
        // nginx makes each temp dir, but not their parent.
        std::fs::create_dir_all(run_dir.join("temp"))
    }

    fn after_check(&self, run_dir: &Path) {
        // `nginx -t` creates the pid file to see that it can; a stale one would confuse
        // anyone who reads it.
        let _ = std::fs::remove_file(run_dir.join(PID_FILE));
    }

    fn run_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-c")
            .arg(config)
            .arg("-p")
            .arg(run_dir)
            .args(["-e", "stderr"]);
        c
    }

    fn version_command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.arg("-v");
        c
    }

    fn parse_version(&self, stdout: &str, stderr: &str) -> Option<String> {
        parse_version(stderr).or_else(|| parse_version(stdout))
    }

    fn runtime_files(&self, run_dir: &Path) -> Vec<PathBuf> {
        vec![run_dir.join(PID_FILE)]
    }

    fn process_count(&self) -> usize {
        1 + workers()
    }
}

/// Worker processes: one per CPU this process may run on (what HAProxy's `nbthread`
/// defaults to), written out rather than `auto`, so the lab knows how many to expect.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The version in `nginx -v`'s output (on stderr): `nginx version: nginx/1.22.1` →
/// `1.22.1`.
pub fn parse_version(out: &str) -> Option<String> {
    let line = out.lines().find(|l| l.starts_with("nginx version:"))?;
    let v = line.rsplit('/').next()?.trim();
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_owned())
}

/// Whether `nginx -V` says the build lacks a module (`--without-http_uwsgi_module`); then
/// its temp-path directive would be unknown. Read once per process.
fn module_disabled(module: &str) -> bool {
    static CONFIGURE: OnceLock<String> = OnceLock::new();
    let configure = CONFIGURE.get_or_init(|| {
        let Ok(program) = super::Balancer::Nginx.locate(None) else {
            return String::new();
        };
        Command::new(program)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default()
    });
    configure_disables(configure, module)
}

/// Whether nginx's `configure arguments` (from `nginx -V`) turn `module` off.
pub fn configure_disables(configure: &str, module: &str) -> bool {
    configure
        .split_whitespace()
        .any(|a| a == format!("--without-{module}_module"))
}

/// `user NAME GROUP` when running as root (nginx would otherwise run its workers as
/// `nobody`); nothing otherwise (nginx ignores `user` then, with a warning).
fn user_line() -> Option<String> {
    let uid = rustix::process::geteuid();
    if !uid.is_root() {
        return None;
    }
    let gid = rustix::process::getegid().as_raw();
    let user = name_of(
        &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        0,
    )
    .unwrap_or_else(|| "root".to_owned());
    let group = name_of(
        &std::fs::read_to_string("/etc/group").unwrap_or_default(),
        gid,
    )
    .unwrap_or_else(|| "root".to_owned());
    Some(format!("{user} {group}"))
}

/// The name with id `id` in `/etc/passwd` or `/etc/group` text (`name:x:id:...`).
fn name_of(text: &str, id: u32) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        f.next()?;
        (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn reads_the_version() {
        assert_eq!(
            parse_version("nginx version: nginx/1.22.1\n").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(parse_version("pound (pound) 4.16"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn sees_disabled_modules() {
        let c =
            "configure arguments: --with-debug --without-http_uwsgi_module --with-http_v2_module";
        assert!(configure_disables(c, "http_uwsgi"));
        assert!(!configure_disables(c, "http_scgi"));
    }

    #[test]
    fn finds_names_by_id() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_of(passwd, 7), None);
    }

    #[test]
    fn config_keeps_every_path_in_its_dir() {
        let spec = ConfigSpec {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 18380),
            upstreams: vec![Upstream {
                name: "node-1".into(),
                addr: "127.0.0.1:18081".parse().unwrap(),
            }],
            run_dir: "/tmp/lbbench-nginx-x".into(),
            work_dir: "/tmp/lab-out".into(),
            request_log: true,
            max_connections: 1000,
            tls: None,
        };
        let cfg = Nginx.render(&spec).unwrap();
        let lines: Vec<&str> = cfg.lines().map(str::trim).collect();
        for line in [
            "daemon off;",
            "master_process on;",
            "pid \"/tmp/lbbench-nginx-x/nginx.pid\";",
            "worker_connections 2000;",
            "access_log \"/tmp/lab-out/access.log\";",
            "zone nodes 64k;",
            "server 127.0.0.1:18081;  # node-1",
            "listen 127.0.0.1:18380;",
            "proxy_pass http://nodes;",
            "proxy_max_temp_file_size 0;",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{cfg}");
        }
        assert!(
            lines
                .iter()
                .filter(|l| l.contains("_temp_path"))
                .all(|l| l.contains("/tmp/lbbench-nginx-x/temp/"))
        );
        let tls = Nginx
            .render(&ConfigSpec {
                tls: Some("/lab/tls/balancer.pem".into()),
                ..spec
            })
            .unwrap();
        let lines: Vec<&str> = tls.lines().map(str::trim).collect();
        for line in [
            "listen 127.0.0.1:18380 ssl;",
            "ssl_certificate \"/lab/tls/balancer.pem\";",
            "ssl_certificate_key \"/lab/tls/balancer.pem\";",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{tls}");
        }
    }
}
