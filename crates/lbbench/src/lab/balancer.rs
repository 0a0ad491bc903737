//! The balancers the lab compares and what differs between them: finding the program, its
//! version, its config (rendered from a template, checked by the program itself) and the
//! [`Flavor`] each of `haproxy`, `pound` and `nginx` implements.

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use super::logs::{first_lines, problem_lines};
use super::{LabError, haproxy, nginx, pound};

/// One of the load balancers the lab compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Balancer {
    /// HAProxy (master-worker, `balance roundrobin`).
    Haproxy,
    /// Pound 4 (`Balancer iwrr`).
    Pound,
    /// nginx (a round-robin `upstream`).
    Nginx,
}

impl Balancer {
    /// All of them, in the order the lab runs them.
    pub const ALL: [Balancer; 3] = [Balancer::Haproxy, Balancer::Pound, Balancer::Nginx];

    /// Its lower-case name, as in `--balancers` and file names.
    pub fn name(self) -> &'static str {
        self.flavor().name()
    }

    /// Parses a comma-separated list (`haproxy,pound,nginx`): order kept, duplicates dropped.
    pub fn parse_list(list: &str) -> Result<Vec<Balancer>, LabError> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim) {
            let b = item.parse()?;
            if !out.contains(&b) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The Debian package with its program.
    pub fn package(self) -> &'static str {
        self.flavor().package()
    }

    pub(crate) fn flavor(self) -> &'static dyn Flavor {
        match self {
            Balancer::Haproxy => &haproxy::Haproxy,
            Balancer::Pound => &pound::Pound,
            Balancer::Nginx => &nginx::Nginx,
        }
    }

    /// Finds the program: `program` if given (it must exist), else its name in `PATH`, then in
    /// the sbin directories (which a non-root `PATH` often lacks). A missing program is a
    /// [`LabError::NotInstalled`] that names the Debian package.
    pub fn locate(self, program: Option<&Path>) -> Result<PathBuf, LabError> {
        let f = self.flavor();
        let not_installed = |what: String| LabError::NotInstalled {
            what,
            package: f.package(),
            note: f.package_note(),
        };
        if let Some(p) = program {
            return if is_executable(p) {
                Ok(p.to_owned())
            } else if p.exists() {
                Err(not_installed(format!(
                    "{} is not an executable file",
                    p.display()
                )))
            } else {
                Err(not_installed(format!(
                    "{} not found: {} does not exist",
                    self.name(),
                    p.display()
                )))
            };
        }
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for d in ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .chain(f.extra_dirs())
        {
            if !dirs.iter().any(|x| x == Path::new(d)) {
                dirs.push(PathBuf::from(d));
            }
        }
        dirs.iter()
            .map(|d| d.join(f.name()))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                not_installed(format!(
                    "{} not found (looked in PATH and {})",
                    f.name(),
                    ["/usr/local/sbin", "/usr/sbin", "/sbin"]
                        .iter()
                        .chain(f.extra_dirs())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Its version (`2.6.12-1+deb12u4`, `4.16`, `1.22.1`), from `haproxy -v`, `pound -V` or
    /// `nginx -v`.
    pub fn version(self, program: &Path) -> Result<String, LabError> {
        let f = self.flavor();
        let out = f
            .version_command(program)
            .stdin(Stdio::null())
            .output()
            .map_err(LabError::io(format!("cannot run {}", program.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        f.parse_version(&stdout, &stderr)
            .ok_or_else(|| LabError::Version {
                program: program.to_owned(),
                detail: format!(
                    "no version in its output ({}): {}",
                    out.status,
                    first_lines(&format!("{stdout}{stderr}"), 3)
                ),
            })
    }

    /// The config file for `spec`, rendered from the balancer's template.
    pub fn render_config(self, spec: &ConfigSpec) -> Result<String, LabError> {
        spec.validate()?;
        let mut text = self
            .flavor()
            .render(spec)
            .map_err(|source| LabError::Template {
                program: self.name(),
                source,
            })?;
        // askama drops the template's final newline; HAProxy insists on one.
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// Checks `config` with the program itself (`haproxy -c`, `pound -c`, `nginx -t`); its
    /// own message if it is rejected.
    pub fn check_config(
        self,
        program: &Path,
        config: &Path,
        run_dir: &Path,
    ) -> Result<(), LabError> {
        let f = self.flavor();
        f.prepare(run_dir).map_err(LabError::io(format!(
            "cannot prepare {}",
            run_dir.display()
        )))?;
        let out = f
            .check_command(program, config, run_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(LabError::io(format!("cannot run {}", program.display())))?;
        f.after_check(run_dir);
        if out.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        Err(LabError::InvalidConfig {
            program: format!("{} {}", f.name(), f.check_flag()),
            config: config.to_owned(),
            detail: problem_lines(&text),
        })
    }
}

impl fmt::Display for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Balancer {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Balancer, LabError> {
        Balancer::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| LabError::UnknownBalancer(s.to_owned()))
    }
}

/// A backend behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in the config (`node-1`): letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
}

/// What a balancer's config is generated from.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// Where the balancer listens.
    pub listen: SocketAddr,
    /// The backends, in order.
    pub upstreams: Vec<Upstream>,
    /// The balancer's private dir: control sockets, pid files, temp files.
    pub run_dir: PathBuf,
    /// Where its config and logs go (the run dir unless the lab keeps them).
    pub work_dir: PathBuf,
    /// Whether to log every request (off for benchmarks: errors are always logged).
    pub request_log: bool,
    /// The most client connections it should serve at once.
    pub max_connections: u32,
    /// Terminate TLS with this PEM file (certificate and key): HAProxy `bind ... ssl crt`,
    /// Pound `ListenHTTPS` with `Cert`, nginx `listen ... ssl`. `None` listens for plain
    /// HTTP. The backends are plain HTTP either way.
    pub tls: Option<PathBuf>,
}

#[cfg(test)]
impl ConfigSpec {
    /// A spec for the config tests: `backends` upstreams `node-1`… on 127.0.0.1:18081…, the
    /// balancer on 127.0.0.1:`port`, everything in `dir`, no request log.
    pub(crate) fn example(port: u16, backends: u16, dir: &str, max_connections: u32) -> Self {
        ConfigSpec {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            upstreams: (1..=backends)
                .map(|i| Upstream {
                    name: format!("node-{i}"),
                    addr: SocketAddr::from(([127, 0, 0, 1], 18080 + i)),
                })
                .collect(),
            run_dir: dir.into(),
            work_dir: dir.into(),
            request_log: false,
            max_connections,
            tls: None,
        }
    }
}

impl ConfigSpec {
    fn validate(&self) -> Result<(), LabError> {
        config_path_str(&self.run_dir)?;
        config_path_str(&self.work_dir)?;
        if let Some(pem) = &self.tls {
            config_path_str(pem)?;
        }
        // sun_path holds 108 bytes, with the NUL; leave room for the socket's file name.
        if self.run_dir.as_os_str().len() > 80 {
            return Err(LabError::BadPath(
                self.run_dir.clone(),
                "too long for a Unix socket path (TMPDIR is too deep)",
            ));
        }
        if self.upstreams.is_empty() {
            return Err(LabError::NoBackends);
        }
        for u in &self.upstreams {
            if u.name.is_empty()
                || !u
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(LabError::BadName(u.name.clone()));
            }
        }
        Ok(())
    }
}

/// `path` as a string that can go between double quotes in any of the three config
/// languages: no quote, backslash, `$` (HAProxy and nginx expand variables), or control
/// character.
pub fn config_path_str(path: &Path) -> Result<&str, LabError> {
    let s = path
        .to_str()
        .ok_or_else(|| LabError::BadPath(path.to_owned(), "not UTF-8"))?;
    if s.chars()
        .any(|c| c == '"' || c == '\\' || c == '$' || c.is_control())
    {
        return Err(LabError::BadPath(
            path.to_owned(),
            "it contains a quote, a backslash, '$' or a control character",
        ));
    }
    Ok(s)
}

/// What differs between the balancers; one implementation per module.
pub(crate) trait Flavor: Sync {
    /// The program name (`haproxy`).
    fn name(&self) -> &'static str;
    /// The Debian package.
    fn package(&self) -> &'static str;
    /// A note on the package for the "not installed" message.
    fn package_note(&self) -> &'static str {
        ""
    }
    /// Where to look for the program besides `PATH` and the sbin directories.
    fn extra_dirs(&self) -> &'static [&'static str] {
        &[]
    }
    /// The config file's name.
    fn config_file_name(&self) -> &'static str;
    /// Renders the config.
    fn render(&self, spec: &ConfigSpec) -> askama::Result<String>;
    /// The check option, for messages (`-c`).
    fn check_flag(&self) -> &'static str;
    /// The command that checks a config.
    fn check_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command;
    /// Creates what the program expects to exist in its run dir.
    fn prepare(&self, _run_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }
    /// Cleans up what the check left behind.
    fn after_check(&self, _run_dir: &Path) {}
    /// The command that runs the balancer in the foreground.
    fn run_command(&self, program: &Path, config: &Path, run_dir: &Path) -> Command;
    /// The command that prints the version.
    fn version_command(&self, program: &Path) -> Command;
    /// The version in that command's output.
    fn parse_version(&self, stdout: &str, stderr: &str) -> Option<String>;
    /// The sockets and pid files it may leave in its run dir.
    fn runtime_files(&self, run_dir: &Path) -> Vec<PathBuf>;
    /// How many processes it runs once it is up (main process included).
    fn process_count(&self) -> usize;
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_balancer_lists() {
        assert_eq!(
            Balancer::parse_list("haproxy,pound").unwrap(),
            vec![Balancer::Haproxy, Balancer::Pound]
        );
        assert_eq!(
            Balancer::parse_list(" nginx , HAProxy,nginx").unwrap(),
            vec![Balancer::Nginx, Balancer::Haproxy]
        );
        let e = Balancer::parse_list("haproxy,varnish").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown balancer \"varnish\" (known: haproxy, pound, nginx)"
        );
        assert!(Balancer::parse_list("").is_err());
        assert_eq!(Balancer::Pound.to_string(), "pound");
    }

    #[test]
    fn specs_are_checked_before_rendering() {
        let spec = ConfigSpec {
            listen: "127.0.0.1:18080".parse().unwrap(),
            upstreams: vec![Upstream {
                name: "node-1".into(),
                addr: "127.0.0.1:18081".parse().unwrap(),
            }],
            run_dir: "/tmp/lbbench-x".into(),
            work_dir: "/tmp/lbbench-x".into(),
            request_log: false,
            max_connections: 100,
            tls: None,
        };
        for b in Balancer::ALL {
            assert!(b.render_config(&spec).unwrap().ends_with('\n'));
            let mut bad = spec.clone();
            bad.upstreams[0].name = "node 1; evil".into();
            assert!(matches!(b.render_config(&bad), Err(LabError::BadName(_))));
            let mut bad = spec.clone();
            bad.upstreams.clear();
            assert!(matches!(b.render_config(&bad), Err(LabError::NoBackends)));
            let mut bad = spec.clone();
            bad.tls = Some("/tmp/x$y.pem".into());
            assert!(matches!(b.render_config(&bad), Err(LabError::BadPath(..))));
            let mut bad = spec.clone();
            bad.work_dir = "/tmp/x\"y".into();
            assert!(matches!(b.render_config(&bad), Err(LabError::BadPath(..))));
            let mut bad = spec.clone();
            bad.run_dir = PathBuf::from(format!("/tmp/{}", "d".repeat(90)));
            assert!(matches!(b.render_config(&bad), Err(LabError::BadPath(..))));
        }
    }

    #[test]
    fn config_paths_must_be_quotable() {
        assert_eq!(
            config_path_str(Path::new("/tmp/a b/c")).unwrap(),
            "/tmp/a b/c"
        );
        for bad in ["/tmp/a\"b", "/tmp/a\\b", "/tmp/$HOME", "/tmp/a\nb"] {
            assert!(config_path_str(Path::new(bad)).is_err(), "{bad:?}");
        }
    }
}
