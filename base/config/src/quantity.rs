//! Human-written quantities: byte sizes ("512K", "128M") and durations
//! ("100ms", "20s"). Both deserialize from strings and explain the accepted
//! forms when a string does not parse.

use alloc::format;
use alloc::string::String;
use core::fmt;
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// Why a quantity string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits "128M" into (128, "M"); the number must be decimal digits only.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number = text[..digits].parse().ok()?;
    Some((number, &text[digits..]))
}

/// A number of bytes, written as digits with an optional binary suffix
/// `K`, `M` or `G` (powers of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses "4096", "512K", "128M" or "2G".
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let refuse = || {
            QuantityError(format!(
                "\"{text}\" is not a size: write digits with an optional K, M or G suffix, e.g. \"4096\", \"512K\", \"128M\", \"2G\""
            ))
        };
        let (number, suffix) = split_number(text).ok_or_else(refuse)?;
        let shift = match suffix {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            _ => return Err(refuse()),
        };
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| QuantityError(format!("\"{text}\" is too large")))
    }

    /// The size in whole mebibytes, rounded down.
    pub fn mebibytes(self) -> u64 {
        self.0 >> 20
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
            if self.0 != 0 && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{suffix}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ByteSize::parse(&text).map_err(de::Error::custom)
    }
}

/// A span of time, written as digits with a unit: `ms`, `s` or `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    /// Milliseconds.
    pub millis: u64,
}

impl Duration {
    /// Parses "100ms", "20s" or "2m".
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let refuse = || {
            QuantityError(format!(
                "\"{text}\" is not a duration: write digits with a unit ms, s or m, e.g. \"100ms\", \"20s\", \"2m\""
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(refuse)?;
        let scale = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            _ => return Err(refuse()),
        };
        number
            .checked_mul(scale)
            .map(|millis| Duration { millis })
            .ok_or_else(|| QuantityError(format!("\"{text}\" is too long")))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(de::Error::custom)
    }
}
