//! What the running instance tells `webscaler status`: `status.json` in the state
//! directory, rewritten after every tick ([`StatusFile`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::process::{cmdline, is_alive};
use serde::{Deserialize, Serialize};

use crate::controller;

/// The file in the state directory that the running instance keeps its last tick in.
pub const STATUS_FILE: &str = "status.json";

/// What the running instance writes after each tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    /// The pid of `webscaler run`.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started: String,
    /// The provider (`local`, `openstack`).
    pub provider: String,
    /// `embedded` or `system`.
    pub haproxy: String,
    /// The admin socket it uses.
    pub admin_socket: PathBuf,
    /// The HAProxy backend it manages.
    pub backend: String,
    /// The backends' name prefix.
    pub prefix: String,
    /// The backends' port when the cloud gives none.
    pub backend_port: u16,
    /// The embedded frontend, if embedded.
    pub frontend: Option<SocketAddr>,
    /// The CSV file it appends to.
    pub csv: PathBuf,
    /// The policy (`default`, `lab-report`, `hpa`, `target-tracking`).
    pub policy: String,
    /// Requests per second per server.
    pub threshold: String,
    pub min: u32,
    /// The maximum, if set (else the quota).
    pub max: Option<u32>,
    /// The last tick's number (0 first).
    #[serde(default)]
    pub tick: u64,
    /// The embedded HAProxy's master, if embedded.
    #[serde(default)]
    pub haproxy_pid: Option<u32>,
    /// CSV rows kept in memory because the file could not be written.
    #[serde(default)]
    pub csv_pending: usize,
    /// CSV rows lost because too many were waiting.
    #[serde(default)]
    pub csv_dropped: u64,
    /// The last tick's CSV row.
    pub last: controller::Record,
    /// The capacity the last decision aimed for.
    pub target: Option<u32>,
}

impl StatusFile {
    /// Writes `status.json` into `state_dir` atomically.
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        common::atomic::write(&state_dir.join(STATUS_FILE), text.as_bytes())
    }

    /// The running instance of `state_dir`, if its status file names a live `webscaler`
    /// process.
    pub fn running(state_dir: &Path) -> Option<StatusFile> {
        let text = std::fs::read_to_string(state_dir.join(STATUS_FILE)).ok()?;
        let s: StatusFile = serde_json::from_str(&text).ok()?;
        let ours = is_alive(s.pid)
            && cmdline(s.pid).is_some_and(|argv| argv.iter().any(|a| a.contains("webscaler")));
        ours.then_some(s)
    }
}
