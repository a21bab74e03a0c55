//! Load-balancing annotations of an Ingress: `upstream-hash-by`
//! (consistent hashing on a request key), cookie `affinity` with its
//! `session-cookie-*` attributes, and `load-balance`.

use std::collections::BTreeMap;

use fleetgate_router::HashKey;

use crate::annotations::AnnotationError;

/// How an Ingress's routes pick endpoints, when not by round robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balancing {
    /// `upstream-hash-by`: the key as written.
    HashBy(String),
    /// `affinity: cookie`.
    Cookie(AffinityCookie),
    /// `load-balance: ewma`: least request (power of two choices).
    LeastRequest,
}

/// The affinity cookie's name and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityCookie {
    /// `session-cookie-name` (default `INGRESSCOOKIE`).
    pub name: String,
    /// `session-cookie-path` (default `/`).
    pub path: String,
    /// `session-cookie-max-age` (or `-expires`), seconds.
    pub max_age: Option<u64>,
    /// `session-cookie-samesite`: `None`, `Lax` or `Strict`.
    pub same_site: Option<String>,
    /// `session-cookie-secure`.
    pub secure: bool,
    /// `session-cookie-domain`.
    pub domain: Option<String>,
}

/// The cookie options; they need `affinity: cookie`.
pub(crate) const COOKIE_OPTIONS: [&str; 8] = [
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-max-age",
    "session-cookie-expires",
    "session-cookie-samesite",
    "session-cookie-secure",
    "session-cookie-domain",
];

fn error(key: &str, message: String) -> AnnotationError {
    AnnotationError {
        key: key.to_string(),
        message,
    }
}

/// Text that can stand in a cookie attribute.
fn cookie_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
}

