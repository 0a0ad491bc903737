//! What the workspace's tests share (a dev-dependency of every crate, never part of a tool):
//! the workspace's root, its binaries (built first if needed, so a test of one crate can run
//! another crate's binary), and the command-line basics every tool must have.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The path of one of the workspace's binaries (`webscaler`, `lbbench`, `diskstats`) in the
/// same target directory as the running test, built first if needed.
///
/// A test of one crate can thus run another crate's binary (webscaler's tests run
/// `lbbench backend`). When the binary is newer than every source file it is built from
/// (`crates/<name>`, `crates/common`, `Cargo.toml`, `Cargo.lock`), as after `cargo test
/// --workspace`, it is used as it is; otherwise `cargo build` runs once per test process.
/// (A nested `cargo build -p <name>` resolves features without the test's dev-dependencies,
/// so it would rebuild the binary even when it is fresh.)
///
/// # Panics
///
/// If the binary cannot be built: a test cannot go on without it.
pub fn workspace_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let exe = std::env::current_exe().expect("the test executable's path");
    // Test executables live in <target>/<profile>/deps/.
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("the target directory")
        .to_path_buf();
    let bin = profile_dir.join(name);
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        if !is_fresh(&bin, name) {
            let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.args(["build", "--quiet", "-p", name, "--bin", name])
                .current_dir(workspace_root());
            if profile_dir.file_name().is_some_and(|p| p == "release") {
                cmd.arg("--release");
            }
            if let Some(target) = profile_dir.parent() {
                cmd.env("CARGO_TARGET_DIR", target);
            }
            let status = cmd
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
            assert!(status.success(), "cargo build -p {name} failed");
        }
        built.push(name.to_owned());
    }
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// Whether `bin` exists and is newer than every source it is built from.
fn is_fresh(bin: &Path, name: &str) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = vec![
        root.join("crates").join(name),
        root.join("crates/common"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(p) = stack.pop() {
        let Ok(meta) = p.metadata() else { continue };
        if meta.is_dir() {
            if p.file_name().is_some_and(|n| n == "target" || n == "tests") {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    built > newest
}

/// Checks the command-line basics every tool of the workspace shares: `--help` prints the
/// usage line `Usage: <name>` and exits 0; `--version` prints exactly `<name> <version>`;
/// an unknown flag is a usage error (exit 2) that names the flag; `completions bash` prints
/// a bash completion function for the tool and `man` its manual page.
///
/// # Panics
///
/// On the first difference, with what the binary printed.
pub fn assert_cli_basics(bin: impl AsRef<Path>, name: &str, version: &str) {
    let run_args = |args: &[&str]| {
        Command::new(bin.as_ref())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} {args:?}: {e}", bin.as_ref().display()))
    };
    let run = |arg: &str| run_args(&[arg]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let help = run("--help");
    assert_eq!(help.status.code(), Some(0), "{name} --help: {help:?}");
    assert!(
        text(&help.stdout).contains(&format!("Usage: {name}")),
        "{name} --help: {}",
        text(&help.stdout)
    );

    let version_out = run("--version");
    assert_eq!(version_out.status.code(), Some(0), "{name} --version");
    assert_eq!(text(&version_out.stdout), format!("{name} {version}\n"));

    let bad = run("--no-such-flag");
    assert_eq!(bad.status.code(), Some(2), "{name} --no-such-flag: {bad:?}");
    assert!(
        text(&bad.stderr).contains("--no-such-flag"),
        "{name} --no-such-flag: {}",
        text(&bad.stderr)
    );

    let completions = run_args(&["completions", "bash"]);
    assert_eq!(
        completions.status.code(),
        Some(0),
        "{name} completions bash: {completions:?}"
    );
    let script = text(&completions.stdout);
    assert!(
        script.contains(&format!("complete -F _{name} ")) && script.contains(" man "),
        "{name} completions bash: {script}"
    );

    let man = run_args(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{name} man: {man:?}");
    let page = text(&man.stdout);
    assert!(
        page.contains(&format!(".TH {name} 1  \"{name} {version}\""))
            && page.contains(".SH SYNOPSIS"),
        "{name} man: {page}"
    );
}

/// Makes a FIFO (named pipe) at `path`, for tests of what refuses one.
///
/// # Panics
///
/// If `mkfifo` fails.
pub fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("cannot run mkfifo: {e}"));
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Asserts that the real `promtool check metrics` accepts `text` (a Prometheus exposition)
/// and says nothing about it (no lint).
///
/// # Panics
///
/// If promtool cannot run (the Debian package `prometheus`; scripts/setup.sh installs it),
/// rejects the text, or prints anything.
pub fn assert_promtool_accepts(text: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (the Debian package prometheus; scripts/setup.sh installs it)");
    p.stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = p.wait_with_output().expect("promtool's output");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}
