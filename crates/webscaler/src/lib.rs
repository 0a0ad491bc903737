//! `webscaler`.

pub mod cli;
pub mod elasticity;
pub mod rate;
pub mod trace;
