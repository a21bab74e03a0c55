//! Redirect annotations of an Ingress: `permanent-redirect` and
//! `temporal-redirect` (each with a `-code`), and `app-root`.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

/// Every request on the Ingress's routes is answered with a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRule {
    /// The status: 301 (permanent) or 302 (temporal) unless the `-code`
    /// annotation says otherwise (300 to 308).
    pub code: u16,
    /// The `Location`, as written: an absolute `http`/`https` URL or a
    /// path.
    pub location: String,
}

/// Reads `temporal-redirect` (which wins, as in ingress-nginx) or
/// `permanent-redirect`, with their codes.
pub(crate) fn parse_redirect(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<RedirectRule>, AnnotationError> {
    for (key, code_key, default) in [
        ("temporal-redirect", "temporal-redirect-code", 302),
        ("permanent-redirect", "permanent-redirect-code", 301),
    ] {
        let Some((full, value)) = fleetgate_canary::annotation(annotations, key) else {
            continue;
        };
        let location = value.trim();
        if !valid_location(location) {
            return Err(AnnotationError {
                key: full.to_string(),
                message: format!(
                    "value {value:?}: use an absolute http:// or https:// URL or a path starting with /"
                ),
            });
        }
        let code = match fleetgate_canary::annotation(annotations, code_key) {
            None => default,
            Some((full_code, text)) => match text.trim().parse::<u16>() {
                Ok(c) if (300..=308).contains(&c) && c != 304 && c != 305 && c != 306 => c,
                _ => {
                    return Err(AnnotationError {
                        key: full_code.to_string(),
                        message: format!(
                            "value {text:?}: a redirect status is 300, 301, 302, 303, 307 or 308"
                        ),
                    })
                }
            },
        };
        return Ok(Some(RedirectRule {
            code,
            location: location.to_string(),
        }));
    }
    Ok(None)
}

/// Reads `app-root`: the path requests for `/` are redirected to.
pub(crate) fn parse_app_root(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<String>, AnnotationError> {
    let Some((full, value)) = fleetgate_canary::annotation(annotations, "app-root") else {
        return Ok(None);
    };
    let path = value.trim();
    if !path.starts_with('/') || path.starts_with("//") || !is_clean(path) {
        return Err(AnnotationError {
            key: full.to_string(),
            message: format!("value {value:?}: use a path starting with / (e.g. /app1)"),
        });
    }
    Ok(Some(path.to_string()))
}

/// An absolute `http`/`https` URL with a host, or a path (not `//host`).
fn valid_location(s: &str) -> bool {
    if !is_clean(s) || s.is_empty() {
        return false;
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => !r.is_empty() && !r.starts_with('/'),
        None => s.starts_with('/') && !s.starts_with("//"),
    }
}

/// Visible ASCII only (it becomes a header value as written), and no
/// backslash: browsers read `/\host` as `//host`, another site.
fn is_clean(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
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

    const N: &str = "nginx.ingress.kubernetes.io/";

    #[test]
    fn codes_default_and_temporal_wins() {
        let r = parse_redirect(&map(&[(
            &format!("{N}permanent-redirect"),
            "https://new.example/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!((r.code, r.location.as_str()), (301, "https://new.example/"));
        let r = parse_redirect(&map(&[
            (&format!("{N}permanent-redirect"), "https://a.example/"),
            (&format!("{N}temporal-redirect"), "/maintenance"),
            (&format!("{N}temporal-redirect-code"), "307"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((r.code, r.location.as_str()), (307, "/maintenance"));
        assert_eq!(parse_redirect(&map(&[])), Ok(None));
    }

    #[test]
    fn bad_values_are_refused() {
        for (key, value) in [
            ("permanent-redirect", "ftp://x"),
            ("permanent-redirect", "//evil.example/"),
            ("permanent-redirect", "https://"),
            ("temporal-redirect", "/a b"),
            ("temporal-redirect", "/\\evil.example"),
        ] {
            let err = parse_redirect(&map(&[(&format!("{N}{key}"), value)])).unwrap_err();
            assert_eq!(err.key, format!("{N}{key}"), "{value}");
        }
        let err = parse_redirect(&map(&[
            (&format!("{N}permanent-redirect"), "/x"),
            (&format!("{N}permanent-redirect-code"), "200"),
        ]))
        .unwrap_err();
        assert!(err.key.ends_with("permanent-redirect-code"));
        assert!(parse_app_root(&map(&[(&format!("{N}app-root"), "app")])).is_err());
        assert_eq!(
            parse_app_root(&map(&[(&format!("{N}app-root"), "/app1")])),
            Ok(Some("/app1".to_string()))
        );
    }
}
