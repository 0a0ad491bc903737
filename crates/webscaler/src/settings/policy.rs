//! The policy's settings, resolved ([`PolicySettings`]).

use super::{Layer, SettingsError};
use crate::policy::{self, DefaultPolicy, Policy, PolicyKind, Predictive, SeedConfig, SeedPolicy};

/// Which policy, and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicySettings {
    pub kind: PolicyKind,
    /// The default policy's settings; the seed policy uses the threshold, min and max.
    pub config: policy::Config,
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
            max_remove_per_tick: layer.max_remove_per_tick,
            hold_down_while_pending: layer
                .hold_down_while_pending
                .unwrap_or(defaults.hold_down_while_pending),
            predictive,
        };
        config.validate().map_err(SettingsError::Invalid)?;
        Ok(PolicySettings {
            kind: layer.policy.unwrap_or_default(),
            config,
        })
    }

    /// A fresh policy of this kind. The seed policy's quota is `max`, else `quota`.
    pub fn build(&self, quota: u32) -> Box<dyn Policy> {
        let pc = self.config;
        match self.kind {
            PolicyKind::Default => Box::new(DefaultPolicy::new(pc)),
            PolicyKind::Seed => Box::new(SeedPolicy::new(SeedConfig {
                threshold: pc.threshold,
                min_backends: pc.min,
                quota: pc.max.unwrap_or(quota),
                ..SeedConfig::default()
            })),
        }
    }
}
