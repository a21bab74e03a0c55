//! CORS annotations of an Ingress (`enable-cors` and the `cors-*` keys),
//! with ingress-nginx's defaults.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

/// Methods allowed when `cors-allow-methods` is not given.
pub const DEFAULT_CORS_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
/// Headers allowed when `cors-allow-headers` is not given.
pub const DEFAULT_CORS_HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
/// `Access-Control-Max-Age` when `cors-max-age` is not given (20 days).
pub const DEFAULT_CORS_MAX_AGE: u32 = 1_728_000;

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any (`*`, the default).
    Any,
    /// These: exact `scheme://host[:port]` values, or with one `*.` label
    /// wildcard in the host (`https://*.example.com`).
    List(Vec<String>),
}

/// The CORS policy of an Ingress's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// Allowed origins.
    pub origins: CorsOrigins,
    /// `Access-Control-Allow-Methods`.
    pub methods: String,
    /// `Access-Control-Allow-Headers`.
    pub headers: String,
    /// `Access-Control-Expose-Headers` (empty: not sent).
    pub expose: String,
    /// `Access-Control-Allow-Credentials: true` (default true).
    pub credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: u32,
}

/// Reads the policy when `enable-cors: "true"`; `None` otherwise.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<CorsPolicy>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let err = |key: &str, message: String| AnnotationError {
        key: key.to_string(),
        message,
    };
    match get("enable-cors") {
        None => return Ok(None),
        Some((_, v)) if v.trim() == "false" => return Ok(None),
        Some((_, v)) if v.trim() == "true" => {}
        Some((k, v)) => return Err(err(k, format!("value {v:?}: \"true\" or \"false\""))),
    }
    let origins = match get("cors-allow-origin") {
        None => CorsOrigins::Any,
        Some((_, v)) if v.trim() == "*" => CorsOrigins::Any,
        Some((k, v)) => {
            let mut list = Vec::new();
            for origin in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if !valid_origin(origin) {
                    return Err(err(
                        k,
                        format!("value {v:?}: {origin:?} is not an origin (https://example.com, https://*.example.com:8443)"),
                    ));
                }
                list.push(origin.to_ascii_lowercase());
            }
            if list.is_empty() {
                return Err(err(k, format!("value {v:?}: no origin")));
            }
            CorsOrigins::List(list)
        }
    };
    let text = |key: &str, default: &str| -> Result<String, AnnotationError> {
        match get(key) {
            None => Ok(default.to_string()),
            Some((_, v)) if v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => {
                Ok(v.trim().to_string())
            }
            Some((k, v)) => Err(err(k, format!("value {v:?}: visible ASCII only"))),
        }
    };
    let credentials = match get("cors-allow-credentials") {
        None => true,
        Some((_, v)) if v.trim() == "true" => true,
        Some((_, v)) if v.trim() == "false" => false,
        Some((k, v)) => return Err(err(k, format!("value {v:?}: \"true\" or \"false\""))),
    };
    let max_age = match get("cors-max-age") {
        None => DEFAULT_CORS_MAX_AGE,
        Some((k, v)) => v
            .trim()
            .parse()
            .map_err(|_| err(k, format!("value {v:?}: seconds, a whole number")))?,
    };
    Ok(Some(CorsPolicy {
        origins,
        methods: text("cors-allow-methods", DEFAULT_CORS_METHODS)?,
        headers: text("cors-allow-headers", DEFAULT_CORS_HEADERS)?,
        expose: text("cors-expose-headers", "")?,
        credentials,
        max_age,
    }))
}

/// `scheme://host[:port]`, the host perhaps starting with `*.`.
fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => host,
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
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
    fn defaults_and_lists() {
        let p = parse(&map(&[("enable-cors", "true")])).unwrap().unwrap();
        assert_eq!(p.origins, CorsOrigins::Any);
        assert_eq!(p.methods, DEFAULT_CORS_METHODS);
        assert!(p.credentials);
        assert_eq!(p.max_age, DEFAULT_CORS_MAX_AGE);
        let p = parse(&map(&[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://app.example.com, https://*.Example.org:8443",
            ),
            ("cors-allow-credentials", "false"),
            ("cors-max-age", "600"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            p.origins,
            CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "https://*.example.org:8443".into()
            ])
        );
        assert!(!p.credentials);
        assert_eq!(parse(&map(&[("cors-allow-origin", "x")])), Ok(None));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &[("enable-cors", "yes")][..],
            &[
                ("enable-cors", "true"),
                ("cors-allow-origin", "example.com"),
            ][..],
            &[("enable-cors", "true"), ("cors-max-age", "-1")][..],
            &[("enable-cors", "true"), ("cors-allow-credentials", "maybe")][..],
        ] {
            assert!(parse(&map(bad)).is_err(), "{bad:?}");
        }
    }
}
