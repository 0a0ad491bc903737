//! Playing a planned profile: each stage's httperf starts at its offset and runs alongside
//! the others; the results are summed up per stage and in total.
//!
//! httperf is started with `PR_SET_PDEATHSIG` tied to the *thread* that starts it, so every
//! run is started from the caller's thread (which outlives them all); each run is then
//! handed to a thread of its own that only waits for it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Shutdown;
use serde::Serialize;

use super::PlannedStage;
use crate::httperf::{Httperf, HttperfError, HttperfOutput, Thresholds, Validity};

/// How one stage ended.
#[derive(Debug)]
pub enum StageOutcome {
    /// httperf ran and reported.
    Done(Box<HttperfOutput>),
    /// httperf could not run, or gave no report.
    Failed(HttperfError),
    /// Not started, or stopped, because of Ctrl-C.
    Interrupted,
}

/// One stage's run.
#[derive(Debug)]
pub struct StageResult {
    /// The plan.
    pub planned: PlannedStage,
    /// When it actually started, in s after the profile started (`None` if it never did).
    pub started_s: Option<f64>,
    /// How it ended.
    pub outcome: StageOutcome,
}

/// Plays the stages: starts each at its offset (from the calling thread), waits for all.
/// Ctrl-C (`shutdown`) stops the runs in progress and the ones not started yet; the results
/// say which. `on_start` is called as each stage starts, `on_end` as each one ends.
pub fn play(
    httperf: &Httperf,
    stages: &[PlannedStage],
    shutdown: &Shutdown,
    on_start: &mut dyn FnMut(&PlannedStage, f64),
    on_end: &mut dyn FnMut(&StageResult),
) -> Vec<StageResult> {
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, Result<HttperfOutput, HttperfError>)>();
    let mut results: Vec<StageResult> = stages
        .iter()
        .map(|p| StageResult {
            planned: p.clone(),
            started_s: None,
            outcome: StageOutcome::Interrupted,
        })
        .collect();
    let mut waiting = 0;
    for (i, stage) in stages.iter().enumerate() {
        if !shutdown.sleep_until(t0 + stage.start()) {
            break;
        }
        let started = t0.elapsed().as_secs_f64();
        results[i].started_s = Some(started);
        match httperf.start(&stage.args) {
            Ok(run) => {
                on_start(stage, started);
                let tx = tx.clone();
                let cancel = shutdown.clone();
                // Waiting only: the run belongs to this (the starting) thread's lifetime.
                let spawned = std::thread::Builder::new()
                    .name(format!("stage-{}", stage.stage))
                    .spawn(move || {
                        let _ = tx.send((i, run.wait(Some(&cancel))));
                    });
                match spawned {
                    Ok(_) => waiting += 1,
                    Err(e) => {
                        results[i].outcome = StageOutcome::Failed(HttperfError::Wait(e));
                        on_end(&results[i]);
                    }
                }
            }
            Err(e) => {
                results[i].outcome = StageOutcome::Failed(e);
                on_end(&results[i]);
            }
        }
    }
    drop(tx);
    for _ in 0..waiting {
        // Every waiter sends exactly once; a closed channel means they are all done.
        let Ok((i, r)) = rx.recv() else { break };
        results[i].outcome = match r {
            Ok(o) => StageOutcome::Done(Box::new(o)),
            Err(HttperfError::Interrupted { .. }) => StageOutcome::Interrupted,
            Err(e) => StageOutcome::Failed(e),
        };
        on_end(&results[i]);
    }
    // Stage order, as in the profile.
    results.sort_by_key(|r| r.planned.stage);
    results
}

/// A stage's line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSummary {
    /// Its number in the profile.
    pub stage: usize,
    /// Planned start, s after the profile's start (compressed).
    pub start_s: f64,
    /// Actual start.
    pub started_s: Option<f64>,
    /// Connections/s.
    pub rate: f64,
    /// Connections.
    pub num_conns: u64,
    /// Planned duration, s (compressed).
    pub duration_s: f64,
    /// Where it went.
    pub server: String,
    /// Its port.
    pub port: u16,
    /// `done`, `failed` or `interrupted`.
    pub status: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// httperf's test duration, s.
    pub test_duration_s: Option<f64>,
    /// httperf's achieved request rate.
    pub request_rate: Option<f64>,
    /// Requests sent.
    pub requests: Option<u64>,
    /// Replies received.
    pub replies: Option<u64>,
    /// httperf's reply time (response), ms.
    pub reply_time_ms: Option<f64>,
    /// httperf's errors (`Errors: total`).
    pub errors: Option<u64>,
    /// 5xx replies.
    pub status_5xx: Option<u64>,
    /// fd-unavail + addrunavail + ftab-full: httperf itself ran out.
    pub client_limit_errors: Option<u64>,
    /// The validity flags that are set.
    pub flags: Vec<&'static str>,
}

