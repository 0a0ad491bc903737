//! The local provider: each backend is a process on 127.0.0.1, started from a command
//! template (by default `lbbench backend --port {port} --name {name}`).
//!
//! The slots live in a state file (`local-cloud.json` in the state directory), so a
//! restarted webscaler (or `webscaler cloud list` from another shell) finds its backends
//! again. Every change to the state file is made under an exclusive `flock` and written
//! atomically (temporary file + rename).
//!
//! **No backend is ever untracked.** A new backend's slot is written to the state file
//! *before* its process is started, and every process is started with a marker in its
//! environment, `WEBSCALER_LOCAL_BACKEND=<state dir>:<slot id>` ([`MARKER`]), in a session
//! and process group of its own. A slot's backend runs while some live process carries its
//! marker (`/proc/PID/environ`, inherited by whatever the command starts), not while its
//! command line looks right: a wrapper script, an interpreter shim or a boot delay's `sh`
//! count as the backend, and a reused pid never does. So a webscaler killed in the middle of
//! a create leaves a slot whose process the next listing adopts, and any process of this
//! state directory without a slot (which nothing can create, but an edited state file can)
//! is stopped when the provider is opened.
//!
//! **Stopping never waits.** Stop and delete send SIGTERM to the backend's process group
//! and return; the backend reads `ACTIVE` with the task `powering-off` (or `deleting`)
//! until its processes are gone, and a listing once the grace has passed sends SIGKILL to
//! what is left. Then a stopped backend keeps its slot (name, id, port) as `SHUTOFF`, a warm
//! instance that starts again quickly, and a deleted one's slot is forgotten. An optional
//! boot delay imitates a cloud: the command is started through `sh -c 'sleep D && exec
//! ...'`, and the backend reads `BUILD` until the delay has passed and its port accepts
//! connections.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::lock::{FileLock, LockMode};
use common::process::{
    Marked, SpawnOptions, cmdline, find_marked, is_alive, signal_group, split_words,
};
use rustix::process::Signal;
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
/// The environment variable that marks a backend's processes: `<state dir>:<slot id>`.
pub const MARKER: &str = "WEBSCALER_LOCAL_BACKEND";
const LOCK_FILE: &str = "local-cloud.lock";
/// The backends' default address.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long processes may take to go after SIGKILL before a teardown gives up on them.
const KILL_WAIT: Duration = Duration::from_secs(10);

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
    /// The address the backends listen on (`{host}` in the command) and are reached at:
    /// 127.0.0.1, or an address of this machine that the HAProxy hosts reach.
    pub host: IpAddr,
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
            host: DEFAULT_HOST,
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
    /// What the provider did on its own (adoptions, kills), for the caller's log.
    notes: Mutex<Vec<String>>,
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
    /// The process group of its processes while it runs (its first process's pid); `None`
    /// while it is stopped, and between the slot's creation and its process's start.
    pid: Option<u32>,
    /// The command line as spawned (with the boot-delay wrapper, if any).
    spawned: Vec<String>,
    /// The backend's own command line (what the wrapper `exec`s).
    command: Vec<String>,
    /// When the boot delay ends.
    ready_at: Option<DateTime<Utc>>,
    /// A stop or delete in progress: SIGTERM was sent.
    #[serde(default)]
    leaving: Option<Leaving>,
    /// Whether its process was started with the marker (false in slots of older versions).
    #[serde(default)]
    marked: bool,
}

/// A stop or delete that has sent SIGTERM and waits for the processes to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Leaving {
    /// When SIGTERM was sent.
    since: DateTime<Utc>,
    /// Forget the slot once its processes are gone (else keep it, stopped).
    delete: bool,
    /// Whether SIGKILL was sent (the grace had passed).
    killed: bool,
}

/// The processes of this state directory, by slot id (one pass over `/proc`).
type Scan = HashMap<String, Vec<Marked>>;

/// What a teardown stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    /// The backends deleted (running or not).
    pub deleted: Vec<String>,
    /// Process groups of this state directory that had no slot.
    pub strays: usize,
}

