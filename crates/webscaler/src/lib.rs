//! `webscaler`.

pub mod cli;
pub mod haproxy;
