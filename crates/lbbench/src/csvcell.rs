//! Typed values as CSV cells, and back.
//!
//! Every column lbbench writes has a Rust type; [`CsvCell`] says how a value of that type is
//! written into one cell and read back from it, so a row read back from a CSV file has the
//! same typed values as the report it was written from.
//!
//! - `u64`: decimal digits.
//! - `f64`: the shortest text that reads back to the same number, with at least one decimal
//!   (`100.0`, `0.25`); `NaN`, `inf` and `-inf` for httperf's divisions by zero.
//! - `bool`: `true` / `false`.
//! - `Option<T>`: the empty cell for `None`.
//! - lists: the items separated by single spaces.

use std::fmt::Write as _;

/// A value that fits in one CSV cell.
pub trait CsvCell: Sized {
    /// The cell's text.
    fn to_cell(&self) -> String;
    /// Reads a cell written by [`CsvCell::to_cell`]; `None` if the text is not such a value.
    fn from_cell(s: &str) -> Option<Self>;
}

/// Formats an `f64` the way lbbench writes it (see the [module docs](self)).
pub fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

impl CsvCell for u64 {
    fn to_cell(&self) -> String {
        self.to_string()
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl CsvCell for u32 {
    fn to_cell(&self) -> String {
        self.to_string()
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl CsvCell for f64 {
    fn to_cell(&self) -> String {
        fmt_f64(*self)
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

impl CsvCell for bool {
    fn to_cell(&self) -> String {
        if *self { "true" } else { "false" }.to_owned()
    }
    fn from_cell(s: &str) -> Option<Self> {
        match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

impl CsvCell for String {
    fn to_cell(&self) -> String {
        self.clone()
    }
    fn from_cell(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
}

impl<T: CsvCell> CsvCell for Option<T> {
    fn to_cell(&self) -> String {
        self.as_ref().map(CsvCell::to_cell).unwrap_or_default()
    }
    fn from_cell(s: &str) -> Option<Self> {
        if s.is_empty() {
            Some(None)
        } else {
            T::from_cell(s).map(Some)
        }
    }
}

impl CsvCell for Vec<f64> {
    fn to_cell(&self) -> String {
        join(self.iter().map(|v| fmt_f64(*v)))
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.split_whitespace().map(|t| t.parse().ok()).collect()
    }
}

impl CsvCell for Vec<u64> {
    fn to_cell(&self) -> String {
        join(self.iter().map(u64::to_string))
    }
    fn from_cell(s: &str) -> Option<Self> {
        s.split_whitespace().map(|t| t.parse().ok()).collect()
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{item}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn floats_keep_a_decimal_and_special_values_are_named() {
        assert_eq!(fmt_f64(100.0), "100.0");
        assert_eq!(fmt_f64(0.25), "0.25");
        assert_eq!(fmt_f64(-3.0), "-3.0");
        assert_eq!(fmt_f64(f64::NAN), "NaN");
        assert_eq!(fmt_f64(f64::INFINITY), "inf");
        assert_eq!(fmt_f64(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt_f64(1e20), "100000000000000000000");
    }

    #[test]
    fn options_and_lists() {
        assert_eq!(None::<u64>.to_cell(), "");
        assert_eq!(Some(3u64).to_cell(), "3");
        assert_eq!(Option::<u64>::from_cell(""), Some(None));
        assert_eq!(Option::<u64>::from_cell("x"), None);
        assert_eq!(vec![1.0, 2.5].to_cell(), "1.0 2.5");
        assert_eq!(Vec::<f64>::from_cell(""), Some(vec![]));
        assert_eq!(Vec::<u64>::from_cell("0 3 10"), Some(vec![0, 3, 10]));
        assert_eq!(bool::from_cell("true"), Some(true));
        assert_eq!(bool::from_cell("1"), None);
    }

    proptest! {
        #[test]
        fn every_float_reads_back_exactly(v in any::<f64>()) {
            let back = f64::from_cell(&v.to_cell()).unwrap();
            if v.is_nan() {
                prop_assert!(back.is_nan());
            } else {
                prop_assert_eq!(back, v);
            }
        }

        #[test]
        fn lists_read_back(v in proptest::collection::vec(any::<u64>(), 0..20)) {
            prop_assert_eq!(Vec::<u64>::from_cell(&v.to_cell()), Some(v));
        }
    }
}