impl LocalCloud {
    /// A local provider with these options. Creates the state directory (the options'
    /// directory is made absolute: the marker names it). Adopts processes of its slots that
    /// a killed run started without recording, and stops processes of this state directory
    /// that have no slot (both said by [`Cloud::take_notes`]). The command template is
    /// checked when a backend is started (listing needs no program).
    pub fn new(mut opts: LocalOptions) -> Result<LocalCloud, CloudError> {
        let dir = &opts.state_dir;
        fs::create_dir_all(dir).map_err(|e| {
            CloudError::io(
                format!("cannot create state directory {}", dir.display()),
                e,
            )
        })?;
        opts.state_dir = fs::canonicalize(dir).map_err(|e| {
            CloudError::io(
                format!("cannot resolve state directory {}", dir.display()),
                e,
            )
        })?;
        let cloud = LocalCloud {
            naming: Naming::new(&opts.prefix),
            opts,
            children: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
        };
        cloud.recover()?;
        Ok(cloud)
    }

    /// The state directory (absolute).
    pub fn state_dir(&self) -> &Path {
        &self.opts.state_dir
    }

    /// The path of the state file.
    pub fn state_path(&self) -> PathBuf {
        self.opts.state_dir.join(STATE_FILE)
    }

    /// The marker value of a slot's processes.
    fn marker_value(&self, id: &str) -> String {
        format!("{}:{id}", self.opts.state_dir.display())
    }

    /// The pid (process group) of a backend's processes while it runs (for tests and
    /// diagnostics).
    pub fn pid_of(&self, backend: &Backend) -> Result<Option<u32>, CloudError> {
        let _lock = self.lock(LockMode::Shared)?;
        let state = self.read_state()?;
        let scan = self.scan();
        Ok(state
            .slots
            .iter()
            .find(|s| s.id == backend.id)
            .and_then(|s| groups(s, &scan).first().copied()))
    }

