//! `webscaler`: keeps the number of web servers behind HAProxy matched to the request rate.
//!
//! The pure core:
//!
//! - [`rate`]: exact request-rate arithmetic (`ceil(rate / threshold)` without floats), and
//!   [`rate::meter`], the reload-safe meter from a counter's samples to an exact rate.
//! - [`policy`]: the decision of each tick ([`policy::DefaultPolicy`],
//!   [`policy::SeedPolicy`], the reference policies [`policy::HpaPolicy`],
//!   [`policy::TargetTrackingPolicy`] and [`policy::OraclePolicy`]), the seasonal baseline
//!   ([`policy::baseline`]) and the one servers-needed rule ([`policy::Config::needed`]).
//! - [`history`]: earlier runs' CSV files and traces read back for the baseline.
//! - [`controller`]: one tick (observe, rate, decide, plan, act, record), generic over the
//!   cloud, the balancer, the clock and the policy.
//!
//! The traits it runs against, and their implementations at the edges:
//!
//! - [`balancer`]: the [`balancer::Balancer`] trait and its vocabulary ([`balancer::Metric`],
//!   server names and addresses); [`haproxy`] implements it over HAProxy's runtime API and
//!   runs an HAProxy of our own ([`haproxy::process`], the embedded mode).
//! - [`cloud`]: the [`cloud::Cloud`] trait and its providers (OpenStack over HTTP, local
//!   processes).
//! - [`clock`]: the [`clock::Clock`] trait and the monotonic [`clock::SystemClock`].
//! - [`simulation`]: a simulated cloud, balancer and clock to run the controller against
//!   without sleeping, request-rate traces, and the scored run of `webscaler simulate`
//!   with the SPEC RG elasticity metrics.
//!
//! The commands:
//!
//! - [`settings`]: defaults < the TOML file < `WEBSCALER_*` variables < flags, resolved one
//!   way for every command.
//! - [`service`]: `webscaler run`'s loop on the ticker, its lock and status file.
//! - [`plot`]: the lab report's "Scaling of servers" chart (its figure 1.4) from the CSV of `run` or `simulate`.
//! - [`cli`]: the command line (flags only; it calls the modules above).

pub mod balancer;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod controller;
pub mod fault;
pub mod haproxy;
pub mod history;
pub mod plot;
pub mod policy;
pub mod rate;
pub mod service;
pub mod settings;
pub mod simulation;
