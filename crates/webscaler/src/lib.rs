//! `webscaler`: keeps the number of web servers behind HAProxy matched to the request rate.
//!
//! - [`cloud`]: the [`cloud::Cloud`] trait and its providers (OpenStack over HTTP, local
//!   processes).
//! - [`haproxy`]: HAProxy's runtime API, statistics and generated backend file.

pub mod cli;
pub mod cloud;
pub mod haproxy;
