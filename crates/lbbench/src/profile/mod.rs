//! `lbbench profile`: plays a staged load profile ([`common::profile::Profile`], the lab report's
//! load generator, its listing 1.2): several httperf runs, each starting at its own offset, running
//! at the same time, so that their rates add up to a load that rises and falls.
//!
//! - [`plan()`]: the profile → one httperf run per stage, with time compressed by `--speed`
//!   (pure).
//! - [`mod@play`]: starts each run at its offset, waits for all, and sums them up.
//!
//! # Compressing time
//!
//! `--speed X` plays the profile X times faster. What must survive is the *shape of the
//! request-rate curve* over (compressed) time, and its *height*: whoever watches the load
//! (webscaler, which sizes the pool as rate ÷ per-server capacity) must see the same rates
//! at the same points of the curve, only sooner. So:
//!
//! - start offsets are divided by X;
//! - each stage's rate (connections/s) is **kept**;
//! - each stage's number of connections is divided by X (rounded, at least 1), so that it
//!   lasts `num_conns / rate / X`: its duration is divided by X too.
//!
//! The summed rate at compressed time `t / X` is then the original summed rate at `t` (up to
//! the rounding of each stage's end, less than half a connection interval). Multiplying the
//! rates by X instead would keep the number of requests but make the load X times higher,
//! which asks a scaler for X times the servers: a different experiment. What compression
//! does not keep is the total number of requests (÷ X) and the time each backend spends at
//! each level (÷ X), which is the point.
//!
//! The lab report's profile lasts 1,200 s (its first stage: 1 conn/s for 20 min); `--speed 6.67`
//! plays it in 3 minutes, with the same levels (1, 11, 21, 31, 71, then a peak of
//! 131 conn/s, and back down).

pub mod play;

use std::time::Duration;

use common::profile::Profile;
use serde::Serialize;

use crate::httperf::HttperfArgs;

pub use play::{StageOutcome, StageResult, Summary, play, summarize};

/// How to play a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayConfig {
    /// The server for every stage (overrides the profile's); default: the profile's, else
    /// 127.0.0.1.
    pub server: Option<String>,
    /// The port for every stage (overrides the profile's); default: the profile's, else 80.
    pub port: Option<u16>,
    /// The URI for every stage (overrides the profile's); default: the profile's, else `/`.
    pub uri: Option<String>,
    /// Time compression: offsets and durations ÷ `speed`, rates kept.
    pub speed: f64,
    /// httperf's reply timeout, in s.
    pub timeout_s: f64,
    /// Pass `--hog` to httperf.
    pub hog: bool,
    /// More httperf arguments for every stage.
    pub extra: Vec<String>,
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            server: None,
            port: None,
            uri: None,
            speed: 1.0,
            timeout_s: 5.0,
            hog: true,
            extra: Vec::new(),
        }
    }
}

/// One stage, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStage {
    /// Its number in the profile (1-based).
    pub stage: usize,
    /// When it starts after the profile starts, compressed, in s.
    pub start_s: f64,
    /// How long it lasts, compressed: `num_conns / rate`, in s.
    pub duration_s: f64,
    /// httperf's arguments.
    #[serde(skip)]
    pub args: HttperfArgs,
}

impl PlannedStage {
    /// Its start as a duration.
    pub fn start(&self) -> Duration {
        Duration::try_from_secs_f64(self.start_s).unwrap_or(Duration::MAX)
    }

    /// When it ends, compressed, in s.
    pub fn end_s(&self) -> f64 {
        self.start_s + self.duration_s
    }
}

/// A profile that cannot be played with these settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The stages of `profile` as httperf runs, time compressed by `cfg.speed`, in start order
/// (stages that start together keep the profile's order).
pub fn plan(profile: &Profile, cfg: &PlayConfig) -> Result<Vec<PlannedStage>, PlanError> {
    if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
        return Err(PlanError(format!(
            "--speed must be a number > 0 (got {})",
            cfg.speed
        )));
    }
    let mut out = Vec::with_capacity(profile.stages.len());
    for (i, s) in profile.stages.iter().enumerate() {
        let num_conns = ((s.num_conns as f64 / cfg.speed).round() as u64).max(1);
        let args = HttperfArgs {
            server: cfg
                .server
                .clone()
                .or_else(|| profile.server_of(s).map(str::to_owned))
                .unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: cfg.port.or(profile.port_of(s)).unwrap_or(80),
            uri: cfg
                .uri
                .clone()
                .or_else(|| profile.uri_of(s).map(str::to_owned))
                .unwrap_or_else(|| "/".to_owned()),
            rate: s.rate,
            num_conns,
            num_calls: 1,
            timeout: Some(cfg.timeout_s),
            tls: crate::httperf::Tls::Off,
            hog: cfg.hog,
            extra: cfg.extra.clone(),
        };
        args.validate()
            .map_err(|e| PlanError(format!("stage {}: {e}", i + 1)))?;
        out.push(PlannedStage {
            stage: i + 1,
            start_s: s.start / cfg.speed,
            duration_s: num_conns as f64 / s.rate,
            args,
        });
    }
    out.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    Ok(out)
}

