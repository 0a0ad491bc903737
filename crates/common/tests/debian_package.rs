//! The Debian package end to end: `scripts/package.sh` packages the binaries this test run
//! built (stripped; gzip instead of xz, only to be quick), lintian finds no error, `dpkg -i`
//! installs it, the installed files work (man pages, a bash completion, the systemd unit,
//! the system user, the configuration, logrotate with a writer running, each binary's
//! --version), `dpkg -r` leaves nothing but the conffiles, and `dpkg --purge` nothing but
//! the system user.
//!
//! The install runs on this machine, with its dpkg, adduser, man-db, systemd-analyze and
//! logrotate, inside a private mount namespace where /etc, /usr and /var are overlays of the
//! machine's own (their writes go to a tmpfs) and /run is an empty tmpfs (so the maintainer
//! scripts see no running systemd and never talk to the machine's). Other tests, which run
//! the workspace's binaries meanwhile, see none of it, nor does a dpkg or apt running outside
//! (the dpkg lock is the sandbox's own copy); and however the test ends, killed included, the
//! machine is left as it was: the namespace goes with its last process.
//!
//! A second test boots this machine's own OS in a container (systemd-nspawn over a throwaway
//! overlay of /, with a private network) to run the packaged service under a real systemd:
//! with all its hardening, webscaler runs its HAProxy and its backends, an upgrade restarts
//! it, it stops cleanly, and removing the package stops it.
//!
//! Needs root and the packages of scripts/setup.sh (dpkg-dev, lintian, logrotate, man-db,
//! systemd-container).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::process::{SpawnOptions, Supervised};
use common::wait::poll_until;
use rustix::process::Signal;
use testkit::{workspace_bin, workspace_root};

