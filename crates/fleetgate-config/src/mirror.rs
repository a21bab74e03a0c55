//! Request mirroring annotations of an Ingress: MSE/Higress
//! `mirror-target-service` (`namespace/name:port`, `name:port` or `name`,
//! in the Ingress's namespace unless given) and `mirror-percentage`, and
//! ingress-nginx's `mirror-target` (a URL with nginx variables),
//! `mirror-host` and `mirror-request-body`.

use std::collections::BTreeMap;

use fleetgate_auth::forward::UrlTemplate;

use crate::annotations::AnnotationError;

/// Where copies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorTarget {
    /// A `[[service]]` of the configuration.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port; `None`: the first one declared for it.
        port: Option<u16>,
    },
    /// A URL (`mirror-target`), with nginx variables.
    Url(String),
}

/// Where, and how much of, an Ingress's traffic is mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// Where copies go.
    pub target: MirrorTarget,
    /// The share of requests copied, 0 to 100.
    pub percent: u32,
    /// The `Host` copies carry (`mirror-host`); `None`: the client's for a
    /// Service, the URL's for `mirror-target`.
    pub host: Option<String>,
    /// Whether copies carry the request body (`mirror-request-body`).
    pub request_body: bool,
}

impl MirrorSpec {
    /// Whether the target URL takes the request's host (`$host`).
    pub fn url_uses_host(&self) -> bool {
        matches!(&self.target, MirrorTarget::Url(u) if u.contains("$host") || u.contains("${host}"))
    }
}

fn service_target(
    key: &str,
    target: &str,
    namespace: &str,
) -> Result<MirrorTarget, AnnotationError> {
    let error = |message: String| AnnotationError {
        key: key.to_string(),
        message: format!("value {target:?}: {message}"),
    };
    let text = target.trim();
    let (service, port) = match text.rsplit_once(':') {
        Some((s, p)) => (
            s,
            Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| error(format!("{p:?} is not a port")))?,
            ),
        ),
        None => (text, None),
    };
    let (ns, name) = service.split_once('/').unwrap_or((namespace, service));
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !dns_label(ns) || !dns_label(name) {
        return Err(error(
            "a Service as namespace/name:port, name:port or name".into(),
        ));
    }
    Ok(MirrorTarget::Service {
        namespace: ns.to_string(),
        name: name.to_string(),
        port,
    })
}

fn url_target(key: &str, url: &str) -> Result<MirrorTarget, AnnotationError> {
    let url = url.trim();
    let error = |message: String| AnnotationError {
        key: key.to_string(),
        message: format!("value {url:?}: {message}"),
    };
    UrlTemplate::parse(url).map_err(error)?;
    for variable in [
        "$http_host",
        "${http_host}",
        "$best_http_host",
        "${best_http_host}",
    ] {
        if url.contains(variable) {
            return Err(error(format!(
                "{variable} is the client's Host header: the client would choose where copies go; \
                 use $host (the matched host) or a fixed URL"
            )));
        }
    }
    Ok(MirrorTarget::Url(url.to_string()))
}

/// Reads the mirror annotations of an Ingress in `namespace`.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
) -> Result<Option<MirrorSpec>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let target = match (get("mirror-target-service"), get("mirror-target")) {
        (Some((sk, _)), Some((uk, _))) => {
            return Err(AnnotationError {
                key: uk.to_string(),
                message: format!("{sk} is also set: copies go to one place; use one"),
            })
        }
        (Some((key, t)), None) => service_target(key, t, namespace)?,
        (None, Some((key, u))) => url_target(key, u)?,
        (None, None) => return Ok(None),
    };
    let percent = match get("mirror-percentage") {
        None => 100,
        Some((pk, v)) => match v.trim().parse::<u32>() {
            Ok(p) => p.min(100),
            Err(_) => {
                return Err(AnnotationError {
                    key: pk.to_string(),
                    message: format!("value {v:?}: a whole percentage (0 to 100)"),
                })
            }
        },
    };
    let host = match get("mirror-host") {
        None => None,
        Some((hk, h)) => {
            let h = h.trim();
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                return Err(AnnotationError {
                    key: hk.to_string(),
                    message: format!("value {h:?}: a host name (with an optional port)"),
                });
            }
            Some(h.to_string())
        }
    };
    let request_body = match get("mirror-request-body") {
        None => true,
        Some((_, v)) if v.trim() == "on" => true,
        Some((_, v)) if v.trim() == "off" => false,
        Some((bk, v)) => {
            return Err(AnnotationError {
                key: bk.to_string(),
                message: format!("value {v:?}: \"on\" or \"off\""),
            })
        }
    };
    Ok(Some(MirrorSpec {
        target,
        percent,
        host,
        request_body,
    }))
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
    fn services_urls_and_options() {
        let m = parse(&map(&[("mirror-target-service", "shadow:8080")]), "shop")
            .unwrap()
            .unwrap();
        assert_eq!(
            m.target,
            MirrorTarget::Service {
                namespace: "shop".into(),
                name: "shadow".into(),
                port: Some(8080)
            }
        );
        assert_eq!((m.percent, m.request_body), (100, true));
        let m = parse(
            &map(&[
                ("mirror-target", "https://test.example.com$request_uri"),
                ("mirror-percentage", "25"),
                ("mirror-host", "test.internal"),
                ("mirror-request-body", "off"),
            ]),
            "shop",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            m.target,
            MirrorTarget::Url("https://test.example.com$request_uri".into())
        );
        assert_eq!(
            (m.percent, m.host.as_deref(), m.request_body),
            (25, Some("test.internal"), false)
        );
        assert_eq!(parse(&map(&[]), "shop"), Ok(None));
        for bad in [
            vec![("mirror-target-service", "Shadow")],
            vec![("mirror-target-service", "shadow:http")],
            vec![("mirror-target-service", "a/b/c")],
            vec![("mirror-target", "test.example.com/x")],
            vec![("mirror-target", "http://$http_host/x")],
            vec![
                ("mirror-target", "http://a/"),
                ("mirror-target-service", "b"),
            ],
            vec![
                ("mirror-target", "http://a/"),
                ("mirror-request-body", "yes"),
            ],
        ] {
            assert!(parse(&map(&bad), "shop").is_err(), "{bad:?}");
        }
    }
}
