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
//! | `instances` | only when `run` drives several HAProxy instances: how many answered this tick |
//!
//! With one HAProxy the file has the first twelve columns, exactly as before; readers find
//! columns by name ([`read_csv`] reads both forms).
//!
//! A value that is not known at that tick (no rate before the second tick, a counter that
//! could not be read) is an empty field.

use serde::{Deserialize, Serialize};

/// The CSV header, in order.
pub const HEADER: [&str; 12] = [
    "diffpt", "haactive", "active", "epoch", "acu", "date", "diff", "needed", "pending", "stopped",
    "action", "rate",
];

/// The column added when `run` drives several HAProxy instances.
pub const INSTANCES_COLUMN: &str = "instances";

/// The header of a run's CSV: [`HEADER`], and `instances` with several HAProxy instances.
pub fn header(several: bool) -> Vec<&'static str> {
    let mut h = HEADER.to_vec();
    if several {
        h.push(INSTANCES_COLUMN);
    }
    h
}

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
    /// Several HAProxy instances: how many answered (`None`, and no column, for one).
    #[serde(skip_serializing, default)]
    pub instances: Option<u32>,
}

/// A row as written: [`Record`]'s columns, then `instances` when it has one (see [`header`]).
#[derive(Debug, Clone, Copy)]
pub struct Row<'a>(pub &'a Record);

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self.0.instances {
            None => self.0.serialize(s),
            Some(n) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(self.0)?;
                t.serialize_element(&n)?;
                t.end()
            }
        }
    }
}

/// Reads a CSV written by `run` or `simulate` (for plots and tests); the header must be
/// [`HEADER`], or [`HEADER`] and `instances`.
pub fn read_csv(text: &str) -> Result<Vec<Record>, String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header != HEADER && header != self::header(true) {
        return Err(format!(
            "the header is `{}`, expected `{}` (and `,{INSTANCES_COLUMN}` with several HAProxy instances)",
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
                instances: None,
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
                instances: None,
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

    #[test]
    fn several_instances_add_a_last_column_that_readers_find_by_name() {
        let mut r = read_csv(
            "diffpt,haactive,active,epoch,acu,date,diff,needed,pending,stopped,action,rate\n\
             225,2,2,5,225,d,45,5,0,1,up,45.0\n",
        )
        .unwrap()
        .remove(0);
        assert_eq!(r.instances, None);
        r.instances = Some(2);
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(header(true)).unwrap();
        w.serialize(Row(&r)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "225,2,2,5,225,d,45,5,0,1,up,45.0,2"
        );
        assert_eq!(read_csv(&text).unwrap(), vec![r.clone()]);
        // A lone HAProxy's row has the twelve columns.
        r.instances = None;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.serialize(Row(&r)).unwrap();
        assert_eq!(
            String::from_utf8(w.into_inner().unwrap()).unwrap(),
            "225,2,2,5,225,d,45,5,0,1,up,45.0\n"
        );
    }
}
