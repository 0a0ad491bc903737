//! The CSV rows the sampler writes and the reports read back: columns, file names, encoding
//! and decoding (pure).

use std::io::Write as _;

use crate::parse::{Counters, DiskLine};

/// The seed's header (chapter 3 of the lab report, listing 3.7), unchanged.
pub const SEED_HEADER: [&str; 15] = [
    "datetime",
    "major_number",
    "minor_number",
    "device_name",
    "read_completed_successfully",
    "reads_merged",
    "sectors_read",
    "time_spent_reading(ms)",
    "writes_completed",
    "writes_merged",
    "sectors_written",
    "time_spent_writing(ms)",
    "IO_currently_in_progress",
    "time_spent_doing_IO(ms)",
    "weighted_time_spent_doing_IO",
];

/// The full header: the seed's, then the fields of newer kernels (discards from 4.18,
/// flushes from 5.5), then `uptime` (CLOCK_BOOTTIME seconds, monotonic).
pub const HEADER: [&str; 22] = [
    "datetime",
    "major_number",
    "minor_number",
    "device_name",
    "read_completed_successfully",
    "reads_merged",
    "sectors_read",
    "time_spent_reading(ms)",
    "writes_completed",
    "writes_merged",
    "sectors_written",
    "time_spent_writing(ms)",
    "IO_currently_in_progress",
    "time_spent_doing_IO(ms)",
    "weighted_time_spent_doing_IO",
    "discards_completed_successfully",
    "discards_merged",
    "sectors_discarded",
    "time_spent_discarding(ms)",
    "flush_requests_completed_successfully",
    "time_spent_flushing(ms)",
    "uptime",
];

/// Index of the `uptime` column.
pub const UPTIME_COL: usize = 21;

/// The output file name for a device selection, as the seed names it (with `.csv`): one
/// device gives `mon_<dev>.csv`, several `mon_diskstats_<a>_<b>.csv`, none (all devices)
/// `mon_diskstats.csv`. A `/` in a kernel name (`cciss/c0d0`) becomes `!`, as in sysfs.
pub fn file_name(devices: &[String]) -> String {
    let clean = |d: &str| d.replace('/', "!");
    match devices {
        [] => "mon_diskstats.csv".to_owned(),
        [one] => format!("mon_{}.csv", clean(one)),
        many => {
            let mut s = String::from("mon_diskstats");
            for d in many {
                s.push('_');
                s.push_str(&clean(d));
            }
            s.push_str(".csv");
            s
        }
    }
}

/// Appends one CSV row (with its newline) for `line` to `out`, with the given timestamp and
/// uptime text. Numbers are written with `itoa`; only the device name can need quoting.
pub fn encode_row(out: &mut Vec<u8>, datetime: &[u8], line: &DiskLine<'_>, uptime: &[u8]) {
    let c = &line.counters;
    // One reservation per row: 19 numbers of at most 20 digits, the commas, the name (quoted
    // at worst), the timestamp and the uptime.
    out.reserve(datetime.len() + uptime.len() + 2 * line.name.len() + 24 * 20);
    out.extend_from_slice(datetime);
    push_num(out, u64::from(line.major));
    push_num(out, u64::from(line.minor));
    out.push(b',');
    push_text_field(out, line.name);
    let fields = [
        c.rd_ios,
        c.rd_merges,
        c.rd_sectors,
        u64::from(c.rd_ticks),
        c.wr_ios,
        c.wr_merges,
        c.wr_sectors,
        u64::from(c.wr_ticks),
        u64::from(c.ios_pgr),
        u64::from(c.tot_ticks),
        u64::from(c.rq_ticks),
        c.dc_ios,
        c.dc_merges,
        c.dc_sectors,
        u64::from(c.dc_ticks),
        c.fl_ios,
        u64::from(c.fl_ticks),
    ];
    for v in fields {
        push_num(out, v);
    }
    out.push(b',');
    out.extend_from_slice(uptime);
    out.push(b'\n');
}

/// Appends `,` and the number. Single digits (most fields of idle devices) skip `itoa`.
#[inline]
fn push_num(out: &mut Vec<u8>, v: u64) {
    if v < 10 {
        out.extend_from_slice(&[b',', b'0' + v as u8]);
    } else {
        out.push(b',');
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// Writes a text field, quoted as RFC 4180 requires if it contains a comma, quote or line
/// break.
fn push_text_field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Formats CLOCK_BOOTTIME seconds and nanoseconds as the `uptime` column: seconds with six
/// decimals (microseconds).
pub fn format_uptime(out: &mut Vec<u8>, secs: u64, nanos: u32) {
    let _ = write!(out, "{secs}.{:06}", nanos / 1000);
}

/// One row read back from a diskstats CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The `datetime` column, as written.
    pub datetime: String,
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Device name.
    pub device: String,
    /// The 17 kernel counters.
    pub counters: Counters,
    /// CLOCK_BOOTTIME seconds when the sample was taken.
    pub uptime: f64,
}

/// Why a CSV row could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// Wrong number of fields.
    #[error("expected 22 fields (the diskstats header), found {0}")]
    FieldCount(usize),
    /// A field is not a number of the right kind.
    #[error("column {column} is not a valid number: {value:?}")]
    Number {
        /// The column's header name.
        column: &'static str,
        /// The field's text.
        value: String,
    },
}