/// The whole play.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The profile's name.
    pub profile: Option<String>,
    /// The time compression.
    pub speed: f64,
    /// The stages, in the profile's order.
    pub stages: Vec<StageSummary>,
    /// Connections over the stages that reported.
    pub connections: u64,
    /// Requests sent.
    pub requests: u64,
    /// Replies received.
    pub replies: u64,
    /// httperf's errors, summed.
    pub errors: u64,
    /// 5xx replies, summed.
    pub status_5xx: u64,
    /// Stages that could not run or gave no report.
    pub failed_stages: usize,
    /// Stages stopped or not started because of Ctrl-C.
    pub interrupted_stages: usize,
}

/// Sums up the results.
pub fn summarize(profile: Option<&str>, speed: f64, results: &[StageResult]) -> Summary {
    let mut s = Summary {
        profile: profile.map(str::to_owned),
        speed,
        stages: Vec::with_capacity(results.len()),
        connections: 0,
        requests: 0,
        replies: 0,
        errors: 0,
        status_5xx: 0,
        failed_stages: 0,
        interrupted_stages: 0,
    };
    for r in results {
        let p = &r.planned;
        let mut line = StageSummary {
            stage: p.stage,
            start_s: p.start_s,
            started_s: r.started_s,
            rate: p.args.rate,
            num_conns: p.args.num_conns,
            duration_s: p.duration_s,
            server: p.args.server.clone(),
            port: p.args.port,
            status: "interrupted",
            error: None,
            test_duration_s: None,
            request_rate: None,
            requests: None,
            replies: None,
            reply_time_ms: None,
            errors: None,
            status_5xx: None,
            client_limit_errors: None,
            flags: Vec::new(),
        };
        match &r.outcome {
            StageOutcome::Done(o) => {
                let rep = &o.report;
                line.status = "done";
                line.test_duration_s = Some(rep.total_test_duration);
                line.request_rate = Some(rep.request_rate_per_sec);
                line.requests = Some(rep.total_requests);
                line.replies = Some(rep.total_replies);
                line.reply_time_ms = Some(rep.reply_time_response);
                line.errors = Some(rep.errors_total);
                line.status_5xx = Some(rep.reply_status_5xx);
                line.client_limit_errors =
                    Some(rep.errors_fd_unavail + rep.errors_addr_unavail + rep.errors_ftab_full);
                let v = Validity::assess(
                    rep,
                    Some(p.args.target_request_rate()),
                    &Thresholds::default(),
                );
                if v.flag_rate_off_target == Some(true) {
                    line.flags.push("rate off target");
                }
                if v.flag_resource_errors {
                    line.flags.push("client limit");
                }
                if v.flag_client_cpu_low {
                    line.flags.push("httperf CPU low");
                }
                s.connections += rep.total_connections;
                s.requests += rep.total_requests;
                s.replies += rep.total_replies;
                s.errors += rep.errors_total;
                s.status_5xx += rep.reply_status_5xx;
            }
            StageOutcome::Failed(e) => {
                line.status = "failed";
                line.error = Some(e.to_string());
                s.failed_stages += 1;
            }
            StageOutcome::Interrupted => s.interrupted_stages += 1,
        }
        s.stages.push(line);
    }
    s
}

impl Summary {
    /// The summary as a text table and a totals line.
    pub fn to_text(&self) -> String {
        let opt_f = |v: Option<f64>, d: usize| v.map_or("–".into(), |v| format!("{v:.d$}"));
        let opt_u = |v: Option<u64>| v.map_or("–".into(), |v| v.to_string());
        let head = [
            "stage", "start", "started", "rate", "conns", "duration", "achieved", "replies",
            "reply ms", "errors", "5xx", "status",
        ];
        let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| (*h).to_owned()).collect()];
        for l in &self.stages {
            let mut status = l.status.to_owned();
            if !l.flags.is_empty() {
                status = format!("{status} ({})", l.flags.join(", "));
            }
            if let Some(e) = &l.error {
                status = format!("{status}: {e}");
            }
            rows.push(vec![
                l.stage.to_string(),
                format!("{:.1}s", l.start_s),
                l.started_s.map_or("–".into(), |s| format!("{s:.1}s")),
                crate::httperf::fmt_rate(l.rate),
                l.num_conns.to_string(),
                format!("{:.1}s", l.duration_s),
                opt_f(l.request_rate, 1),
                opt_u(l.replies),
                opt_f(l.reply_time_ms, 1),
                opt_u(l.errors),
                opt_u(l.status_5xx),
                status,
            ]);
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == r.len() {
                        c.clone()
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "total: {} connections, {} requests, {} replies; errors {}, 5xx {}; {} of {} stages \
             done{}{}\n",
            self.connections,
            self.requests,
            self.replies,
            self.errors,
            self.status_5xx,
            self.stages.len() - self.failed_stages - self.interrupted_stages,
            self.stages.len(),
            if self.failed_stages > 0 {
                format!(", {} failed", self.failed_stages)
            } else {
                String::new()
            },
            if self.interrupted_stages > 0 {
                format!(", {} interrupted", self.interrupted_stages)
            } else {
                String::new()
            },
        ));
        out
    }
}

