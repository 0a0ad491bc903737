//! `lbbench`.

pub mod cli;
