//! Parsing one line of `/proc/diskstats` (pure; no I/O).
//!
//! The kernel prints `major minor name` and then up to 17 counters
//! (`Documentation/admin-guide/iostats.rst`, `block/genhd.c` `diskstats_show`):
//!
//! - 14 tokens (kernels before 4.18): the 11 classic fields;
//! - 18 tokens (4.18+): plus discards completed, merged, sectors and ms;
//! - 20 tokens (5.5+): plus flush requests and ms;
//! - 7 tokens (partitions on 2.6.0 to 2.6.24): reads, sectors read, writes, sectors written.
//!
//! As in sysstat, 14 to 17 tokens give the classic fields, 18 or 19 add the discard fields and
//! 20 or more add the flush fields (more tokens, from a future kernel, are ignored). A field the
//! line does not have is 0. The `%u` millisecond fields are kept as `u32`, because the kernel
//! truncates them to 32 bits and they wrap; the `%lu` counters are `u64`.

/// The counters of one device, named as in sysstat (`struct io_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Field 1: reads completed successfully.
    pub rd_ios: u64,
    /// Field 2: reads merged.
    pub rd_merges: u64,
    /// Field 3: sectors read (512 bytes each).
    pub rd_sectors: u64,
    /// Field 4: milliseconds spent reading (wraps at 2^32).
    pub rd_ticks: u32,
    /// Field 5: writes completed.
    pub wr_ios: u64,
    /// Field 6: writes merged.
    pub wr_merges: u64,
    /// Field 7: sectors written.
    pub wr_sectors: u64,
    /// Field 8: milliseconds spent writing (wraps at 2^32).
    pub wr_ticks: u32,
    /// Field 9: I/Os currently in progress (the only field that is not cumulative).
    pub ios_pgr: u32,
    /// Field 10: milliseconds spent doing I/O (wraps at 2^32).
    pub tot_ticks: u32,
    /// Field 11: weighted milliseconds spent doing I/O (wraps at 2^32).
    pub rq_ticks: u32,
    /// Field 12 (4.18+): discards completed.
    pub dc_ios: u64,
    /// Field 13 (4.18+): discards merged.
    pub dc_merges: u64,
    /// Field 14 (4.18+): sectors discarded.
    pub dc_sectors: u64,
    /// Field 15 (4.18+): milliseconds spent discarding (wraps at 2^32).
    pub dc_ticks: u32,
    /// Field 16 (5.5+): flush requests completed.
    pub fl_ios: u64,
    /// Field 17 (5.5+): milliseconds spent flushing (wraps at 2^32).
    pub fl_ticks: u32,
}

impl Counters {
    /// The 17 counters in the kernel's (and the CSV's) order, widened to `u64`.
    pub fn fields(&self) -> [u64; 17] {
        [
            self.rd_ios,
            self.rd_merges,
            self.rd_sectors,
            u64::from(self.rd_ticks),
            self.wr_ios,
            self.wr_merges,
            self.wr_sectors,
            u64::from(self.wr_ticks),
            u64::from(self.ios_pgr),
            u64::from(self.tot_ticks),
            u64::from(self.rq_ticks),
            self.dc_ios,
            self.dc_merges,
            self.dc_sectors,
            u64::from(self.dc_ticks),
            self.fl_ios,
            u64::from(self.fl_ticks),
        ]
    }
}

/// Which of the kernel's line formats a line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 7 tokens: a partition line of kernels 2.6.0 to 2.6.24.
    Legacy7,
    /// 14 to 17 tokens: the classic 11 fields.
    Classic,
    /// 18 or 19 tokens: with the discard fields (4.18+).
    Discard,
    /// 20 or more tokens: with the flush fields (5.5+).
    Flush,
}

/// One parsed line: the device and its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLine<'a> {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Device name as the kernel prints it (`vda`, `nvme0n1p1`, `dm-0`).
    pub name: &'a str,
    /// The counters (fields the line does not have are 0).
    pub counters: Counters,
    /// The line's format.
    pub layout: Layout,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line does not have 7, or 14 or more, tokens.
    #[error("expected 7 or at least 14 fields, found {0}")]
    TokenCount(usize),
    /// A numeric token is not a number of the expected width.
    #[error("field {index} ({what}) is not a valid number: {token:?}")]
    Number {
        /// 1-based token index in the line.
        index: usize,
        /// What the field is.
        what: &'static str,
        token: String,
    },
}

/// The most tokens a line is split into; later ones are ignored.
const MAX_TOKENS: usize = 20;

/// Names of the 17 counter fields, for error messages.
const FIELD_NAMES: [&str; 17] = [
    "reads completed",
    "reads merged",
    "sectors read",
    "ms reading",
    "writes completed",
    "writes merged",
    "sectors written",
    "ms writing",
    "I/Os in progress",
    "ms doing I/O",
    "weighted ms doing I/O",
    "discards completed",
    "discards merged",
    "sectors discarded",
    "ms discarding",
    "flushes completed",
    "ms flushing",
];