/// Saves each finished stage's raw httperf output as `dir/stage-N.txt`.
pub fn save_raw(dir: &Path, results: &[StageResult]) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for r in results {
        let raw = match &r.outcome {
            StageOutcome::Done(o) => Some(&o.raw),
            StageOutcome::Failed(e) => e.raw_output(),
            StageOutcome::Interrupted => None,
        };
        if let Some(raw) = raw {
            let p = dir.join(format!("stage-{}.txt", r.planned.stage));
            std::fs::write(&p, &raw.stdout)?;
            written.push(p);
        }
    }
    Ok(written)
}

/// How long to wait for the whole profile, at most (for messages): the last end plus each
/// run's slack.
pub fn expected_duration(stages: &[PlannedStage]) -> Duration {
    let end = stages.iter().map(PlannedStage::end_s).fold(0.0, f64::max);
    Duration::try_from_secs_f64(end).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::httperf::{RawOutput, parse_report};
    use chrono::Utc;

    fn stage(n: usize, start: f64, rate: f64, conns: u64) -> PlannedStage {
        let mut args = crate::httperf::HttperfArgs::new("127.0.0.1", rate, conns);
        args.port = 8080;
        PlannedStage {
            stage: n,
            start_s: start,
            duration_s: conns as f64 / rate,
            args,
        }
    }

    #[test]
    fn sums_up_done_failed_and_interrupted_stages() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/httperf-sample-1.txt"
        ))
        .unwrap();
        let report = parse_report(&text).unwrap();
        let out = HttperfOutput {
            report: report.clone(),
            raw: RawOutput::default(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            wall: Duration::from_secs(4),
            clients: Vec::new(),
        };
        let results = vec![
            StageResult {
                planned: stage(1, 0.0, 50.0, 200),
                started_s: Some(0.01),
                outcome: StageOutcome::Done(Box::new(out.clone())),
            },
            StageResult {
                planned: stage(2, 1.0, 50.0, 200),
                started_s: Some(1.0),
                outcome: StageOutcome::Done(Box::new(out)),
            },
            StageResult {
                planned: stage(3, 2.0, 5.0, 10),
                started_s: Some(2.0),
                outcome: StageOutcome::Failed(HttperfError::Wait(std::io::Error::other("x"))),
            },
            StageResult {
                planned: stage(4, 9.0, 5.0, 10),
                started_s: None,
                outcome: StageOutcome::Interrupted,
            },
        ];
        let s = summarize(Some("t"), 10.0, &results);
        assert_eq!(s.connections, 2 * report.total_connections);
        assert_eq!(s.replies, 2 * report.total_replies);
        assert_eq!(s.errors, 0);
        assert_eq!((s.failed_stages, s.interrupted_stages), (1, 1));
        assert_eq!(s.stages[0].reply_time_ms, Some(report.reply_time_response));
        assert_eq!(s.stages[0].request_rate, Some(50.2));
        assert_eq!(s.stages[2].status, "failed");
        assert_eq!(s.stages[3].status, "interrupted");
        let text = s.to_text();
        assert_eq!(text.lines().count(), 1 + 4 + 1, "{text}");
        assert!(
            text.lines()
                .last()
                .unwrap()
                .starts_with("total: 400 connections, 400 requests, 400 replies; errors 0, 5xx 0; 2 of 4 stages done, 1 failed, 1 interrupted"),
            "{text}"
        );
        // httperf's own CPU was 83% in that sample: flagged, and said so.
        assert!(text.contains("done (httperf CPU low)"), "{text}");
        assert_eq!(
            expected_duration(&[stage(1, 0.0, 50.0, 200), stage(2, 3.0, 5.0, 10)]),
            Duration::from_secs(5)
        );
    }
}
