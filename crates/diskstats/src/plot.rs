//! `diskstats plot`: throughput, IOPS and utilisation over time, one line per device and
//! direction, drawn with [`common::chart`] as three stacked panels of one SVG.

use common::chart::{Chart, Series, XAxis, render_svg};
use common::time::{epoch_seconds, parse_timestamp};

use crate::report::Interval;

/// The series of one device.
#[derive(Debug, Default, Clone)]
struct DeviceSeries {
    name: String,
    read_kb: Vec<(f64, f64)>,
    write_kb: Vec<(f64, f64)>,
    reads: Vec<(f64, f64)>,
    writes: Vec<(f64, f64)>,
    util: Vec<(f64, f64)>,
}

/// Collects intervals and draws them.
#[derive(Debug, Default)]
pub struct Plot {
    devices: Vec<DeviceSeries>,
    /// Intervals whose `datetime` could not be read (not drawn).
    pub unreadable_times: u64,
}

impl Plot {
    /// An empty plot.
    pub fn new() -> Self {
        Plot::default()
    }

    /// Adds one interval, at the time of its end row (wall time is only for the x axis).
    pub fn add(&mut self, iv: &Interval) {
        let Some(t) = parse_timestamp(&iv.datetime) else {
            self.unreadable_times += 1;
            return;
        };
        let x = epoch_seconds(t);
        let i = match self.devices.iter().position(|d| d.name == iv.device) {
            Some(i) => i,
            None => {
                self.devices.push(DeviceSeries {
                    name: iv.device.clone(),
                    ..DeviceSeries::default()
                });
                self.devices.len() - 1
            }
        };
        let d = &mut self.devices[i];
        let s = &iv.stats;
        d.read_kb.push((x, s.rkb_s));
        d.write_kb.push((x, s.wkb_s));
        d.reads.push((x, s.r_s));
        d.writes.push((x, s.w_s));
        d.util.push((x, s.util));
    }

    /// Whether there is anything to draw.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The three panels: throughput (kB/s), IOPS, %util.
    pub fn charts(&self, title: &str) -> Vec<Chart> {
        let mut tput = Chart::new(format!("{title}: throughput"), "time", "kB/s (read, write)")
            .with_x_axis(XAxis::Clock);
        let mut iops = Chart::new(
            format!("{title}: I/O operations"),
            "time",
            "requests/s (r/s, w/s)",
        )
        .with_x_axis(XAxis::Clock);
        let mut util =
            Chart::new(format!("{title}: utilisation"), "time", "%util").with_x_axis(XAxis::Clock);
        for d in &self.devices {
            tput = tput
                .with(Series::line(format!("{} read", d.name), d.read_kb.clone()))
                .with(Series::line(
                    format!("{} write", d.name),
                    d.write_kb.clone(),
                ));
            iops = iops
                .with(Series::line(format!("{} r/s", d.name), d.reads.clone()))
                .with(Series::line(format!("{} w/s", d.name), d.writes.clone()));
            util = util.with(Series::line(d.name.clone(), d.util.clone()));
        }
        vec![tput, iops, util]
    }

    /// Renders the SVG document.
    pub fn to_svg(&self, title: &str) -> Result<String, common::chart::ChartError> {
        render_svg(&self.charts(title), 1000, 340)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iostat::ExtStats;
    use crate::report::Basis;

    #[test]
    fn three_panels_with_one_series_per_device_and_direction() {
        let mut p = Plot::new();
        for (i, dev) in [(0, "vda"), (0, "vdb"), (1, "vda"), (1, "vdb")] {
            p.add(&Interval {
                datetime: format!("2024-05-01T10:00:0{i}.000000"),
                device: dev.into(),
                uptime: 100.0 + f64::from(i),
                secs: 1.0,
                stats: ExtStats {
                    rkb_s: 10.0 * f64::from(i + 1),
                    wkb_s: 5.0,
                    r_s: 2.0,
                    w_s: 1.0,
                    util: 42.0,
                    ..ExtStats::default()
                },
                basis: Basis::Previous,
            });
        }
        let charts = p.charts("mon_x.csv");
        assert_eq!(charts.len(), 3);
        assert_eq!(charts[0].series.len(), 4);
        assert_eq!(charts[0].series[0].name, "vda read");
        assert_eq!(charts[0].series[0].points.len(), 2);
        assert_eq!(charts[0].series[0].points[1].1, 20.0);
        assert_eq!(charts[2].series.len(), 2);
        let svg = p.to_svg("mon_x.csv").unwrap();
        assert!(svg.contains("utilisation") && svg.contains("vdb write"));
    }
}
