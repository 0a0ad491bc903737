//! Exact request rates, thresholds and tolerances: fractions of integers, so that
//! `ceil(rate / threshold)` and the tolerance test never round (see [`crate::rate`]).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::decimal::{DecimalError, NumberText, format_fraction, pad, parse_decimal};

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// A rate's numerator stays below 2^96: a `u64` counter delta times 10^9 fits.
const RATE_NUM_LIMIT: u128 = 1 << 96;
/// A rate's denominator fits in a `u64` (nanoseconds: 584 years).
const RATE_DEN_MAX: u128 = u64::MAX as u128;
/// At most nine decimals (nanosecond / nano-request resolution).
const MAX_SCALE: u32 = 9;

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The full 256-bit product of two `u128`, as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const LO: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & LO);
    let (b1, b0) = (b >> 64, b & LO);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // Middle column: at most three 64-bit quantities, so no overflow in u128.
    let mid = (p00 >> 64) + (p01 & LO) + (p10 & LO);
    let low = (p00 & LO) | (mid << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (high, low)
}

/// Compares `a × b` with `c × d` exactly.
fn cmp_products(a: u128, b: u128, c: u128, d: u128) -> Ordering {
    mul_wide(a, b).cmp(&mul_wide(c, d))
}

/// A request rate in requests per second, as an exact fraction.
///
/// Invariants: the fraction is reduced, the denominator is at least 1 and fits in a `u64`,
/// and the numerator is below 2^96. Every constructor keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    num: u128,
    den: u128,
}

impl Rate {
    /// No requests.
    pub const ZERO: Rate = Rate { num: 0, den: 1 };

    fn reduced(num: u128, den: u128) -> Rate {
        let g = gcd(num, den).max(1);
        Rate {
            num: num / g,
            den: den / g,
        }
    }

    /// `n` requests per second.
    pub fn per_second(n: u64) -> Rate {
        Rate {
            num: u128::from(n),
            den: 1,
        }
    }

    /// `count` requests over `elapsed`: a counter delta over the time between two readings.
    /// `None` when `elapsed` is zero or longer than `u64::MAX` nanoseconds (584 years).
    pub fn from_count(count: u64, elapsed: Duration) -> Option<Rate> {
        let nanos = elapsed.as_nanos();
        if nanos == 0 || nanos > RATE_DEN_MAX {
            return None;
        }
        Some(Rate::reduced(u128::from(count) * NANOS_PER_SEC, nanos))
    }

    /// A rate given in billionths of a request per second (the resolution of traces).
    pub fn from_nanos_per_sec(nanos: u64) -> Rate {
        Rate::reduced(u128::from(nanos), NANOS_PER_SEC)
    }

    /// Reads a decimal number of requests per second (`12`, `12.5`; at most nine decimals).
    pub fn parse(text: &str) -> Result<Rate, DecimalError> {
        let (m, scale) = parse_decimal(text, MAX_SCALE)?;
        if m >= RATE_NUM_LIMIT {
            return Err(DecimalError::TooLarge(text.trim().to_string()));
        }
        Ok(Rate::reduced(m, 10u128.pow(scale)))
    }

    /// The nearest rate with a resolution of 10^-6 req/s to a float (for extrapolated rates);
    /// negative values give zero, and `None` is returned for NaN, infinities and values of
    /// 2^76 req/s or more.
    pub fn from_f64(x: f64) -> Option<Rate> {
        if !x.is_finite() {
            return None;
        }
        if x <= 0.0 {
            return Some(Rate::ZERO);
        }
        let micros = (x * 1e6).round();
        if micros >= RATE_NUM_LIMIT as f64 {
            return None;
        }
        Some(Rate::reduced(micros as u128, 1_000_000))
    }

    /// The sum of two rates (several balancer instances' rates): exact when the reduced sum
    /// keeps the invariants (it does when both have the same denominator, as readings over
    /// the same interval have), else the billionth of a request per second at or below it.
    pub fn plus(self, other: Rate) -> Rate {
        let exact = self
            .num
            .checked_mul(other.den)
            .zip(other.num.checked_mul(self.den))
            .and_then(|(a, b)| a.checked_add(b))
            .zip(self.den.checked_mul(other.den))
            .map(|(num, den)| Rate::reduced(num, den))
            .filter(|r| r.den <= RATE_DEN_MAX && r.num < RATE_NUM_LIMIT);
        exact.unwrap_or_else(|| {
            // num < 2^96, so num × 10^9 < 2^126: no overflow.
            let nanos = |r: Rate| r.num * NANOS_PER_SEC / r.den;
            let sum = (nanos(self) + nanos(other)).min(RATE_NUM_LIMIT - 1);
            Rate::reduced(sum, NANOS_PER_SEC)
        })
    }

