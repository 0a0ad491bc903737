//! `webscaler`: keeps the number of web servers behind HAProxy matched to the request rate.
//!
//! - [`cloud`]: the [`cloud::Cloud`] trait and its providers (OpenStack over HTTP, local
//!   processes).

pub mod cli;
pub mod cloud;
