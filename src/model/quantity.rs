//! Kubernetes resource quantities with exact arithmetic.
//!
//! A quantity is stored as an integer count of nano-units, so `100m + 900m == 1` and
//! `1.5Gi` is exactly 1,610,612,736 bytes: no float drift anywhere in the engine.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANO: i128 = 1_000_000_000;

/// An exact resource quantity (nano-unit resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

/// Why a quantity string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid quantity {input:?}: {reason} (expected a number with an optional suffix such as 100m, 1.5Gi, 2e3, 1k)"
)]
pub struct QuantityError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Quantity {
    /// Zero.
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// A whole number of units.
    pub fn from_units(units: i64) -> Self {
        Quantity {
            nanos: units as i128 * NANO,
        }
    }

    /// A number of milli-units (CPU millicores).
    pub fn from_milli(milli: i64) -> Self {
        Quantity {
            nanos: milli as i128 * 1_000_000,
        }
    }

    /// Milli-units, rounded up as Kubernetes does (`MilliValue`).
    pub fn milli(self) -> i64 {
        ceil_div(self.nanos, 1_000_000) as i64
    }

    /// Whole units, rounded up as Kubernetes does (`Value`).
    pub fn units(self) -> i64 {
        ceil_div(self.nanos, NANO) as i64
    }

    /// Nano-units, the exact internal value.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// An approximate float, for prices and reports only.
    pub fn as_f64(self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// True when the quantity is zero.
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    /// Parse with the full Kubernetes grammar.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        parse_quantity(text)
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 { q + 1 } else { q }
}

fn err(input: &str, reason: &'static str) -> QuantityError {
    QuantityError {
        input: input.to_string(),
        reason,
    }
}

/// Split `text` into its numeric part and its suffix.
fn split_number(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    let mut end = 0;
    if end < bytes.len() && (bytes[end] == b'+' || bytes[end] == b'-') {
        end += 1;
    }
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    text.split_at(end)
}

/// The suffix as (numerator, denominator) of a rational multiplier.
fn suffix_multiplier(input: &str, suffix: &str) -> Result<(i128, i128), QuantityError> {
    let pow = |base: i128, exp: u32| base.pow(exp);
    Ok(match suffix {
        "" => (1, 1),
        "n" => (1, NANO),
        "u" => (1, 1_000_000),
        "m" => (1, 1_000),
        "k" => (1_000, 1),
        "M" => (pow(10, 6), 1),
        "G" => (pow(10, 9), 1),
        "T" => (pow(10, 12), 1),
        "P" => (pow(10, 15), 1),
        "E" => (pow(10, 18), 1),
        "Ki" => (pow(2, 10), 1),
        "Mi" => (pow(2, 20), 1),
        "Gi" => (pow(2, 30), 1),
        "Ti" => (pow(2, 40), 1),
        "Pi" => (pow(2, 50), 1),
        "Ei" => (pow(2, 60), 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| err(input, "the exponent is not an integer"))?;
            if !(-9..=18).contains(&exp) {
                return Err(err(input, "the exponent is out of range (-9 to 18)"));
            }
            if exp >= 0 {
                (pow(10, exp as u32), 1)
            } else {
                (1, pow(10, (-exp) as u32))
            }
        }
        _ => return Err(err(input, "unknown suffix")),
    })
}

fn parse_quantity(text: &str) -> Result<Quantity, QuantityError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(err(text, "it is empty"));
    }
    let (number, suffix) = split_number(trimmed);
    let (negative, digits) = match number.as_bytes().first() {
        Some(b'-') => (true, &number[1..]),
        Some(b'+') => (false, &number[1..]),
        _ => (false, number),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err(text, "it has no digits"));
    }
    if frac_part.contains('.') || frac_part.len() > 30 || int_part.len() > 30 {
        return Err(err(text, "the number is malformed or too long"));
    }
    let (num, den) = suffix_multiplier(text, suffix)?;
    let scale = 10i128.pow(frac_part.len() as u32);
    let int_value: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| err(text, "the number is malformed"))?
    };
    let frac_value: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().map_err(|_| err(text, "the number is malformed"))?
    };
    let mantissa = int_value
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(|| err(text, "the number is too large"))?;
    let numerator = mantissa
        .checked_mul(num)
        .and_then(|v| v.checked_mul(NANO))
        .ok_or_else(|| err(text, "the number is too large"))?;
    let nanos = ceil_div(numerator, den * scale);
    Ok(Quantity {
        nanos: if negative { -nanos } else { nanos },
    })
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

impl fmt::Display for Quantity {
    /// Canonical form: whole units when exact, else milli-units, else nano-units.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos % NANO == 0 {
            write!(f, "{}", self.nanos / NANO)
        } else if self.nanos % 1_000_000 == 0 {
            write!(f, "{}m", self.nanos / 1_000_000)
        } else {
            write!(f, "{}n", self.nanos)
        }
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_quantity(&text).map_err(serde::de::Error::custom)
    }
}

impl Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos + rhs.nanos,
        }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, rhs: Quantity) {
        self.nanos += rhs.nanos;
    }
}

impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos - rhs.nanos,
        }
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, rhs: Quantity) {
        self.nanos -= rhs.nanos;
    }
}

impl Mul<i64> for Quantity {
    type Output = Quantity;
    fn mul(self, rhs: i64) -> Quantity {
        Quantity {
            nanos: self.nanos * rhs as i128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_kubernetes_grammar() {
        assert_eq!(q("100m").milli(), 100);
        assert_eq!(q("1.5Gi").units(), 1_610_612_736);
        assert_eq!(q("2e3").units(), 2000);
        assert_eq!(q("1k").units(), 1000);
        assert_eq!(q("1E3").units(), 1000);
        assert_eq!(q(".5").milli(), 500);
        assert_eq!(q("+1").units(), 1);
        assert_eq!(q("-2Ki").units(), -2048);
        assert_eq!(q("1Ei").units(), 1 << 60);
        assert_eq!(q("0.1").milli(), 100);
        assert_eq!(q("250u").nanos(), 250_000);
        assert_eq!(q("1e-3").milli(), 1);
    }

    #[test]
    fn sums_without_drift() {
        let mut total = Quantity::ZERO;
        for _ in 0..10 {
            total += q("100m");
        }
        assert_eq!(total, q("1"));
        assert_eq!(q("0.1") + q("0.2"), q("300m"));
    }

    #[test]
    fn rounds_sub_milli_up_like_kubernetes() {
        assert_eq!(q("1n").milli(), 1);
        assert_eq!(q("1.0000000001").nanos(), 1_000_000_001);
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in ["", "abc", "1.2.3", "1Zi", "1e", "1ee3", "--1", "1e99", "m", "1 Gi"] {
            assert!(bad.parse::<Quantity>().is_err(), "{bad:?} should fail");
        }
        let e = "12x".parse::<Quantity>().unwrap_err();
        assert!(e.to_string().contains("12x"));
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(q("1500m").to_string(), "1500m");
        assert_eq!(q("2000m").to_string(), "2");
        assert_eq!(q("1Ki").to_string(), "1024");
    }
}
