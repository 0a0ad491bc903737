//! The hosts file of `lbbench lab --hosts FILE`: which machines are the clients, the balancer
//! and the backends, how ssh reaches each, and the address the other hosts reach it at.
//!
//! ```toml
//! lbbench = "/usr/local/bin/lbbench"   # the lbbench on the hosts [default: lbbench in PATH]
//! known_hosts = "lab/known_hosts"      # ssh's UserKnownHostsFile [default: the user's]
//! ssh_config = "lab/ssh_config"        # ssh -F [default: the user's ~/.ssh/config]
//! connect_timeout = 10                 # seconds [default: 10]
//! ssh_options = ["Compression=no"]     # more ssh -o options
//!
//! [[client]]                           # one or more: httperf runs on each at once
//! ssh = "10.0.0.11"                    # the ssh destination: [user@]host
//! port = 22                            # optional, like user, identity and name
//! user = "bench"
//! identity = "~/.ssh/lab_ed25519"
//! name = "client-1"                    # [default: client-N, balancer, backend-N]
//!
//! [balancer]                           # exactly one
//! ssh = "lb.example"
//! address = "10.0.0.2"                 # where the clients reach it [default: ssh's host]
//!
//! [[backend]]                          # one or more
//! ssh = "10.0.0.21"
//! ```
//!
//! Everything is checked when the file is read, and a problem is one line naming the file
//! and the host: unknown keys, a missing role, a destination or user that ssh would take for
//! an option, an address that is not an IPv4 address (httperf and the lab's configs use
//! IPv4), a host name that cannot go into a file name, files that do not exist. Relative
//! paths are relative to the hosts file.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What a host does in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs httperf (its share of the demanded rate).
    Client,
    /// Runs the balancer under test.
    Balancer,
    /// Runs backends.
    Backend,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Client => "client",
            Role::Balancer => "balancer",
            Role::Backend => "backend",
        })
    }
}

/// One host of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name in messages and file names (`client-1`).
    pub name: String,
    /// What it does.
    pub role: Role,
    /// The ssh destination's host part (a name or an address).
    pub ssh_host: String,
    /// The ssh port, if not ssh's default.
    pub port: Option<u16>,
    /// The login, if not ssh's default.
    pub user: Option<String>,
    /// A private key for ssh (`-i`).
    pub identity: Option<PathBuf>,
    /// Where the other hosts reach it.
    pub address: Ipv4Addr,
    /// The `lbbench` program on the host.
    pub lbbench: String,
}

impl Host {
    /// The destination as a user would type it: `user@host:port`.
    pub fn destination(&self) -> String {
        let mut d = String::new();
        if let Some(u) = &self.user {
            d.push_str(u);
            d.push('@');
        }
        d.push_str(&self.ssh_host);
        if let Some(p) = self.port {
            d.push_str(&format!(":{p}"));
        }
        d
    }
}

/// How `ssh` is run for every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    /// `ssh -F FILE`.
    pub config: Option<PathBuf>,
    /// `-o UserKnownHostsFile=FILE`.
    pub known_hosts: Option<PathBuf>,
    /// `-o ConnectTimeout=S`, also how long a host may take to answer before it is lost.
    pub connect_timeout: Duration,
    /// More `-o` options (`Key=Value`).
    pub options: Vec<String>,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            config: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
            options: Vec::new(),
        }
    }
}

/// A checked hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// How ssh runs.
    pub ssh: SshSettings,
    /// Every host: the clients, the balancer, the backends, in that order.
    pub hosts: Vec<Host>,
}

impl HostsFile {
    /// The client hosts, in order.
    pub fn clients(&self) -> impl Iterator<Item = &Host> {
        self.with_role(Role::Client)
    }

    /// The balancer's host.
    pub fn balancer(&self) -> &Host {
        // `parse` refuses a file without one.
        self.with_role(Role::Balancer)
            .next()
            .unwrap_or(&self.hosts[0])
    }

    /// The backend hosts, in order.
    pub fn backends(&self) -> impl Iterator<Item = &Host> {
        self.with_role(Role::Backend)
    }

