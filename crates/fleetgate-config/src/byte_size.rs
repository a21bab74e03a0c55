//! Sizes written as a number of bytes or with a binary unit: `65536`,
//! `"32k"`, `"1m"`, `"10MiB"`, as nginx's size settings read.

use serde::{Deserialize, Deserializer};

/// A size in bytes that deserialises from an integer or from a string with
/// an optional unit: `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`
/// (all binary multiples, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"32k"`-style text.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits);
        let number: u64 = number.parse().map_err(|_| {
            format!("invalid size \"{text}\" (write e.g. 65536, \"32k\" or \"1m\")")
        })?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            other => {
                return Err(format!(
                    "invalid size \"{text}\": unknown unit \"{other}\" (use k, m or g)"
                ))
            }
        };
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size \"{text}\" is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_binary_and_case_insensitive() {
        assert_eq!(ByteSize::parse("65536"), Ok(ByteSize(65536)));
        assert_eq!(ByteSize::parse("32k"), Ok(ByteSize(32 * 1024)));
        assert_eq!(ByteSize::parse("1M"), Ok(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("10 MiB"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("2g"), Ok(ByteSize(2 << 30)));
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert!(ByteSize::parse("").unwrap_err().contains("invalid size"));
        assert!(ByteSize::parse("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(ByteSize::parse("-1k").unwrap_err().contains("invalid size"));
        assert!(ByteSize::parse("99999999999999g")
            .unwrap_err()
            .contains("too large"));
    }
}
