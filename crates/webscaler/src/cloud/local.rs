//! The local provider: each backend is a process on 127.0.0.1, started from a command
//! template (by default `lbbench backend --port {port} --name {name}`).
//!
//! The slots live in a state file (`local-cloud.json` in the state directory), so a
//! restarted webscaler (or `webscaler cloud list` from another shell) finds its backends
//! again. A slot's process counts as running only if its pid is alive *and* still runs the
//! command we started (`/proc/PID/cmdline`), so a reused pid is never mistaken for a backend
//! and never signalled. Every change to the state file is made under an exclusive `flock`
//! and written atomically (temporary file + rename).
//!
//! Stop sends SIGTERM to the backend's process group, then SIGKILL after a grace period,
//! and keeps the slot (name, id, port) as `SHUTOFF`: a warm instance that starts again
//! quickly. Delete stops it and forgets the slot. An optional boot delay imitates a cloud:
//! the command is started through `sh -c 'sleep D && exec ...'`, and the backend reads
//! `BUILD` until the delay has passed and its port accepts connections.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::process::{cmdline, is_alive};
use serde::{Deserialize, Serialize};

use super::{
    Address, Backend, Cloud, CloudError, Creation, Limit, Naming, Quota, Status, sort_backends,
};

/// The default command template of a backend.
pub const DEFAULT_COMMAND: &str = "lbbench backend --port {port} --name {name}";
/// The default number of backends the local "cloud" allows (its quota).
pub const DEFAULT_MAX_BACKENDS: u64 = 20;
/// The state file's name in the state directory.
pub const STATE_FILE: &str = "local-cloud.json";
const LOCK_FILE: &str = "local-cloud.lock";
const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Settings of the local provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// Where the state file and the backends' logs live.
    pub state_dir: PathBuf,
    /// The command template; `{port}`, `{name}`, `{id}` and `{host}` are replaced in each
    /// word. A bare program name is looked up next to the running executable, then on
    /// `PATH`.
    pub command: String,
    /// The name prefix of backends.
    pub prefix: String,
    /// How long a new or restarted backend takes to "boot" before its command runs.
    pub boot_delay: Duration,
    /// Time between SIGTERM and SIGKILL on stop and delete.
    pub grace: Duration,
    /// The quota: how many slots (running or stopped) may exist; `None` = unlimited.
    pub max_backends: Option<u64>,
}

impl LocalOptions {
    /// The defaults, with the state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> LocalOptions {
        LocalOptions {
            state_dir: state_dir.into(),
            command: DEFAULT_COMMAND.to_owned(),
            prefix: super::DEFAULT_PREFIX.to_owned(),
            boot_delay: Duration::ZERO,
            grace: Duration::from_secs(5),
            max_backends: Some(DEFAULT_MAX_BACKENDS),
        }
    }
}

/// The default state directory: `$XDG_STATE_HOME/webscaler`, else
/// `$HOME/.local/state/webscaler`, else `./.webscaler-state`.
pub fn default_state_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(x) = env("XDG_STATE_HOME").filter(|x| x.starts_with('/')) {
        return Path::new(&x).join("webscaler");
    }
    if let Some(h) = env("HOME").filter(|h| !h.is_empty()) {
        return Path::new(&h).join(".local/state/webscaler");
    }
    PathBuf::from(".webscaler-state")
}

/// The local provider. See the module documentation.
#[derive(Debug)]
pub struct LocalCloud {
    opts: LocalOptions,
    naming: Naming,
    /// Processes started by this very process, kept to reap them (no zombies).
    children: Mutex<HashMap<u32, Child>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    next_id: u64,
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    name: String,
    id: String,
    port: u16,
    created: DateTime<Utc>,
    /// The process, while it was last known to run.
    pid: Option<u32>,
    /// The command line as spawned (with the boot-delay wrapper, if any).
    spawned: Vec<String>,
    /// The backend's own command line (what the wrapper `exec`s).
    command: Vec<String>,
    /// When the boot delay ends.
    ready_at: Option<DateTime<Utc>>,
}

impl LocalCloud {
    /// A local provider with these options. Creates the state directory. The command
    /// template is checked when a backend is started (listing needs no program).
    pub fn new(opts: LocalOptions) -> Result<LocalCloud, CloudError> {
        fs::create_dir_all(&opts.state_dir).map_err(|e| {
            CloudError::io(
                format!("cannot create state directory {}", opts.state_dir.display()),
                e,
            )
        })?;
        Ok(LocalCloud {
            naming: Naming::new(&opts.prefix),
            opts,
            children: Mutex::new(HashMap::new()),
        })
    }

