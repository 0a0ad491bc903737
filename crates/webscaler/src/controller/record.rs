//! Record: one CSV row per tick, written by `webscaler run` and `webscaler simulate` alike.
//!
//! The lab report's columns come first with the lab report's meanings (its data output, listing 1.6), then
//! ours:
//!
//! | column | meaning |
//! |---|---|
//! | `diffpt` | requests since the previous tick (the counter's increase) |
//! | `haactive` | servers taking traffic in the balancer |
//! | `active` | backends running in the cloud (ACTIVE) |
//! | `epoch` | whole seconds since the controller started |
//! | `acu` | the balancer's cumulative counter (since its last restart) |
//! | `date` | the wall-clock time of the tick (the lab report's local ISO format, or RFC 3339 UTC) |
//! | `diff` | the request rate, rounded up to whole requests per second |
//! | `needed` | servers needed for the rate, within the minimum and the maximum |
//! | `pending` | capacity on its way: backends booting, or running and not yet ready |
//! | `stopped` | stopped backends kept (the warm pool) |
//! | `action` | what the tick did (`up`, `down`, `hold:window`, ... see [`crate::policy::Decision::action`]; `hold:quota`, `up:quota` when the quota stopped creations; `error` when the cloud or the balancer could not be read) |
//! | `rate` | the request rate in requests per second, as a decimal |
//!
//! A value that is not known at that tick (no rate before the second tick, a counter that
//! could not be read) is an empty field.

use serde::{Deserialize, Serialize};

/// The CSV header, in order.
pub const HEADER: [&str; 12] = [
    "diffpt", "haactive", "active", "epoch", "acu", "date", "diff", "needed", "pending", "stopped",
    "action", "rate",
];

/// One row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Requests since the previous tick.
    pub diffpt: Option<u64>,
    /// Servers taking traffic in the balancer.
    pub haactive: u32,
    /// Backends running in the cloud.
    pub active: u32,
    /// Whole seconds since the controller started.
    pub epoch: u64,
    /// The balancer's cumulative counter.
    pub acu: Option<u64>,
    pub date: String,
    /// The rate, rounded up to whole requests per second.
    pub diff: Option<u64>,
    /// Servers needed.
    pub needed: Option<u32>,
    /// Capacity on its way.
    pub pending: u32,
    /// Stopped backends.
    pub stopped: u32,
    /// What the tick did.
    pub action: String,
    /// The rate in requests per second.
    pub rate: Option<f64>,
}

/// Reads a CSV written by `run` or `simulate` (for plots and tests); the header must be
/// [`HEADER`].
pub fn read_csv(text: &str) -> Result<Vec<Record>, String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header != HEADER {
        return Err(format!(
            "the header is `{}`, expected `{}`",
            header.join(","),
            HEADER.join(",")
        ));
    }
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| format!("line {}: {e}", i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_with_empty_unknowns() {
        let rows = vec![
            Record {
                diffpt: None,
                haactive: 0,
                active: 0,
                epoch: 0,
                acu: Some(0),
                date: "2014-09-28T15:49:58.808737".into(),
                diff: None,
                needed: None,
                pending: 2,
                stopped: 0,
                action: "up:min".into(),
                rate: None,
            },
            Record {
                diffpt: Some(225),
                haactive: 2,
                active: 2,
                epoch: 5,
                acu: Some(225),
                date: "2014-09-28T15:50:03.808737".into(),
                diff: Some(45),
                needed: Some(5),
                pending: 0,
                stopped: 1,
                action: "up".into(),
                rate: Some(45.0),
            },
        ];
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(HEADER).unwrap();
        for r in &rows {
            w.serialize(r).unwrap();
        }
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            ",0,0,0,0,2014-09-28T15:49:58.808737,,,2,0,up:min,"
        );
        assert_eq!(
            text.lines().nth(2).unwrap(),
            "225,2,2,5,225,2014-09-28T15:50:03.808737,45,5,0,1,up,45.0"
        );
        assert_eq!(read_csv(&text).unwrap(), rows);
        assert!(read_csv("a,b\n1,2\n").unwrap_err().contains("expected"));
    }
}
