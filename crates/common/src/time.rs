//! Timestamps as the tools write them, and as they read them back.
//!
//! The default is the lab report's local ISO-8601 with microseconds and no offset,
//! `2014-12-14T14:27:07.878920`; [`TimeFormat::Utc`] gives RFC 3339 in UTC,
//! `2014-12-14T13:27:07.878920Z`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// How a tool writes its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// Local time, ISO-8601 with microseconds and no offset (the lab report's format).
    #[default]
    Local,
    /// RFC 3339 in UTC with microseconds and a `Z`.
    Utc,
}

impl TimeFormat {
    /// `Utc` when `utc` is set, else `Local`: the meaning of the tools' `--utc` flag.
    pub fn from_utc_flag(utc: bool) -> Self {
        if utc {
            TimeFormat::Utc
        } else {
            TimeFormat::Local
        }
    }

    /// Formats the current time.
    pub fn now(self) -> String {
        self.format(Utc::now())
    }

    /// Formats an instant.
    pub fn format(self, t: DateTime<Utc>) -> String {
        match self {
            TimeFormat::Local => t
                .with_timezone(&Local)
                .format("%Y-%m-%dT%H:%M:%S%.6f")
                .to_string(),
            TimeFormat::Utc => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }
}

/// Parses a timestamp in any format the tools write (and the lab report's space-separated
/// `2014-09-28 15:49:58.808737`). Strings without an offset are read as local time.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}

/// Seconds since the Unix epoch, as a float, for charts and joins by time.
pub fn epoch_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// The longest wait, interval or run length any tool accepts: 366 days. Longer values are
/// typos (`--pause 1e19`), refused with a clear error rather than overflowing a clock.
pub const MAX_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);

/// A number of seconds typed by a user (`what` names the option in the error): finite, 0 or
/// more, and at most [`MAX_WAIT`].
pub fn seconds(what: &str, v: f64) -> Result<Duration, String> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{what} must be a number of seconds >= 0 (got {v})"));
    }
    match Duration::try_from_secs_f64(v) {
        Ok(d) if d <= MAX_WAIT => Ok(d),
        _ => Err(format!(
            "{what} must be at most {} seconds (366 days) (got {v})",
            MAX_WAIT.as_secs()
        )),
    }
}

/// `from + d`, or a time about a century after `from` when the sum cannot be represented:
/// a deadline that never comes, instead of the panic of `Instant + Duration`.
pub fn instant_after(from: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    from.checked_add(d.min(CENTURY))
        .or_else(|| from.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(from)
}

/// Parses a duration as users type it on command lines and in config files: a bare number of
/// seconds (`60`, `0.5`), or numbers with units `ms`, `s`, `m`, `h`, `d`, possibly combined
/// (`500ms`, `5s`, `1m30s`, `1h 5m`). For clap's `value_parser`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad = || format!("invalid duration `{s}` (examples: 60, 0.5, 500ms, 5s, 1m30s, 2h)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * factor;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Formats a duration compactly for messages: `250ms`, `5s`, `1m30s`, `2h0m5s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let ms = d.as_millis();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", format!("{s}.{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_seconds_are_bounded() {
        assert_eq!(seconds("--pause", 1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("--pause", 0.0), Ok(Duration::ZERO));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e19, 9.3e18, 4e7] {
            let e = seconds("--pause", bad).unwrap_err();
            assert!(e.starts_with("--pause must be"), "{e}");
        }
        let now = Instant::now();
        assert!(instant_after(now, Duration::MAX) > now + Duration::from_secs(1 << 30));
        assert_eq!(
            instant_after(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
    }

    #[test]
    fn local_format_matches_the_lab_report() {
        let t = Utc::now();
        let s = TimeFormat::Local.format(t);
        let re = regex_lite(&s);
        assert!(re, "{s}");
        // It reads back to the same microsecond.
        let back = parse_timestamp(&s).unwrap();
        assert_eq!(back.timestamp_micros(), t.timestamp_micros());
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff`, checked by hand to keep regex out of `common`.
    fn regex_lite(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 26
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'.',
                _ => c.is_ascii_digit(),
            })
    }

    #[test]
    fn utc_format_is_rfc3339() {
        let t = DateTime::parse_from_rfc3339("2014-12-14T14:27:07.878920+01:00").unwrap();
        let s = TimeFormat::Utc.format(t.with_timezone(&Utc));
        assert_eq!(s, "2014-12-14T13:27:07.878920Z");
        assert_eq!(parse_timestamp(&s).unwrap(), t);
    }

    #[test]
    fn parses_the_lab_report_webscaler_format() {
        let t = parse_timestamp("2014-09-28 15:49:58.808737").unwrap();
        let local = t.with_timezone(&Local);
        assert_eq!(
            local.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            "2014-09-28 15:49:58.808737"
        );
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn epoch_seconds_keeps_microseconds() {
        let t = DateTime::parse_from_rfc3339("1970-01-01T00:00:01.250000Z").unwrap();
        assert_eq!(epoch_seconds(t.with_timezone(&Utc)), 1.25);
    }

    #[test]
    fn durations_as_users_type_them() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("60"), Duration::from_secs(60));
        assert_eq!(d("0.5"), Duration::from_millis(500));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("5s"), Duration::from_secs(5));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1h 5m"), Duration::from_secs(3900));
        assert_eq!(d("1.5m"), Duration::from_secs(90));
        assert_eq!(d(" 300s "), Duration::from_secs(300));
        for bad in ["", "5x", "s", "-1", "1m-", "abc", "NaN"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7205)), "2h0m5s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
