//! Durations written as strings: `"500ms"`, `"2s"`, `"1m 30s"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration the configuration accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration that deserialises from a human string (humantime syntax), at
/// most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration \"{s}\": {e} (write e.g. \"500ms\" or \"2s\")"
            ))
        })?;
        // Far beyond any sensible timeout or interval, and far from the
        // overflow of a clock reading plus the duration.
        if parsed > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration \"{s}\" is too long (at most 365 days)"
            )));
        }
        Ok(HumanDuration(parsed))
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}
