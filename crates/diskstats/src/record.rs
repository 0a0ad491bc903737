//! The CSV rows the sampler writes and the reports read back: columns, file names, encoding
//! and decoding (pure).

use std::io::Write as _;

use crate::parse::{Counters, DiskLine};

/// The header of the lab report's `diskstats.py` (its listing 3.7), unchanged.
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

/// The full header: the lab report's, then the fields of newer kernels (discards from 4.18,
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

/// The output file name for a device selection, as the lab report names it (with `.csv`): one
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
    let fields = c.fields();
    for v in fields {
        push_num(out, v);
    }
    out.push(b',');
    out.extend_from_slice(uptime);
    out.push(b'\n');
}

/// Token indices (0-based, in the kernel's line) of the fields kept as `u32`: the major and
/// minor numbers and the millisecond and in-progress counters (fields 4, 8, 9, 10, 11, 15
/// and 17).
const U32_TOKENS: u32 =
    1 << 0 | 1 << 1 | 1 << 6 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 17 | 1 << 19;

/// `u32::MAX` and `u64::MAX` in decimal: a token of that many digits fits if it is not
/// greater (digits of equal length compare as numbers).
const U32_MAX_TEXT: &[u8] = b"4294967295";
const U64_MAX_TEXT: &[u8] = b"18446744073709551615";

/// The fast path of the sampler: appends the CSV row for one kernel line (without its
/// newline) straight from the line's bytes, without converting the numbers, and returns the
/// device name's span in `line`.
///
/// The kernel prints each counter as a plain decimal number, so its CSV field is the very
/// same digits. This takes only lines in that form: 14 or more tokens, every kept number
/// made of digits without a leading zero and within its field's width, and a name that
/// needs no quoting. For any other line it returns `None` and leaves `out` as it was, and
/// the caller goes the slow way ([`crate::parse::parse_line`] and [`encode_row`]), which
/// gives the same bytes for every line both accept (tested).
pub fn transcode_row(
    out: &mut Vec<u8>,
    datetime: &[u8],
    line: &[u8],
    uptime: &[u8],
) -> Option<(usize, usize)> {
    let base = out.len();
    out.resize(base + row_bound(datetime, line, uptime), 0);
    match transcode_into(&mut out[base..], datetime, line, uptime) {
        Some((len, name)) => {
            out.truncate(base + len);
            Some(name)
        }
        None => {
            out.truncate(base);
            None
        }
    }
}

/// The most bytes [`transcode_into`] writes for `line`: the timestamp, each byte of the line
/// at most once plus a comma before the first token, up to six `,0` pads, then
/// `,uptime\n`.
#[inline]
pub(crate) fn row_bound(datetime: &[u8], line: &[u8], uptime: &[u8]) -> usize {
    datetime.len() + line.len() + 1 + 12 + 1 + uptime.len() + 1
}

/// [`transcode_row`] into `dst`, which must be at least [`row_bound`] long: returns the
/// row's length and the name's span, or `None` (and `dst` holds garbage).
#[inline]
pub(crate) fn transcode_into(
    dst: &mut [u8],
    datetime: &[u8],
    line: &[u8],
    uptime: &[u8],
) -> Option<(usize, (usize, usize))> {
    let n = line.len();
    dst[..datetime.len()].copy_from_slice(datetime);
    let mut w = datetime.len();
    // The major and minor numbers (padded with spaces by the kernel) and the name.
    let mut i = 0;
    let mut name = (0, 0);
    for tok in 0..3 {
        while i < n && line[i] <= b' ' {
            i += 1;
        }
        let start = i;
        while i < n && line[i] > b' ' {
            i += 1;
        }
        let text = &line[start..i];
        if tok == 2 {
            if text.is_empty() || text.iter().any(|&b| b == b',' || b == b'"') {
                return None;
            }
            name = (start, i);
        } else if !plain_number(text, U32_MAX_TEXT) {
            return None;
        }
        dst[w] = b',';
        dst[w + 1..w + 1 + text.len()].copy_from_slice(text);
        w += 1 + text.len();
    }
    // The counters: each one space then digits, as the kernel prints them. The tail is copied
    // eight bytes at a time with its spaces turned into commas, and the tokens are then
    // checked one by one, walking a bit mask of the spaces.
    let tail = &line[i..];
    if tail.first() != Some(&b' ') {
        return None;
    }
    let mut walk = Walk {
        tail,
        tok: 3,
        prev: 0,
        ends: [0; 20],
    };
    let out = &mut dst[w..w + tail.len()];
    let (words, rest) = tail.as_chunks::<8>();
    let (out_words, out_rest) = out.as_chunks_mut::<8>();
    let mut more = false;
    for (c, (word, out)) in words.iter().zip(out_words).enumerate() {
        let x = u64::from_le_bytes(*word);
        let spaces = space_bytes(x);
        *out = (x ^ (spaces * u64::from(b' ' ^ b','))).to_le_bytes();
        // The space before token 3 (the first byte) starts the walk.
        let mask = byte_bits(spaces) & if c == 0 { !1 } else { !0 };
        if mask != 0 {
            more = walk.spaces(mask, c * 8)?;
            if more {
                break;
            }
        }
    }
    if !more && !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        let x = u64::from_le_bytes(last);
        let spaces = space_bytes(x);
        let bytes = (x ^ (spaces * u64::from(b' ' ^ b','))).to_le_bytes();
        out_rest.copy_from_slice(&bytes[..rest.len()]);
        let mask = byte_bits(spaces) & if words.is_empty() { !1 } else { !0 };
        if mask != 0 {
            more = walk.spaces(mask, words.len() * 8)?;
        }
    }
    // The last token runs to the end of the line (unless there were more than 20, the rest
    // being ignored as `parse_line` ignores them).
    let count = if more {
        20
    } else {
        if !walk.token(tail.len()) {
            return None;
        }
        walk.tok + 1
    };
    let (end, pad): (usize, &[u8]) = match count {
        20 => (walk.ends[19], b""),
        18 | 19 => (walk.ends[17], b",0,0"),
        14..=17 => (walk.ends[13], b",0,0,0,0,0,0"),
        _ => return None,
    };
    w += end;
    dst[w..w + pad.len()].copy_from_slice(pad);
    w += pad.len();
    dst[w] = b',';
    w += 1;
    dst[w..w + uptime.len()].copy_from_slice(uptime);
    w += uptime.len();
    dst[w] = b'\n';
    Some((w + 1, name))
}

