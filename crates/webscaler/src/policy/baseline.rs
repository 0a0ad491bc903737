//! A seasonal baseline learnt from earlier days: the lab report's "prefixed baseline", the
//! proactive half of its improvements. Pure: it learns from rate segments in civil time
//! (reading history files is [`crate::history`]'s job) and answers what rate to expect.
//!
//! - The history is cut into **minutes** (the mean rate of each minute, when at least half
//!   of it is covered) and the minutes into **slots** of [`SLOT_MINUTES`] (10 minutes) of
//!   each day; a slot's value on one day is its **busiest minute** (when at least half its
//!   minutes are covered): the level a floor has to meet to spare the reactive policy the
//!   slot's peaks, not only its mean.
//! - A slot's expected value is the **median** over the days of the history: one anomalous
//!   day (a flash crowd, an outage) among three or more normal ones moves it little.
//! - **By day of week** when every day of the week is covered at least twice (two weeks of
//!   history), each (weekday, slot) its own median, else **by time of day** over all days
//!   (a (weekday, slot) seen fewer than twice falls back to the time of day).
//! - **Less than a day** of history (1,440 covered minutes) learns nothing.
//!
//! The default policy uses [`Baseline::peak`] over `[now, now + lead]` as a floor (never to
//! scale down): see [`super::Floor`] and docs/webscaler-policy.md.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Minutes per slot.
pub const SLOT_MINUTES: u32 = 10;
const SLOTS_PER_DAY: usize = (24 * 60 / SLOT_MINUTES) as usize;
/// Covered minutes that make a day of history.
const DAY_MINUTES: usize = 24 * 60;

/// The civil time a baseline's slots are in: the zone of `run`'s CSV dates (local time, or
/// UTC with `--utc`), UTC in a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Coordinated universal time.
    Utc,
    /// The machine's local time zone.
    Local,
}

impl Zone {
    /// The zone of a CSV date format (`run`'s local dates, or UTC with `--utc`).
    pub fn of(format: common::time::TimeFormat) -> Zone {
        match format {
            common::time::TimeFormat::Utc => Zone::Utc,
            common::time::TimeFormat::Local => Zone::Local,
        }
    }

    /// `t` as a date and time of day in this zone.
    pub fn civil(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Utc => t.naive_utc(),
            Zone::Local => t.with_timezone(&Local).naive_local(),
        }
    }
}

/// A constant rate over a stretch of civil time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    /// Requests per second.
    pub rate: f64,
}

/// Why a history teaches nothing.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "the history covers {minutes} minutes ({:.2} days); a baseline needs at least a day",
    *minutes as f64 / DAY_MINUTES as f64
)]
pub struct TooShort {
    /// Minutes covered.
    pub minutes: usize,
}

/// The expected rate by slot (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// By time of day: the median of the days' slot values.
    daily: Vec<Option<f64>>,
    /// By (weekday from Monday, slot), when the history covers every weekday twice.
    weekly: Option<Vec<Option<f64>>>,
    /// Days with at least one slot value.
    days: usize,
    first: NaiveDate,
    last: NaiveDate,
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn minute_index(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(60)
}

fn slot_of(t: NaiveDateTime) -> usize {
    ((t.hour() * 60 + t.minute()) / SLOT_MINUTES) as usize
}

