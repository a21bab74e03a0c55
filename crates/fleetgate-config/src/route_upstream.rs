//! Upstream settings an Ingress sets for its routes: `proxy-connect-timeout`,
//! `proxy-read-timeout`, `proxy-send-timeout` (seconds, as ingress-nginx
//! writes them, or a duration with a unit) and `proxy-body-size` (an nginx
//! size; `0` for no limit).

use crate::annotations::AnnotationError;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::byte_size::ByteSize;
use crate::duration::MAX_DURATION;

/// A route's own upstream settings; `None` fields keep the Service's (or
/// the gateway's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteUpstream {
    /// `proxy-connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// `proxy-read-timeout`.
    pub read_timeout: Option<Duration>,
    /// `proxy-send-timeout`.
    pub write_timeout: Option<Duration>,
    /// `proxy-body-size`: `Some(None)` for no limit (`0`).
    pub body_size: Option<Option<u64>>,
}

/// Reads the settings; `None` when none is set.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<RouteUpstream>, AnnotationError> {
    let timeout = |key: &str| -> Result<Option<Duration>, AnnotationError> {
        let Some((full, value)) = fleetgate_canary::annotation(annotations, key) else {
            return Ok(None);
        };
        let text = value.trim();
        let parsed = match text.parse::<u64>() {
            Ok(secs) => Ok(Duration::from_secs(secs)),
            Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(d) if !d.is_zero() && d <= MAX_DURATION => Ok(Some(d)),
            Ok(_) => Err(AnnotationError {
                key: full.to_string(),
                message: format!("value {value:?}: between 1 second and 365 days"),
            }),
            Err(e) => Err(AnnotationError {
                key: full.to_string(),
                message: format!("value {value:?}: seconds (\"120\") or a duration (\"2m\"): {e}"),
            }),
        }
    };
    let settings = RouteUpstream {
        connect_timeout: timeout("proxy-connect-timeout")?,
        read_timeout: timeout("proxy-read-timeout")?,
        write_timeout: timeout("proxy-send-timeout")?,
        body_size: match fleetgate_canary::annotation(annotations, "proxy-body-size") {
            None => None,
            Some((full, value)) => match ByteSize::parse(value) {
                Ok(ByteSize(0)) => Some(None),
                Ok(ByteSize(n)) => Some(Some(n)),
                Err(e) => {
                    return Err(AnnotationError {
                        key: full.to_string(),
                        message: e,
                    })
                }
            },
        },
    };
    if settings == RouteUpstream::default() {
        return Ok(None);
    }
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn seconds_durations_and_sizes() {
        let s = parse(&map(&[
            ("proxy-read-timeout", "3600"),
            ("proxy-connect-timeout", "500ms"),
            ("proxy-body-size", "8m"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.read_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(s.connect_timeout, Some(Duration::from_millis(500)));
        assert_eq!(s.write_timeout, None);
        assert_eq!(s.body_size, Some(Some(8 << 20)));
        let unlimited = parse(&map(&[("proxy-body-size", "0")])).unwrap().unwrap();
        assert_eq!(unlimited.body_size, Some(None));
        assert_eq!(parse(&map(&[])), Ok(None));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            ("proxy-read-timeout", "0"),
            ("proxy-read-timeout", "soon"),
            ("proxy-send-timeout", "-1"),
            ("proxy-body-size", "8q"),
        ] {
            assert!(parse(&map(&[bad])).is_err(), "{bad:?}");
        }
    }
}
