//! Durations written as strings: `"500ms"`, `"2s"`, `"1m 30s"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration that deserialises from a human string (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration \"{s}\": {e} (write e.g. \"500ms\" or \"2s\")"
                ))
            })
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}