    /// The rate as a float (for charts, logs and the CSV `rate` column).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The numerator of the reduced fraction.
    pub fn numer(self) -> u128 {
        self.num
    }

    /// The denominator of the reduced fraction.
    pub fn denom(self) -> u128 {
        self.den
    }

    /// `ceil(self)`: whole requests per second, rounded up (the lab report's `diff`).
    pub fn ceil(self) -> u128 {
        self.num / self.den + u128::from(!self.num.is_multiple_of(self.den))
    }

    /// `ceil(self / threshold)`, exact: the servers needed at this rate before any clamping.
    pub fn servers_needed(self, threshold: Threshold) -> u128 {
        // rate / thr = (rn * td) / (rd * tn); rn * td < 2^96 * 2^30, rd * tn < 2^64 * 2^64.
        let a = self.num * threshold.den;
        let b = self.den * threshold.num;
        a / b + u128::from(!a.is_multiple_of(b))
    }

    /// Whether `servers` servers take this rate and keep `headroom` spare: `rate ≤ servers ×
    /// threshold × (1 − headroom)`, exactly. With no headroom this is
    /// `ceil(rate / threshold) ≤ servers`; zero servers take only a zero rate.
    pub fn fits(self, threshold: Threshold, servers: u32, headroom: Tolerance) -> bool {
        let (num, den) = headroom.below_one();
        self.cmp_capacity(threshold, servers, num, den) != Ordering::Greater
    }

    /// Compares this rate with `servers × threshold × num / den`, exactly: the rate against
    /// what `servers` servers take at `num / den` of their threshold (`den` > 0).
    pub fn cmp_capacity(self, threshold: Threshold, servers: u32, num: u64, den: u64) -> Ordering {
        // rn/rd vs c·num/den · tn/td  ⟺  rn·td · den vs c·num · tn·rd
        let lhs = self.num * threshold.den; // < 2^96 · 2^30
        let room = u128::from(servers) * u128::from(num); // < 2^32 · 2^64
        let cap = threshold.num * self.den; // < 2^64 · 2^64
        cmp_products(lhs, u128::from(den.max(1)), room, cap)
    }
}

impl PartialOrd for Rate {
    fn partial_cmp(&self, other: &Rate) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rate {
    fn cmp(&self, other: &Rate) -> Ordering {
        cmp_products(self.num, other.den, other.num, self.den)
    }
}

impl fmt::Display for Rate {
    /// The rate as a decimal rounded to three places (`12.5`, `0.333`), or to the precision
    /// asked for (`{:.1}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = f.precision().unwrap_or(3).min(18) as u32;
        pad(f, &format_fraction(self.num, self.den, decimals))
    }
}

impl FromStr for Rate {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Rate, DecimalError> {
        Rate::parse(s)
    }
}

/// The requests per second one server is meant to take: a positive decimal with at most nine
/// decimals and below 2^64 / 10^9 (about 1.8 × 10^10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Threshold {
    num: u128,
    den: u128,
}

impl Threshold {
    /// The lab report's threshold: 10 requests per second per server.
    pub const SEED: Threshold = Threshold { num: 10, den: 1 };

    /// A whole number of requests per second per server; `None` for zero.
    pub fn per_second(n: u32) -> Option<Threshold> {
        (n > 0).then_some(Threshold {
            num: u128::from(n),
            den: 1,
        })
    }

    /// The nearest `f64` (for display and metrics; decisions use the exact fraction).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Reads a decimal threshold (`10`, `12.5`).
    pub fn parse(text: &str) -> Result<Threshold, DecimalError> {
        let (m, scale) = parse_decimal(text, MAX_SCALE)?;
        if m == 0 {
            return Err(DecimalError::OutOfRange(
                text.trim().to_string(),
                "a threshold must be greater than 0",
            ));
        }
        if m > u128::from(u64::MAX) {
            return Err(DecimalError::TooLarge(text.trim().to_string()));
        }
        let den = 10u128.pow(scale);
        let g = gcd(m, den);
        Ok(Threshold {
            num: m / g,
            den: den / g,
        })
    }
}

impl Default for Threshold {
    fn default() -> Threshold {
        Threshold::SEED
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        pad(f, &format_fraction(self.num, self.den, MAX_SCALE))
    }
}

