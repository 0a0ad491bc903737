//! The two clocks a sample carries: wall time for the `datetime` column and CLOCK_BOOTTIME for
//! the `uptime` column.
//!
//! The timestamp is formatted by hand into a fixed buffer, byte for byte as
//! [`common::TimeFormat`] formats it, because the sampler does it on every tick and chrono's
//! formatter parses its format string each time.

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike, Utc};
use common::TimeFormat;

/// CLOCK_BOOTTIME now, as (seconds, nanoseconds): monotonic, counts suspend, and is the
/// clock `/proc/uptime` reads.
///
/// Through glibc (which uses the vDSO, and falls back cleanly where there is none, as under
/// valgrind) rather than rustix's own vDSO parser.
pub fn boottime() -> (u64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists since Linux 2.6.39,
    // and on failure `ts` stays zero.
    unsafe {
        libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts);
    }
    (
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Longest timestamp: `2014-12-14T13:27:07.878920Z`.
const STAMP_LEN: usize = 27;

/// Formats timestamps like [`TimeFormat`] without allocating.
#[derive(Debug, Clone)]
pub struct Stamper {
    format: TimeFormat,
    buf: [u8; STAMP_LEN],
    /// The Unix second whose date and time are in `buf` (all but the microseconds), and the
    /// stamp's length: within one second only the microseconds change, because time zone
    /// offsets are whole seconds and change only at a second's start.
    second: Option<(i64, usize)>,
}

impl Stamper {
    /// A formatter for `format`.
    pub fn new(format: TimeFormat) -> Self {
        Stamper {
            format,
            buf: [0; STAMP_LEN],
            second: None,
        }
    }

    /// Formats `t`; the result is valid until the next call.
    pub fn format(&mut self, t: DateTime<Utc>) -> &[u8] {
        let secs = t.timestamp();
        if let Some((second, len)) = self.second
            && second == secs
        {
            // Same second as the last stamp (and that stamp was formatted here, not by
            // chrono): only the microseconds change. A leap second shows as 59.999999.
            put(
                &mut self.buf[20..26],
                (t.timestamp_subsec_nanos() / 1000).min(999_999),
            );
            return &self.buf[..len];
        }
        self.second = None;
        let (naive, zulu): (NaiveDateTime, bool) = match self.format {
            TimeFormat::Local => (t.with_timezone(&Local).naive_local(), false),
            TimeFormat::Utc => (t.naive_utc(), true),
        };
        let year = naive.year();
        if !(0..=9999).contains(&year) {
            // Out of the four-digit range: let chrono do it (never happens in practice).
            let s = self.format.format(t);
            let n = s.len().min(STAMP_LEN);
            self.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
            return &self.buf[..n];
        }
        let b = &mut self.buf;
        put(&mut b[0..4], year as u32);
        b[4] = b'-';
        put(&mut b[5..7], naive.month());
        b[7] = b'-';
        put(&mut b[8..10], naive.day());
        b[10] = b'T';
        put(&mut b[11..13], naive.hour());
        b[13] = b':';
        put(&mut b[14..16], naive.minute());
        b[16] = b':';
        put(&mut b[17..19], naive.second());
        b[19] = b'.';
        // A leap second shows as nanoseconds >= 1e9; chrono prints 60 then, we keep 59.999999.
        put(&mut b[20..26], (naive.nanosecond() / 1000).min(999_999));
        let len = if zulu {
            b[26] = b'Z';
            27
        } else {
            26
        };
        self.second = Some((secs, len));
        &self.buf[..len]
    }

    /// Formats the current time.
    pub fn now(&mut self) -> &[u8] {
        self.format(Utc::now())
    }
}

/// Writes `v` as exactly `out.len()` decimal digits, zero-padded.
fn put(out: &mut [u8], mut v: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Byte for byte the same as `common::TimeFormat`, in both formats.
        #[test]
        fn matches_common_time_format(secs in 0i64..253_402_300_799, micros in 0u32..1_000_000) {
            let t = DateTime::from_timestamp(secs, micros * 1000).unwrap();
            for f in [TimeFormat::Local, TimeFormat::Utc] {
                let mut s = Stamper::new(f);
                prop_assert_eq!(std::str::from_utf8(s.format(t)).unwrap(), f.format(t));
            }
        }
    }

    proptest! {
        /// One formatter over a run of instants, some in the same second and some not (the
        /// date and time are reused within a second), gives what `common::TimeFormat` gives.
        #[test]
        fn a_reused_formatter_matches_common_time_format(
            start in 0i64..253_402_300_000,
            steps in prop::collection::vec((0u32..1_000_000, 0i64..3), 1..40),
        ) {
            for f in [TimeFormat::Local, TimeFormat::Utc] {
                let mut s = Stamper::new(f);
                let mut secs = start;
                for &(micros, ds) in &steps {
                    secs += ds;
                    let t = DateTime::from_timestamp(secs, micros * 1000).unwrap();
                    prop_assert_eq!(std::str::from_utf8(s.format(t)).unwrap(), f.format(t));
                }
            }
        }
    }

    #[test]
    fn known_instant() {
        let t = DateTime::parse_from_rfc3339("2014-12-14T13:27:07.878920Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Stamper::new(TimeFormat::Utc).format(t),
            b"2014-12-14T13:27:07.878920Z"
        );
    }

    #[test]
    fn boottime_is_monotonic_and_close_to_proc_uptime() {
        let (a, an) = boottime();
        let up: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let (b, bn) = boottime();
        assert!((b, bn) >= (a, an));
        let mine = a as f64 + f64::from(an) / 1e9;
        assert!(
            (mine - up).abs() < 1.0,
            "boottime {mine} vs /proc/uptime {up}"
        );
    }
}
