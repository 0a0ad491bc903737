//! `lab.json` kept up to date while the lab runs: its settings, the machine, the programs and
//! their versions, and each invocation with what it started (for a post-mortem).

use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};

use crate::lab::info::{InfoError, Invocation, LabInfo, Started};

/// Keeps `lab.json` up to date; marks the invocation failed if the lab returns early.
pub(super) struct Journal {
    pub(super) dir: PathBuf,
    pub(super) info: LabInfo,
    pub(super) done: bool,
}

impl Journal {
    fn invocation(&mut self) -> &mut Invocation {
        // `run_lab` pushes the invocation before it makes the journal.
        let n = self.info.invocations.len();
        &mut self.info.invocations[n - 1]
    }

    pub(super) fn save(&self) -> Result<(), InfoError> {
        self.info.save(&self.dir)
    }

    pub(super) fn started(&mut self, s: Started) -> Result<(), InfoError> {
        self.invocation().started.push(s);
        self.save()
    }

    pub(super) fn end(&mut self, outcome: &str) -> Result<(), InfoError> {
        let now = now_rfc3339();
        let s = self.invocation();
        s.finished_at = Some(now);
        s.outcome = outcome.to_owned();
        self.done = true;
        self.save()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.end("failed");
        }
    }
}

pub(super) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// This program and its version, as `lab.json` records it.
pub(super) fn tool() -> String {
    format!("lbbench {}", env!("CARGO_PKG_VERSION"))
}
