//! External authentication annotations of an Ingress: `auth-url`,
//! `auth-method`, `auth-signin`, `auth-signin-redirect-param`,
//! `auth-response-headers`, `auth-request-redirect` and the
//! `auth-keepalive*` connection settings (see [`fleetgate_auth::forward`]).
//!
//! Everything is checked when the configuration loads: a URL template
//! with a variable fleetgate does not fill in, a header it must not copy,
//! or an option without `auth-url` (which would leave the route open
//! while its owner believes it protected) refuses the configuration.

use std::collections::BTreeMap;

use fleetgate_auth::forward::{sign_in_template, UrlTemplate};

use crate::annotations::AnnotationError;

impl ForwardAuth {
    /// Whether the service's URL takes the request's host (`$host`): only
    /// safe when every host of the Ingress is a precise name, or the
    /// client would choose the server that vouches for it.
    pub fn url_uses_host(&self) -> bool {
        self.url.contains("$host") || self.url.contains("${host}")
    }
}

/// What an Ingress's external authentication asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuth {
    /// The authentication service's URL (a template with nginx variables).
    pub url: String,
    /// The method of the authentication request (`GET` unless set).
    pub method: String,
    /// Where a 401 sends browsers instead (a template, with the redirect
    /// parameter already added), if anywhere.
    pub signin: Option<String>,
    /// Headers of the service's 2xx answer copied to the upstream request
    /// (lower-case).
    pub response_headers: Vec<String>,
    /// The `X-Auth-Request-Redirect` the service gets (`$request_uri`
    /// unless set).
    pub request_redirect: String,
}

/// The options that only mean something with `auth-url`.
const OPTIONS: [&str; 8] = [
    "auth-method",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-response-headers",
    "auth-request-redirect",
    "auth-keepalive",
    "auth-keepalive-requests",
    "auth-keepalive-timeout",
];

/// Headers the service's answer must not set on the upstream request:
/// they frame the message or name its destination.
const NOT_COPIED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
];

fn error(key: &str, message: String) -> AnnotationError {
    AnnotationError {
        key: key.to_string(),
        message,
    }
}

/// Reads the external authentication annotations.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<ForwardAuth>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let Some((url_key, url)) = get("auth-url") else {
        if let Some((key, _)) = OPTIONS.iter().find_map(|k| get(k)) {
            return Err(error(
                key,
                "does nothing without auth-url; the routes would be served unauthenticated".into(),
            ));
        }
        return Ok(None);
    };
    let url = url.trim();
    UrlTemplate::parse(url).map_err(|e| error(url_key, format!("value {url:?}: {e}")))?;
    for variable in [
        "$http_host",
        "${http_host}",
        "$best_http_host",
        "${best_http_host}",
    ] {
        if url.contains(variable) {
            return Err(error(
                url_key,
                format!(
                    "value {url:?}: {variable} is the client's Host header, port included: the client \
                     would choose where the check goes; use $host (the matched host) or a fixed URL"
                ),
            ));
        }
    }
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    if authority.contains('@') {
        return Err(error(
            url_key,
            format!(
                "value {url:?}: credentials in the URL would be sent as the Host; leave them out"
            ),
        ));
    }
    let method = match get("auth-method") {
        None => "GET".to_string(),
        Some((key, m)) => {
            let m = m.trim();
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(error(
                    key,
                    format!("value {m:?}: an HTTP method in capitals (GET, POST, HEAD, ...)"),
                ));
            }
            m.to_string()
        }
    };
    let param = match get("auth-signin-redirect-param") {
        None => "rd".to_string(),
        Some((key, p)) => {
            let p = p.trim();
            if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(error(key, format!("value {p:?}: a query parameter name")));
            }
            p.to_string()
        }
    };
    let signin = match get("auth-signin") {
        None => None,
        Some((key, s)) => {
            let full = sign_in_template(s.trim(), &param);
            UrlTemplate::parse(&full).map_err(|e| error(key, format!("value {s:?}: {e}")))?;
            Some(full)
        }
    };
    let mut response_headers = Vec::new();
    if let Some((key, list)) = get("auth-response-headers") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let lower = crate::header_rules::checked_name(key, name)?;
            if NOT_COPIED.contains(&lower.as_str()) {
                return Err(error(
                    key,
                    format!(
                        "{name} frames the request or names its destination; it cannot be copied"
                    ),
                ));
            }
            response_headers.push(lower);
        }
    }
    let request_redirect = match get("auth-request-redirect") {
        None => "$request_uri".to_string(),
        Some((key, r)) => {
            let r = r.trim();
            if r.is_empty() || r.contains('$') || r.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(error(
                    key,
                    format!("value {r:?}: a URL or path, without spaces or variables"),
                ));
            }
            r.to_string()
        }
    };
    for key in [
        "auth-keepalive",
        "auth-keepalive-requests",
        "auth-keepalive-timeout",
    ] {
        if let Some((full, v)) = get(key) {
            if v.trim().parse::<u64>().is_err() {
                return Err(error(full, format!("value {v:?}: a whole number")));
            }
        }
    }
    Ok(Some(ForwardAuth {
        url: url.to_string(),
        method,
        signin,
        response_headers,
        request_redirect,
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
    fn reads_an_oauth2_proxy_setup() {
        let auth = parse(&map(&[
            ("auth-url", "https://$host/oauth2/auth"),
            ("auth-signin", "https://$host/oauth2/start"),
            (
                "auth-response-headers",
                "X-Auth-Request-User, X-Auth-Request-Email",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(auth.method, "GET");
        assert_eq!(
            auth.signin.as_deref(),
            Some("https://$host/oauth2/start?rd=$pass_access_scheme://$http_host$escaped_request_uri")
        );
        assert_eq!(
            auth.response_headers,
            ["x-auth-request-user", "x-auth-request-email"]
        );
        assert_eq!(auth.request_redirect, "$request_uri");
    }

    #[test]
    fn what_cannot_work_names_the_annotation() {
        for (pairs, key, why) in [
            (
                vec![("auth-signin", "https://login/")],
                "auth-signin",
                "without auth-url",
            ),
            (
                vec![("auth-url", "auth.local/check")],
                "auth-url",
                "absolute",
            ),
            (
                vec![("auth-url", "http://a/$cookie_x")],
                "auth-url",
                "$cookie_x",
            ),
            (
                vec![("auth-url", "http://$http_host/auth")],
                "auth-url",
                "client would choose",
            ),
            (
                vec![("auth-url", "http://u:p@auth/check")],
                "auth-url",
                "credentials",
            ),
            (
                vec![("auth-url", "http://a/"), ("auth-method", "get")],
                "auth-method",
                "capitals",
            ),
            (
                vec![("auth-url", "http://a/"), ("auth-response-headers", "Host")],
                "auth-response-headers",
                "cannot be copied",
            ),
            (
                vec![("auth-url", "http://a/"), ("auth-keepalive", "many")],
                "auth-keepalive",
                "whole number",
            ),
        ] {
            let err = parse(&map(&pairs)).unwrap_err();
            assert_eq!(err.key, format!("nginx.ingress.kubernetes.io/{key}"));
            assert!(err.message.contains(why), "{}", err.message);
        }
    }
}
