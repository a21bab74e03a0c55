//! Annotation keys under the nginx, MSE and Higress prefixes.
//!
//! Users copy Ingresses between ingress-nginx, Higress and MSE, so the same
//! key may be written under any of the three prefixes, and sometimes under
//! two at once. The lookup here applies the documented precedence (nginx over
//! mse over higress) in one place so every crate of the gateway agrees, and
//! knows which keys exist only under the MSE prefix.

use std::collections::BTreeMap;

/// The ingress-nginx annotation prefix; wins over the other two.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// The MSE Ingress annotation prefix; the only one for MSE-only keys.
pub const MSE_PREFIX: &str = "mse.ingress.kubernetes.io/";
/// The Higress annotation prefix; loses to the other two.
pub const HIGRESS_PREFIX: &str = "higress.io/";
/// All prefixes, highest precedence first.
pub const PREFIXES: [&str; 3] = [NGINX_PREFIX, MSE_PREFIX, HIGRESS_PREFIX];

/// Keys that exist only under [`MSE_PREFIX`]; the same key under another
/// prefix is not read at all.
pub const MSE_ONLY_KEYS: [&str; 6] = [
    "canary-by-query",
    "canary-by-query-value",
    "canary-by-query-pattern",
    "canary-by-cookie-value",
    "service-subset",
    "subset-labels",
];

/// Under which prefixes a key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Any of the three prefixes, nginx over mse over higress.
    Shared,
    /// Only [`MSE_PREFIX`].
    MseOnly,
}

impl KeyScope {
    /// The scope of a key (without prefix): [`KeyScope::MseOnly`] for the
    /// keys in [`MSE_ONLY_KEYS`], [`KeyScope::Shared`] otherwise.
    pub fn of(key: &str) -> KeyScope {
        if MSE_ONLY_KEYS.contains(&key) {
            KeyScope::MseOnly
        } else {
            KeyScope::Shared
        }
    }
}

/// Looks up `key` (without prefix, e.g. `"canary-weight"`) in an Ingress's
/// annotations, under the prefixes its [`KeyScope::of`] allows.
///
/// Returns the full key as written (so messages can quote it) and its value.
///
/// ```
/// use std::collections::BTreeMap;
/// use fleetgate_canary::annotation;
///
/// let annotations: BTreeMap<String, String> = [
///     ("higress.io/canary-weight", "10"),
///     ("mse.ingress.kubernetes.io/canary-weight", "20"),
///     ("nginx.ingress.kubernetes.io/canary-by-query", "env"),
/// ]
/// .into_iter()
/// .map(|(k, v)| (k.to_owned(), v.to_owned()))
/// .collect();
///
/// assert_eq!(
///     annotation(&annotations, "canary-weight"),
///     Some(("mse.ingress.kubernetes.io/canary-weight", "20"))
/// );
/// // MSE-only keys are not read under the nginx prefix.
/// assert_eq!(annotation(&annotations, "canary-by-query"), None);
/// ```
pub fn annotation<'a>(
    annotations: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<(&'a str, &'a str)> {
    annotation_in(annotations, key, KeyScope::of(key))
}

/// Like [`annotation`], with the scope given explicitly, for keys this crate
/// does not know about.
pub fn annotation_in<'a>(
    annotations: &'a BTreeMap<String, String>,
    key: &str,
    scope: KeyScope,
) -> Option<(&'a str, &'a str)> {
    let prefixes: &[&str] = match scope {
        KeyScope::Shared => &PREFIXES,
        KeyScope::MseOnly => &[MSE_PREFIX],
    };
    let mut full = String::with_capacity(NGINX_PREFIX.len() + key.len());
    for prefix in prefixes {
        full.clear();
        full.push_str(prefix);
        full.push_str(key);
        if let Some((k, v)) = annotations.get_key_value(full.as_str()) {
            return Some((k.as_str(), v.as_str()));
        }
    }
    None
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
    fn precedence_is_nginx_then_mse_then_higress() {
        let all = map(&[
            ("higress.io/canary-by-header", "h"),
            ("mse.ingress.kubernetes.io/canary-by-header", "m"),
            ("nginx.ingress.kubernetes.io/canary-by-header", "n"),
        ]);
        assert_eq!(
            annotation(&all, "canary-by-header"),
            Some(("nginx.ingress.kubernetes.io/canary-by-header", "n"))
        );
        let two = map(&[
            ("higress.io/canary-by-header", "h"),
            ("mse.ingress.kubernetes.io/canary-by-header", "m"),
        ]);
        assert_eq!(
            annotation(&two, "canary-by-header"),
            Some(("mse.ingress.kubernetes.io/canary-by-header", "m"))
        );
        let one = map(&[("higress.io/canary-by-header", "h")]);
        assert_eq!(
            annotation(&one, "canary-by-header"),
            Some(("higress.io/canary-by-header", "h"))
        );
        assert_eq!(annotation(&one, "canary"), None);
    }

    #[test]
    fn mse_only_keys_only_under_mse_prefix() {
        for key in MSE_ONLY_KEYS {
            let elsewhere = map(&[
                (&format!("{NGINX_PREFIX}{key}"), "x"),
                (&format!("{HIGRESS_PREFIX}{key}"), "y"),
            ]);
            assert_eq!(annotation(&elsewhere, key), None, "{key}");
            let mut with_mse = elsewhere.clone();
            with_mse.insert(format!("{MSE_PREFIX}{key}"), "z".into());
            assert_eq!(annotation(&with_mse, key).map(|(_, v)| v), Some("z"));
        }
        // An explicit scope works for keys the crate does not list.
        let other = map(&[("higress.io/new-key", "1")]);
        assert_eq!(annotation_in(&other, "new-key", KeyScope::MseOnly), None);
        assert!(annotation_in(&other, "new-key", KeyScope::Shared).is_some());
    }

    #[test]
    fn keys_are_case_sensitive_and_need_a_prefix() {
        let m = map(&[
            ("Nginx.ingress.kubernetes.io/canary", "true"),
            ("canary", "true"),
        ]);
        assert_eq!(annotation(&m, "canary"), None);
    }
}