impl Baseline {
    /// Learns from `segments` (in any order; overlapping ones are averaged).
    pub fn learn(segments: impl IntoIterator<Item = Segment>) -> Result<Baseline, TooShort> {
        // Rate × seconds and seconds covered, per minute.
        let mut minutes: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for seg in segments {
            if !(seg.rate.is_finite() && seg.rate >= 0.0) || seg.end <= seg.start {
                continue;
            }
            // A segment longer than a year is cut to its last year (memory stays bounded).
            let start = seg.start.max(seg.end - chrono::Duration::days(366));
            let (start, end) = (start.and_utc(), seg.end.and_utc());
            let mut m = minute_index(start.naive_utc());
            let last = minute_index(seg.end - chrono::Duration::nanoseconds(1));
            while m <= last {
                let from = start.max(DateTime::from_timestamp(m * 60, 0).unwrap_or(start));
                let to = end.min(DateTime::from_timestamp((m + 1) * 60, 0).unwrap_or(end));
                let secs = (to - from).as_seconds_f64();
                if secs > 0.0 {
                    let e = minutes.entry(m).or_insert((0.0, 0.0));
                    e.0 += seg.rate * secs;
                    e.1 += secs;
                }
                m += 1;
            }
        }
        let covered: Vec<(NaiveDateTime, f64)> = minutes
            .into_iter()
            .filter(|(_, (_, secs))| *secs >= 30.0)
            .filter_map(|(m, (sum, secs))| {
                DateTime::from_timestamp(m * 60, 0).map(|t| (t.naive_utc(), sum / secs))
            })
            .collect();
        if covered.len() < DAY_MINUTES {
            return Err(TooShort {
                minutes: covered.len(),
            });
        }
        // Per (date, slot): the busiest minute and how many minutes were seen.
        let mut slots: BTreeMap<(NaiveDate, usize), (f64, u32)> = BTreeMap::new();
        for (t, rate) in covered {
            let e = slots.entry((t.date(), slot_of(t))).or_insert((0.0, 0));
            e.0 = e.0.max(rate);
            e.1 += 1;
        }
        let values: Vec<(NaiveDate, usize, f64)> = slots
            .into_iter()
            .filter(|(_, (_, n))| *n * 2 >= SLOT_MINUTES)
            .map(|((d, s), (v, _))| (d, s, v))
            .collect();
        let mut by_slot: Vec<Vec<f64>> = vec![Vec::new(); SLOTS_PER_DAY];
        let mut by_week: Vec<Vec<f64>> = vec![Vec::new(); 7 * SLOTS_PER_DAY];
        let mut dates: Vec<NaiveDate> = Vec::new();
        for &(d, s, v) in &values {
            by_slot[s].push(v);
            by_week[d.weekday().num_days_from_monday() as usize * SLOTS_PER_DAY + s].push(v);
            if dates.last() != Some(&d) {
                dates.push(d);
            }
        }
        dates.sort();
        dates.dedup();
        let mut per_weekday = [0usize; 7];
        for d in &dates {
            per_weekday[d.weekday().num_days_from_monday() as usize] += 1;
        }
        let weekly = per_weekday.iter().all(|&n| n >= 2).then(|| {
            by_week
                .iter_mut()
                .map(|v| if v.len() >= 2 { median(v) } else { None })
                .collect()
        });
        let daily = by_slot.iter_mut().map(|v| median(v)).collect();
        Ok(Baseline {
            daily,
            weekly,
            days: dates.len(),
            first: dates.first().copied().unwrap_or_default(),
            last: dates.last().copied().unwrap_or_default(),
        })
    }

    /// The expected rate of the slot holding `t`, if the history has it.
    pub fn at(&self, t: NaiveDateTime) -> Option<f64> {
        let slot = slot_of(t);
        let weekly = self
            .weekly
            .as_ref()
            .and_then(|w| w[t.weekday().num_days_from_monday() as usize * SLOTS_PER_DAY + slot]);
        weekly.or(self.daily[slot])
    }

    /// The highest expected rate of the slots that `[from, to]` touches.
    pub fn peak(&self, from: NaiveDateTime, to: NaiveDateTime) -> Option<f64> {
        let step = chrono::Duration::minutes(i64::from(SLOT_MINUTES));
        let mut t = from;
        let mut best: Option<f64> = None;
        loop {
            if let Some(v) = self.at(t) {
                best = Some(best.map_or(v, |b| b.max(v)));
            }
            if t >= to || slot_of(t) == slot_of(to) && t.date() == to.date() {
                break;
            }
            t = (t + step).min(to);
        }
        best
    }

    /// Whether the slots are by day of week (else by time of day).
    pub fn by_weekday(&self) -> bool {
        self.weekly.is_some()
    }

    /// Days of history.
    pub fn days(&self) -> usize {
        self.days
    }
}

impl fmt::Display for Baseline {
    /// `4 days (2024-01-01 to 2024-01-04), by time of day, 10-minute slots`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} days ({} to {}), by {}, {}-minute slots",
            self.days,
            self.first,
            self.last,
            if self.by_weekday() {
                "day of week"
            } else {
                "time of day"
            },
            SLOT_MINUTES
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
        // 2024-01-01 is a Monday.
        NaiveDate::from_ymd_opt(2024, 1, 1 + day)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    /// `days` days of a rate given per minute by `f(day, minute of day)`.
    fn days(n: u32, f: impl Fn(u32, u32) -> f64) -> Vec<Segment> {
        let mut out = Vec::new();
        for d in 0..n {
            for m in 0..1440 {
                let start = at(d, 0, 0) + chrono::Duration::minutes(i64::from(m));
                out.push(Segment {
                    start,
                    end: start + chrono::Duration::minutes(1),
                    rate: f(d, m),
                });
            }
        }
        out
    }

