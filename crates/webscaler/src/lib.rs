//! `webscaler`.
//!
//! The pure core of the scaler:
//!
//! - [`rate`]: exact request-rate arithmetic (`ceil(rate / threshold)` without floats).
//! - [`policy`]: the decision of each tick ([`policy::DefaultPolicy`],
//!   [`policy::SeedPolicy`]).
//! - [`trace`]: request-rate traces (`seconds,rate` CSV, staged load profiles, synthetic).
//! - [`elasticity`]: SPEC RG elasticity metrics over demand and supply step functions.
//! - [`replay`]: a policy-level replay of a trace, to compare policies and choose defaults.

pub mod cli;
pub mod elasticity;
pub mod policy;
pub mod rate;
pub mod replay;
pub mod trace;