/// Reads the balancing annotations; `load-balance` beside a hash or
/// affinity, which take precedence, is reported through `warn`.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
    warn: &mut dyn FnMut(&str, &str),
) -> Result<Option<Balancing>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let hash = get("upstream-hash-by");
    let affinity = get("affinity");
    let mut least_request = false;
    if let Some((key, value)) = get("load-balance") {
        match value.trim() {
            "round_robin" => {}
            "ewma" if hash.is_some() || affinity.is_some() => warn(
                key,
                "is not used: upstream-hash-by or affinity decides (as in ingress-nginx)",
            ),
            "ewma" => least_request = true,
            other => return Err(error(key, format!("value {other:?}: round_robin or ewma"))),
        }
    }
    if let (Some((hk, _)), Some((ak, _))) = (hash, affinity) {
        return Err(error(
            ak,
            format!("{hk} is also set: a route keeps clients on endpoints one way; use one"),
        ));
    }
    if let Some((key, value)) = hash {
        HashKey::parse(value).map_err(|e| error(key, format!("value {value:?}: {e}")))?;
        return Ok(Some(Balancing::HashBy(value.trim().to_string())));
    }
    let Some((key, value)) = affinity else {
        return Ok(least_request.then_some(Balancing::LeastRequest));
    };
    if value.trim() != "cookie" {
        return Err(error(key, format!("value {value:?}: only \"cookie\"")));
    }
    if let Some((key, mode)) = get("affinity-mode") {
        if !matches!(mode.trim(), "balanced" | "persistent") {
            return Err(error(
                key,
                format!("value {mode:?}: balanced or persistent"),
            ));
        }
    }
    let text = |name: &str, default: Option<&str>| -> Result<Option<String>, AnnotationError> {
        match get(name) {
            None => Ok(default.map(str::to_string)),
            Some((key, v)) if cookie_safe(v.trim()) => {
                let _ = key;
                Ok(Some(v.trim().to_string()))
            }
            Some((key, v)) => Err(error(
                key,
                format!("value {v:?}: text without spaces, ';' or ','"),
            )),
        }
    };
    let seconds = |name: &str| -> Result<Option<u64>, AnnotationError> {
        match get(name) {
            None => Ok(None),
            Some((key, v)) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| error(key, format!("value {v:?}: whole seconds"))),
        }
    };
    let name = text("session-cookie-name", Some("INGRESSCOOKIE"))?.unwrap_or_default();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        let key = get("session-cookie-name").map_or("session-cookie-name", |(k, _)| k);
        return Err(error(key, format!("{name:?} is not a cookie name")));
    }
    let path = text("session-cookie-path", Some("/"))?.unwrap_or_default();
    if !path.starts_with('/') {
        let key = get("session-cookie-path").map_or("session-cookie-path", |(k, _)| k);
        return Err(error(
            key,
            format!("value {path:?}: a path starting with /"),
        ));
    }
    let same_site = match get("session-cookie-samesite") {
        None => None,
        Some((key, v)) => Some(
            match v.trim().to_ascii_lowercase().as_str() {
                "none" => "None",
                "lax" => "Lax",
                "strict" => "Strict",
                _ => return Err(error(key, format!("value {v:?}: None, Lax or Strict"))),
            }
            .to_string(),
        ),
    };
    let secure = match get("session-cookie-secure") {
        None => false,
        Some((_, v)) if v.trim() == "true" => true,
        Some((_, v)) if v.trim() == "false" => false,
        Some((key, v)) => return Err(error(key, format!("value {v:?}: \"true\" or \"false\""))),
    };
    Ok(Some(Balancing::Cookie(AffinityCookie {
        name,
        path,
        max_age: seconds("session-cookie-max-age")?.or(seconds("session-cookie-expires")?),
        same_site,
        secure,
        domain: text("session-cookie-domain", None)?,
    })))
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

    fn read(pairs: &[(&str, &str)]) -> (Result<Option<Balancing>, AnnotationError>, Vec<String>) {
        let mut warnings = Vec::new();
        let r = parse(&map(pairs), &mut |_, w| warnings.push(w.to_string()));
        (r, warnings)
    }

    #[test]
    fn hash_and_cookie_settings() {
        let (r, _) = read(&[("upstream-hash-by", "$http_x_user")]);
        assert_eq!(r.unwrap(), Some(Balancing::HashBy("$http_x_user".into())));
        let (r, _) = read(&[
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
            ("session-cookie-expires", "172800"),
            ("session-cookie-samesite", "lax"),
            ("session-cookie-secure", "true"),
        ]);
        let Some(Balancing::Cookie(c)) = r.unwrap() else {
            panic!("a cookie")
        };
        assert_eq!(c.name, "route");
        assert_eq!(c.path, "/");
        assert_eq!(c.max_age, Some(172_800));
        assert_eq!(c.same_site.as_deref(), Some("Lax"));
        assert!(c.secure);
        let (r, warnings) = read(&[("load-balance", "ewma")]);
        assert_eq!(r.unwrap(), Some(Balancing::LeastRequest));
        assert!(warnings.is_empty());
        let (r, warnings) = read(&[("load-balance", "ewma"), ("upstream-hash-by", "$uri")]);
        assert_eq!(r.unwrap(), Some(Balancing::HashBy("$uri".into())));
        assert!(warnings[0].contains("is not used"), "{warnings:?}");
    }

    #[test]
    fn what_cannot_work_names_the_annotation() {
        for (pairs, key, why) in [
            (
                vec![("upstream-hash-by", "$foo")],
                "upstream-hash-by",
                "$foo",
            ),
            (vec![("affinity", "ip")], "affinity", "only"),
            (
                vec![("affinity", "cookie"), ("upstream-hash-by", "$uri")],
                "affinity",
                "use one",
            ),
            (
                vec![
                    ("affinity", "cookie"),
                    ("session-cookie-samesite", "sometimes"),
                ],
                "session-cookie-samesite",
                "Lax",
            ),
            (
                vec![("affinity", "cookie"), ("session-cookie-path", "a b")],
                "session-cookie-path",
                "without spaces",
            ),
            (
                vec![("load-balance", "least_conn")],
                "load-balance",
                "round_robin",
            ),
        ] {
            let (r, _) = read(&pairs);
            let err = r.unwrap_err();
            assert_eq!(err.key, format!("nginx.ingress.kubernetes.io/{key}"));
            assert!(err.message.contains(why), "{}", err.message);
        }
    }
}