/// The summed connection rate of the stages at time `t` (s): the rates of the stages that
/// have started and not ended.
pub fn rate_at(stages: &[PlannedStage], t: f64) -> f64 {
    stages
        .iter()
        .filter(|s| s.start_s <= t && t < s.end_s())
        .map(|s| s.args.rate)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed() -> Profile {
        let path = testkit::workspace_root().join("benches-data/seed-profile.toml");
        Profile::load(path).unwrap()
    }

    #[test]
    fn the_lab_report_profile_plays_in_3_minutes_at_the_same_rates() {
        let p = seed();
        assert_eq!(p.duration_secs(), 1200.0);
        let cfg = PlayConfig {
            speed: 1200.0 / 180.0,
            ..PlayConfig::default()
        };
        let fast = plan(&p, &cfg).unwrap();
        let slow = plan(&p, &PlayConfig::default()).unwrap();
        let end = fast.iter().map(PlannedStage::end_s).fold(0.0, f64::max);
        assert!((end - 180.0).abs() < 0.5, "{end}");
        // The lab report's levels: 1, 11, 21, 31, 71 conn/s, 131 from 420 s (the last three start
        // together), then 71, 61, 21, 1.
        for t in [
            0.0, 60.0, 150.0, 200.0, 250.0, 310.0, 430.0, 600.0, 700.0, 1100.0,
        ] {
            assert_eq!(
                rate_at(&fast, t / cfg.speed),
                rate_at(&slow, t),
                "at {t} s of the original"
            );
        }
        let levels: Vec<f64> = [
            60.0, 150.0, 200.0, 250.0, 310.0, 430.0, 550.0, 610.0, 700.0, 1000.0,
        ]
        .iter()
        .map(|t| rate_at(&fast, t / cfg.speed))
        .collect();
        assert_eq!(
            levels,
            [1.0, 11.0, 21.0, 31.0, 71.0, 131.0, 71.0, 61.0, 21.0, 1.0]
        );
        // Stage 1: 1 conn/s for 20 min becomes 1 conn/s for 3 min.
        let s1 = fast.iter().find(|s| s.stage == 1).unwrap();
        assert_eq!((s1.args.rate, s1.args.num_conns), (1.0, 180));
        assert_eq!(s1.args.server, "127.0.0.1");
        assert_eq!(s1.args.port, 80);
        assert_eq!(s1.args.uri, "/");
    }

    #[test]
    fn overrides_and_order() {
        let p = Profile::parse(
            "server = \"h\"\nport = 81\n\
             [[stage]]\nstart = 10\nrate = 5\nnum_conns = 3\n\
             [[stage]]\nstart = 0\nrate = 20\nnum_conns = 200\nport = 82\nuri = \"/x\"\n",
            "t",
        )
        .unwrap();
        let s = plan(&p, &PlayConfig::default()).unwrap();
        assert_eq!(s.iter().map(|s| s.stage).collect::<Vec<_>>(), [2, 1]);
        assert_eq!((s[0].args.server.as_str(), s[0].args.port), ("h", 82));
        assert_eq!(s[0].args.uri, "/x");
        assert_eq!(s[1].args.port, 81);
        let cfg = PlayConfig {
            server: Some("127.0.0.1".into()),
            port: Some(9000),
            speed: 10.0,
            ..PlayConfig::default()
        };
        let s = plan(&p, &cfg).unwrap();
        assert!(
            s.iter()
                .all(|s| s.args.port == 9000 && s.args.server == "127.0.0.1")
        );
        // 3 connections / 10 rounds to 0: at least one.
        assert_eq!(s[1].args.num_conns, 1);
        assert_eq!(s[1].start_s, 1.0);
        assert_eq!(s[0].args.num_conns, 20);
        assert_eq!(s[0].duration_s, 1.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let cfg = PlayConfig {
                speed: bad,
                ..PlayConfig::default()
            };
            assert!(plan(&p, &cfg).is_err());
        }
    }

    proptest! {
        /// At any time away from a stage's end, the compressed profile runs the original's
        /// rate: the curve keeps its shape and its height.
        #[test]
        fn compression_keeps_the_rate_curve(
            stages in proptest::collection::vec((0u32..600, 1u32..50, 1u64..5000), 1..8),
            speed in 1.0f64..20.0,
            probe in 0.0f64..1.0,
        ) {
            let mut text = String::new();
            for (start, rate, n) in &stages {
                text.push_str(&format!("[[stage]]\nstart = {start}\nrate = {rate}\nnum_conns = {n}\n"));
            }
            let p = Profile::parse(&text, "p").unwrap();
            let slow = plan(&p, &PlayConfig::default()).unwrap();
            let fast = plan(&p, &PlayConfig { speed, ..PlayConfig::default() }).unwrap();
            let t = probe * p.duration_secs();
            // Rounding moves each compressed end by at most half a connection interval (a
            // whole one when a stage is cut to its minimum of one connection).
            let near_an_end = slow.iter().any(|s| {
                (s.end_s() / speed - t / speed).abs() <= 1.0 / s.args.rate + 1e-9
                    || (s.start_s / speed - t / speed).abs() < 1e-9
            });
            if !near_an_end {
                prop_assert_eq!(rate_at(&fast, t / speed), rate_at(&slow, t));
            }
            for (s, f) in slow.iter().zip(&fast) {
                prop_assert_eq!(s.args.rate, f.args.rate);
            }
        }
    }
}
