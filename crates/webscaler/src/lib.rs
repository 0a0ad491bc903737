//! `webscaler`.

pub mod cli;
