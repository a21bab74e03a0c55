//! Header annotations of an Ingress: `upstream-vhost` (the `Host` the
//! upstream gets; Higress/MSE spell it `rewrite-host`), `x-forwarded-prefix`, and MSE/Higress
//! `request-header-control-{add,update,remove}` and
//! `response-header-control-{add,update,remove}`.
//!
//! `-add` and `-update` take one `name value` pair per line (the value is
//! the rest of the line); `-remove` takes names separated by commas.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

/// What to do to one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Append a value (`-add`).
    Add(String, String),
    /// Replace every value (`-update`, `upstream-vhost` for `Host`).
    Set(String, String),
    /// Remove every value (`-remove`).
    Remove(String),
}

/// The header changes of an Ingress's routes, in the order they apply:
/// removals, then updates, then additions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderRules {
    /// On each upstream request.
    pub request: Vec<HeaderOp>,
    /// On each response to the client.
    pub response: Vec<HeaderOp>,
}

/// Headers no annotation may touch: the gateway frames messages itself.
const FRAMING: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
];

/// Reads the header annotations; `None` when there are none.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<HeaderRules>, AnnotationError> {
    let mut rules = HeaderRules::default();
    for (side, list) in [
        ("request", &mut rules.request),
        ("response", &mut rules.response),
    ] {
        if let Some((key, value)) =
            fleetgate_canary::annotation(annotations, &format!("{side}-header-control-remove"))
        {
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                list.push(HeaderOp::Remove(single_host(
                    key,
                    checked_name(key, name)?,
                )?));
            }
        }
        for (suffix, set) in [("update", true), ("add", false)] {
            let Some((key, value)) = fleetgate_canary::annotation(
                annotations,
                &format!("{side}-header-control-{suffix}"),
            ) else {
                continue;
            };
            for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (name, v) =
                    line.split_once(char::is_whitespace)
                        .ok_or_else(|| AnnotationError {
                            key: key.to_string(),
                            message: format!("line {line:?}: write \"name value\""),
                        })?;
                let name = checked_name(key, name)?;
                let v = checked_value(key, v.trim())?;
                list.push(if set {
                    HeaderOp::Set(name, v)
                } else {
                    HeaderOp::Add(single_host(key, name)?, v)
                });
            }
        }
    }
    let vhost = fleetgate_canary::annotation(annotations, "upstream-vhost");
    let rewrite_host = fleetgate_canary::annotation(annotations, "rewrite-host");
    if let (Some((vk, _)), Some((rk, _))) = (vhost, rewrite_host) {
        return Err(AnnotationError {
            key: rk.to_string(),
            message: format!("{vk} is also set: both set the upstream Host; use one"),
        });
    }
    if let Some((key, host)) = vhost.or(rewrite_host) {
        let host = host.trim();
        if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
            return Err(AnnotationError {
                key: key.to_string(),
                message: format!("value {host:?}: a host name (with an optional port)"),
            });
        }
        rules
            .request
            .push(HeaderOp::Set("host".into(), checked_value(key, host)?));
    }
    if let Some((key, prefix)) = fleetgate_canary::annotation(annotations, "x-forwarded-prefix") {
        rules.request.push(HeaderOp::Set(
            "x-forwarded-prefix".into(),
            checked_value(key, prefix.trim())?,
        ));
    }
    if rules.request.is_empty() && rules.response.is_empty() {
        return Ok(None);
    }
    Ok(Some(rules))
}

/// A header name, lower-cased; framing headers are refused.
pub(crate) fn checked_name(key: &str, name: &str) -> Result<String, AnnotationError> {
    let lower = name.to_ascii_lowercase();
    let token = !lower.is_empty()
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(AnnotationError {
            key: key.to_string(),
            message: format!("{name:?} is not a header name"),
        });
    }
    if FRAMING.contains(&lower.as_str()) {
        return Err(AnnotationError {
            key: key.to_string(),
            message: format!("{name} frames the message; the gateway sets it itself"),
        });
    }
    Ok(lower)
}

/// A request has exactly one `Host`: it can be set (`-update`,
/// `upstream-vhost`), not added or removed.
fn single_host(key: &str, name: String) -> Result<String, AnnotationError> {
    if name == "host" {
        return Err(AnnotationError {
            key: key.to_string(),
            message: "Host can only be set (-update or upstream-vhost), not added or removed"
                .into(),
        });
    }
    Ok(name)
}

fn checked_value(key: &str, value: &str) -> Result<String, AnnotationError> {
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(AnnotationError {
            key: key.to_string(),
            message: format!("value {value:?} holds control characters"),
        });
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_kind_in_order() {
        let rules = parse(&map(&[
            (
                "mse.ingress.kubernetes.io/request-header-control-add",
                "X-Team shop\nX-Env  prod eu",
            ),
            (
                "mse.ingress.kubernetes.io/request-header-control-update",
                "User-Agent fleetgate",
            ),
            (
                "mse.ingress.kubernetes.io/request-header-control-remove",
                "Cookie, X-Debug",
            ),
            ("higress.io/response-header-control-remove", "Server"),
            (
                "nginx.ingress.kubernetes.io/upstream-vhost",
                "internal.example:8080",
            ),
            ("nginx.ingress.kubernetes.io/x-forwarded-prefix", "/shop"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            rules.request,
            [
                HeaderOp::Remove("cookie".into()),
                HeaderOp::Remove("x-debug".into()),
                HeaderOp::Set("user-agent".into(), "fleetgate".into()),
                HeaderOp::Add("x-team".into(), "shop".into()),
                HeaderOp::Add("x-env".into(), "prod eu".into()),
                HeaderOp::Set("host".into(), "internal.example:8080".into()),
                HeaderOp::Set("x-forwarded-prefix".into(), "/shop".into()),
            ]
        );
        assert_eq!(rules.response, [HeaderOp::Remove("server".into())]);
        assert_eq!(parse(&map(&[])), Ok(None));
    }

    #[test]
    fn framing_and_malformed_headers_are_refused() {
        for (key, value) in [
            ("request-header-control-remove", "Content-Length"),
            ("request-header-control-add", "NoValue"),
            ("response-header-control-update", "Bad:Name x"),
            ("upstream-vhost", "a b"),
            ("request-header-control-add", "Host evil.example"),
            ("request-header-control-remove", "Host"),
            ("request-header-control-update", "Keep-Alive timeout=5"),
        ] {
            let full = format!("mse.ingress.kubernetes.io/{key}");
            assert!(parse(&map(&[(&full, value)])).is_err(), "{key}: {value}");
        }
    }
}
