//! Exact request-rate arithmetic.
//!
//! The scaling rule is `needed = ceil(rate / threshold)`. Done in floating point, a rate of
//! exactly `k × threshold` can come out as `k + 1` (30.000000000000004 / 10 → 4), so here a
//! rate is a fraction of integers (a counter delta over nanoseconds, or a decimal read from
//! text), a threshold is a decimal fraction, and the ceiling is an integer division in `u128`.
//!
//! - [`Rate`], [`Threshold`], [`Tolerance`] (`exact.rs`): the quantities and their exact
//!   arithmetic (`servers_needed`, `fits`).
//! - `decimal.rs`: reading and writing them as decimal text.
//! - [`meter`]: samples of a balancer's cumulative counter turned into exact rates, safe
//!   across reloads.
//!
//! Bounds keep every product inside `u128` (see [`Rate`] and [`Threshold`]); the constructors
//! enforce them, so no operation here can overflow or round.

mod decimal;
mod exact;
pub mod meter;

pub(crate) use decimal::format_fraction;
pub use decimal::{DecimalError, parse_decimal};
pub use exact::{Rate, Threshold, Tolerance};