/// Names of the four counters of a 7-token line.
const LEGACY_NAMES: [&str; 4] = [
    "reads issued",
    "sectors read",
    "writes issued",
    "sectors written",
];

/// The tokens of a line, each with its value if it is a decimal number that fits in `u64`.
/// Tokens are separated by whitespace (any byte up to the space character).
struct Tokens<'a> {
    line: &'a str,
    /// Total number of tokens (may exceed [`MAX_TOKENS`]).
    count: usize,
    spans: [(usize, usize); MAX_TOKENS],
    values: [u64; MAX_TOKENS],
    /// Bit `i` set: token `i` is a number.
    numeric: u32,
}

/// Token separators: ASCII whitespace and the other control bytes, which never occur inside
/// a field of `/proc/diskstats`.
fn is_sep(b: u8) -> bool {
    b <= b' '
}

/// A decimal number without sign, or `None`. Up to 19 digits cannot overflow `u64`, so the
/// common case is a plain multiply-add loop; 20 digits take the checked path.
fn decimal(tok: &[u8]) -> Option<u64> {
    if tok.len() < 20 {
        let mut v: u64 = 0;
        let mut ok = !tok.is_empty();
        for &c in tok {
            let d = c.wrapping_sub(b'0');
            ok &= d <= 9;
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        }
        return ok.then_some(v);
    }
    let mut v: u64 = 0;
    for &c in tok {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

impl<'a> Tokens<'a> {
    /// Splits on whitespace and parses the numbers, in one pass over the bytes.
    fn scan(line: &'a str) -> Tokens<'a> {
        let b = line.as_bytes();
        let mut t = Tokens {
            line,
            count: 0,
            spans: [(0, 0); MAX_TOKENS],
            values: [0; MAX_TOKENS],
            numeric: 0,
        };
        let mut i = 0;
        while i < b.len() {
            if is_sep(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            // Digits are accumulated as they are passed; `ok` turns false at any other byte.
            let mut v: u64 = 0;
            let mut ok = true;
            while i < b.len() && !is_sep(b[i]) {
                let d = b[i].wrapping_sub(b'0');
                ok &= d <= 9;
                v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            let n = t.count;
            if n < MAX_TOKENS {
                t.spans[n] = (start, i);
                // 20 digits or more may have overflowed: checked again, slowly.
                let value = if i - start < 20 {
                    ok.then_some(v)
                } else {
                    decimal(&b[start..i])
                };
                if let Some(v) = value {
                    t.values[n] = v;
                    t.numeric |= 1 << n;
                }
            }
            t.count += 1;
        }
        t
    }

    fn text(&self, i: usize) -> &'a str {
        let (a, b) = self.spans[i];
        self.line.get(a..b).unwrap_or("")
    }

    fn bad(&self, i: usize, what: &'static str) -> ParseError {
        ParseError::Number {
            index: i + 1,
            what,
            token: self.text(i).to_owned(),
        }
    }

    fn u64_at(&self, i: usize, what: &'static str) -> Result<u64, ParseError> {
        if self.numeric & (1 << i) != 0 {
            Ok(self.values[i])
        } else {
            Err(self.bad(i, what))
        }
    }

    fn u32_at(&self, i: usize, what: &'static str) -> Result<u32, ParseError> {
        self.u64_at(i, what)
            .and_then(|v| u32::try_from(v).map_err(|_| self.bad(i, what)))
    }
}

/// The device name of a line (its third token), without parsing the rest. Cheap, so that a
/// sampler can skip the lines of devices it does not record.
pub fn line_name(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let mut i = 0;
    for k in 0..3 {
        while i < b.len() && is_sep(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !is_sep(b[i]) {
            i += 1;
        }
        if start == i {
            return None;
        }
        if k == 2 {
            // Separators are ASCII, so these are char boundaries.
            return line.get(start..i);
        }
    }
    None
}

/// Parses one line of `/proc/diskstats`.
pub fn parse_line(line: &str) -> Result<DiskLine<'_>, ParseError> {
    let t = Tokens::scan(line);
    let layout = match t.count {
        7 => Layout::Legacy7,
        14..=17 => Layout::Classic,
        18 | 19 => Layout::Discard,
        n if n >= 20 => Layout::Flush,
        n => return Err(ParseError::TokenCount(n)),
    };
    let major = t.u32_at(0, "major number")?;
    let minor = t.u32_at(1, "minor number")?;
    let name = t.text(2);
    // Counter field k (1-based, as in iostats.rst) is token k + 2.
    let f = |k: usize| t.u64_at(k + 2, FIELD_NAMES[k - 1]);
    let ms = |k: usize| t.u32_at(k + 2, FIELD_NAMES[k - 1]);
    let mut c = Counters::default();
    if layout == Layout::Legacy7 {
        // reads, sectors read, writes, sectors written.
        c.rd_ios = t.u64_at(3, LEGACY_NAMES[0])?;
        c.rd_sectors = t.u64_at(4, LEGACY_NAMES[1])?;
        c.wr_ios = t.u64_at(5, LEGACY_NAMES[2])?;
        c.wr_sectors = t.u64_at(6, LEGACY_NAMES[3])?;
    } else {
        c.rd_ios = f(1)?;
        c.rd_merges = f(2)?;
        c.rd_sectors = f(3)?;
        c.rd_ticks = ms(4)?;
        c.wr_ios = f(5)?;
        c.wr_merges = f(6)?;
        c.wr_sectors = f(7)?;
        c.wr_ticks = ms(8)?;
        c.ios_pgr = ms(9)?;
        c.tot_ticks = ms(10)?;
        c.rq_ticks = ms(11)?;
        if matches!(layout, Layout::Discard | Layout::Flush) {
            c.dc_ios = f(12)?;
            c.dc_merges = f(13)?;
            c.dc_sectors = f(14)?;
            c.dc_ticks = ms(15)?;
        }
        if layout == Layout::Flush {
            c.fl_ios = f(16)?;
            c.fl_ticks = ms(17)?;
        }
    }
    Ok(DiskLine {
        major,
        minor,
        name,
        counters: c,
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line as `diskstats_show` prints it: `"%4d %7d %pg %lu %lu %lu %u ..."`.
    fn kernel_line(major: u32, minor: u32, name: &str, c: &Counters) -> String {
        let numbers: Vec<String> = c.fields().iter().map(u64::to_string).collect();
        format!("{major:4} {minor:7} {name} {}", numbers.join(" "))
    }

    fn counters() -> impl Strategy<Value = Counters> {
        (any::<[u64; 10]>(), any::<[u32; 7]>()).prop_map(|(l, u)| Counters {
            rd_ios: l[0],
            rd_merges: l[1],
            rd_sectors: l[2],
            rd_ticks: u[0],
            wr_ios: l[3],
            wr_merges: l[4],
            wr_sectors: l[5],
            wr_ticks: u[1],
            ios_pgr: u[2],
            tot_ticks: u[3],
            rq_ticks: u[4],
            dc_ios: l[6],
            dc_merges: l[7],
            dc_sectors: l[8],
            dc_ticks: u[5],
            fl_ios: l[9],
            fl_ticks: u[6],
        })
    }

    proptest! {
        /// Whatever the kernel prints, in any of its three lengths, reads back exactly; the
        /// fields a shorter line lacks are 0.
        #[test]
        fn kernel_lines_round_trip(major: u32, minor: u32, name in "[a-z][a-z0-9!-]{0,31}", c in counters()) {
            let line = kernel_line(major, minor, &name, &c);
            let d = parse_line(&line).unwrap();
            prop_assert_eq!((d.major, d.minor, d.name, d.layout), (major, minor, name.as_str(), Layout::Flush));
            prop_assert_eq!(d.counters, c);

            let toks: Vec<&str> = line.split_whitespace().collect();
            let l18 = toks[..18].join(" ");
            let d18 = parse_line(&l18).unwrap();
            prop_assert_eq!(d18.layout, Layout::Discard);
            prop_assert_eq!(d18.counters, Counters { fl_ios: 0, fl_ticks: 0, ..c });
            let l14 = toks[..14].join(" ");
            let d14 = parse_line(&l14).unwrap();
            prop_assert_eq!(d14.layout, Layout::Classic);
            prop_assert_eq!(
                d14.counters,
                Counters { dc_ios: 0, dc_merges: 0, dc_sectors: 0, dc_ticks: 0, fl_ios: 0, fl_ticks: 0, ..c }
            );
            prop_assert_eq!(line_name(&line), Some(name.as_str()));
        }

        /// Garbage never panics; it parses or is an error.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_line(&s);
            let _ = line_name(&s);
        }
    }

    #[test]
    fn numbers_are_parsed_strictly() {
        let t = Tokens::scan(
            "0 18446744073709551615 18446744073709551616 -1 +1 1a 99999999999999999999 \
             0000000000000000000000012 1844674407370955161",
        );
        assert_eq!(t.count, 9);
        assert_eq!(t.u64_at(0, "x"), Ok(0));
        assert_eq!(t.u64_at(1, "x"), Ok(u64::MAX));
        for i in 2..7 {
            assert!(t.u64_at(i, "x").is_err(), "token {i}");
        }
        assert_eq!(t.u64_at(7, "x"), Ok(12));
        assert_eq!(t.u64_at(8, "x"), Ok(1_844_674_407_370_955_161));
        assert_eq!(t.text(5), "1a");
    }

    #[test]
    fn the_name_is_the_third_token() {
        assert_eq!(line_name(" 254       0 vda 1 2 3"), Some("vda"));
        assert_eq!(line_name("254 0"), None);
    }

    #[test]
    fn a_millisecond_field_above_u32_is_rejected() {
        let line = "8 0 sda 1 2 3 4294967296 5 6 7 8 9 10 11";
        let err = parse_line(line).unwrap_err();
        assert_eq!(
            err,
            ParseError::Number {
                index: 7,
                what: "ms reading",
                token: "4294967296".into()
            }
        );
    }
}