    #[test]
    fn less_than_a_day_learns_nothing() {
        let mut segs = days(1, |_, _| 10.0);
        segs.pop();
        assert_eq!(Baseline::learn(segs).unwrap_err().minutes, 1439);
        assert!(Baseline::learn(days(1, |_, _| 10.0)).is_ok());
        let e = Baseline::learn(Vec::new()).unwrap_err();
        assert!(e.to_string().contains("at least a day"), "{e}");
    }

    #[test]
    fn a_slot_is_the_median_over_days_of_its_busiest_minute() {
        // Four days: 50 req/s, with one busy minute of 60 in the 10:00 slot each day; day 2
        // is anomalous, 500 req/s all afternoon.
        let b = Baseline::learn(days(4, |d, m| {
            if m == 603 {
                60.0
            } else if d == 2 && (720..1080).contains(&m) {
                500.0
            } else {
                50.0
            }
        }))
        .unwrap();
        assert_eq!(b.days(), 4);
        assert!(!b.by_weekday());
        assert_eq!(b.at(at(9, 10, 5)), Some(60.0));
        assert_eq!(b.at(at(9, 9, 59)), Some(50.0));
        // The afternoon slots: median of 50, 50, 50, 500 = 50.
        assert_eq!(b.at(at(9, 14, 0)), Some(50.0));
        // The peak over a span takes every slot it touches.
        assert_eq!(b.peak(at(9, 9, 55), at(9, 10, 0)), Some(60.0));
        assert_eq!(b.peak(at(9, 9, 45), at(9, 9, 59)), Some(50.0));
        assert_eq!(b.peak(at(9, 23, 55), at(10, 0, 2)), Some(50.0));
        assert!(
            b.to_string()
                .starts_with("4 days (2024-01-01 to 2024-01-04), by time of day")
        );
    }

    #[test]
    fn a_segment_of_years_is_cut_to_its_last_year() {
        let start = at(0, 0, 0);
        let b = Baseline::learn([Segment {
            start,
            end: start + chrono::Duration::days(3650),
            rate: 5.0,
        }])
        .unwrap();
        assert_eq!(b.days(), 366);
        assert_eq!(b.at(at(3, 7, 0)), Some(5.0));
    }

    #[test]
    fn two_weeks_give_slots_by_day_of_week() {
        // Weekdays 100 req/s, weekends 20, for 14 days.
        let weekend = |d: u32| d % 7 >= 5;
        let b = Baseline::learn(days(14, |d, _| if weekend(d) { 20.0 } else { 100.0 })).unwrap();
        assert!(b.by_weekday());
        assert_eq!(b.at(at(14, 12, 0)), Some(100.0)); // a Monday
        assert_eq!(b.at(at(19, 12, 0)), Some(20.0)); // a Saturday
        // One week is not enough: by time of day, the median of 5 × 100 and 2 × 20.
        let b = Baseline::learn(days(7, |d, _| if weekend(d) { 20.0 } else { 100.0 })).unwrap();
        assert!(!b.by_weekday());
        assert_eq!(b.at(at(19, 12, 0)), Some(100.0));
    }

    #[test]
    fn partly_covered_minutes_and_slots_are_left_out() {
        // A day at 10 req/s, and a second day with only 20 s of each minute at 1000 req/s:
        // those minutes are not covered, so the second day changes nothing.
        let mut segs = days(1, |_, _| 10.0);
        for m in 0..1440 {
            let start = at(1, 0, 0) + chrono::Duration::minutes(m);
            segs.push(Segment {
                start,
                end: start + chrono::Duration::seconds(20),
                rate: 1000.0,
            });
        }
        let b = Baseline::learn(segs).unwrap();
        assert_eq!(b.days(), 1);
        assert_eq!(b.at(at(5, 3, 0)), Some(10.0));
        // Segments spanning minutes are cut: 90 s at 20 from 11:59, then 30 s at 0, on a
        // day at 0: the 11:59 minute is 20, the 12:00 minute averages 10.
        let t = at(0, 11, 59);
        let mut segs = days(1, |_, _| 0.0);
        segs.retain(|s| s.start < t || s.start > t + chrono::Duration::minutes(1));
        segs.push(Segment {
            start: t,
            end: t + chrono::Duration::seconds(90),
            rate: 20.0,
        });
        segs.push(Segment {
            start: t + chrono::Duration::seconds(90),
            end: t + chrono::Duration::seconds(120),
            rate: 0.0,
        });
        let b = Baseline::learn(segs).unwrap();
        assert_eq!(b.at(at(3, 11, 55)), Some(20.0));
        assert_eq!(b.at(at(3, 12, 0)), Some(10.0));
        assert_eq!(b.at(at(3, 12, 10)), Some(0.0));
    }
}