/// The walk over the spaces of a line's counters in [`transcode_into`].
struct Walk<'a> {
    /// The counters, from the space before the first.
    tail: &'a [u8],
    /// The token (index in the line) that starts after `prev`.
    tok: usize,
    /// The space before it.
    prev: usize,
    /// Per token: where it ends in `tail`.
    ends: [usize; 20],
}

impl Walk<'_> {
    /// Checks the token that ends at `end` (`tok`) and notes where it ends.
    #[inline(always)]
    fn token(&mut self, end: usize) -> bool {
        let start = self.prev + 1;
        let ok = if end == start + 1 {
            self.tail[start].is_ascii_digit()
        } else {
            let widest = if U32_TOKENS & (1 << self.tok) != 0 {
                U32_MAX_TEXT
            } else {
                U64_MAX_TEXT
            };
            plain_number(self.tail.get(start..end).unwrap_or_default(), widest)
        };
        self.ends[self.tok] = end;
        ok
    }

    /// Takes the spaces of `mask` (bit `k`: a space at `base + k`). Returns whether the 20th
    /// token is done (the rest is ignored), or `None` at a token that is not a plain number.
    #[inline(always)]
    fn spaces(&mut self, mut mask: u64, base: usize) -> Option<bool> {
        while mask != 0 {
            let space = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if !self.token(space) {
                return None;
            }
            if self.tok == 19 {
                return Some(true);
            }
            self.prev = space;
            self.tok += 1;
        }
        Some(false)
    }
}

