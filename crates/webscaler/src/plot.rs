//! `webscaler plot`: the lab report's "Scaling of servers" chart (its figure 1.4) from the CSV that
//! `webscaler run` or `webscaler simulate` writes: the request rate on the left axis, and the
//! active, pending and needed servers on the right axis, over the time since the start.
//!
//! - **request rate**: the `rate` column (req/s), a line through the ticks that have one;
//! - **active servers**: `active`, the backends running in the cloud (the lab report's "active");
//! - **pending servers**: `pending`, capacity on its way (booting, or running and not yet
//!   ready in the balancer);
//! - **needed servers**: `needed`, what the rate needs within the minimum and the maximum.
//!
//! Servers are step lines (a count holds until the next tick). Rows whose tick could not
//! observe anything (`action` = `error`) are left out of the server series, whose counts they
//! do not know. The time axis is the `epoch` column; a file to which several runs appended
//! (the epoch starts again from 0) is drawn on the time of its `date` column instead.

use std::path::Path;

use common::chart::{Chart, Series, XAxis};

use crate::controller::record::{Record, read_csv};

/// The figure's width and height in pixels.
pub const SIZE: (u32, u32) = (1000, 500);

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a CSV of `run` or `simulate` (the message names the line).
    #[error("{path}:{message}")]
    Csv {
        path: String,
        /// What is wrong, starting with the line number when known.
        message: String,
    },
    /// Nothing to draw.
    #[error("{path}: {message}")]
    Empty { path: String, message: String },
    /// The chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] common::chart::ChartError),
}

impl PlotError {
    /// Whether the input is at fault (bad usage or bad input: exit status 2).
    pub fn is_input(&self) -> bool {
        !matches!(self, PlotError::Chart(_))
    }
}

/// Reads the CSV of `run` or `simulate`; errors name the file and the line.
pub fn load(path: &Path) -> Result<Vec<Record>, PlotError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlotError::Read {
        path: name.clone(),
        source,
    })?;
    let records = read_csv(&text).map_err(|message| PlotError::Csv {
        path: name.clone(),
        message: match message.strip_prefix("line ") {
            Some(rest) => rest.to_owned(),
            None => format!("1: {message}"),
        },
    })?;
    if records.is_empty() {
        return Err(PlotError::Empty {
            path: name,
            message: "no rows after the header".into(),
        });
    }
    Ok(records)
}

/// The x value of each row: the `epoch` column, or the seconds since the first `date` when
/// the epoch goes back (several runs in one file) and every date can be read.
fn times(records: &[Record]) -> Vec<f64> {
    let epochs: Vec<f64> = records.iter().map(|r| r.epoch as f64).collect();
    if epochs.windows(2).all(|w| w[1] >= w[0]) {
        return epochs;
    }
    let dates: Option<Vec<f64>> = records
        .iter()
        .map(|r| common::time::parse_timestamp(&r.date).map(common::time::epoch_seconds))
        .collect();
    match dates {
        Some(d) => d.iter().map(|t| t - d[0]).collect(),
        None => epochs,
    }
}

/// The figure for these rows (see the module documentation); `title` goes above it.
pub fn chart(records: &[Record], title: &str) -> Chart {
    let x = times(records);
    let known = |r: &Record| r.action != "error";
    let rate: Vec<(f64, f64)> = records
        .iter()
        .zip(&x)
        .filter_map(|(r, &t)| r.rate.map(|v| (t, v)))
        .collect();
    let servers = |f: &dyn Fn(&Record) -> Option<u32>| -> Vec<(f64, f64)> {
        records
            .iter()
            .zip(&x)
            .filter(|(r, _)| known(r))
            .filter_map(|(r, &t)| f(r).map(|v| (t, f64::from(v))))
            .collect()
    };
    Chart::new(title, "time since the start", "requests per second")
        .with_y2("servers")
        .with_x_axis(XAxis::Elapsed)
        .with(Series::line("request rate", rate))
        .with(Series::step("active servers", servers(&|r| Some(r.active))).on_right())
        .with(Series::step("pending servers", servers(&|r| Some(r.pending))).on_right())
        .with(Series::step("needed servers", servers(&|r| r.needed)).on_right())
}

/// The figure as an SVG document.
pub fn svg(records: &[Record], title: &str) -> Result<String, PlotError> {
    Ok(chart(records, title).to_svg(SIZE.0, SIZE.1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        epoch: u64,
        rate: Option<f64>,
        active: u32,
        pending: u32,
        needed: Option<u32>,
    ) -> Record {
        Record {
            diffpt: None,
            haactive: active,
            active,
            epoch,
            acu: Some(0),
            date: format!(
                "2014-09-28T15:{:02}:{:02}.000000",
                50 + epoch / 60,
                epoch % 60
            ),
            diff: rate.map(|r| r.ceil() as u64),
            needed,
            pending,
            stopped: 0,
            action: "hold".into(),
            rate,
            instances: None,
        }
    }

    #[test]
    fn the_four_series_come_from_their_columns() {
        let mut rows = vec![
            row(0, None, 2, 0, None),
            row(60, Some(44.7), 2, 3, Some(5)),
            row(120, Some(71.1), 5, 3, Some(8)),
        ];
        rows.push(Record {
            action: "error".into(),
            ..row(180, None, 0, 0, None)
        });
        let c = chart(&rows, "Scaling of servers");
        let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "request rate",
                "active servers",
                "pending servers",
                "needed servers"
            ]
        );
        assert_eq!(c.series[0].points, vec![(60.0, 44.7), (120.0, 71.1)]);
        // The error row is left out of the servers.
        assert_eq!(
            c.series[1].points,
            vec![(0.0, 2.0), (60.0, 2.0), (120.0, 5.0)]
        );
        assert_eq!(c.series[2].points[1], (60.0, 3.0));
        assert_eq!(c.series[3].points, vec![(60.0, 5.0), (120.0, 8.0)]);
        assert!(
            c.series[1..]
                .iter()
                .all(|s| s.axis == common::chart::Axis::Right)
        );
    }

    #[test]
    fn appended_runs_are_drawn_on_their_dates() {
        let rows = vec![
            row(0, None, 2, 0, None),
            row(60, Some(1.0), 2, 0, Some(2)),
            // A second run appended 5 minutes after the first one started.
            row(0, None, 2, 0, None),
        ];
        let mut rows = rows;
        rows[2].date = "2014-09-28T15:55:00.000000".into();
        assert_eq!(times(&rows), vec![0.0, 60.0, 300.0]);
    }
}
