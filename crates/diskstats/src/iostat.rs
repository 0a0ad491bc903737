//! The numbers `iostat -x` shows, computed from two samples of a device's counters (pure).
//!
//! The formulas are sysstat's (`iostat.c` `write_ext_stat` and `write_plain_ext_stat`,
//! `rd_stats.c` `compute_ext_disk_stats`), with two deliberate differences, both about the
//! millisecond fields, which the kernel truncates to 32 bits:
//!
//! - **Wrap.** sysstat subtracts them as `unsigned int`, so `r_await` and friends survive a
//!   wrap, but it shows `aqu-sz` and `%util` as 0 for an interval in which field 10 or 11
//!   wrapped. Here every millisecond delta is taken modulo 2^32 ([`tick_delta`]), so those
//!   intervals get their true value too. A decrease that is not a plausible wrap (the counter
//!   would have moved forward by 2^31 ms, about 24.8 days, or more) is a glitch of the
//!   lockless kernel counters and gives 0, as sysstat gives for any decrease.
//! - **Interval.** sysstat measures the interval in hundredths of a second from
//!   `/proc/uptime`; here it is the difference of the CSV's `uptime` column (CLOCK_BOOTTIME,
//!   the same clock, to the microsecond). Never wall time.
//!
//! A device that was removed and added again (its counters restarted) is detected with
//! sysstat's rule ([`is_reset`]) and measured against an all-zero previous sample, exactly
//! as iostat does.

use crate::parse::Counters;

/// The 22 columns of `iostat -x`, in its order.
pub const COLUMNS: [&str; 22] = [
    "r/s", "rkB/s", "rrqm/s", "%rrqm", "r_await", "rareq-sz", "w/s", "wkB/s", "wrqm/s", "%wrqm",
    "w_await", "wareq-sz", "d/s", "dkB/s", "drqm/s", "%drqm", "d_await", "dareq-sz", "f/s",
    "f_await", "aqu-sz", "%util",
];

/// One interval of one device, as `iostat -x` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExtStats {
    /// Reads completed per second.
    pub r_s: f64,
    /// Kilobytes read per second.
    pub rkb_s: f64,
    /// Read requests merged per second.
    pub rrqm_s: f64,
    /// Percentage of read requests merged.
    pub rrqm_pct: f64,
    /// Average time of a read, in ms (queue and service).
    pub r_await: f64,
    /// Average size of a read, in kB.
    pub rareq_sz: f64,
    /// Writes completed per second.
    pub w_s: f64,
    /// Kilobytes written per second.
    pub wkb_s: f64,
    /// Write requests merged per second.
    pub wrqm_s: f64,
    /// Percentage of write requests merged.
    pub wrqm_pct: f64,
    /// Average time of a write, in ms.
    pub w_await: f64,
    /// Average size of a write, in kB.
    pub wareq_sz: f64,
    /// Discards completed per second.
    pub d_s: f64,
    /// Kilobytes discarded per second.
    pub dkb_s: f64,
    /// Discard requests merged per second.
    pub drqm_s: f64,
    /// Percentage of discard requests merged.
    pub drqm_pct: f64,
    /// Average time of a discard, in ms.
    pub d_await: f64,
    /// Average size of a discard, in kB.
    pub dareq_sz: f64,
    /// Flush requests completed per second.
    pub f_s: f64,
    /// Average time of a flush, in ms.
    pub f_await: f64,
    /// Average queue length (weighted ms doing I/O per ms).
    pub aqu_sz: f64,
    /// Percentage of the interval the device was busy.
    pub util: f64,
}

impl ExtStats {
    /// The values in [`COLUMNS`] order.
    pub fn values(&self) -> [f64; 22] {
        [
            self.r_s,
            self.rkb_s,
            self.rrqm_s,
            self.rrqm_pct,
            self.r_await,
            self.rareq_sz,
            self.w_s,
            self.wkb_s,
            self.wrqm_s,
            self.wrqm_pct,
            self.w_await,
            self.wareq_sz,
            self.d_s,
            self.dkb_s,
            self.drqm_s,
            self.drqm_pct,
            self.d_await,
            self.dareq_sz,
            self.f_s,
            self.f_await,
            self.aqu_sz,
            self.util,
        ]
    }
}

/// Half the range of a 32-bit millisecond counter: a larger forward step is not a wrap.
const HALF_U32: u32 = 1 << 31;

/// The forward difference of a 32-bit millisecond counter, modulo 2^32 (the counter wraps).
///
/// Returns `None` when the counter went backwards by a small amount, which is not a wrap but
/// an inconsistent read of the kernel's lockless counters: the modular difference would be
/// 2^31 or more.
pub fn tick_delta(prev: u32, curr: u32) -> Option<u32> {
    let d = curr.wrapping_sub(prev);
    (d < HALF_U32).then_some(d)
}