const PACKAGE: &str = "webscaler-tools";
const TOOLS: [&str; 3] = ["webscaler", "lbbench", "diskstats"];
const CONFFILES: [&str; 3] = [
    "/etc/cron.d/diskstats",
    "/etc/logrotate.d/webscaler-tools",
    "/etc/webscaler/webscaler.toml",
];
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Mounts the overlays and the empty /run in the new namespace ($1: a directory for the
/// tmpfs that holds the upper layers), says "ready", then lives as long as its stdin is
/// open: it ends when the test drops it or dies.
const SANDBOX_SCRIPT: &str = r#"
set -eu
top=$1
mount -t tmpfs -o mode=0700 webscaler-tools-test "$top"
for d in etc usr var bin sbin lib lib32 lib64 libx32; do
  if [ -d "/$d" ] && [ ! -L "/$d" ]; then
    mkdir "$top/$d.upper" "$top/$d.work"
    mount -t overlay webscaler-tools-test \
      -o "lowerdir=/$d,upperdir=$top/$d.upper,workdir=$top/$d.work" "/$d"
  fi
done
mount -t tmpfs -o mode=0755 webscaler-tools-test /run
echo ready
exec cat >/dev/null
"#;

/// A private mount namespace with the machine's /etc, /usr and /var behind throwaway
/// overlays. Dropping it ends the namespace.
struct Sandbox {
    holder: Supervised,
}

impl Sandbox {
    fn new(dir: &Path) -> Sandbox {
        // Ends with the test even if the test is killed: its stdin closes, and SIGTERM comes.
        let mut holder = Supervised::spawn_with(
            "the sandbox's namespace",
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(SANDBOX_SCRIPT)
                .arg("sh")
                .arg(dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            &SpawnOptions::default().parent_death(Signal::TERM),
        )
        .expect("unshare (util-linux) runs");
        let stdout = holder.child_mut().stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        if line.trim() != "ready" {
            let _ = holder.stop();
            let mut err = String::new();
            if let Some(mut e) = holder.child_mut().stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("the sandbox did not start (mount namespace with overlays; needs root): {err}");
        }
        Sandbox { holder }
    }

    /// `path` as the sandbox sees it, from outside (through the holder's /proc root).
    fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.holder.pid()))
    }

    /// A command run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "--target",
            &self.holder.pid().to_string(),
            "--mount",
            "--",
            program,
        ])
        .env("PATH", PATH)
        .env("LC_ALL", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null());
        cmd
    }

    /// Runs a shell script inside the namespace.
    fn sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .output()
            .expect("nsenter (util-linux) runs")
    }

    /// Runs a shell script inside the namespace, asserts it succeeds, returns its stdout.
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` in the sandbox: {}",
            show(&out)
        );
        text(&out.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn require(programs: &[&str]) {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .env("PATH", PATH)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run scripts/setup.sh (as root) to install them"
    );
}

/// Builds the package from this run's binaries (gzip level 1) into `out_dir`.
fn build_package(out_dir: &Path) -> PathBuf {
    // Each binary fresh (built if needed), all in the same directory.
    let bins: Vec<PathBuf> = TOOLS.iter().map(|t| workspace_bin(t)).collect();
    let bin_dir = bins[0].parent().expect("the binaries' directory");
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/package.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("-o")
        .arg(out_dir)
        .env("DPKG_DEB_COMPRESSOR_TYPE", "gzip")
        .env("DPKG_DEB_COMPRESSOR_LEVEL", "1")
        .output()
        .expect("bash runs scripts/package.sh");
    assert!(out.status.success(), "scripts/package.sh: {}", show(&out));
    let deb = PathBuf::from(text(&out.stdout).lines().last().unwrap_or_default());
    assert_eq!(
        deb.file_name().map(|n| n.to_string_lossy().into_owned()),
        Some(format!(
            "{PACKAGE}_{}_{}.deb",
            env!("CARGO_PKG_VERSION"),
            text(
                &Command::new("dpkg")
                    .arg("--print-architecture")
                    .output()
                    .unwrap()
                    .stdout
            )
            .trim()
        )),
        "scripts/package.sh printed: {}",
        show(&out)
    );
    deb
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb {args:?}: {}", show(&out));
    text(&out.stdout)
}

/// What the package holds and declares, before it is installed.
fn check_contents(deb: &Path) {
    let field = |name: &str| {
        dpkg_deb(&["--field"], deb)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
    };
    assert_eq!(field("Package").as_deref(), Some(PACKAGE));
    // The workspace's version (Cargo.toml), as every binary of this crate.
    assert_eq!(field("Version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    let depends = field("Depends").unwrap_or_default();
    assert!(
        depends.contains("libc6 (>= 2.") && depends.contains("adduser"),
        "{depends}"
    );
    assert_eq!(field("Recommends").as_deref(), Some("haproxy, httperf"));
    assert!(field("Suggests").unwrap_or_default().contains("sysstat"));

    let files: Vec<String> = dpkg_deb(&["--contents"], deb)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect();
    let has = |p: &str| files.iter().any(|f| f == p);
    for t in TOOLS {
        for p in [
            format!("/usr/bin/{t}"),
            format!("/usr/share/man/man1/{t}.1.gz"),
            format!("/usr/share/man/man1/{t}-completions.1.gz"),
            format!("/usr/share/bash-completion/completions/{t}"),
            format!("/usr/share/zsh/vendor-completions/_{t}"),
            format!("/usr/share/fish/vendor_completions.d/{t}.fish"),
        ] {
            assert!(has(&p), "{p} is not in the package: {files:#?}");
        }
    }
    // A page per subcommand, nested ones included.
    for p in [
        "webscaler-run",
        "webscaler-cloud-list",
        "webscaler-haproxy-drain",
        "lbbench-sweep",
        "diskstats-report",
    ] {
        assert!(
            has(&format!("/usr/share/man/man1/{p}.1.gz")),
            "no {p}.1.gz: {files:#?}"
        );
    }
    for p in CONFFILES {
        assert!(has(p), "{p} is not in the package");
    }
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("/systemd/system/webscaler.service"))
    );
    assert!(has("/usr/share/doc/webscaler-tools/copyright"));

    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("--control")
        .arg(deb)
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb --control: {}", show(&out));
    let conffiles = std::fs::read_to_string(tmp.path().join("conffiles")).unwrap();
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), CONFFILES);
}

/// lintian finds no error (warnings are printed, not failed on).
fn check_lintian(deb: &Path) {
    let out = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(deb)
        .output()
        .expect("lintian runs");
    let report = text(&out.stdout);
    eprintln!("lintian:\n{report}");
    assert!(
        out.status.success() && !report.lines().any(|l| l.starts_with("E: ")),
        "lintian: {}",
        show(&out)
    );
}

/// The unit as installed: `systemd-analyze verify` where systemd is installed (it needs no
/// running systemd), and in any case the settings the service relies on.
fn check_unit(sb: &Sandbox) -> String {
    let unit = sb.ok("ls /usr/lib/systemd/system/webscaler.service /lib/systemd/system/webscaler.service 2>/dev/null | head -n1");
    let unit = unit.trim().to_owned();
    assert!(!unit.is_empty(), "the unit is not installed");
    if sb.sh("command -v systemd-analyze").status.success() {
        let out = sb
            .command("systemd-analyze")
            .args(["verify", &unit])
            .output()
            .unwrap();
        assert!(
            out.status.success() && text(&out.stderr).trim().is_empty(),
            "systemd-analyze verify {unit}: {}",
            show(&out)
        );
    } else {
        eprintln!("systemd-analyze is not installed: the unit is only parsed");
    }
    let body = std::fs::read_to_string(sb.path(&unit)).unwrap();
    let mut section = String::new();
    let mut service = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{unit}: not key=value: {line}"));
        if section == "[Service]" {
            service.push((k.to_owned(), v.to_owned()));
        }
    }
    let get = |k: &str| -> Vec<&str> {
        service
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("User"), ["webscaler"]);
    assert_eq!(get("StateDirectory"), ["webscaler"]);
    assert_eq!(get("LogsDirectory"), ["webscaler"]);
    assert_eq!(
        get("ExecStart"),
        ["/usr/bin/webscaler run --config /etc/webscaler/webscaler.toml"]
    );
    assert_eq!(get("ProtectSystem"), ["strict"]);
    assert_eq!(get("NoNewPrivileges"), ["true"]);
    assert!(body.contains("WantedBy=multi-user.target"));
    unit
}

/// Rotates the CSVs with the packaged logrotate file while `diskstats -l` writes: every row
/// is kept, in the rotated file or the new one, and both start with the header.
fn check_logrotate(sb: &Sandbox) {
    let device = std::fs::read_to_string("/proc/diskstats")
        .unwrap()
        .lines()
        .find_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .expect("a device in /proc/diskstats");
    // The service's directory, as systemd's LogsDirectory= makes it, with a CSV in it.
    sb.ok(
        "install -d -o webscaler -g webscaler /var/log/webscaler && \
           printf 'a\\n1\\n' >/var/log/webscaler/webscaler.csv && \
           chown webscaler:webscaler /var/log/webscaler/webscaler.csv",
    );
    let rows = 60;
    let mut writer = Supervised::spawn(
        "diskstats -l",
        sb.command("/usr/bin/diskstats").args([
            "-l",
            "0.05",
            "-n",
            &rows.to_string(),
            "-q",
            "-d",
            &device,
            "-o",
            "/var/log/diskstats/",
        ]),
    )
    .unwrap();
    let csv = format!("/var/log/diskstats/mon_{device}.csv");
    let lines = |p: &str| {
        std::fs::read_to_string(sb.path(p))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    poll_until(
        "diskstats to write 5 rows",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || (lines(&csv) > 5).then_some(()),
    )
    .unwrap();
    // Debian's logrotate.conf says `create`; the package's file must win with nocreate. (/var/tmp
    // is in the sandbox's overlay; /tmp is the machine's.)
    // --verbose goes to stderr, hence 2>&1.
    let log = sb.ok("printf 'create\\ninclude /etc/logrotate.d/webscaler-tools\\n' >/var/tmp/webscaler-tools-test.conf && \
           logrotate --verbose --force --state /var/tmp/webscaler-tools-test.state /var/tmp/webscaler-tools-test.conf 2>&1");
    let status = writer.wait_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "diskstats -l: {status:?}"
    );
    let rotated = std::fs::read_to_string(sb.path(&format!("{csv}.1"))).unwrap();
    let fresh = std::fs::read_to_string(sb.path(&csv)).unwrap();
    for (name, body) in [("rotated", &rotated), ("new", &fresh)] {
        assert!(
            body.starts_with("datetime,major_number,"),
            "{name} file: {body}"
        );
    }
    let data_rows = rotated.lines().count() - 1 + fresh.lines().count() - 1;
    assert_eq!(data_rows, rows, "rows lost or doubled across the rotation");
    assert!(
        fresh.lines().count() > 1,
        "nothing written after the rotation"
    );
    // The service's CSV is rotated as its user (`su`: root never renames files in a
    // directory that user can write), and no empty file is created.
    let uid = sb.ok("id -u webscaler");
    assert!(
        log.contains(&format!("switching euid from 0 to {}", uid.trim())),
        "logrotate did not switch to the webscaler user: {log}"
    );
    let owner = sb.ok("stat -c %U /var/log/webscaler/webscaler.csv.1");
    assert_eq!(owner.trim(), "webscaler");
    assert!(!sb.path("/var/log/webscaler/webscaler.csv").exists());
}

#[test]
fn the_debian_package_builds_passes_lintian_installs_works_and_purges() {
    let started = Instant::now();
    assert!(
        rustix::process::geteuid().is_root(),
        "this test installs a package (in a private mount namespace): run it as root, as CI does"
    );
    require(&[
        "dpkg-deb",
        "dpkg-shlibdeps",
        "lintian",
        "unshare",
        "nsenter",
        "man",
        "logrotate",
        "jq",
        "adduser",
    ]);
    let tmp = tempfile::Builder::new()
        .prefix("debian-package-")
        .tempdir()
        .unwrap();
    let phase = |what: &str| eprintln!("{:6.1} s  {what}", started.elapsed().as_secs_f64());
    let deb = build_package(&tmp.path().join("out"));
    phase("package built");
    check_contents(&deb);
    check_lintian(&deb);
    phase("lintian");

    let host_had_it = Path::new("/usr/share/doc/webscaler-tools/copyright").exists();
    std::fs::create_dir(tmp.path().join("sandbox")).unwrap();
    let sb = Sandbox::new(&tmp.path().join("sandbox"));
    let out = sb.command("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(out.status.success(), "dpkg -i: {}", show(&out));
    phase("dpkg -i");
    assert_eq!(
        sb.ok(&format!(
            "dpkg-query -W -f '${{Status}} ${{Version}}' {PACKAGE}"
        )),
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(sb.path("/usr/share/doc/webscaler-tools/copyright").exists());
    if !host_had_it {
        assert!(
            !Path::new("/usr/share/doc/webscaler-tools/copyright").exists(),
            "the install leaked out of the sandbox"
        );
    }

    // Man pages, found by man through its own database, and readable without warnings.
    assert_eq!(
        sb.ok("man -w diskstats").trim(),
        "/usr/share/man/man1/diskstats.1.gz"
    );
    assert_eq!(
        sb.ok("man -w webscaler-cloud-list").trim(),
        "/usr/share/man/man1/webscaler-cloud-list.1.gz"
    );
    let out = sb.sh("MANWIDTH=80 man --warnings diskstats");
    assert!(
        out.status.success() && text(&out.stderr).is_empty(),
        "man diskstats: {}",
        show(&out)
    );
    assert!(
        // man justifies the text: compare words.
        text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("diskstats - Samples /proc/diskstats"),
        "{}",
        show(&out)
    );

    // The bash completion completes a subcommand.
    let reply = sb.ok(
        "bash -c '. /usr/share/bash-completion/completions/diskstats && \
         COMP_WORDS=(diskstats rep) && COMP_CWORD=1 && _diskstats diskstats rep diskstats && \
         printf \"%s\\n\" \"${COMPREPLY[@]}\"'",
    );
    assert_eq!(reply.trim(), "report");
    assert!(
        std::fs::read_to_string(sb.path("/usr/share/zsh/vendor-completions/_webscaler"))
            .unwrap()
            .starts_with("#compdef webscaler")
    );

    // Each installed binary, found on PATH.
    for t in TOOLS {
        let v = sb.ok(&format!("command -v {t} && {t} --version"));
        assert_eq!(
            v,
            format!("/usr/bin/{t}\n{t} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    // The system user, and the service's command line accepts the packaged configuration.
    let user = sb.ok("getent passwd webscaler");
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(
        fields[5..],
        ["/var/lib/webscaler", "/usr/sbin/nologin"],
        "{user}"
    );
    assert!(
        fields[2].parse::<u32>().is_ok_and(|uid| uid < 1000),
        "not a system user: {user}"
    );
    check_unit(&sb);
    let settings = sb.ok(
        "setpriv --reuid webscaler --regid webscaler --init-groups \
         env WEBSCALER_STATE_DIR=/var/lib/webscaler WEBSCALER_OUTPUT=/var/log/webscaler/webscaler.csv \
         /usr/bin/webscaler run --config /etc/webscaler/webscaler.toml --check-config",
    );
    assert!(
        settings.contains("output = \"/var/log/webscaler/webscaler.csv\""),
        "{settings}"
    );
    assert!(
        settings.contains("cloud.provider = \"local\""),
        "{settings}"
    );

    phase("installed files checked");
    check_logrotate(&sb);
    phase("logrotate");

    // Remove: every file of the package is gone but the conffiles.
    let files = sb.ok(&format!("dpkg-query -L {PACKAGE}"));
    std::fs::create_dir_all(sb.path("/var/lib/webscaler")).unwrap();
    std::fs::write(sb.path("/var/lib/webscaler/status.json"), "{}").unwrap();
    let out = sb
        .command("dpkg")
        .args(["--remove", PACKAGE])
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg --remove: {}", show(&out));
    phase("dpkg --remove");
    assert_eq!(
        sb.ok(&format!("dpkg-query -W -f '${{Status}}' {PACKAGE}")),
        "deinstall ok config-files"
    );
    let left: Vec<&str> = files
        .lines()
        .filter(|f| {
            // Directories (and /lib, a link to one on a merged /usr) may stay: shared.
            let p = sb.path(f);
            p.symlink_metadata().is_ok() && !p.is_dir()
        })
        .collect();
    assert_eq!(left, CONFFILES, "left after dpkg --remove");
    assert!(!sb.path("/usr/share/doc/webscaler-tools").exists());
    assert!(
        sb.path("/var/lib/webscaler/status.json").exists(),
        "remove keeps the state"
    );

    // Purge: the conffiles, the state and the CSVs of the service go; the user stays.
    let out = sb
        .command("dpkg")
        .args(["--purge", PACKAGE])
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg --purge: {}", show(&out));
    phase("dpkg --purge");
    assert!(!sb.sh(&format!("dpkg-query -W {PACKAGE}")).status.success());
    for p in CONFFILES.iter().copied().chain([
        "/etc/webscaler",
        "/var/lib/webscaler",
        "/var/log/webscaler",
    ]) {
        assert!(!sb.path(p).exists(), "{p} is left after dpkg --purge");
    }
    assert!(sb.sh("getent passwd webscaler").status.success());
    drop(sb);
    eprintln!(
        "the package test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// In a new mount namespace: an overlay of / on a tmpfs ($1), the package and a oneshot
/// check unit added to it, an empty /run (systemd-nspawn keeps its state there: not the
/// machine's), then the container boots it with the results directory ($2) bound at
/// /results. The check unit powers the container off when it ends.
const BOOT_SCRIPT: &str = r#"
set -eu
top=$1 results=$2 deb=$3
mount -t tmpfs -o mode=0700 webscaler-tools-test "$top"
mkdir "$top/upper" "$top/work" "$top/root"
mount -t overlay webscaler-tools-test \
  -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$top/root"
mount -t tmpfs -o mode=0755 webscaler-tools-test /run
root=$top/root
# A container image's policy-rc.d (exit 101) forbids maintainer scripts to start or stop
# services; a server has none.
rm -f "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/root/webscaler-tools.deb"
cat >"$root/etc/systemd/system/webscaler-tools-check.service" <<'UNIT'
[Unit]
Description=webscaler-tools test: the packaged service under systemd
Wants=network-online.target
After=network-online.target
SuccessAction=poweroff
FailureAction=poweroff
[Service]
Type=oneshot
ExecStart=/bin/sh /results/check.sh
TimeoutStartSec=200
UNIT
ln -s ../webscaler-tools-check.service "$root/etc/systemd/system/multi-user.target.wants/"
exec systemd-nspawn --quiet --directory="$root" --machine=webscaler-tools-test --boot \
  --private-network --register=no --keep-unit --link-journal=no --bind="$results:/results"
"#;

/// Runs in the container as the check unit: installs the package, starts the service (a
/// drop-in sets 1-s ticks, as an operator's `systemctl edit` would), upgrades, stops, starts
/// and removes it, and writes what it sees as key=value lines to /results/result, its log
/// to /results/log.
const CHECK_SCRIPT: &str = r#"#!/bin/sh
r=/results/result
say() { echo "$1" >>"$r"; }
exec >/results/log 2>&1
set -x
if dpkg -i /root/webscaler-tools.deb; then say dpkg=ok; else say dpkg=failed; fi
mkdir -p /etc/systemd/system/webscaler.service.d
printf '[Service]\nEnvironment=WEBSCALER_INTERVAL=1s\n' >/etc/systemd/system/webscaler.service.d/interval.conf
systemctl daemon-reload
systemctl start webscaler
say "start=$?"
ready=no
i=0
while [ "$i" -lt 300 ]; do
  if jq -e '.last.haactive >= 2' /var/lib/webscaler/status.json >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.2
  i=$((i + 1))
done
say "ready=$ready"
say "http=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/)"
say "backends=$(pgrep -u webscaler -c -f '^/usr/bin/lbbench backend')"
say "haproxy=$(pgrep -u webscaler -c -x haproxy)"
say "csv=$(head -n 1 /var/log/webscaler/webscaler.csv)"
say "exposure=$(systemd-analyze security --no-pager webscaler.service | sed -n 's/.*exposure level for webscaler.service: \([0-9.]*\).*/\1/p')"
before=$(systemctl show -p MainPID --value webscaler)
master=$(cat /var/lib/webscaler/haproxy/haproxy.pid)
if dpkg -i /root/webscaler-tools.deb; then say upgrade=ok; else say upgrade=failed; fi
after=$(systemctl show -p MainPID --value webscaler)
if [ "$after" != "$before" ] && [ "$after" != 0 ]; then say restarted=yes; else say restarted=no; fi
if [ "$(cat /var/lib/webscaler/haproxy/haproxy.pid)" = "$master" ] && kill -0 "$master"; then say haproxy_kept=yes; else say haproxy_kept=no; fi
systemctl stop webscaler
say "state=$(systemctl show -p ActiveState --value webscaler)"
say "result=$(systemctl show -p Result --value webscaler)"
say "status=$(systemctl show -p ExecMainStatus --value webscaler)"
say "http_after_stop=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/)"
runuser -u webscaler -- webscaler down --state-dir /var/lib/webscaler
say "down=$?"
say "left=$(pgrep -u webscaler -c)"
systemctl start webscaler
if dpkg -r webscaler-tools; then say remove=ok; else say remove=failed; fi
say "left_after_remove=$(pgrep -u webscaler -c)"
journalctl -u webscaler --no-pager | tail -n 40
say done=yes
"#;

#[test]
fn the_packaged_service_runs_hardened_under_systemd() {
    let started = Instant::now();
    assert!(
        rustix::process::geteuid().is_root(),
        "this test boots a container: run it as root, as CI does"
    );
    require(&[
        "dpkg-deb",
        "dpkg-shlibdeps",
        "unshare",
        "systemd-nspawn",
        "jq",
        "curl",
    ]);
    let tmp = tempfile::Builder::new()
        .prefix("debian-service-")
        .tempdir()
        .unwrap();
    let deb = build_package(&tmp.path().join("out"));
    let results = tmp.path().join("results");
    let top = tmp.path().join("top");
    std::fs::create_dir(&results).unwrap();
    std::fs::create_dir(&top).unwrap();
    let check = results.join("check.sh");
    std::fs::write(&check, CHECK_SCRIPT).unwrap();
    std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755)).unwrap();
    let console = std::fs::File::create(tmp.path().join("console")).unwrap();

    // If the test dies, SIGTERM halts the container (its check also powers it off when done).
    let mut boot = Supervised::spawn_with(
        "systemd-nspawn",
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                BOOT_SCRIPT,
                "sh",
            ])
            .arg(&top)
            .arg(&results)
            .arg(&deb)
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console),
        &SpawnOptions::default().parent_death(Signal::TERM),
    )
    .unwrap()
    .with_grace(Duration::from_secs(30));
    let ended = boot.wait_timeout(Duration::from_secs(300)).unwrap();
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap_or_default();
    let report = || {
        format!(
            "result:\n{}\ncheck log:\n{}\nconsole (last 40 lines):\n{}",
            read("results/result"),
            read("results/log"),
            read("console")
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(
        ended.is_some(),
        "the container did not power off in 300 s: {}",
        report()
    );
    let result: BTreeMap<String, String> = read("results/result")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let get = |k: &str| result.get(k).map(String::as_str).unwrap_or("");
    assert_eq!(get("done"), "yes", "the check did not finish: {}", report());
    for (key, want) in [
        ("dpkg", "ok"),
        ("start", "0"),
        // min = 2 backends, in HAProxy and passing its checks, through the unit's hardening.
        ("ready", "yes"),
        ("http", "200"),
        ("backends", "2"),
        // HAProxy's master and its worker.
        ("haproxy", "2"),
        (
            "csv",
            "diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate",
        ),
        // An upgrade (the same package again) restarts the running service; its HAProxy
        // (the same master) keeps serving.
        ("upgrade", "ok"),
        ("restarted", "yes"),
        ("haproxy_kept", "yes"),
        // SIGTERM: webscaler finishes its tick and exits 0; the site keeps serving until
        // `webscaler down`, after which nothing is left.
        ("state", "inactive"),
        ("result", "success"),
        ("status", "0"),
        ("http_after_stop", "200"),
        ("down", "0"),
        ("left", "0"),
        // Removing the package stops a running service and takes its site down.
        ("remove", "ok"),
        ("left_after_remove", "0"),
    ] {
        assert_eq!(get(key), want, "{key}: {}", report());
    }
    // systemd's own rating of the unit's sandboxing: 0 (locked down) to 10 (exposed).
    let exposure: f64 = get("exposure").parse().unwrap_or(10.0);
    assert!(exposure < 3.0, "exposure {exposure}: {}", report());
    eprintln!(
        "the service test took {:.1} s (exposure {exposure})",
        started.elapsed().as_secs_f64()
    );
}