    /// Stops every backend of this state directory and forgets every slot, waiting for the
    /// processes to go: SIGTERM to all, up to the grace, then SIGKILL (`webscaler down`).
    /// Processes of the state directory without a slot are stopped too.
    pub fn teardown(&self) -> Result<Teardown, CloudError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        self.reap();
        let mut state = self.read_state()?;
        let scan = self.scan();
        let slot_ids: BTreeSet<&str> = state.slots.iter().map(|s| s.id.as_str()).collect();
        let strays = scan
            .keys()
            .filter(|id| !slot_ids.contains(id.as_str()))
            .count();
        let all: BTreeSet<u32> = state
            .slots
            .iter()
            .flat_map(|s| groups(s, &scan))
            .chain(scan.values().flatten().map(|m| m.pgid))
            .collect();
        let left = |me: &Self| -> BTreeSet<u32> {
            me.reap();
            let scan = me.scan();
            all.iter()
                .copied()
                .filter(|g| {
                    scan.values().flatten().any(|m| m.pgid == *g)
                        || (is_alive(*g) && state.slots.iter().any(|s| s.pid == Some(*g)))
                })
                .collect()
        };
        for g in &all {
            let _ = signal_group(*g, Signal::TERM);
        }
        let gone = |timeout: Duration| {
            common::wait::poll_until("exit", timeout, Duration::from_millis(20), || {
                left(self).is_empty().then_some(())
            })
            .is_ok()
        };
        if !gone(self.opts.grace) {
            for g in left(self) {
                let _ = signal_group(g, Signal::KILL);
            }
            if !gone(KILL_WAIT) {
                return Err(CloudError::io(
                    format!(
                        "cannot stop the backends of {}",
                        self.opts.state_dir.display()
                    ),
                    io::Error::other(format!(
                        "process groups {:?} are still alive after SIGKILL",
                        left(self)
                    )),
                ));
            }
        }
        let deleted = state.slots.iter().map(|s| s.name.clone()).collect();
        for s in &state.slots {
            let _ = fs::remove_file(self.log_path(&s.name));
        }
        state.slots.clear();
        self.write_state(&state)?;
        Ok(Teardown { deleted, strays })
    }

    fn lock(&self, mode: LockMode) -> Result<FileLock, CloudError> {
        let path = self.opts.state_dir.join(LOCK_FILE);
        FileLock::wait(&path, mode)
            .map_err(|e| CloudError::io(format!("cannot lock {}", path.display()), e))
    }

    fn read_state(&self) -> Result<State, CloudError> {
        let path = self.state_path();
        match fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| {
                CloudError::config(format!("{}: not a valid state file: {e}", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State {
                version: 2,
                next_id: 1,
                slots: Vec::new(),
            }),
            Err(e) => Err(CloudError::io(format!("cannot read {}", path.display()), e)),
        }
    }

    fn write_state(&self, state: &State) -> Result<(), CloudError> {
        let path = self.state_path();
        let state = State {
            version: 2,
            ..state.clone()
        };
        let mut text = serde_json::to_string_pretty(&state).map_err(io::Error::other);
        if let Ok(t) = &mut text {
            t.push('\n');
        }
        text.and_then(|t| common::atomic::write_with_mode(&path, t.as_bytes(), 0o600))
            .map_err(|e| CloudError::io(format!("cannot write {}", path.display()), e))
    }

    /// The processes of this state directory, by slot id.
    fn scan(&self) -> Scan {
        let prefix = format!("{}:", self.opts.state_dir.display());
        let mut scan = Scan::new();
        for m in find_marked(MARKER) {
            if let Some(id) = m.value.strip_prefix(&prefix) {
                scan.entry(id.to_owned()).or_default().push(m);
            }
        }
        scan
    }

    fn note(&self, message: String) {
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    /// Reaps our own children that have exited, so they do not linger as zombies.
    fn reap(&self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.retain(|_, c| matches!(c.try_wait(), Ok(None)));
    }

    /// On opening: stops the processes of this state directory that have no slot, then
    /// tidies the slots ([`LocalCloud::tidy`]).
    fn recover(&self) -> Result<(), CloudError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut state = self.read_state()?;
        let scan = self.scan();
        for (id, procs) in &scan {
            if state.slots.iter().any(|s| &s.id == id) {
                continue;
            }
            let pgids: BTreeSet<u32> = procs.iter().map(|m| m.pgid).collect();
            for g in pgids {
                self.note(format!(
                    "stopping process group {g} of {}: it carries the marker of slot {id}, which the state file does not have",
                    self.opts.state_dir.display()
                ));
                let _ = common::process::terminate_group(g, self.opts.grace, || self.reap());
            }
        }
        if self.tidy(&mut state, &self.scan()) {
            self.write_state(&state)?;
        }
        Ok(())
    }

    /// Brings the slots up to date with their processes (under the exclusive lock): adopts
    /// the processes of a slot that has no pid (a run killed between the spawn and the
    /// record), forgets the pid of a backend whose processes are gone, ends stops and
    /// deletes whose processes are gone, and sends SIGKILL to those that outlived the grace.
    /// Returns whether a slot changed.
    fn tidy(&self, state: &mut State, scan: &Scan) -> bool {
        self.reap();
        let now = Utc::now();
        let grace = chrono::Duration::from_std(self.opts.grace).unwrap_or(chrono::Duration::MAX);
        let mut changed = false;
        let mut keep = Vec::with_capacity(state.slots.len());
        for mut slot in std::mem::take(&mut state.slots) {
            let running = groups(&slot, scan);
            if slot.pid.is_none()
                && let Some(&g) = running.first()
            {
                self.note(format!(
                    "adopted {} (process group {g}): started by a run that was killed before recording it",
                    slot.name
                ));
                slot.pid = Some(g);
                changed = true;
            }
            if running.is_empty() {
                if let Some(l) = slot.leaving.take() {
                    changed = true;
                    if l.delete {
                        let _ = fs::remove_file(self.log_path(&slot.name));
                        continue;
                    }
                }
                if slot.pid.take().is_some() {
                    changed = true;
                }
            } else if let Some(l) = &mut slot.leaving
                && !l.killed
                && now.signed_duration_since(l.since) >= grace
            {
                self.note(format!(
                    "{} did not exit within {} of SIGTERM: SIGKILL",
                    slot.name,
                    common::time::format_duration(self.opts.grace)
                ));
                for g in &running {
                    let _ = signal_group(*g, Signal::KILL);
                }
                l.killed = true;
                changed = true;
            }
            keep.push(slot);
        }
        state.slots = keep;
        changed
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.opts.state_dir.join(format!("{name}.log"))
    }

    fn backend(&self, slot: &Slot, scan: &Scan, now: DateTime<Utc>) -> Backend {
        let running = !groups(slot, scan).is_empty();
        let (status, task) = match (running, &slot.leaving) {
            (true, Some(l)) => (
                Status::Active,
                Some(if l.delete { "deleting" } else { "powering-off" }.to_owned()),
            ),
            (true, None) => {
                let booted = slot.ready_at.is_none_or(|t| now >= t);
                if booted && port_answers(self.opts.host, slot.port) {
                    (Status::Active, None)
                } else {
                    (Status::Build, None)
                }
            }
            (false, _) => (Status::Shutoff, None),
        };
        Backend {
            name: slot.name.clone(),
            id: slot.id.clone(),
            status,
            address: Some(Address {
                ip: self.opts.host,
                port: Some(slot.port),
            }),
            created: Some(slot.created),
            task,
        }
    }

    /// Starts the slot's command, marked as the slot's, in a session and process group of
    /// its own (a Ctrl-C or a hangup on webscaler's terminal does not reach it: backends
    /// outlive webscaler, like instances). Returns its pid.
    fn spawn(&self, slot: &mut Slot) -> Result<u32, CloudError> {
        let command = render_command(
            &self.opts.command,
            &slot.name,
            &slot.id,
            (self.opts.host, slot.port),
        )?;
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
        let log_path = self.log_path(&slot.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| CloudError::io(format!("cannot open {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| CloudError::io(format!("cannot open {}", log_path.display()), e))?;
        let mut cmd = Command::new(&spawned[0]);
        cmd.args(&spawned[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        SpawnOptions::detached()
            .marker(MARKER, self.marker_value(&slot.id))
            .apply(&mut cmd);
        // `spawn` returns once the program is exec'd: from then on its environment (and so
        // its marker) is in /proc.
        let child = cmd
            .spawn()
            .map_err(|e| CloudError::io(format!("cannot start {}", spawned.join(" ")), e))?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, child);
        slot.spawned = spawned;
        slot.command = command;
        slot.marked = true;
        slot.ready_at = Some(
            Utc::now()
                + chrono::Duration::from_std(self.opts.boot_delay).unwrap_or(chrono::Duration::MAX),
        );
        Ok(pid)
    }

    /// SIGTERM to the slot's processes; the stop (or delete) ends when they are gone.
    fn begin_leaving(&self, slot: &mut Slot, running: &[u32], delete: bool) {
        for g in running {
            let _ = signal_group(*g, Signal::TERM);
        }
        let since = slot.leaving.map_or_else(Utc::now, |l| l.since);
        let killed = slot.leaving.is_some_and(|l| l.killed);
        slot.leaving = Some(Leaving {
            since,
            delete,
            killed,
        });
        crate::fault::point("local-stop");
    }

    fn with_slot<T>(
        &self,
        backend: &Backend,
        f: impl FnOnce(&Self, &mut State, usize, &[u32]) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut state = self.read_state()?;
        let scan = self.scan();
        self.tidy(&mut state, &scan);
        let i = state
            .slots
            .iter()
            .position(|s| s.id == backend.id)
            .ok_or_else(|| CloudError::NotFound {
                what: format!("backend {} ({})", backend.name, backend.id),
            })?;
        let running = groups(&state.slots[i], &scan);
        let r = f(self, &mut state, i, &running);
        self.write_state(&state)?;
        r
    }
}

impl Cloud for LocalCloud {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn list(&self) -> Result<Vec<Backend>, CloudError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut state = self.read_state()?;
        let mut scan = self.scan();
        if self.tidy(&mut state, &scan) {
            self.write_state(&state)?;
            scan = self.scan();
        }
        let now = Utc::now();
        let mut v: Vec<Backend> = state
            .slots
            .iter()
            .filter(|s| self.naming.is_backend(&s.name))
            .map(|s| self.backend(s, &scan, now))
            .collect();
        sort_backends(&mut v);
        Ok(v)
    }

    fn create(&self, count: usize) -> Result<Vec<Creation>, CloudError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut state = self.read_state()?;
        self.tidy(&mut state, &self.scan());
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
            // The slot is on disk before its process exists: whatever happens next, the
            // process is found again by its marker.
            state.slots.push(Slot {
                name: name.clone(),
                id: format!("local-{}", state.next_id),
                port,
                created: Utc::now(),
                pid: None,
                spawned: Vec::new(),
                command: Vec::new(),
                ready_at: None,
                leaving: None,
                marked: true,
            });
            state.next_id += 1;
            self.write_state(&state)?;
            let i = state.slots.len() - 1;
            let result = match self.spawn(&mut state.slots[i]) {
                Ok(pid) => {
                    crate::fault::point("local-create");
                    state.slots[i].pid = Some(pid);
                    Ok(self.backend(&state.slots[i], &self.scan(), Utc::now()))
                }
                Err(e) => {
                    state.slots.remove(i);
                    Err(e)
                }
            };
            self.write_state(&state)?;
            out.push(Creation { name, result });
        }
        Ok(out)
    }

    fn start(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i, running| {
            let busy = |message: &str| CloudError::Transitional {
                name: backend.name.clone(),
                action: "started",
                message: message.into(),
            };
            if state.slots[i].leaving.is_some() {
                return Err(busy("it is being stopped"));
            }
            if !running.is_empty() {
                return Err(busy("it is already running"));
            }
            // Keep the port if it is still free: the balancer knows it.
            let port = state.slots[i].port;
            if TcpListener::bind(SocketAddr::new(me.opts.host, port)).is_err() {
                let taken: Vec<u16> = state.slots.iter().map(|s| s.port).collect();
                state.slots[i].port = free_port_except(&taken)
                    .map_err(|e| CloudError::io("cannot find a free port", e))?;
            }
            let pid = me.spawn(&mut state.slots[i])?;
            state.slots[i].pid = Some(pid);
            Ok(())
        })
    }

    fn stop(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i, running| {
            let slot = &mut state.slots[i];
            if slot.leaving.is_some() || running.is_empty() {
                return Err(CloudError::Transitional {
                    name: backend.name.clone(),
                    action: "stopped",
                    message: if slot.leaving.is_some() {
                        "it is being stopped".into()
                    } else {
                        "it is not running (SHUTOFF)".into()
                    },
                });
            }
            me.begin_leaving(slot, running, false);
            Ok(())
        })
    }

    fn delete(&self, backend: &Backend) -> Result<(), CloudError> {
        self.with_slot(backend, |me, state, i, running| {
            if running.is_empty() {
                let slot = state.slots.remove(i);
                let _ = fs::remove_file(me.log_path(&slot.name));
            } else {
                me.begin_leaving(&mut state.slots[i], running, true);
            }
            Ok(())
        })
    }

    fn quota(&self) -> Result<Quota, CloudError> {
        let _lock = self.lock(LockMode::Shared)?;
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

    fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The process groups running a slot's backend: those of the live processes that carry
/// its marker. A slot written by an older version (its processes have no marker) counts
/// its recorded pid while that pid still runs the command it was given.
fn groups(slot: &Slot, scan: &Scan) -> Vec<u32> {
    if let Some(procs) = scan.get(&slot.id) {
        let g: BTreeSet<u32> = procs.iter().map(|m| m.pgid).collect();
        return g.into_iter().collect();
    }
    match slot.pid {
        Some(pid)
            if !slot.marked
                && is_alive(pid)
                && cmdline(pid).is_some_and(|c| c == slot.spawned || c == slot.command) =>
        {
            vec![pid]
        }
        _ => Vec::new(),
    }
}

fn port_answers(host: IpAddr, port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::new(host, port), Duration::from_millis(300)).is_ok()
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

/// Splits the template into words as `sh` does, replaces the placeholders, and resolves a
/// bare program name.
fn render_command(
    template: &str,
    name: &str,
    id: &str,
    (host, port): (IpAddr, u16),
) -> Result<Vec<String>, CloudError> {
    let words = split_words(template)
        .map_err(|e| CloudError::config(format!("the backend command template: {e}")))?;
    if words.is_empty() {
        return Err(CloudError::config("the backend command template is empty"));
    }
    let mut argv: Vec<String> = words
        .iter()
        .map(|w| {
            w.replace("{port}", &port.to_string())
                .replace("{name}", name)
                .replace("{id}", id)
                .replace("{host}", &host.to_string())
        })
        .collect();
    argv[0] = resolve_program(&argv[0])?.to_string_lossy().into_owned();
    Ok(argv)
}

/// Checks a command template as a backend start would (its words, its program), without
/// starting anything.
pub fn check_command(template: &str) -> Result<(), CloudError> {
    render_command(template, "node-1", "local-1", (DEFAULT_HOST, 1)).map(|_| ())
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
    fn placeholders_are_replaced_per_word() {
        let argv = render_command(
            "sh -c 'echo {name}:{port}' {id}",
            "node-1",
            "local-7",
            (DEFAULT_HOST, 8080),
        )
        .unwrap();
        assert!(argv[0].ends_with("/sh"), "{argv:?}");
        assert_eq!(&argv[1..], ["-c", "echo node-1:8080", "local-7"]);
    }

    #[test]
    fn a_missing_program_is_named() {
        let e = render_command(
            "no-such-program-xyz --port {port}",
            "n",
            "i",
            (DEFAULT_HOST, 1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no-such-program-xyz"), "{e}");
        let e = render_command("/nonexistent/prog", "n", "i", (DEFAULT_HOST, 1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/prog"), "{e}");
        assert!(render_command("", "n", "i", (DEFAULT_HOST, 1)).is_err());
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