/// The difference of a 64-bit counter, or `None` if it decreased.
fn count_delta(prev: u64, curr: u64) -> Option<u64> {
    curr.checked_sub(prev)
}

/// sysstat's test for a device that was removed and added again: the total of its I/Os
/// decreased, and each sectors counter decreased or was 0 before.
pub fn is_reset(prev: &Counters, curr: &Counters) -> bool {
    let ios = |c: &Counters| {
        c.rd_ios
            .wrapping_add(c.wr_ios)
            .wrapping_add(c.dc_ios)
            .wrapping_add(c.fl_ios)
    };
    let dropped = |p: u64, c: u64| p == 0 || c < p;
    ios(curr) < ios(prev)
        && dropped(prev.rd_sectors, curr.rd_sectors)
        && dropped(prev.wr_sectors, curr.wr_sectors)
        && dropped(prev.dc_sectors, curr.dc_sectors)
}

/// `S_VALUE`: a per-second rate of a counter delta over `secs`.
fn rate(delta: Option<u64>, secs: f64) -> f64 {
    delta.map_or(0.0, |d| d as f64 / secs)
}

/// `%rrqm` and friends: merges as a percentage of merges plus completed requests.
fn merge_pct(merges: Option<u64>, ios: Option<u64>) -> f64 {
    match (merges, ios) {
        (Some(m), Some(i)) if m + i > 0 => m as f64 / (m + i) as f64 * 100.0,
        _ => 0.0,
    }
}

/// `r_await` and friends: ms per completed request; 0 unless requests completed.
fn await_ms(ticks: Option<u32>, ios: Option<u64>) -> f64 {
    match (ticks, ios) {
        (Some(t), Some(i)) if i > 0 => f64::from(t) / i as f64,
        _ => 0.0,
    }
}

/// `rareq-sz` and friends: kB per completed request; 0 unless requests completed.
fn req_kb(sectors: Option<u64>, ios: Option<u64>) -> f64 {
    match (sectors, ios) {
        (Some(s), Some(i)) if i > 0 => s as f64 / i as f64 / 2.0,
        _ => 0.0,
    }
}

/// Computes the `iostat -x` columns for the interval from `prev` to `curr`, which lasted
/// `secs` seconds (must be positive). Applies the reset rule ([`is_reset`]) itself.
pub fn compute(prev: &Counters, curr: &Counters, secs: f64) -> ExtStats {
    let zero = Counters::default();
    let p = if is_reset(prev, curr) { &zero } else { prev };
    let c = curr;
    let cd = count_delta;
    let td = tick_delta;

    let (rd_ios, rd_merges, rd_sectors) = (
        cd(p.rd_ios, c.rd_ios),
        cd(p.rd_merges, c.rd_merges),
        cd(p.rd_sectors, c.rd_sectors),
    );
    let (wr_ios, wr_merges, wr_sectors) = (
        cd(p.wr_ios, c.wr_ios),
        cd(p.wr_merges, c.wr_merges),
        cd(p.wr_sectors, c.wr_sectors),
    );
    let (dc_ios, dc_merges, dc_sectors) = (
        cd(p.dc_ios, c.dc_ios),
        cd(p.dc_merges, c.dc_merges),
        cd(p.dc_sectors, c.dc_sectors),
    );
    let fl_ios = cd(p.fl_ios, c.fl_ios);
    let ms = secs * 1000.0;

    ExtStats {
        r_s: rate(rd_ios, secs),
        rkb_s: rate(rd_sectors, secs) / 2.0,
        rrqm_s: rate(rd_merges, secs),
        rrqm_pct: merge_pct(rd_merges, rd_ios),
        r_await: await_ms(td(p.rd_ticks, c.rd_ticks), rd_ios),
        rareq_sz: req_kb(rd_sectors, rd_ios),
        w_s: rate(wr_ios, secs),
        wkb_s: rate(wr_sectors, secs) / 2.0,
        wrqm_s: rate(wr_merges, secs),
        wrqm_pct: merge_pct(wr_merges, wr_ios),
        w_await: await_ms(td(p.wr_ticks, c.wr_ticks), wr_ios),
        wareq_sz: req_kb(wr_sectors, wr_ios),
        d_s: rate(dc_ios, secs),
        dkb_s: rate(dc_sectors, secs) / 2.0,
        drqm_s: rate(dc_merges, secs),
        drqm_pct: merge_pct(dc_merges, dc_ios),
        d_await: await_ms(td(p.dc_ticks, c.dc_ticks), dc_ios),
        dareq_sz: req_kb(dc_sectors, dc_ios),
        f_s: rate(fl_ios, secs),
        f_await: await_ms(td(p.fl_ticks, c.fl_ticks), fl_ios),
        aqu_sz: td(p.rq_ticks, c.rq_ticks).map_or(0.0, |d| f64::from(d) / ms),
        util: td(p.tot_ticks, c.tot_ticks).map_or(0.0, |d| f64::from(d) / ms * 100.0),
    }
}