    /// The path of the state file.
    pub fn state_path(&self) -> PathBuf {
        self.opts.state_dir.join(STATE_FILE)
    }

    /// The pid of a backend's process while it runs (for tests and diagnostics).
    pub fn pid_of(&self, backend: &Backend) -> Result<Option<u32>, CloudError> {
        let _lock = self.lock(false)?;
        let state = self.read_state()?;
        Ok(state
            .slots
            .iter()
            .find(|s| s.id == backend.id)
            .filter(|s| running(s))
            .and_then(|s| s.pid))
    }

    fn lock(&self, exclusive: bool) -> Result<File, CloudError> {
        let path = self.opts.state_dir.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CloudError::io(format!("cannot open {}", path.display()), e))?;
        let r = if exclusive { f.lock() } else { f.lock_shared() };
        r.map_err(|e| CloudError::io(format!("cannot lock {}", path.display()), e))?;
        Ok(f)
    }

    fn read_state(&self) -> Result<State, CloudError> {
        let path = self.state_path();
        match fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| {
                CloudError::config(format!("{}: not a valid state file: {e}", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State {
                version: 1,
                next_id: 1,
                slots: Vec::new(),
            }),
            Err(e) => Err(CloudError::io(format!("cannot read {}", path.display()), e)),
        }
    }

    fn write_state(&self, state: &State) -> Result<(), CloudError> {
        let path = self.state_path();
        let mut text = serde_json::to_string_pretty(state).map_err(io::Error::other);
        if let Ok(t) = &mut text {
            t.push('\n');
        }
        text.and_then(|t| common::atomic::write_with_mode(&path, t.as_bytes(), 0o600))
            .map_err(|e| CloudError::io(format!("cannot write {}", path.display()), e))
    }

    /// Reaps our own children that have exited, so they do not linger as zombies.
    fn reap(&self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.retain(|_, c| matches!(c.try_wait(), Ok(None)));
    }

    fn backend(&self, slot: &Slot, now: DateTime<Utc>) -> Backend {
        let status = if running(slot) {
            let booted = slot.ready_at.is_none_or(|t| now >= t);
            if booted && port_answers(slot.port) {
                Status::Active
            } else {
                Status::Build
            }
        } else {
            Status::Shutoff
        };
        Backend {
            name: slot.name.clone(),
            id: slot.id.clone(),
            status,
            address: Some(Address {
                ip: HOST,
                port: Some(slot.port),
            }),
            created: Some(slot.created),
            task: None,
        }
    }

    fn spawn(&self, slot: &mut Slot) -> Result<(), CloudError> {
        let command = render_command(&self.opts.command, &slot.name, &slot.id, slot.port)?;
        let spawned = if self.opts.boot_delay.is_zero() {
            command.clone()
        } else {
            let mut v = vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "sleep \"$0\" && exec \"$@\"".to_owned(),
                format!("{:.3}", self.opts.boot_delay.as_secs_f64()),
            ];
            v.extend(command.iter().cloned());
            v
        };
        let log_path = self.opts.state_dir.join(format!("{}.log", slot.name));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| CloudError::io(format!("cannot open {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| CloudError::io(format!("cannot open {}", log_path.display()), e))?;
        let child = Command::new(&spawned[0])
            .args(&spawned[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C on webscaler does not reach the backends
            // (they outlive it, like instances), and stop reaches the whole group.
            .process_group(0)
            .spawn()
            .map_err(|e| CloudError::io(format!("cannot start {}", spawned.join(" ")), e))?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, child);
        slot.pid = Some(pid);
        slot.spawned = spawned;
        slot.command = command;
        slot.ready_at = Some(
            Utc::now()
                + chrono::Duration::from_std(self.opts.boot_delay).unwrap_or(chrono::Duration::MAX),
        );
        // Between fork and exec the child still shows our own command line; wait for the
        // exec so that a listing right now sees the backend as ours.
        let _ = common::wait::poll_until(
            "the backend to exec",
            Duration::from_secs(5),
            Duration::from_millis(2),
            || (running(slot) || !is_alive(pid)).then_some(()),
        );
        Ok(())
    }

    fn kill(&self, slot: &mut Slot) -> Result<(), CloudError> {
        let Some(pid) = slot.pid else { return Ok(()) };
        if running(slot) {
            terminate_group(pid, self.opts.grace, || self.reap())
                .map_err(|e| CloudError::io(format!("cannot stop {} (pid {pid})", slot.name), e))?;
        }
        if let Some(mut c) = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid)
        {
            let _ = c.wait();
        }
        slot.pid = None;
        Ok(())
    }

    fn with_slot<T>(
        &self,
        backend: &Backend,
        f: impl FnOnce(&Self, &mut State, usize) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let _lock = self.lock(true)?;
        self.reap();
        let mut state = self.read_state()?;
        let i = state
            .slots
            .iter()
            .position(|s| s.id == backend.id)
            .ok_or_else(|| CloudError::NotFound {
                what: format!("backend {} ({})", backend.name, backend.id),
            })?;
        let r = f(self, &mut state, i)?;
        self.write_state(&state)?;
        Ok(r)
    }
}

impl Cloud for LocalCloud {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        let _lock = self.lock(false)?;
        self.reap();
        let state = self.read_state()?;
        let now = Utc::now();
        let mut v: Vec<Backend> = state
            .slots
            .iter()
            .filter(|s| self.naming.is_backend(&s.name))
            .map(|s| self.backend(s, now))
            .collect();
        sort_backends(&mut v);
        Ok(v)
    }

    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        let _lock = self.lock(true)?;
        self.reap();
        let mut state = self.read_state()?;
        let names = self
            .naming
            .next_names(state.slots.iter().map(|s| s.name.as_str()), count);
        let mut out = Vec::with_capacity(count);
        for name in names {
            let used = state.slots.len() as u64;
            if let Some(max) = self.opts.max_backends.filter(|&m| used >= m) {
                out.push(Creation {
                    name,
                    result: Err(CloudError::QuotaExceeded {
                        message: format!(
                            "Quota exceeded for instances: Requested 1, but already used {used} of {max} instances"
                        ),
                    }),
                });
                continue;
            }
            let taken: Vec<u16> = state.slots.iter().map(|s| s.port).collect();
            let port = match free_port_except(&taken) {
                Ok(p) => p,
                Err(e) => {
                    out.push(Creation {
                        name,
                        result: Err(CloudError::io("cannot find a free port", e)),
                    });
                    continue;
                }
            };
            let mut slot = Slot {
                name: name.clone(),
                id: format!("local-{}", state.next_id),
                port,
                created: Utc::now(),
                pid: None,
                spawned: Vec::new(),
                command: Vec::new(),
                ready_at: None,
            };
            state.next_id += 1;
            let result = self.spawn(&mut slot).map(|()| {
                let b = self.backend(&slot, Utc::now());
                state.slots.push(slot);
                b
            });
            out.push(Creation { name, result });
        }
        self.write_state(&state)?;
        Ok(out)
    }

    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i| {
            if running(&state.slots[i]) {
                return Err(CloudError::Transitional {
                    name: backend.name.clone(),
                    action: "started",
                    message: "it is already running".into(),
                });
            }
            // Keep the port if it is still free: the balancer knows it.
            let port = state.slots[i].port;
            if TcpListener::bind(SocketAddr::new(HOST, port)).is_err() {
                let taken: Vec<u16> = state.slots.iter().map(|s| s.port).collect();
                state.slots[i].port = free_port_except(&taken)
                    .map_err(|e| CloudError::io("cannot find a free port", e))?;
            }
            me.spawn(&mut state.slots[i])
        })
    }

    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i| {
            if !running(&state.slots[i]) {
                return Err(CloudError::Transitional {
                    name: backend.name.clone(),
                    action: "stopped",
                    message: "it is not running (SHUTOFF)".into(),
                });
            }
            me.kill(&mut state.slots[i])
        })
    }

    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i| {
            me.kill(&mut state.slots[i])?;
            let slot = state.slots.remove(i);
            let _ = fs::remove_file(me.opts.state_dir.join(format!("{}.log", slot.name)));
            Ok(())
        })
    }

    fn quota(&self) -> Result<Quota, CloudError> {
        let _lock = self.lock(false)?;
        let state = self.read_state()?;
        let instances = Limit {
            used: state.slots.len() as u64,
            max: self.opts.max_backends,
        };
        Ok(Quota {
            instances,
            cores: None,
            ram_mb: None,
            left: instances.left(),
        })
    }
}