impl FromStr for Threshold {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Threshold, DecimalError> {
        Threshold::parse(s)
    }
}

/// The policy's tolerance band: the share of a server's threshold kept spare before a server is
/// released (see [`crate::policy`]). A decimal in `[0, 1)` with at most six decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tolerance {
    num: u64,
    den: u64,
}

impl Tolerance {
    /// No tolerance band: every change of `ceil(rate / threshold)` is acted on.
    pub const NONE: Tolerance = Tolerance { num: 0, den: 1 };
    /// 0.1, the default (the width of Kubernetes HPA's band).
    pub const HPA: Tolerance = Tolerance { num: 1, den: 10 };

    /// `1 − tolerance` as a fraction (numerator, denominator).
    pub fn below_one(self) -> (u64, u64) {
        (self.den - self.num, self.den)
    }

    /// `1 + tolerance` as a fraction (numerator, denominator).
    pub fn above_one(self) -> (u64, u64) {
        (self.den + self.num, self.den)
    }

    /// Reads a tolerance (`0.1`).
    pub fn parse(text: &str) -> Result<Tolerance, DecimalError> {
        let (m, scale) = parse_decimal(text, 6)?;
        let den = 10u128.pow(scale);
        if m >= den {
            return Err(DecimalError::OutOfRange(
                text.trim().to_string(),
                "a tolerance must be at least 0 and below 1",
            ));
        }
        let g = gcd(m, den).max(1);
        // m < den ≤ 10^6: both fit in u64.
        Ok(Tolerance {
            num: (m / g) as u64,
            den: (den / g) as u64,
        })
    }
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance::HPA
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        pad(
            f,
            &format_fraction(u128::from(self.num), u128::from(self.den), 6),
        )
    }
}