/// Whether a device has had no I/O at all (iostat hides such devices unless asked).
pub fn is_idle(c: &Counters) -> bool {
    c.rd_ios == 0 && c.wr_ios == 0 && c.dc_ios == 0 && c.fl_ios == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any forward step below 2^31 ms is recovered exactly across the 32-bit wrap: the
        /// delta is what u32 arithmetic gives.
        #[test]
        fn tick_delta_recovers_any_step_across_the_wrap(prev: u32, step in 0u32..HALF_U32) {
            let curr = prev.wrapping_add(step);
            prop_assert_eq!(tick_delta(prev, curr), Some(step));
            prop_assert_eq!(tick_delta(prev, curr), Some(curr.wrapping_sub(prev)));
        }

        /// The same step gives the same delta whether or not it crosses 2^32, matching the
        /// value the kernel's wider internal counter advanced by.
        #[test]
        fn tick_delta_matches_the_untruncated_counter(start in 0u64..(1u64 << 40), step in 0u64..(1u64 << 31)) {
            let prev = start as u32;
            let curr = (start + step) as u32;
            prop_assert_eq!(tick_delta(prev, curr).map(u64::from), Some(step));
        }

        /// A backwards step (a glitch of the lockless counters, not a wrap) never yields a
        /// huge delta, wherever it happens.
        #[test]
        fn backward_steps_are_not_wraps(prev: u32, back in 1u32..=HALF_U32) {
            prop_assert_eq!(tick_delta(prev, prev.wrapping_sub(back)), None);
        }

        /// `aqu-sz` and `%util` over a wrapped counter equal the values with 64-bit counters.
        #[test]
        fn wrapped_queue_and_util_equal_the_unwrapped_values(
            base in (1u64 << 32) - 100_000..(1u64 << 32) + 100_000,
            busy_ms in 0u64..10_000,
            queued_ms in 0u64..1_000_000,
        ) {
            let prev = Counters { tot_ticks: base as u32, rq_ticks: base as u32, rd_ios: 5, ..Counters::default() };
            let curr = Counters {
                tot_ticks: (base + busy_ms) as u32,
                rq_ticks: (base + queued_ms) as u32,
                rd_ios: 6,
                ..Counters::default()
            };
            let x = compute(&prev, &curr, 10.0);
            prop_assert!((x.util - busy_ms as f64 / 10_000.0 * 100.0).abs() < 1e-9);
            prop_assert!((x.aqu_sz - queued_ms as f64 / 10_000.0).abs() < 1e-9);
        }
    }

    #[test]
    fn a_decreasing_counter_gives_zero_not_a_huge_rate() {
        let prev = Counters {
            rd_ios: 100,
            rd_sectors: 800,
            wr_ios: 50,
            wr_sectors: 400,
            ..Counters::default()
        };
        // Reads went back but writes advanced: not a reset.
        let curr = Counters {
            rd_ios: 90,
            rd_sectors: 700,
            wr_ios: 70,
            wr_sectors: 600,
            ..Counters::default()
        };
        assert!(!is_reset(&prev, &curr));
        let x = compute(&prev, &curr, 2.0);
        assert_eq!(x.r_s, 0.0);
        assert_eq!(x.rkb_s, 0.0);
        assert_eq!(x.rareq_sz, 0.0);
        assert_eq!(x.w_s, 10.0);
        assert_eq!(x.wkb_s, 50.0);
    }

    #[test]
    fn a_re_added_device_is_measured_from_zero() {
        let prev = Counters {
            rd_ios: 1000,
            rd_sectors: 8000,
            wr_ios: 500,
            wr_sectors: 4000,
            ..Counters::default()
        };
        let curr = Counters {
            rd_ios: 10,
            rd_sectors: 80,
            wr_ios: 4,
            wr_sectors: 64,
            ..Counters::default()
        };
        assert!(is_reset(&prev, &curr));
        let x = compute(&prev, &curr, 2.0);
        assert_eq!(x.r_s, 5.0);
        assert_eq!(x.rkb_s, 20.0);
        assert_eq!(x.w_s, 2.0);
        assert_eq!(x.wareq_sz, 8.0);
    }

    #[test]
    fn idle_devices() {
        assert!(is_idle(&Counters::default()));
        assert!(!is_idle(&Counters {
            fl_ios: 1,
            ..Counters::default()
        }));
    }
}
