//! Decimal text, read and written exactly: the numbers of flags, config files and traces
//! (`12`, `0.5`, `12.50`) as integer fractions, and fractions back as decimals.

use std::fmt;

use serde::Deserialize;

/// A decimal that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing to read.
    #[error("empty number")]
    Empty,
    /// A minus sign.
    #[error("`{0}` is negative")]
    Negative(String),
    /// Not digits with an optional decimal point.
    #[error("`{0}` is not a decimal number (digits with an optional `.`, no exponent)")]
    Invalid(String),
    /// More fractional digits than allowed.
    #[error("`{0}` has more than {1} decimals")]
    TooPrecise(String, u32),
    /// Too large for the quantity.
    #[error("`{0}` is too large")]
    TooLarge(String),
    /// Outside the range the quantity allows.
    #[error("`{0}` is out of range: {1}")]
    OutOfRange(String, &'static str),
}

/// Reads a non-negative decimal (`12`, `0.5`, `+3.25`, `.5`, `7.`) as `mantissa / 10^scale`,
/// with trailing fractional zeros dropped. At most `max_scale` decimals (after dropping zeros).
pub fn parse_decimal(text: &str, max_scale: u32) -> Result<(u128, u32), DecimalError> {
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    if s.starts_with('-') {
        return Err(DecimalError::Negative(text.trim().to_string()));
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) {
        return Err(DecimalError::Invalid(text.trim().to_string()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() as u32 > max_scale {
        return Err(DecimalError::TooPrecise(text.trim().to_string(), max_scale));
    }
    let mut m: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        m = m
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| DecimalError::TooLarge(text.trim().to_string()))?;
    }
    Ok((m, frac.len() as u32))
}

/// Formats `num / den` as a decimal rounded to `decimals` places, without trailing zeros.
pub(crate) fn format_fraction(num: u128, den: u128, decimals: u32) -> String {
    let scale = 10u128.pow(decimals);
    // Round half up: (num * scale + den / 2) / den, in two steps to stay in range.
    let int = num / den;
    let rem = num % den;
    let mut frac = (rem * scale + den / 2) / den;
    let mut int = int;
    if frac >= scale {
        int += 1;
        frac -= scale;
    }
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0width$}", width = decimals as usize);
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// Writes `s` right-aligned to the formatter's width (the precision was already applied).
pub(crate) fn pad(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    match f.width() {
        Some(w) => write!(f, "{s:>w$}"),
        None => f.write_str(s),
    }
}

/// A number as it appears in a config file: TOML integer, float, or string.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum NumberText {
    Int(u64),
    Float(f64),
    Text(String),
}

impl NumberText {
    /// The number as text, to be read with [`parse_decimal`].
    pub(crate) fn text(self) -> String {
        match self {
            NumberText::Int(i) => i.to_string(),
            NumberText::Float(f) => format!("{f}"),
            NumberText::Text(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_or_fail_clearly() {
        assert_eq!(parse_decimal("12", 9), Ok((12, 0)));
        assert_eq!(parse_decimal(" 12.50 ", 9), Ok((125, 1)));
        assert_eq!(parse_decimal("+.5", 9), Ok((5, 1)));
        assert_eq!(parse_decimal("7.", 9), Ok((7, 0)));
        assert_eq!(parse_decimal("0.000000001", 9), Ok((1, 9)));
        assert_eq!(parse_decimal("", 9), Err(DecimalError::Empty));
        assert_eq!(
            parse_decimal("-1", 9),
            Err(DecimalError::Negative("-1".into()))
        );
        for bad in [".", "1e3", "1.2.3", "abc", "1,5", "0x10", "inf", "NaN"] {
            assert!(
                matches!(parse_decimal(bad, 9), Err(DecimalError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_decimal("0.0000000001", 9),
            Err(DecimalError::TooPrecise("0.0000000001".into(), 9))
        );
        assert!(matches!(
            parse_decimal(&"9".repeat(50), 9),
            Err(DecimalError::TooLarge(_))
        ));
    }
}
