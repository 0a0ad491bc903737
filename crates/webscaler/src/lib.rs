//! `webscaler`: keeps the number of web servers behind HAProxy matched to the request rate.
//!
//! I/O at the edges:
//!
//! - [`cloud`]: the [`cloud::Cloud`] trait and its providers (OpenStack over HTTP, local
//!   processes).
//! - [`haproxy`]: HAProxy's runtime API, statistics and generated backend file, and an
//!   HAProxy of our own ([`haproxy::process`], the embedded mode).
//! - [`balancer`]: the [`balancer::Balancer`] trait (implemented by [`haproxy::Haproxy`]).
//! - [`clock`]: the [`clock::Clock`] trait and the monotonic [`clock::SystemClock`].
//! - [`config`]: the TOML configuration file of `webscaler run`.
//! - [`cli`]: the command line.
//!
//! The loop: [`controller`]: one tick (observe, rate, decide, plan, act, record), generic
//! over the cloud, the balancer, the clock and the policy; [`sim`]: a simulated cloud,
//! balancer and clock to run it against without sleeping; [`simulate`]: the controller over a
//! trace on the simulated world, scored (`webscaler simulate`); [`plot`]: the seed's figure
//! 1.4 from the CSV of `run` or `simulate` (`webscaler plot`).
//!
//! The pure core:
//!
//! - [`rate`]: exact request-rate arithmetic (`ceil(rate / threshold)` without floats), and
//!   [`rate::meter`], the reload-safe meter from a counter's samples to an exact rate.
//! - [`policy`]: the decision of each tick ([`policy::DefaultPolicy`],
//!   [`policy::SeedPolicy`]).
//! - [`trace`]: request-rate traces (`seconds,rate` CSV, staged load profiles, synthetic).
//! - [`elasticity`]: SPEC RG elasticity metrics over demand and supply step functions.

pub mod balancer;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod controller;
pub mod haproxy;
pub mod plot;
pub mod policy;
pub mod rate;
pub mod service;
pub mod settings;
pub mod simulation;