/// One bit per byte of a [`space_bytes`] result, lowest byte first.
#[inline]
fn byte_bits(ones: u64) -> u64 {
    ones.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The bytes of `x` that are spaces, as 1 in that byte and 0 in the others (exact, without
/// the false positives of the quick zero-byte test).
#[inline]
fn space_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let t = x ^ 0x2020_2020_2020_2020;
    // A byte of `t` is zero exactly when adding 0x7F to its low seven bits leaves its top bit
    // clear and its own top bit is clear.
    (!(((t & LOW7) + LOW7) | t | LOW7)) >> 7
}

/// Whether `text` is a decimal number as the kernel prints it (digits, no leading zero) that
/// is at most `widest` (`u32::MAX` or `u64::MAX` in decimal), so that its CSV field is the
/// text itself.
#[inline]
fn plain_number(text: &[u8], widest: &[u8]) -> bool {
    match text {
        [] => false,
        [d] => d.is_ascii_digit(),
        [b'0', ..] => false,
        _ => {
            text.iter().all(u8::is_ascii_digit)
                && (text.len() < widest.len() || (text.len() == widest.len() && text <= widest))
        }
    }
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
/// decimals (microseconds), as `format!("{secs}.{:06}", nanos / 1000)` would.
pub fn format_uptime(out: &mut Vec<u8>, secs: u64, nanos: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
    let mut frac = *b".000000";
    let mut v = nanos / 1000;
    for slot in frac[1..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    if v > 0 {
        // More than a second of nanoseconds (never from clock_gettime): print it as is.
        let _ = write!(out, ".{:06}", nanos / 1000);
    } else {
        out.extend_from_slice(&frac);
    }
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
    /// Device name as the kernel prints it (`vda`, `sda1`, `dm-0`).
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
    use proptest::prelude::*;

    const STAMP: &[u8] = b"2014-12-14T14:27:07.878920";
    const UP: &[u8] = b"1643.005123";

    /// The slow way: parse, then encode the parsed line.
    fn slow(line: &str) -> Option<Vec<u8>> {
        let d = parse_line(line).ok()?;
        let mut out = b"prefix".to_vec();
        encode_row(&mut out, STAMP, &d, UP);
        Some(out)
    }

    /// The fast way, after the same prefix, with the name it reports.
    fn fast(line: &str) -> Option<(Vec<u8>, &str)> {
        let mut out = b"prefix".to_vec();
        let r = transcode_row(&mut out, STAMP, line.as_bytes(), UP);
        match r {
            Some((a, b)) => Some((out, &line[a..b])),
            None => {
                assert_eq!(out, b"prefix", "a refused line leaves the buffer as it was");
                None
            }
        }
    }

    /// A token for the generator: numbers of every width (with the edges of `u32` and `u64`),
    /// leading zeros, signs, letters, commas and quotes.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (0u64..10).prop_map(|v| v.to_string()),
            4 => any::<u32>().prop_map(|v| v.to_string()),
            3 => any::<u64>().prop_map(|v| v.to_string()),
            1 => (4_294_967_290u64..4_294_967_300).prop_map(|v| v.to_string()),
            1 => (0u64..10).prop_map(|v| (u64::MAX - v).to_string()),
            1 => Just("18446744073709551616".to_owned()),
            1 => Just("99999999999999999999".to_owned()),
            1 => "0[0-9]{1,3}",
            1 => "[-+][0-9]{1,3}",
            1 => "[a-z,\"0-9]{1,4}",
        ]
    }

    /// Separators: mostly one space, sometimes several, a tab, or a carriage return.
    fn sep() -> impl Strategy<Value = &'static str> {
        prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("\t"), 1 => Just(" \r")]
    }

    proptest! {
        /// Whatever the line, the fast path either refuses it or writes exactly the bytes of
        /// the slow path; and it never takes a line the slow path rejects.
        #[test]
        fn the_fast_path_writes_what_the_slow_path_writes(
            lead in "[ ]{0,4}",
            major in token(),
            minor in token(),
            name in "[a-z][a-z0-9!,\"-]{0,12}",
            rest in prop::collection::vec((sep(), token()), 0..24),
            trail in "[ ]{0,2}",
        ) {
            let mut line = format!("{lead}{major} {minor} {name}");
            for (s, t) in &rest {
                line.push_str(s);
                line.push_str(t);
            }
            line.push_str(&trail);
            let slow = slow(&line);
            if let Some((bytes, name_seen)) = fast(&line) {
                prop_assert_eq!(Some(&bytes), slow.as_ref(), "line {:?}", line);
                prop_assert_eq!(name_seen, name.as_str());
            }
        }

        /// Lines as the kernel prints them (`"%4d %7d %s %lu ..."`, 14, 18 or 20 tokens, more
        /// than 20 from a future kernel) always take the fast path.
        #[test]
        fn kernel_lines_take_the_fast_path(
            major: u32,
            minor: u32,
            name in "[a-z][a-z0-9!-]{0,15}",
            wide in any::<[u64; 20]>(),
            narrow in any::<[u32; 20]>(),
            small in any::<[u8; 20]>(),
            count in prop_oneof![Just(14usize), Just(18), Just(20), Just(23)],
        ) {
            let mut line = format!("{major:4} {minor:7} {name}");
            for k in 3..count {
                let v = if U32_TOKENS & (1 << k.min(19)) != 0 {
                    u64::from(narrow[k % 20])
                } else if small[k % 20] % 2 == 0 {
                    u64::from(small[k % 20] % 10)
                } else {
                    wide[k % 20]
                };
                line.push_str(&format!(" {v}"));
            }
            let slow = slow(&line);
            prop_assert!(slow.is_some());
            let got = fast(&line);
            prop_assert!(got.is_some(), "refused {:?}", line);
            prop_assert_eq!(got.map(|(b, _)| b), slow);
        }
    }

    #[test]
    fn the_fast_path_refuses_what_it_cannot_copy() {
        // A name that needs quoting, a leading zero, a millisecond field past u32, an old
        // partition line, a blank line, a tab: the slow path decides.
        for line in [
            "8 0 a,b 1 2 3 4 5 6 7 8 9 10 11",
            "8 0 sda 01 2 3 4 5 6 7 8 9 10 11",
            "8 0 sda 1 2 3 4294967296 5 6 7 8 9 10 11",
            "3 1 hda1 35486 38030 38030 38030",
            "",
            "8 0 sda 1 2 3 4 5 6 7 8 9 10\t11",
        ] {
            assert_eq!(fast(line), None, "{line:?}");
        }
        // The widest values fit.
        let line = "8 0 sda 18446744073709551615 2 3 4294967295 5 6 7 8 9 10 11";
        assert_eq!(fast(line).map(|(b, _)| b), slow(line));
    }

    #[test]
    fn file_names_follow_the_lab_report() {
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
    fn the_header_starts_with_the_lab_report_header() {
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