impl FromStr for Tolerance {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Tolerance, DecimalError> {
        Tolerance::parse(s)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Threshold, D::Error> {
        Threshold::parse(&NumberText::deserialize(d)?.text()).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Tolerance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tolerance, D::Error> {
        Tolerance::parse(&NumberText::deserialize(d)?.text()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> Rate {
        Rate::parse(s).unwrap()
    }
    fn t(s: &str) -> Threshold {
        Threshold::parse(s).unwrap()
    }

    #[test]
    fn sums_are_exact_when_they_fit_and_never_above_otherwise() {
        // Readings over the same interval: exact.
        let a = Rate::from_count(7, Duration::from_millis(5003)).unwrap();
        let b = Rate::from_count(9, Duration::from_millis(5003)).unwrap();
        assert_eq!(
            a.plus(b),
            Rate::from_count(16, Duration::from_millis(5003)).unwrap()
        );
        assert_eq!(r("1.5").plus(r("2.25")), r("3.75"));
        assert_eq!(Rate::ZERO.plus(a), a);
        // Two unrelated nanosecond denominators overflow: to the billionth, at or below.
        let x = Rate::from_count(1, Duration::from_nanos(4_999_999_937)).unwrap();
        let y = Rate::from_count(1, Duration::from_nanos(5_000_000_029)).unwrap();
        let s = x.plus(y);
        assert!(s <= Rate::from_count(2, Duration::from_nanos(4_999_999_937)).unwrap());
        assert!((s.to_f64() - (x.to_f64() + y.to_f64())).abs() < 2e-9);
        // Huge rates saturate instead of panicking.
        let big = Rate::from_count(u64::MAX, Duration::from_nanos(1)).unwrap();
        assert!(big.plus(big) >= big);
    }

    #[test]
    fn the_needed_table() {
        // (rate, threshold, servers needed)
        let table = [
            ("0", "10", 0),
            ("0.000000001", "10", 1),
            ("10", "10", 1),
            ("10.000000001", "10", 2),
            ("30", "10", 3),
            ("29.999999999", "10", 3),
            ("132", "10", 14),
            ("7.5", "2.5", 3),
            ("7.500000001", "2.5", 4),
            ("0.3", "0.1", 3),
            ("1", "0.3", 4),
            ("100", "33.333333333", 4),
        ];
        for (rate, thr, want) in table {
            assert_eq!(r(rate).servers_needed(t(thr)), want, "{rate} / {thr}");
        }
    }

    #[test]
    fn float_arithmetic_would_get_these_wrong() {
        // 0.1 + 0.2 as floats is 0.30000000000000004, and ceil of that over 0.1 is 4.
        let (a, b) = (std::hint::black_box(0.1f64), std::hint::black_box(0.2f64));
        assert_eq!(((a + b) / a).ceil(), 4.0);
        let rate = Rate::from_count(3, Duration::from_secs(10)).unwrap(); // 0.3 req/s
        assert_eq!(rate.servers_needed(t("0.1")), 3);
        // 1800 requests in 60 s at threshold 10: exactly 3.
        let rate = Rate::from_count(1800, Duration::from_secs(60)).unwrap();
        assert_eq!(rate, Rate::per_second(30));
        assert_eq!(rate.servers_needed(Threshold::SEED), 3);
    }

    #[test]
    fn counter_rates_are_exact_fractions() {
        let rate = Rate::from_count(1000, Duration::from_millis(3000)).unwrap();
        assert_eq!((rate.numer(), rate.denom()), (1000, 3));
        assert_eq!(rate.ceil(), 334);
        assert_eq!(format!("{rate}"), "333.333");
        assert_eq!(format!("{rate:.1}"), "333.3");
        assert_eq!(Rate::from_count(5, Duration::ZERO), None);
        assert_eq!(
            Rate::from_count(u64::MAX, Duration::from_nanos(1))
                .unwrap()
                .servers_needed(Threshold::SEED),
            u128::from(u64::MAX) * 100_000_000
        );
    }

    #[test]
    fn rates_compare_exactly() {
        assert!(r("0.3") > Rate::from_count(2999999, Duration::from_secs(10_000_000)).unwrap());
        assert_eq!(
            r("0.5"),
            Rate::from_count(1, Duration::from_secs(2)).unwrap()
        );
        assert!(Rate::ZERO < r("0.000000001"));
        assert_eq!(Rate::from_nanos_per_sec(1_500_000_000), r("1.5"));
    }

    #[test]
    fn from_f64_rounds_to_micro_requests() {
        assert_eq!(Rate::from_f64(12.5), Some(r("12.5")));
        assert_eq!(Rate::from_f64(30.000000000000004), Some(r("30")));
        assert_eq!(Rate::from_f64(-3.0), Some(Rate::ZERO));
        assert_eq!(Rate::from_f64(f64::NAN), None);
        assert_eq!(Rate::from_f64(f64::INFINITY), None);
    }

    #[test]
    fn thresholds_and_tolerances_reject_what_they_cannot_mean() {
        assert_eq!(t("10"), Threshold::SEED);
        assert_eq!(Threshold::per_second(0), None);
        assert!(
            Threshold::parse("0")
                .unwrap_err()
                .to_string()
                .contains("greater than 0")
        );
        assert!(Threshold::parse("0.0000000001").is_err());
        assert_eq!(format!("{}", t("12.50")), "12.5");
        assert_eq!(Tolerance::parse("0.1").unwrap(), Tolerance::HPA);
        assert_eq!(Tolerance::parse("0").unwrap(), Tolerance::NONE);
        assert!(
            Tolerance::parse("1")
                .unwrap_err()
                .to_string()
                .contains("below 1")
        );
        assert!(Tolerance::parse("0.0000001").is_err());
        assert_eq!(format!("{}", Tolerance::HPA), "0.1");
    }

    #[test]
    fn the_headroom_table() {
        // (rate, servers, fits with 10 % spare: rate ≤ 9 × servers?)
        let table = [
            ("45", 5, true),
            ("45.000000001", 5, false),
            ("44", 5, true),
            ("0", 0, true),
            ("0.000000001", 0, false),
            ("9", 1, true),
            ("10", 1, false),
        ];
        for (rate, servers, want) in table {
            assert_eq!(
                r(rate).fits(Threshold::SEED, servers, Tolerance::HPA),
                want,
                "{rate} on {servers}"
            );
        }
        // No headroom: exactly ceil(rate / threshold) ≤ servers.
        assert!(r("50").fits(Threshold::SEED, 5, Tolerance::NONE));
        assert!(!r("50.000000001").fits(Threshold::SEED, 5, Tolerance::NONE));
        assert!(r("0.3").fits(t("0.1"), 3, Tolerance::NONE));
        assert!(!r("0.3").fits(t("0.1"), 2, Tolerance::NONE));
        // Extreme values do not overflow.
        let huge = Rate::from_count(u64::MAX, Duration::from_nanos(1)).unwrap();
        assert!(!huge.fits(t("0.000000001"), u32::MAX, Tolerance::HPA));
        let tiny = Rate::from_count(1, Duration::from_nanos(u64::MAX)).unwrap();
        assert!(tiny.fits(
            t("18000000000"),
            u32::MAX,
            Tolerance::parse("0.999999").unwrap()
        ));
    }

    #[test]
    fn config_values_deserialize_from_numbers_and_strings() {
        #[derive(Deserialize)]
        struct C {
            a: Threshold,
            b: Threshold,
            c: Threshold,
            tol: Tolerance,
        }
        let c: C = toml::from_str("a = 10\nb = 12.5\nc = \"0.1\"\ntol = 0.05\n").unwrap();
        assert_eq!((c.a, c.b, c.c), (t("10"), t("12.5"), t("0.1")));
        assert_eq!(c.tol, Tolerance::parse("0.05").unwrap());
        let e = toml::from_str::<C>("a = 0\nb = 1\nc = 1\ntol = 0.1\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("greater than 0"), "{e}");
    }

    #[test]
    fn mul_wide_matches_u128_where_it_fits_and_splits_beyond() {
        assert_eq!(mul_wide(3, 5), (0, 15));
        assert_eq!(mul_wide(u128::MAX, 2), (1, u128::MAX - 1));
        assert_eq!(mul_wide(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        assert_eq!(mul_wide(1 << 64, 1 << 64), (1, 0));
    }

    fn threshold_strategy() -> impl Strategy<Value = (u64, u32)> {
        (1u64..=1_000_000_000, 0u32..=6)
    }

    proptest! {
        /// rate = k × threshold gives exactly k, for decimal thresholds and counter rates.
        #[test]
        fn k_times_threshold_needs_exactly_k(k in 0u64..100_000, (m, s) in threshold_strategy(), secs in 1u64..10_000) {
            let thr_text = format_fraction(u128::from(m), 10u128.pow(s), s);
            let thr = Threshold::parse(&thr_text).unwrap();
            // As a decimal rate.
            let rate_num = u128::from(k) * u128::from(m);
            let rate = Rate::parse(&format_fraction(rate_num, 10u128.pow(s), s)).unwrap();
            prop_assert_eq!(rate.servers_needed(thr), u128::from(k));
            // As a counter delta over `secs` seconds, when the count is whole.
            let count = rate_num * u128::from(secs);
            if count % 10u128.pow(s) == 0 && count / 10u128.pow(s) <= u128::from(u64::MAX) {
                let c = (count / 10u128.pow(s)) as u64;
                let rate = Rate::from_count(c, Duration::from_secs(secs)).unwrap();
                prop_assert_eq!(rate.servers_needed(thr), u128::from(k));
            }
        }

        /// ceil is the least n with rate ≤ n × threshold, and it is monotone in the rate.
        #[test]
        fn needed_is_the_least_sufficient_count_and_monotone(
            a in 0u64..10_000_000, b in 0u64..10_000_000,
            ea in 1u64..1_000_000_000_000, eb in 1u64..1_000_000_000_000,
            (m, s) in threshold_strategy(),
        ) {
            let thr = Threshold::parse(&format_fraction(u128::from(m), 10u128.pow(s), s)).unwrap();
            let ra = Rate::from_count(a, Duration::from_nanos(ea)).unwrap();
            let rb = Rate::from_count(b, Duration::from_nanos(eb)).unwrap();
            let na = ra.servers_needed(thr);
            // na × thr ≥ rate > (na − 1) × thr, checked with exact comparisons.
            let cap = |n: u128| cmp_products(ra.num, thr.den, n * thr.num, ra.den);
            prop_assert_ne!(cap(na), Ordering::Greater);
            if na > 0 {
                prop_assert_eq!(cap(na - 1), Ordering::Greater);
            }
            if ra <= rb {
                prop_assert!(na <= rb.servers_needed(thr));
            }
        }

        /// The tolerance test agrees with the definition evaluated in rationals via floats
        /// wherever floats are not too close to call.
        #[test]
        fn fits_matches_its_definition(count in 0u64..1_000_000, secs in 1u64..100, servers in 0u32..200) {
            let rate = Rate::from_count(count, Duration::from_secs(secs)).unwrap();
            let room = 9.0 * f64::from(servers);
            let fits = rate.fits(Threshold::SEED, servers, Tolerance::HPA);
            if (rate.to_f64() - room).abs() > 1e-9 {
                prop_assert_eq!(fits, rate.to_f64() <= room);
            }
            // Without headroom it is the ceiling's test.
            prop_assert_eq!(
                rate.fits(Threshold::SEED, servers, Tolerance::NONE),
                rate.servers_needed(Threshold::SEED) <= u128::from(servers)
            );
        }
    }
}