    fn with_role(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<HostsFile, HostsFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| HostsFileError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        HostsFile::parse(&text, path)
    }

    /// Parses and checks the text of a hosts file read from `path` (which relative paths in
    /// it are relative to).
    pub fn parse(text: &str, path: &Path) -> Result<HostsFile, HostsFileError> {
        let err = |message: String| HostsFileError {
            path: path.to_owned(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    format!("line {}: ", before.matches('\n').count() + 1)
                })
                .unwrap_or_default();
            err(format!("{at}{}", e.message().trim().replace('\n', " ")))
        })?;
        raw.check(path).map_err(err)
    }
}

/// A hosts file that cannot be used: the file, and what is wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct HostsFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (and where).
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    lbbench: Option<String>,
    known_hosts: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
    connect_timeout: Option<f64>,
    #[serde(default)]
    ssh_options: Vec<String>,
    #[serde(default)]
    client: Vec<RawHost>,
    balancer: Option<RawHost>,
    #[serde(default)]
    backend: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<String>,
    ssh: String,
    port: Option<u16>,
    user: Option<String>,
    identity: Option<PathBuf>,
    address: Option<String>,
    lbbench: Option<String>,
}

/// Options lbbench sets itself: one given in `ssh_options` would change how the lab keeps
/// its connections (or let ssh ask for a password nobody types).
const MANAGED_SSH_OPTIONS: &[&str] = &[
    "batchmode",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "connecttimeout",
    "serveraliveinterval",
    "serveralivecountmax",
];

impl RawFile {
    fn check(self, path: &Path) -> Result<HostsFile, String> {
        let base = path.parent().unwrap_or(Path::new(""));
        let lbbench = self.lbbench.unwrap_or_else(|| "lbbench".to_owned());
        check_program("lbbench", &lbbench)?;
        let connect_timeout = match self.connect_timeout {
            None => Duration::from_secs(10),
            Some(s) if s.is_finite() && (1.0..=300.0).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => {
                return Err(format!(
                    "connect_timeout must be 1 to 300 seconds (got {s})"
                ));
            }
        };
        for o in &self.ssh_options {
            let key = o
                .split(['=', ' '])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if key.is_empty() || o.starts_with('-') || o.chars().any(char::is_control) {
                return Err(format!(
                    "ssh_options: {o:?} is not an ssh option (Key=Value)"
                ));
            }
            if MANAGED_SSH_OPTIONS.contains(&key.as_str()) {
                return Err(format!(
                    "ssh_options: lbbench sets {o:?} itself (one connection per host, no prompts)"
                ));
            }
        }
        let ssh = SshSettings {
            config: self
                .ssh_config
                .map(|p| existing_file(base, &p, "ssh_config"))
                .transpose()?,
            known_hosts: self
                .known_hosts
                .map(|p| existing_file(base, &p, "known_hosts"))
                .transpose()?,
            connect_timeout,
            options: self.ssh_options,
        };
        if self.client.is_empty() {
            return Err("no client: add a [[client]] table (the hosts that run httperf)".into());
        }
        let Some(balancer) = self.balancer else {
            return Err("no balancer: add a [balancer] table (the host that runs it)".into());
        };
        if self.backend.is_empty() {
            return Err("no backend: add a [[backend]] table (the hosts that run backends)".into());
        }
        let mut hosts = Vec::new();
        let entries = self
            .client
            .into_iter()
            .enumerate()
            .map(|(i, h)| (Role::Client, Some(i + 1), h))
            .chain(std::iter::once((Role::Balancer, None, balancer)))
            .chain(
                self.backend
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| (Role::Backend, Some(i + 1), h)),
            );
        let mut names = BTreeSet::new();
        for (role, n, raw) in entries {
            let default_name = match n {
                Some(n) => format!("{role}-{n}"),
                None => role.to_string(),
            };
            let host = raw.check(role, default_name, &lbbench, base)?;
            if !names.insert(host.name.clone()) {
                return Err(format!("two hosts are named {:?}", host.name));
            }
            hosts.push(host);
        }
        Ok(HostsFile {
            path: path.to_owned(),
            ssh,
            hosts,
        })
    }
}

