//! `[compression]`: gzip and brotli for responses of the listed media
//! types, off unless `enabled` (or an Ingress's `fleetgate.io/compression`
//! annotation) turns it on.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;
use crate::error::{ConfigError, Location};
use crate::load::Loader;
use crate::toml_schema::CompressionToml;

/// The fleetgate-specific annotation that turns compression on or off for
/// an Ingress's routes.
pub const COMPRESSION_ANNOTATION: &str = "fleetgate.io/compression";

/// How responses are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// For routes whose Ingress does not say.
    pub enabled: bool,
    /// gzip level 1 to 9; 0: no gzip.
    pub gzip_level: u32,
    /// brotli quality 1 to 11; 0: no brotli.
    pub brotli_level: u32,
    /// Responses declaring a shorter body are sent as they are (bytes).
    pub min_length: u64,
    /// Media types compressed, lower-case; `None`: the gateway's default
    /// list (`fleetgate_proxy::compression::DEFAULT_TYPES`, ingress-nginx's
    /// `gzip-types` and `text/html`).
    pub types: Option<Vec<String>>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            enabled: false,
            gzip_level: 5,
            brotli_level: 4,
            min_length: 256,
            types: None,
        }
    }
}

/// Reads `[compression]`.
pub(crate) fn compression(l: &mut Loader<'_>, c: &CompressionToml) -> Compression {
    let defaults = Compression::default();
    let mut error = |field: &str, message: String| {
        l.errors.push(
            ConfigError::new(message)
                .at(Location::file(l.file))
                .field(format!("compression.{field}")),
        );
    };
    let gzip_level = c.gzip_level.unwrap_or(defaults.gzip_level);
    if gzip_level > 9 {
        error(
            "gzip_level",
            format!("{gzip_level} is not a gzip level (1-9, 0: no gzip)"),
        );
    }
    let brotli_level = c.brotli_level.unwrap_or(defaults.brotli_level);
    if brotli_level > 11 {
        error(
            "brotli_level",
            format!("{brotli_level} is not a brotli quality (1-11, 0: no brotli)"),
        );
    }
    if gzip_level == 0 && brotli_level == 0 {
        error(
            "gzip_level",
            "gzip_level and brotli_level are both 0: nothing could be compressed".into(),
        );
    }
    let types = match &c.types {
        None => defaults.types,
        Some(list) => {
            let mut types = Vec::new();
            for t in list {
                let lower = t.trim().to_ascii_lowercase();
                let valid = lower.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty() && !b.is_empty() && !lower.contains([';', ' ', ','])
                });
                if !valid {
                    error(
                        "types",
                        format!("{t:?} is not a media type (type/subtype, without parameters)"),
                    );
                }
                types.push(lower);
            }
            if types.is_empty() {
                error("types", "an empty list compresses nothing".into());
            }
            Some(types)
        }
    };
    Compression {
        enabled: c.enabled.unwrap_or(false),
        gzip_level,
        brotli_level,
        min_length: c.min_length.map_or(defaults.min_length, |s| s.0),
        types,
    }
}

/// Reads an Ingress's `fleetgate.io/compression`.
pub(crate) fn parse_choice(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<bool>, AnnotationError> {
    match annotations.get(COMPRESSION_ANNOTATION).map(|v| v.trim()) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(AnnotationError {
            key: COMPRESSION_ANNOTATION.to_string(),
            message: format!("value {other:?}: \"true\" or \"false\""),
        }),
    }
}
