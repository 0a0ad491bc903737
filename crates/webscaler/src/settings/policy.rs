//! The policy's settings, resolved ([`PolicySettings`]): which policy, the default policy's
//! settings, the reference policies' (`[hpa]`, `[target_tracking]`), and the history the
//! seasonal floor learns from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::layer::duration;
use super::{Layer, SettingsError};
use crate::history;
use crate::policy::baseline::{Segment, TooShort};
use crate::policy::{
    self, Baseline, DefaultPolicy, Floor, HpaConfig, HpaPolicy, Policy, PolicyKind, Predictive,
    SeedConfig, SeedPolicy, TargetTrackingConfig, TargetTrackingPolicy, Zone,
};
use crate::rate::Tolerance;

/// `[hpa]`: the Kubernetes HPA reference policy (`--hpa-*`), each key as HPA's setting of the
/// same meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaLayer {
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: Option<Tolerance>,
    /// `--horizontal-pod-autoscaler-sync-period`.
    #[serde(default, deserialize_with = "duration")]
    pub sync_period: Option<Duration>,
    /// `behavior.scaleUp.stabilizationWindowSeconds`.
    #[serde(default, deserialize_with = "duration")]
    pub upscale_window: Option<Duration>,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    #[serde(default, deserialize_with = "duration")]
    pub downscale_window: Option<Duration>,
    /// The scale-up `Pods` policy.
    pub scale_up_pods: Option<u32>,
    /// The scale-up `Percent` policy.
    pub scale_up_percent: Option<u32>,
    /// The scale-up policies' period.
    #[serde(default, deserialize_with = "duration")]
    pub scale_up_period: Option<Duration>,
    /// The scale-down `Percent` policy.
    pub scale_down_percent: Option<u32>,
    /// The scale-down policy's period.
    #[serde(default, deserialize_with = "duration")]
    pub scale_down_period: Option<Duration>,
}

/// `[target_tracking]`: the AWS target-tracking reference policy (`--tt-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTrackingLayer {
    /// The metric's period.
    #[serde(default, deserialize_with = "duration")]
    pub period: Option<Duration>,
    /// Periods above the target before scaling out.
    pub scale_out_periods: Option<u32>,
    /// Periods below the target before scaling in.
    pub scale_in_periods: Option<u32>,
    /// How far below the target the metric must be to scale in.
    pub scale_in_margin: Option<Tolerance>,
    /// Instance warm-up.
    #[serde(default, deserialize_with = "duration")]
    pub warmup: Option<Duration>,
}

/// Which policy, and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    pub kind: PolicyKind,
    /// The default policy's settings; every policy uses its threshold, min and max.
    pub config: policy::Config,
    /// The HPA reference policy's settings.
    pub hpa: HpaConfig,
    /// The target-tracking reference policy's settings.
    pub target_tracking: TargetTrackingConfig,
    /// History files for the default policy's seasonal floor.
    pub history: Vec<PathBuf>,
    /// How far ahead the floor looks.
    pub history_lead: Duration,
}

/// What the history taught.
#[derive(Debug, Clone)]
pub enum Learnt {
    /// No history was given.
    Nothing,
    /// Less than a day: the floor is off.
    TooShort(TooShort),
    /// The floor.
    Floor(Floor),
}

impl Learnt {
    /// The floor, if any.
    pub fn floor(self) -> Option<Floor> {
        match self {
            Learnt::Floor(f) => Some(f),
            _ => None,
        }
    }

    /// One line for the log: what the floor learnt, or why there is none (`None` when no
    /// history was given).
    pub fn note(&self) -> Option<String> {
        match self {
            Learnt::Nothing => None,
            Learnt::TooShort(e) => Some(format!("history not used: {e}")),
            Learnt::Floor(f) => Some(format!(
                "history: {}; a floor {} ahead",
                f.baseline,
                common::time::format_duration(f.lead)
            )),
        }
    }
}

