//! Which of HAProxy's cumulative counters measures the load ([`Metric`]).
//!
//! The rate maths (reload-safe readings from samples with `Pid` and `Uptime_sec`, exact
//! rates, several instances summed) is the one meter of the pure core,
//! [`crate::rate::meter`], re-exported here: the controller, the policy and
//! `webscaler haproxy rate` all go through it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::stats::StatRow;

/// Which cumulative counter of the backend row measures the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `stot`, as the seed used: on an HTTP backend, one session per request.
    #[default]
    Sessions,
    /// `req_tot`: HTTP requests.
    Requests,
}

impl Metric {
    /// The `show stat` column.
    pub fn column(self) -> &'static str {
        match self {
            Metric::Sessions => "stot",
            Metric::Requests => "req_tot",
        }
    }

    /// The counter in a row, if the row has it.
    pub fn counter(self, row: &StatRow) -> Option<u64> {
        match self {
            Metric::Sessions => row.stot,
            Metric::Requests => row.req_tot,
        }
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        match s {
            "sessions" => Ok(Metric::Sessions),
            "requests" => Ok(Metric::Requests),
            other => Err(format!(
                "unknown metric `{other}` (expected sessions or requests)"
            )),
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

pub use crate::rate::meter::{
    Combined, NoRate, RateMeter, RateMeters, Reading, Sample, is_reset, reading,
};