/// Decodes one data row (fields in [`HEADER`] order).
pub fn decode_row(fields: &csv::StringRecord) -> Result<Row, RowError> {
    if fields.len() != HEADER.len() {
        return Err(RowError::FieldCount(fields.len()));
    }
    let bad = |i: usize| RowError::Number {
        column: HEADER[i],
        value: fields[i].to_owned(),
    };
    let u64_at = |i: usize| fields[i].trim().parse::<u64>().map_err(|_| bad(i));
    let u32_at = |i: usize| fields[i].trim().parse::<u32>().map_err(|_| bad(i));
    let uptime = || -> Result<f64, RowError> {
        let v: f64 = fields[UPTIME_COL]
            .trim()
            .parse()
            .map_err(|_| bad(UPTIME_COL))?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(bad(UPTIME_COL))
        }
    };
    // Fields are checked left to right, so the error names the first bad column.
    Ok(Row {
        datetime: fields[0].to_owned(),
        major: u32_at(1)?,
        minor: u32_at(2)?,
        device: fields[3].to_owned(),
        counters: Counters {
            rd_ios: u64_at(4)?,
            rd_merges: u64_at(5)?,
            rd_sectors: u64_at(6)?,
            rd_ticks: u32_at(7)?,
            wr_ios: u64_at(8)?,
            wr_merges: u64_at(9)?,
            wr_sectors: u64_at(10)?,
            wr_ticks: u32_at(11)?,
            ios_pgr: u32_at(12)?,
            tot_ticks: u32_at(13)?,
            rq_ticks: u32_at(14)?,
            dc_ios: u64_at(15)?,
            dc_merges: u64_at(16)?,
            dc_sectors: u64_at(17)?,
            dc_ticks: u32_at(18)?,
            fl_ios: u64_at(19)?,
            fl_ticks: u32_at(20)?,
        },
        uptime: uptime()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    #[test]
    fn file_names_follow_the_seed() {
        let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(file_name(&d(&[])), "mon_diskstats.csv");
        assert_eq!(file_name(&d(&["vda"])), "mon_vda.csv");
        assert_eq!(
            file_name(&d(&["vda", "vda1"])),
            "mon_diskstats_vda_vda1.csv"
        );
        assert_eq!(file_name(&d(&["cciss/c0d0"])), "mon_cciss!c0d0.csv");
    }

    #[test]
    fn the_header_starts_with_the_seed_header() {
        assert_eq!(HEADER[..15], SEED_HEADER);
        assert_eq!(HEADER[UPTIME_COL], "uptime");
        assert_eq!(
            SEED_HEADER.join(","),
            "datetime,major_number,minor_number,device_name,read_completed_successfully,\
             reads_merged,sectors_read,time_spent_reading(ms),writes_completed,writes_merged,\
             sectors_written,time_spent_writing(ms),IO_currently_in_progress,\
             time_spent_doing_IO(ms),weighted_time_spent_doing_IO"
        );
    }

    #[test]
    fn a_row_round_trips() {
        let line = parse_line(
            " 254       0 vda 164494 25503 8705226 142846 12451 50683 17652216 138007 0 27120 \
             285707 5245 91 1424464 4652 521 200",
        )
        .unwrap();
        let mut up = Vec::new();
        format_uptime(&mut up, 1643, 5_123_999);
        assert_eq!(up, b"1643.005123");
        let mut out = Vec::new();
        encode_row(&mut out, b"2014-12-14T14:27:07.878920", &line, &up);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "2014-12-14T14:27:07.878920,254,0,vda,164494,25503,8705226,142846,12451,50683,\
             17652216,138007,0,27120,285707,5245,91,1424464,4652,521,200,1643.005123\n"
        );
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        let row = decode_row(&rec).unwrap();
        assert_eq!(row.counters, line.counters);
        assert_eq!(row.device, "vda");
        assert_eq!((row.major, row.minor), (254, 0));
        assert_eq!(row.uptime, 1643.005123);
    }

    #[test]
    fn odd_names_are_quoted() {
        let mut out = Vec::new();
        push_text_field(&mut out, "a,\"b");
        assert_eq!(out, b"\"a,\"\"b\"");
    }

    #[test]
    fn bad_rows_name_the_column() {
        let mut fields = vec!["1"; 22];
        fields[21] = "x";
        let rec = csv::StringRecord::from(fields);
        assert_eq!(
            decode_row(&rec).unwrap_err(),
            RowError::Number {
                column: "uptime",
                value: "x".into()
            }
        );
        let rec = csv::StringRecord::from(vec!["x"; 22]);
        assert_eq!(
            decode_row(&rec).unwrap_err(),
            RowError::Number {
                column: "major_number",
                value: "x".into()
            }
        );
        let rec = csv::StringRecord::from(vec!["1"; 15]);
        assert_eq!(decode_row(&rec).unwrap_err(), RowError::FieldCount(15));
    }
}