impl RawHost {
    fn check(
        self,
        role: Role,
        default_name: String,
        lbbench: &str,
        base: &Path,
    ) -> Result<Host, String> {
        let name = self.name.unwrap_or(default_name);
        if name.is_empty()
            || name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with(['-', '.'])
        {
            return Err(format!(
                "{role} {name:?}: a name may have 1 to 40 letters, digits, '-', '_' and '.' (it \
                 goes into file names)"
            ));
        }
        let bad = |m: String| format!("{role} {name}: {m}");
        let (user_in_dest, ssh_host) = match self.ssh.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
            None => (None, self.ssh.clone()),
        };
        if ssh_host.is_empty()
            || ssh_host.starts_with('-')
            || ssh_host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@/'\"\\".contains(c))
        {
            return Err(bad(format!(
                "ssh = {:?} is not a destination ([user@]host, no spaces, not starting with '-')",
                self.ssh
            )));
        }
        let user = match (user_in_dest, self.user) {
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "the user is given twice (ssh = {:?} and user)",
                    self.ssh
                )));
            }
            (a, b) => a.or(b),
        };
        if let Some(u) = &user
            && (u.is_empty()
                || u.starts_with('-')
                || u.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '@'))
        {
            return Err(bad(format!("user {u:?} is not a login name")));
        }
        if self.port == Some(0) {
            return Err(bad("port must be 1 to 65535".into()));
        }
        let identity = self
            .identity
            .map(|p| existing_file(base, &p, "identity"))
            .transpose()
            .map_err(bad)?;
        let address = match &self.address {
            Some(a) => a.parse::<Ipv4Addr>().map_err(|_| {
                format!(
                    "{role} {name}: address {a:?} is not an IPv4 address (httperf and the lab's \
                     configs use IPv4)"
                )
            })?,
            None => ssh_host.parse::<Ipv4Addr>().map_err(|_| {
                format!(
                    "{role} {name}: give its `address`, where the other hosts reach it (the ssh \
                     host {ssh_host:?} is not an IPv4 address)"
                )
            })?,
        };
        if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
            return Err(bad(format!("address {address} cannot be a host's address")));
        }
        let lbbench = self.lbbench.unwrap_or_else(|| lbbench.to_owned());
        check_program("lbbench", &lbbench).map_err(bad)?;
        Ok(Host {
            name,
            role,
            ssh_host,
            port: self.port,
            user,
            identity,
            address,
            lbbench,
        })
    }
}

fn check_program(what: &str, p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('-') || p.chars().any(char::is_control) {
        return Err(format!("{what} = {p:?} is not a program"));
    }
    Ok(())
}