impl PolicySettings {
    /// The layer's policy keys over the defaults, checked.
    pub fn resolve(layer: &Layer) -> Result<PolicySettings, SettingsError> {
        let defaults = policy::Config::default();
        let on = layer.predictive.unwrap_or(defaults.predictive.is_some());
        let predictive = on.then(|| Predictive {
            history: layer
                .predictive_history
                .unwrap_or(Predictive::default().history),
            lead: layer.predictive_lead.unwrap_or(Predictive::default().lead),
            ..Predictive::default()
        });
        let config = policy::Config {
            threshold: layer.threshold.unwrap_or(defaults.threshold),
            min: layer.min.unwrap_or(defaults.min),
            max: layer.max,
            tolerance: layer.tolerance.unwrap_or(defaults.tolerance),
            scale_down_window: layer
                .scale_down_window
                .unwrap_or(defaults.scale_down_window),
            scale_down_window_max: layer.scale_down_window_max.unwrap_or(
                defaults.scale_down_window_max.max(
                    layer
                        .scale_down_window
                        .unwrap_or(defaults.scale_down_window),
                ),
            ),
            scale_down_regret: layer
                .scale_down_regret
                .unwrap_or(defaults.scale_down_regret),
            max_remove_per_tick: layer.max_remove_per_tick,
            hold_down_while_pending: layer
                .hold_down_while_pending
                .unwrap_or(defaults.hold_down_while_pending),
            predictive,
        };
        config.validate().map_err(SettingsError::Invalid)?;
        let (h, d) = (&layer.hpa, HpaConfig::default());
        let hpa = HpaConfig {
            threshold: config.threshold,
            min: config.min,
            max: config.max,
            tolerance: h.tolerance.unwrap_or(d.tolerance),
            sync_period: h.sync_period.unwrap_or(d.sync_period),
            upscale_window: h.upscale_window.unwrap_or(d.upscale_window),
            downscale_window: h.downscale_window.unwrap_or(d.downscale_window),
            scale_up_pods: h.scale_up_pods.unwrap_or(d.scale_up_pods),
            scale_up_percent: h.scale_up_percent.unwrap_or(d.scale_up_percent),
            scale_up_period: h.scale_up_period.unwrap_or(d.scale_up_period),
            scale_down_percent: h.scale_down_percent.unwrap_or(d.scale_down_percent),
            scale_down_period: h.scale_down_period.unwrap_or(d.scale_down_period),
        };
        hpa.validate().map_err(SettingsError::Invalid)?;
        let (t, d) = (&layer.target_tracking, TargetTrackingConfig::default());
        let target_tracking = TargetTrackingConfig {
            threshold: config.threshold,
            min: config.min,
            max: config.max,
            period: t.period.unwrap_or(d.period),
            scale_out_periods: t.scale_out_periods.unwrap_or(d.scale_out_periods),
            scale_in_periods: t.scale_in_periods.unwrap_or(d.scale_in_periods),
            scale_in_margin: t.scale_in_margin.unwrap_or(d.scale_in_margin),
            warmup: t.warmup.unwrap_or(d.warmup),
        };
        target_tracking.validate().map_err(SettingsError::Invalid)?;
        let kind = layer.policy.unwrap_or_default();
        let history = layer.history.clone().unwrap_or_default();
        if !history.is_empty() && kind != PolicyKind::Default {
            return Err(SettingsError::Invalid(format!(
                "history is used by the default policy only, not by policy {kind}"
            )));
        }
        Ok(PolicySettings {
            kind,
            config,
            hpa,
            target_tracking,
            history,
            history_lead: layer.history_lead.unwrap_or(Floor::DEFAULT_LEAD),
        })
    }

    /// Learns the seasonal floor from the history files (read in `zone`'s civil time) and
    /// `more` segments (`simulate --learn`).
    pub fn learn(&self, zone: Zone, more: Vec<Segment>) -> Result<Learnt, SettingsError> {
        if self.history.is_empty() && more.is_empty() {
            return Ok(Learnt::Nothing);
        }
        let mut segments = history::load(&self.history, zone)?;
        segments.extend(more);
        Ok(match Baseline::learn(segments) {
            Ok(baseline) => Learnt::Floor(Floor {
                baseline,
                lead: self.history_lead,
                zone,
            }),
            Err(e) => Learnt::TooShort(e),
        })
    }

    /// A fresh policy of this kind, with the seasonal floor if any (the default policy only).
    /// The lab-report policy's quota is `max`, else `quota`. The oracle needs the future: only
    /// `simulate` builds it ([`crate::policy::OraclePolicy::new`]).
    pub fn build(
        &self,
        quota: u32,
        floor: Option<Floor>,
    ) -> Result<Box<dyn Policy>, SettingsError> {
        let pc = self.config;
        if floor.is_some() && self.kind != PolicyKind::Default {
            return Err(SettingsError::Invalid(format!(
                "history is used by the default policy only, not by policy {}",
                self.kind
            )));
        }
        Ok(match self.kind {
            PolicyKind::Default => {
                let p = DefaultPolicy::new(pc);
                Box::new(match floor {
                    Some(f) => p.with_floor(f),
                    None => p,
                })
            }
            PolicyKind::Seed => Box::new(SeedPolicy::new(SeedConfig {
                threshold: pc.threshold,
                min_backends: pc.min,
                quota: pc.max.unwrap_or(quota),
                ..SeedConfig::default()
            })),
            PolicyKind::Hpa => Box::new(HpaPolicy::new(self.hpa)),
            PolicyKind::TargetTracking => Box::new(TargetTrackingPolicy::new(self.target_tracking)),
            PolicyKind::Oracle => return Err(SettingsError::Invalid(ORACLE_NEEDS_A_TRACE.into())),
        })
    }
}

/// Why `run` refuses the oracle.
pub const ORACLE_NEEDS_A_TRACE: &str = "policy oracle knows the whole load in advance: only `webscaler simulate` can run it (use default, lab-report, hpa or target-tracking with run)";