/// Whether the slot's pid is alive and still runs the command we started.
fn running(slot: &Slot) -> bool {
    let Some(pid) = slot.pid else { return false };
    if !is_alive(pid) {
        return false;
    }
    match cmdline(pid) {
        Some(c) => c == slot.spawned || c == slot.command,
        None => false,
    }
}

fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::new(HOST, port), Duration::from_millis(300)).is_ok()
}

fn free_port_except(taken: &[u16]) -> io::Result<u16> {
    for _ in 0..100 {
        let p = common::net::free_port()?;
        if !taken.contains(&p) {
            return Ok(p);
        }
    }
    Err(io::Error::other("no free port found in 100 tries"))
}

/// SIGTERM to the process group of `pid`, up to `grace` for it to go, then SIGKILL.
/// `reap` is called while waiting, so that our own children do not stay zombies.
fn terminate_group(pid: u32, grace: Duration, reap: impl Fn()) -> io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    let p = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
    let signal = |sig: Signal| {
        // The group is ours (process_group(0) at spawn); fall back to the process alone if
        // it somehow left it.
        if kill_process_group(p, sig).is_err() {
            let _ = kill_process(p, sig);
        }
    };
    let gone = |timeout: Duration| {
        common::wait::poll_until("exit", timeout, Duration::from_millis(10), || {
            reap();
            (!is_alive(pid)).then_some(())
        })
        .is_ok()
    };
    let group_gone = |timeout: Duration| {
        common::wait::poll_until("group exit", timeout, Duration::from_millis(10), || {
            reap();
            (!group_has_live_members(pid)).then_some(())
        })
        .is_ok()
    };
    signal(Signal::TERM);
    if gone(grace) {
        // The rest of the group (e.g. the boot delay's `sleep`) goes too.
        if group_has_live_members(pid) {
            signal(Signal::KILL);
        }
        if group_gone(Duration::from_secs(10)) {
            return Ok(());
        }
        return Err(io::Error::other(
            "its process group is still alive after SIGKILL",
        ));
    }
    signal(Signal::KILL);
    if gone(Duration::from_secs(10)) && group_gone(Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(io::Error::other("still alive after SIGKILL"))
    }
}

