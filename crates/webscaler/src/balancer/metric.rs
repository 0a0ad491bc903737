//! Which of the balancer's cumulative counters measures the load ([`Metric`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which cumulative counter of the backend measures the load (`--metric`, `metric = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `stot`: sessions (on an HTTP backend, one per request), the lab report's counter.
    #[default]
    Sessions,
    /// `req_tot`: HTTP requests.
    Requests,
}

impl Metric {
    /// HAProxy's `show stat` column for the counter.
    pub fn column(self) -> &'static str {
        match self {
            Metric::Sessions => "stot",
            Metric::Requests => "req_tot",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Sessions => "sessions",
            Metric::Requests => "requests",
        })
    }
}
