//! `webscaler`: keeps the number of web servers behind HAProxy matched to the request rate.
//!
//! I/O at the edges:
//!
//! - [`cloud`]: the [`cloud::Cloud`] trait and its providers (OpenStack over HTTP, local
//!   processes).
//! - [`haproxy`]: HAProxy's runtime API, statistics and generated backend file.
//!
//! The pure core:
//!
//! - [`rate`]: exact request-rate arithmetic (`ceil(rate / threshold)` without floats).
//! - [`policy`]: the decision of each tick ([`policy::DefaultPolicy`],
//!   [`policy::SeedPolicy`]).
//! - [`trace`]: request-rate traces (`seconds,rate` CSV, staged load profiles, synthetic).
//! - [`elasticity`]: SPEC RG elasticity metrics over demand and supply step functions.
//! - [`replay`]: a policy-level replay of a trace, to compare policies and choose defaults.

pub mod cli;
pub mod cloud;
pub mod elasticity;
pub mod haproxy;
pub mod policy;
pub mod rate;
pub mod replay;
pub mod trace;
