//! What a sweep shows on stderr while it runs: a progress bar with an ETA on a terminal, one
//! line per run otherwise (logs, `nohup`), nothing with `-q`. Warnings are always shown.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::plan::PlannedRun;
use crate::csvcell::fmt_f64;
use crate::httperf::{Report, fmt_rate};

/// How a sweep shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A progress bar on a terminal, else one line per run.
    #[default]
    Auto,
    /// One line per run on stderr.
    Lines,
    /// Only warnings.
    Quiet,
}

/// Where the sweep is, for the ETA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No run has started yet.
    Idle,
    /// A run is going and has been for this long.
    Running(Duration),
    /// Between runs, with this much pause left.
    Pausing(Duration),
}

/// The time left: `remaining` runs (counting one in progress), each taking `per_run`, with
/// `pause` between them.
pub fn eta(remaining: usize, phase: Phase, per_run: Duration, pause: Duration) -> Duration {
    if remaining == 0 {
        return Duration::ZERO;
    }
    let n = remaining as u32;
    match phase {
        Phase::Idle => per_run * n + pause * (n - 1),
        Phase::Running(elapsed) => per_run.saturating_sub(elapsed) + (per_run + pause) * (n - 1),
        Phase::Pausing(left) => left + per_run * n + pause * (n - 1),
    }
}

/// `1h 05m`, `4m 10s`, `42s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = (d.as_millis() as u64).div_ceil(1000);
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[derive(Debug)]
struct EtaState {
    remaining: usize,
    phase_started: Option<Instant>,
    pause_until: Option<Instant>,
    planned_run: Duration,
    pause: Duration,
    measured: Duration,
    measured_runs: u32,
}

impl EtaState {
    fn per_run(&self) -> Duration {
        if self.measured_runs > 0 {
            self.measured / self.measured_runs
        } else {
            self.planned_run
        }
    }

    fn now(&self) -> Duration {
        let phase = match (self.phase_started, self.pause_until) {
            (_, Some(until)) => Phase::Pausing(until.saturating_duration_since(Instant::now())),
            (Some(started), None) => Phase::Running(started.elapsed()),
            (None, None) => Phase::Idle,
        };
        eta(self.remaining, phase, self.per_run(), self.pause)
    }
}

/// The progress display of one sweep.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: usize,
    state: Arc<Mutex<EtaState>>,
}

