//! Upstream settings an Ingress sets for its routes: `proxy-connect-timeout`,
//! `proxy-read-timeout`, `proxy-send-timeout` (seconds, as ingress-nginx
//! writes them, or a duration with a unit), `proxy-body-size` (an nginx
//! size; `0` for no limit) and when to try another endpoint
//! (`proxy-next-upstream`, `-tries`, `-timeout`).

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
    /// `proxy-next-upstream`, `-tries`, `-timeout`.
    pub next_upstream: Option<NextUpstreamRule>,
}

/// The statuses `proxy-next-upstream` can name, in the order of
/// [`NextUpstreamRule::status_mask`]'s bits.
pub const NEXT_UPSTREAM_STATUSES: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];

/// When a route's requests go on to another endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NextUpstreamRule {
    /// `error`: connection refused or reset, closed before answering.
    pub on_error: bool,
    /// `timeout`.
    pub on_timeout: bool,
    /// `invalid_header`.
    pub on_invalid_header: bool,
    /// `non_idempotent`: also POST, PATCH, ...
    pub non_idempotent: bool,
    /// `http_500`, ...: bit i for [`NEXT_UPSTREAM_STATUSES`]`[i]`.
    pub status_mask: u8,
    /// `proxy-next-upstream-tries`: tries in all (`Some(0)`: no limit but
    /// the endpoints); `None`: the Service's `retries` + 1.
    pub tries: Option<u32>,
    /// `proxy-next-upstream-timeout`: no retry once the request is older.
    pub timeout: Option<Duration>,
}

impl NextUpstreamRule {
    /// The statuses retried on.
    pub fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        NEXT_UPSTREAM_STATUSES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.status_mask & (1 << i) != 0)
            .map(|(_, s)| *s)
    }
}

/// Reads `proxy-next-upstream`, `-tries` and `-timeout`; `None` when none
/// is set.
fn parse_next_upstream(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<NextUpstreamRule>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let (conditions, tries, timeout) = (
        get("proxy-next-upstream"),
        get("proxy-next-upstream-tries"),
        get("proxy-next-upstream-timeout"),
    );
    if conditions.is_none() && tries.is_none() && timeout.is_none() {
        return Ok(None);
    }
    // ingress-nginx's default conditions.
    let mut rule = NextUpstreamRule {
        on_error: true,
        on_timeout: true,
        ..NextUpstreamRule::default()
    };
    if let Some((key, value)) = conditions {
        rule.on_error = false;
        rule.on_timeout = false;
        let words: Vec<&str> = value.split_whitespace().collect();
        if words.is_empty() || (words.contains(&"off") && words.len() > 1) {
            return Err(AnnotationError {
                key: key.to_string(),
                message: format!(
                    "value {value:?}: conditions separated by spaces, or \"off\" alone"
                ),
            });
        }
        for word in words {
            match word {
                "off" => {}
                "error" => rule.on_error = true,
                "timeout" => rule.on_timeout = true,
                "invalid_header" => rule.on_invalid_header = true,
                "non_idempotent" => rule.non_idempotent = true,
                other => {
                    let status = other
                        .strip_prefix("http_")
                        .and_then(|s| s.parse::<u16>().ok())
                        .and_then(|s| NEXT_UPSTREAM_STATUSES.iter().position(|&k| k == s));
                    match status {
                        Some(bit) => rule.status_mask |= 1 << bit,
                        None => {
                            return Err(AnnotationError {
                                key: key.to_string(),
                                message: format!(
                                    "value {value:?}: {other:?} is not one of error, timeout, invalid_header, \
                                     http_500, http_502, http_503, http_504, http_403, http_404, http_429, \
                                     non_idempotent, off"
                                ),
                            })
                        }
                    }
                }
            }
        }
    }
    if let Some((key, value)) = tries {
        rule.tries = Some(value.trim().parse::<u32>().map_err(|_| AnnotationError {
            key: key.to_string(),
            message: format!("value {value:?}: a whole number of tries (0: no limit)"),
        })?);
    }
    if let Some((key, value)) = timeout {
        let text = value.trim();
        let parsed = match text.parse::<u64>() {
            Ok(secs) => Ok(Duration::from_secs(secs)),
            Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(d) if d <= MAX_DURATION => rule.timeout = (!d.is_zero()).then_some(d),
            _ => {
                return Err(AnnotationError {
                    key: key.to_string(),
                    message: format!("value {value:?}: seconds (\"0\": no limit) or a duration"),
                })
            }
        }
    }
    Ok(Some(rule))
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
        next_upstream: parse_next_upstream(annotations)?,
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

    #[test]
    fn next_upstream_conditions_tries_and_timeout() {
        let r = parse(&map(&[(
            "proxy-next-upstream",
            "error timeout http_502 http_503 non_idempotent",
        )]))
        .unwrap()
        .unwrap()
        .next_upstream
        .unwrap();
        assert!(r.on_error && r.on_timeout && r.non_idempotent && !r.on_invalid_header);
        assert_eq!(r.statuses().collect::<Vec<_>>(), [502, 503]);
        assert_eq!(r.tries, None);
        let off = parse(&map(&[("proxy-next-upstream", "off")]))
            .unwrap()
            .unwrap()
            .next_upstream
            .unwrap();
        assert!(!off.on_error && !off.on_timeout && off.status_mask == 0);
        // Tries alone keep ingress-nginx's default conditions.
        let tries = parse(&map(&[
            ("proxy-next-upstream-tries", "5"),
            ("proxy-next-upstream-timeout", "2"),
        ]))
        .unwrap()
        .unwrap()
        .next_upstream
        .unwrap();
        assert!(tries.on_error && tries.on_timeout);
        assert_eq!(tries.tries, Some(5));
        assert_eq!(tries.timeout, Some(Duration::from_secs(2)));
        for (pairs, why) in [
            (
                vec![("proxy-next-upstream", "error http_418")],
                "\"http_418\" is not one of",
            ),
            (vec![("proxy-next-upstream", "off error")], "\"off\" alone"),
            (vec![("proxy-next-upstream-tries", "-1")], "whole number"),
            (vec![("proxy-next-upstream-timeout", "soon")], "seconds"),
        ] {
            let err = parse(&map(&pairs)).unwrap_err();
            assert!(err.message.contains(why), "{}", err.message);
        }
    }
}
