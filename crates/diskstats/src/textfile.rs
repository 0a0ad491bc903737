//! `diskstats --prometheus FILE`: the kernel's counters as a node_exporter textfile-collector
//! file (pure: text in, text out; [`crate::sample::Recorder`] writes it).
//!
//! Each sample replaces the file with the counters of every sampled device, in the Prometheus
//! text format (0.0.4, with `prometheus-client`), labelled `device`. The names follow
//! Prometheus' conventions and node_exporter's own `node_disk_*` metrics: base units in the
//! name, `_total` on counters. Sectors become bytes (× 512, the unit of
//! `Documentation/admin-guide/iostats.rst` whatever the device's sector size) and
//! milliseconds become seconds (÷ 1000); field 9, the I/Os in progress, is the one gauge.
//! A field the device's line does not have (discards before Linux 4.18, flushes before
//! 5.5, all but four fields on a 7-field partition line) is left out, not written as 0.
//!
//! The millisecond fields are 32-bit in the kernel and wrap after 2^32 ms; Prometheus's
//! `rate()` takes the drop for a counter reset, so the interval of a wrap is undercounted
//! once.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::parse::{Counters, Layout, parse_line};
use crate::sample::Selection;

/// The bytes of a sector in `/proc/diskstats` (always 512).
pub const SECTOR_BYTES: u64 = 512;

/// One device's counters, as a textfile shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The kernel's name (`vda`, `nvme0n1p1`): the `device` label.
    pub name: String,
    pub counters: Counters,
    pub layout: Layout,
}

/// How a field is shown.
#[derive(Debug, Clone, Copy)]
enum Shown {
    /// A count, as is.
    Count(fn(&Counters) -> u64),
    /// Sectors, as bytes.
    Bytes(fn(&Counters) -> u64),
    /// Milliseconds, as seconds.
    Seconds(fn(&Counters) -> u32),
    /// The one gauge (I/Os in progress).
    Gauge(fn(&Counters) -> u32),
}

/// Which lines have a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    /// Every line, the 7-field ones too.
    Always,
    /// The 11 classic fields.
    Classic,
    /// Linux 4.18's discard fields.
    Discard,
    /// Linux 5.5's flush fields.
    Flush,
}

impl Since {
    fn on(self, layout: Layout) -> bool {
        match (self, layout) {
            (Since::Always, _) => true,
            (_, Layout::Legacy7) => false,
            (Since::Classic, _) => true,
            (Since::Discard, l) => matches!(l, Layout::Discard | Layout::Flush),
            (Since::Flush, l) => l == Layout::Flush,
        }
    }
}

/// (name without unit nor `_total`, help, how, which lines have it), in the kernel's order.
const FIELDS: [(&str, &str, Shown, Since); 17] = [
    (
        "reads_completed",
        "Reads completed (field 1).",
        Shown::Count(|c| c.rd_ios),
        Since::Always,
    ),
    (
        "reads_merged",
        "Reads merged with an adjacent one (field 2).",
        Shown::Count(|c| c.rd_merges),
        Since::Classic,
    ),
    (
        "read",
        "Bytes read (field 3, sectors × 512).",
        Shown::Bytes(|c| c.rd_sectors),
        Since::Always,
    ),
    (
        "read_time",
        "Time spent reading (field 4, ms / 1000; the kernel's 32-bit ms wrap).",
        Shown::Seconds(|c| c.rd_ticks),
        Since::Classic,
    ),
    (
        "writes_completed",
        "Writes completed (field 5).",
        Shown::Count(|c| c.wr_ios),
        Since::Always,
    ),
    (
        "writes_merged",
        "Writes merged with an adjacent one (field 6).",
        Shown::Count(|c| c.wr_merges),
        Since::Classic,
    ),
    (
        "written",
        "Bytes written (field 7, sectors × 512).",
        Shown::Bytes(|c| c.wr_sectors),
        Since::Always,
    ),
    (
        "write_time",
        "Time spent writing (field 8, ms / 1000).",
        Shown::Seconds(|c| c.wr_ticks),
        Since::Classic,
    ),
    (
        "io_in_progress",
        "I/Os in progress at the sample (field 9).",
        Shown::Gauge(|c| c.ios_pgr),
        Since::Classic,
    ),
    (
        "io_time",
        "Time the device had I/O in progress (field 10, ms / 1000): its rate is the utilisation.",
        Shown::Seconds(|c| c.tot_ticks),
        Since::Classic,
    ),
    (
        "io_time_weighted",
        "Time spent doing I/O weighted by the I/Os in progress (field 11, ms / 1000): its rate is the average queue size.",
        Shown::Seconds(|c| c.rq_ticks),
        Since::Classic,
    ),
    (
        "discards_completed",
        "Discards completed (field 12, Linux 4.18+).",
        Shown::Count(|c| c.dc_ios),
        Since::Discard,
    ),
    (
        "discards_merged",
        "Discards merged (field 13).",
        Shown::Count(|c| c.dc_merges),
        Since::Discard,
    ),
    (
        "discarded",
        "Bytes discarded (field 14, sectors × 512).",
        Shown::Bytes(|c| c.dc_sectors),
        Since::Discard,
    ),
    (
        "discard_time",
        "Time spent discarding (field 15, ms / 1000).",
        Shown::Seconds(|c| c.dc_ticks),
        Since::Discard,
    ),
    (
        "flushes_completed",
        "Flush requests completed (field 16, Linux 5.5+).",
        Shown::Count(|c| c.fl_ios),
        Since::Flush,
    ),
    (
        "flush_time",
        "Time spent flushing (field 17, ms / 1000).",
        Shown::Seconds(|c| c.fl_ticks),
        Since::Flush,
    ),
];