impl Progress {
    /// A display for `total` runs, `done` of which were already in the file. `planned_run` is
    /// the expected length of one run, until runs have been measured.
    pub fn new(
        mode: ProgressMode,
        total: usize,
        done: usize,
        planned_run: Duration,
        pause: Duration,
    ) -> Self {
        let state = Arc::new(Mutex::new(EtaState {
            remaining: total - done.min(total),
            phase_started: None,
            pause_until: None,
            planned_run,
            pause,
            measured: Duration::ZERO,
            measured_runs: 0,
        }));
        let (bar, lines) = match mode {
            ProgressMode::Quiet => (None, false),
            ProgressMode::Lines => (None, true),
            ProgressMode::Auto if !std::io::stderr().is_terminal() => (None, true),
            ProgressMode::Auto => {
                let eta_state = Arc::clone(&state);
                let style = ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {bar:20.cyan/blue} {pos}/{len} · {msg} · ETA {lb_eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "lb_eta",
                    move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let left = eta_state.lock().map(|s| s.now()).unwrap_or_default();
                        let _ = w.write_str(&fmt_duration(left));
                    },
                );
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
                        .with_style(style)
                        .with_position(done as u64)
                        .with_message("starting");
                bar.enable_steady_tick(Duration::from_secs(1));
                (Some(bar), false)
            }
        };
        Progress {
            bar,
            lines,
            total,
            state,
        }
    }

    fn with_state(&self, f: impl FnOnce(&mut EtaState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// The time left, as the display shows it.
    pub fn eta(&self) -> Duration {
        self.state.lock().map(|s| s.now()).unwrap_or_default()
    }

    /// Prints a line above the bar (or on stderr).
    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("lbbench: {msg}")),
            None if self.lines => eprintln!("lbbench: {msg}"),
            None => {}
        }
    }

    /// Prints a warning, whatever the mode.
    pub fn warn(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("lbbench: warning: {msg}")),
            None => eprintln!("lbbench: warning: {msg}"),
        }
    }

    /// A run starts.
    pub fn run_started(&self, run: &PlannedRun, repeat: u32) {
        self.with_state(|s| {
            s.phase_started = Some(Instant::now());
            s.pause_until = None;
        });
        if let Some(bar) = &self.bar {
            // The label is in the first line; the bar stays narrow enough for 80 columns.
            bar.set_message(format!("{}/s run {}/{repeat}", fmt_rate(run.rate), run.run));
        }
    }

    /// A run ended with a row written; `position` counts the rows in the file now.
    pub fn run_finished(
        &self,
        run: &PlannedRun,
        label: &str,
        report: &Report,
        wall: Duration,
        position: usize,
    ) {
        self.with_state(|s| {
            s.remaining = s.remaining.saturating_sub(1);
            s.phase_started = None;
            s.measured += wall;
            s.measured_runs += 1;
        });
        if let Some(bar) = &self.bar {
            bar.set_position(position as u64);
        } else if self.lines {
            eprintln!(
                "lbbench: [{position}/{}] {label} rate {}/s run {}: {} req/s, reply {} ms, \
                 {} errors, {}s · ETA {}",
                self.total,
                fmt_rate(run.rate),
                run.run,
                fmt_f64(report.request_rate_per_sec),
                fmt_f64(report.reply_time_response),
                report.errors_total,
                wall.as_secs(),
                fmt_duration(self.eta())
            );
        }
    }

    /// A run failed or was interrupted: it no longer counts as in progress.
    pub fn run_abandoned(&self) {
        self.with_state(|s| s.phase_started = None);
    }

    /// The pause before the next run starts.
    pub fn pausing(&self, pause: Duration) {
        self.with_state(|s| {
            s.pause_until = Some(common::time::instant_after(Instant::now(), pause))
        });
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn eta_of_the_lab_report_sweep() {
        // 60 runs of 60 s with 30 s pauses: 60·60 + 59·30 s.
        assert_eq!(eta(60, Phase::Idle, 60 * S, 30 * S), (3600 + 1770) * S);
        assert_eq!(
            eta(60, Phase::Running(20 * S), 60 * S, 30 * S),
            (40 + 59 * 90) * S
        );
        assert_eq!(
            eta(2, Phase::Pausing(10 * S), 60 * S, 30 * S),
            (10 + 120 + 30) * S
        );
        assert_eq!(
            eta(1, Phase::Running(90 * S), 60 * S, 30 * S),
            Duration::ZERO
        );
        assert_eq!(eta(0, Phase::Idle, 60 * S, 30 * S), Duration::ZERO);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(42 * S), "42s");
        assert_eq!(fmt_duration(250 * S), "4m 10s");
        assert_eq!(fmt_duration(5370 * S), "1h 29m");
        assert_eq!(
            fmt_duration(Duration::from_millis(1960)),
            "2s",
            "rounded up"
        );
    }

    #[test]
    fn measured_runs_replace_the_plan() {
        let p = Progress::new(ProgressMode::Quiet, 4, 1, 60 * S, Duration::ZERO);
        assert_eq!(p.eta(), 180 * S);
        let run = PlannedRun {
            index: 1,
            rate: 10.0,
            reply_size: None,
            run: 2,
        };
        p.run_started(&run, 3);
        p.run_finished(&run, "b", &Report::default(), 10 * S, 2);
        assert_eq!(p.eta(), 20 * S);
    }
}