/// Whether any live (non-zombie) process is in process group `pgid` (from /proc).
pub fn group_has_live_members(pgid: u32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command's closing parenthesis: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1).and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// Splits the template into words (single and double quotes group words), replaces the
/// placeholders, and resolves a bare program name.
fn render_command(
    template: &str,
    name: &str,
    id: &str,
    port: u16,
) -> Result<Vec<String>, CloudError> {
    let words = split_words(template).ok_or_else(|| {
        CloudError::config(format!("command template {template:?}: unbalanced quote"))
    })?;
    if words.is_empty() {
        return Err(CloudError::config("the backend command template is empty"));
    }
    let mut argv: Vec<String> = words
        .iter()
        .map(|w| {
            w.replace("{port}", &port.to_string())
                .replace("{name}", name)
                .replace("{id}", id)
                .replace("{host}", &HOST.to_string())
        })
        .collect();
    argv[0] = resolve_program(&argv[0])?.to_string_lossy().into_owned();
    Ok(argv)
}

fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// A program path as given, or a bare name looked up next to the running executable, then
/// on `PATH`.
pub fn resolve_program(program: &str) -> Result<PathBuf, CloudError> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(CloudError::config(format!(
                "backend command: {program} does not exist"
            )))
        };
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(d) = &exe_dir {
        let p = d.join(program);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(program);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(CloudError::config(format!(
        "backend command: cannot find {program} next to {} or on PATH",
        exe_dir.map_or_else(|| "webscaler".to_owned(), |d| d.display().to_string())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_with_quotes() {
        assert_eq!(
            split_words(r#"a  'b c' "d'e" f"#).unwrap(),
            ["a", "b c", "d'e", "f"]
        );
        assert_eq!(split_words("x ''").unwrap(), ["x", ""]);
        assert!(split_words("a 'b").is_none());
        assert!(split_words("   ").unwrap().is_empty());
    }

    #[test]
    fn placeholders_are_replaced_per_word() {
        let argv =
            render_command("sh -c 'echo {name}:{port}' {id}", "node-1", "local-7", 8080).unwrap();
        assert!(argv[0].ends_with("/sh"), "{argv:?}");
        assert_eq!(&argv[1..], ["-c", "echo node-1:8080", "local-7"]);
    }

    #[test]
    fn a_missing_program_is_named() {
        let e = render_command("no-such-program-xyz --port {port}", "n", "i", 1).unwrap_err();
        assert!(e.to_string().contains("no-such-program-xyz"), "{e}");
        let e = render_command("/nonexistent/prog", "n", "i", 1).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/prog"), "{e}");
        assert!(render_command("", "n", "i", 1).is_err());
    }

    #[test]
    fn default_state_dir_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_state_dir(env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/webscaler")
        );
        assert_eq!(
            default_state_dir(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.local/state/webscaler")
        );
        assert_eq!(
            default_state_dir(env(&[])),
            PathBuf::from(".webscaler-state")
        );
    }
}
