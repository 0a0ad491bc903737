//! The policy's memory in the state directory, `policy-memory.json`: what the policy was shown
//! over the last minutes ([`crate::policy::resume`]), rewritten after every tick, read by the
//! next `webscaler run` to resume the policy. It is a cache: a file that cannot be read or
//! written costs a warning and a fresh policy, never the run.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::policy::{Observation, Recall};

/// The file's name in the state directory.
pub const RECALL_FILE: &str = "policy-memory.json";

/// The policy's memory and its file.
#[derive(Debug)]
pub struct RecallFile {
    path: PathBuf,
    recall: Recall,
    /// The last write error, to log it once per change.
    failing: Option<String>,
}

impl RecallFile {
    /// Reads the memory of `state_dir` (none if there is no file); a file that cannot be
    /// read or is not a memory gives an empty one and a warning to log.
    pub fn open(state_dir: &Path) -> (RecallFile, Option<String>) {
        let path = state_dir.join(RECALL_FILE);
        let (recall, warning) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Recall>(&bytes) {
                Ok(r) => (r, None),
                Err(e) => (
                    Recall::new(),
                    Some(format!(
                        "warning: {} is not a policy memory ({e}): the policy starts afresh",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Recall::new(), None),
            Err(e) => (
                Recall::new(),
                Some(format!(
                    "warning: cannot read {} ({e}): the policy starts afresh",
                    path.display()
                )),
            ),
        };
        (
            RecallFile {
                path,
                recall,
                failing: None,
            },
            warning,
        )
    }

    /// What was read, and kept since.
    pub fn recall(&self) -> &Recall {
        &self.recall
    }

    /// Keeps `obs`, shown to the policy at `at` on its clock, and rewrites the file; returns a
    /// line to log when writing fails (once per error) or works again.
    pub fn push(&mut self, at: Duration, obs: &Observation) -> Option<String> {
        self.recall.push(at, obs);
        match self.write() {
            Ok(()) => self
                .failing
                .take()
                .map(|_| format!("{} is written again", self.path.display())),
            Err(e) => {
                let msg = e.to_string();
                let new = self.failing.as_deref() != Some(msg.as_str());
                let line = new.then(|| {
                    format!(
                        "warning: cannot write {} ({msg}): a restart will start the policy afresh",
                        self.path.display()
                    )
                });
                self.failing = Some(msg);
                line
            }
        }
    }

    fn write(&self) -> io::Result<()> {
        let text = serde_json::to_vec(&self.recall).map_err(io::Error::other)?;
        let mut f = common::atomic::AtomicFile::create(&self.path, 0o644)?;
        f.file().write_all(&text)?;
        // Not synced: after a power cut an older memory (or none) only means a fresh policy.
        f.commit_unsynced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::meter::Counter;

    fn obs(s: i64) -> Observation {
        Observation {
            counters: vec![Counter::new(100 * s as u64)],
            serving: 2,
            wall: Some(
                "2026-01-05T10:00:00Z"
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
                    + chrono::Duration::seconds(s),
            ),
            ..Observation::default()
        }
    }

    #[test]
    fn the_memory_is_kept_across_opens_and_a_bad_file_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, warning) = RecallFile::open(dir.path());
        assert_eq!((f.recall().ticks().len(), warning), (0, None));
        assert_eq!(f.push(Duration::from_secs(5), &obs(5)), None);
        assert_eq!(f.push(Duration::from_secs(10), &obs(10)), None);
        let (again, warning) = RecallFile::open(dir.path());
        assert_eq!(warning, None);
        assert_eq!(again.recall(), f.recall());
        assert_eq!(again.recall().ticks().len(), 2);

        std::fs::write(dir.path().join(RECALL_FILE), "{\"ticks\": 3}").unwrap();
        let (fresh, warning) = RecallFile::open(dir.path());
        assert_eq!(fresh.recall().ticks().len(), 0);
        let w = warning.unwrap();
        assert!(
            w.contains("is not a policy memory") && w.contains(RECALL_FILE),
            "{w}"
        );

        // A file that cannot be written: said once, and again when it works.
        let (mut f, _) = RecallFile::open(&dir.path().join("missing"));
        let line = f.push(Duration::from_secs(5), &obs(5)).unwrap();
        assert!(line.starts_with("warning: cannot write"), "{line}");
        assert_eq!(f.push(Duration::from_secs(10), &obs(10)), None);
        std::fs::create_dir(dir.path().join("missing")).unwrap();
        let line = f.push(Duration::from_secs(15), &obs(15)).unwrap();
        assert!(line.ends_with("is written again"), "{line}");
        assert_eq!(
            RecallFile::open(&dir.path().join("missing"))
                .0
                .recall()
                .ticks()
                .len(),
            3
        );
    }
}