/// The selected devices of one read of `/proc/diskstats`: every parsable line for
/// [`Selection::All`] (in the kernel's order), else the named devices found (in the
/// selection's order). Lines that cannot be parsed are skipped (the CSV's sampler reports
/// them).
pub fn devices(text: &str, selection: &Selection) -> Vec<Device> {
    let mut out: Vec<Device> = text
        .lines()
        .filter_map(|l| parse_line(l).ok())
        .filter(|d| match selection {
            Selection::All => true,
            Selection::Devices(names) => names.iter().any(|n| n == d.name),
        })
        .map(|d| Device {
            name: d.name.to_owned(),
            counters: d.counters,
            layout: d.layout,
        })
        .collect();
    if let Selection::Devices(names) = selection {
        out.sort_by_key(|d| names.iter().position(|n| *n == d.name));
    }
    out
}

/// The textfile of `devices` (see the module documentation).
pub fn encode(devices: Vec<Device>) -> String {
    let mut registry = Registry::with_prefix("diskstats");
    registry.register_collector(Box::new(Devices(devices)));
    let mut out = String::with_capacity(2048);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String does not fail");
    out
}

#[derive(Debug)]
struct Devices(Vec<Device>);

impl Collector for Devices {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, shown, since) in FIELDS {
            let mut having = self.0.iter().filter(|d| since.on(d.layout)).peekable();
            if having.peek().is_none() {
                continue;
            }
            let (unit, kind) = match shown {
                Shown::Count(_) => (None, MetricType::Counter),
                Shown::Bytes(_) => (Some(&Unit::Bytes), MetricType::Counter),
                Shown::Seconds(_) => (Some(&Unit::Seconds), MetricType::Counter),
                Shown::Gauge(_) => (None, MetricType::Gauge),
            };
            let mut m = e.encode_descriptor(name, help, unit, kind)?;
            for d in having {
                let labels = [("device", d.name.as_str())];
                let s = m.encode_family(&labels)?;
                let c = &d.counters;
                match shown {
                    Shown::Count(f) => ConstCounter::new(f(c)).encode(s)?,
                    Shown::Bytes(f) => {
                        ConstCounter::new(f(c).saturating_mul(SECTOR_BYTES)).encode(s)?
                    }
                    Shown::Seconds(f) => ConstCounter::new(f64::from(f(c)) / 1000.0).encode(s)?,
                    Shown::Gauge(f) => ConstGauge::new(i64::from(f(c))).encode(s)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "\
 253       0 vda 11 2 300 4 5 6 700 8 1 10 4294967295 12 13 14 15 16 17
 253       1 vda1 1 2 3 4 5 6 7 8 0 10 11 12 13 14 15
   7       0 loop0 1 0 8 0 0 0 0 0 0 0 0
   8       1 sda1 5 10 7 14
";

    /// `name{labels}` → value text.
    fn samples(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn value(text: &str, key: &str) -> Option<String> {
        samples(text)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn counters_in_their_units_labelled_by_device() {
        let t = encode(devices(PROC, &Selection::All));
        let v = |k: &str| value(&t, k).unwrap_or_else(|| panic!("no {k} in\n{t}"));
        assert_eq!(v("diskstats_reads_completed_total{device=\"vda\"}"), "11");
        assert_eq!(v("diskstats_reads_merged_total{device=\"vda\"}"), "2");
        assert_eq!(v("diskstats_read_bytes_total{device=\"vda\"}"), "153600");
        assert_eq!(
            v("diskstats_read_time_seconds_total{device=\"vda\"}"),
            "0.004"
        );
        assert_eq!(v("diskstats_written_bytes_total{device=\"vda\"}"), "358400");
        assert_eq!(v("diskstats_io_in_progress{device=\"vda\"}"), "1");
        assert_eq!(v("diskstats_io_time_seconds_total{device=\"vda\"}"), "0.01");
        // The largest 32-bit millisecond count, exactly.
        assert_eq!(
            v("diskstats_io_time_weighted_seconds_total{device=\"vda\"}"),
            "4294967.295"
        );
        assert_eq!(v("diskstats_discarded_bytes_total{device=\"vda\"}"), "7168");
        assert_eq!(v("diskstats_flushes_completed_total{device=\"vda\"}"), "16");
        assert_eq!(
            v("diskstats_flush_time_seconds_total{device=\"vda\"}"),
            "0.017"
        );
        // vda1 (18 fields) has discards but no flushes; loop0 (14) neither.
        assert!(value(&t, "diskstats_discard_time_seconds_total{device=\"vda1\"}").is_some());
        assert!(value(&t, "diskstats_flushes_completed_total{device=\"vda1\"}").is_none());
        assert!(value(&t, "diskstats_discards_completed_total{device=\"loop0\"}").is_none());
        assert_eq!(v("diskstats_read_bytes_total{device=\"loop0\"}"), "4096");
        // A 7-field partition line: four fields only.
        let sda1: Vec<_> = samples(&t)
            .into_iter()
            .filter(|(k, _)| k.contains("\"sda1\""))
            .collect();
        assert_eq!(
            sda1,
            [
                (
                    "diskstats_reads_completed_total{device=\"sda1\"}".to_owned(),
                    "5".to_owned()
                ),
                (
                    "diskstats_read_bytes_total{device=\"sda1\"}".to_owned(),
                    "5120".to_owned()
                ),
                (
                    "diskstats_writes_completed_total{device=\"sda1\"}".to_owned(),
                    "7".to_owned()
                ),
                (
                    "diskstats_written_bytes_total{device=\"sda1\"}".to_owned(),
                    "7168".to_owned()
                ),
            ]
        );
        assert!(t.contains("# TYPE diskstats_io_in_progress gauge\n"));
        assert!(t.contains("# TYPE diskstats_read_bytes_total counter\n"));
        assert!(!t.contains("# EOF"), "the 0.0.4 text format");
    }

    #[test]
    fn a_selection_keeps_its_order_and_nothing_else() {
        let sel = Selection::from_args(&["loop0".to_owned(), "vda".to_owned()]);
        let d = devices(PROC, &sel);
        assert_eq!(
            d.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["loop0", "vda"]
        );
        let t = encode(d);
        assert!(!t.contains("vda1") && !t.contains("sda1"));
        // Families that no device has are left out entirely.
        let t = encode(devices(PROC, &Selection::from_args(&["sda1".to_owned()])));
        assert!(!t.contains("io_time"), "{t}");
        assert!(encode(Vec::new()).lines().all(|l| l.starts_with('#')));
    }

    #[test]
    fn bad_lines_are_skipped() {
        let d = devices(
            "garbage\n 8 0 sda 1 2 3 x 5 6 7 8 9 10 11\n 8 16 sdb 1 2 3 4\n",
            &Selection::All,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "sdb");
    }
}
