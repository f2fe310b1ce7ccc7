//! Money as whole kopecks, shown and parsed as decimal strings ("5500.00"), so amounts never go
//! through floating point. Currency is the rouble throughout the demo.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

pub const CURRENCY: &str = "RUB";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an amount like 2500.00")]
pub struct MoneyError(String);

impl Money {
    pub const ZERO: Self = Self(0);

    pub const fn from_kopecks(kopecks: i64) -> Self {
        Self(kopecks)
    }

    pub fn kopecks(self) -> i64 {
        self.0
    }

    pub fn checked_mul(self, times: u32) -> Option<Self> {
        self.0.checked_mul(i64::from(times)).map(Self)
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// Parses `123`, `123.4` or `123.45` (no sign, at most two decimals).
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let error = || MoneyError(text.to_owned());
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || whole.len() > 13
            || fraction.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(error());
        }
        let whole: i64 = whole.parse().map_err(|_| error())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| error())?;
        Ok(Self(whole * 100 + fraction))
    }
}

impl std::ops::Add for Money {
    type Output = Self;

    /// Saturating: claim totals are validated far below the limit.
    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, |sum, money| sum + money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_round_trip_exactly() {
        for (text, kopecks, shown) in [
            ("2500", 250_000, "2500.00"),
            ("0.5", 50, "0.50"),
            ("1200.05", 120_005, "1200.05"),
        ] {
            let money = Money::parse(text).unwrap();
            assert_eq!(money.kopecks(), kopecks);
            assert_eq!(money.to_string(), shown);
        }
        for bad in [
            "",
            "-1",
            "1.234",
            "1.",
            ".5",
            "1e3",
            "12 00",
            "99999999999999",
        ] {
            assert!(Money::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&Money::from_kopecks(550_000)).unwrap();
        assert_eq!(json, "\"5500.00\"");
        assert!(
            serde_json::from_str::<Money>("5500").is_err(),
            "amounts travel as strings"
        );
    }
}