/// `path` (`~/` expanded, relative to `base`), which must be an existing file.
fn existing_file(base: &Path, path: &Path, what: &str) -> Result<PathBuf, String> {
    let expanded = match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => path.to_owned(),
        },
        Err(_) => path.to_owned(),
    };
    let full = base.join(expanded);
    if !full.is_file() {
        return Err(format!("{what} {} is not a file", full.display()));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostsFile, String> {
        HostsFile::parse(text, Path::new("/lab/hosts.toml")).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
[[client]]
ssh = "10.0.0.11"
[[client]]
ssh = "bench@10.0.0.12"
port = 2222
[balancer]
ssh = "lb.example"
address = "10.0.0.2"
[[backend]]
ssh = "10.0.0.21"
name = "web-a"
"#;

    #[test]
    fn reads_roles_names_and_defaults() {
        let f = parse(MINIMAL).unwrap();
        let names: Vec<_> = f.hosts.iter().map(|h| (h.role, h.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (Role::Client, "client-1"),
                (Role::Client, "client-2"),
                (Role::Balancer, "balancer"),
                (Role::Backend, "web-a")
            ]
        );
        let c2 = &f.hosts[1];
        assert_eq!(c2.user.as_deref(), Some("bench"));
        assert_eq!(c2.ssh_host, "10.0.0.12");
        assert_eq!(c2.port, Some(2222));
        assert_eq!(c2.destination(), "bench@10.0.0.12:2222");
        assert_eq!(f.balancer().address, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(f.balancer().lbbench, "lbbench");
        assert_eq!(f.clients().count(), 2);
        assert_eq!(f.backends().count(), 1);
        assert_eq!(f.ssh, SshSettings::default());
    }

    #[test]
    fn bad_files_are_one_line_naming_the_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "[[client]]\nssh = \"a\"\nprot = 22\n",
                "line 3: unknown field `prot`",
            ),
            (
                "[balancer]\nssh = \"10.0.0.1\"\n[[backend]]\nssh = \"10.0.0.2\"\n",
                "no client",
            ),
            (
                "[[client]]\nssh = \"10.0.0.1\"\n[[backend]]\nssh = \"10.0.0.2\"\n",
                "no balancer",
            ),
            (
                "[[client]]\nssh = \"10.0.0.1\"\n[balancer]\nssh = \"10.0.0.2\"\n",
                "no backend",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("/lab/hosts.toml: "), "{e}");
            assert!(e.contains(want), "{e} should contain {want}");
            assert!(!e.contains('\n'), "{e}");
        }
        let with = |client: &str| {
            parse(&format!(
                "[[client]]\n{client}\n[balancer]\nssh = \"10.0.0.2\"\n[[backend]]\nssh = \"10.0.0.3\"\n"
            ))
            .unwrap_err()
        };
        assert!(with("ssh = \"-oProxyCommand=x\"").contains("not a destination"));
        assert!(with("ssh = \"a b\"").contains("not a destination"));
        assert!(with("ssh = \"u@10.0.0.1\"\nuser = \"v\"").contains("user is given twice"));
        assert!(with("ssh = \"10.0.0.1\"\nuser = \"-x\"").contains("not a login name"));
        assert!(with("ssh = \"10.0.0.1\"\nport = 0").contains("port must be"));
        assert!(with("ssh = \"10.0.0.1\"\nport = 70000").contains("line"));
        assert!(with("ssh = \"host.example\"").contains("give its `address`"));
        assert!(with("ssh = \"10.0.0.1\"\naddress = \"::1\"").contains("not an IPv4 address"));
        assert!(with("ssh = \"10.0.0.1\"\naddress = \"0.0.0.0\"").contains("cannot be"));
        assert!(with("ssh = \"10.0.0.1\"\nname = \"../x\"").contains("a name may have"));
        assert!(with("ssh = \"10.0.0.1\"\nname = \"balancer\"").contains("two hosts are named"));
        assert!(
            with("ssh = \"10.0.0.1\"\nidentity = \"no/such/key\"")
                .contains("identity /lab/no/such/key is not a file")
        );
        let top = |line: &str| parse(&format!("{line}\n{MINIMAL}")).unwrap_err();
        assert!(top("connect_timeout = 0").contains("connect_timeout must be"));
        assert!(top("ssh_options = [\"ControlMaster=no\"]").contains("sets"));
        assert!(top("ssh_options = [\"-v\"]").contains("not an ssh option"));
        assert!(top("lbbench = \"\"").contains("not a program"));
    }

    #[test]
    fn files_are_relative_to_the_hosts_file_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "k").unwrap();
        std::fs::write(dir.path().join("known"), "").unwrap();
        let path = dir.path().join("hosts.toml");
        std::fs::write(
            &path,
            format!(
                "known_hosts = \"known\"\nconnect_timeout = 2.5\nssh_options = [\"Compression=no\"]\n{}",
                MINIMAL.replace("name = \"web-a\"", "identity = \"key\"")
            ),
        )
        .unwrap();
        let f = HostsFile::load(&path).unwrap();
        assert_eq!(f.ssh.known_hosts, Some(dir.path().join("known")));
        assert_eq!(f.ssh.connect_timeout, Duration::from_millis(2500));
        assert_eq!(f.ssh.options, ["Compression=no"]);
        assert_eq!(f.hosts[3].identity, Some(dir.path().join("key")));
        assert_eq!(f.hosts[3].name, "backend-1");
        let e = HostsFile::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(e.to_string().contains("none.toml"), "{e}");
    }
}
