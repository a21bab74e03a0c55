//! Basic authentication annotations: `auth-type: basic`, `auth-secret`
//! (a Secret in the manifests whose `auth` key holds htpasswd lines, or,
//! with `auth-secret-type: auth-map`, one key per user), `auth-realm`.
//!
//! Read in two steps: the annotations with the Ingress, the Secret once
//! every manifest is loaded. Anything that keeps the check from working as
//! asked (another auth type, a missing Secret or key, a hash fleetgate
//! cannot check) is a configuration error: the route is never published
//! without its authentication.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::annotations::AnnotationError;

use fleetgate_auth::Credentials;

use crate::error::ConfigError;
use crate::load::Loader;
use crate::manifests::SecretDecl;
use crate::model::{Disposition, Ingress};

/// The realm when `auth-realm` is not given.
pub const DEFAULT_REALM: &str = "Authentication Required";

/// What the annotations ask for, before the Secret is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthRequest {
    /// `auth-secret` as written (its key).
    pub annotation: String,
    /// The Secret's namespace and name.
    pub secret: (String, String),
    /// `auth-map`: each key of the Secret is a user.
    pub map: bool,
    /// `auth-realm`.
    pub realm: String,
}

/// Basic authentication of an Ingress's routes, ready to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The realm shown by browsers.
    pub realm: String,
    /// Who may pass.
    pub credentials: Arc<Credentials>,
    /// `namespace/name` of the Secret, for listings.
    pub secret: String,
}

/// Reads the annotations of an Ingress in `namespace`.
pub(crate) fn parse_request(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
) -> Result<Option<BasicAuthRequest>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let Some((type_key, kind)) = get("auth-type") else {
        // The other keys alone would be ignored by ingress-nginx, leaving
        // the route open: say so instead.
        for key in ["auth-secret", "auth-secret-type", "auth-realm"] {
            if let Some((full, _)) = get(key) {
                return Err(AnnotationError {
                    key: full.to_string(),
                    message: "needs auth-type: basic; without it the route would be open".into(),
                });
            }
        }
        return Ok(None);
    };
    if kind.trim() != "basic" {
        return Err(AnnotationError {
            key: type_key.to_string(),
            message: format!(
                "value {kind:?}: only \"basic\" is implemented (digest is not); the Ingress is not served without it"
            ),
        });
    }
    let Some((secret_key, secret)) = get("auth-secret") else {
        return Err(AnnotationError {
            key: type_key.to_string(),
            message: "auth-type: basic needs auth-secret (the Secret holding the htpasswd lines)"
                .into(),
        });
    };
    let secret = secret.trim();
    let (ns, name) = match secret.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (namespace, secret),
    };
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        return Err(AnnotationError {
            key: secret_key.to_string(),
            message: format!("value {secret:?}: use name or namespace/name"),
        });
    }
    let map = match get("auth-secret-type") {
        None => false,
        Some((_, v)) if v.trim() == "auth-file" => false,
        Some((_, v)) if v.trim() == "auth-map" => true,
        Some((k, v)) => {
            return Err(AnnotationError {
                key: k.to_string(),
                message: format!("value {v:?}: use \"auth-file\" (the default) or \"auth-map\""),
            })
        }
    };
    let realm = get("auth-realm").map_or(DEFAULT_REALM, |(_, v)| v.trim());
    if realm.contains('"') || realm.bytes().any(|b| b.is_ascii_control()) {
        return Err(AnnotationError {
            key: get("auth-realm").map_or_else(String::new, |(k, _)| k.to_string()),
            message: format!("value {realm:?}: no quotes or control characters"),
        });
    }
    Ok(Some(BasicAuthRequest {
        annotation: secret_key.to_string(),
        secret: (ns.to_string(), name.to_string()),
        map,
        realm: realm.to_string(),
    }))
}

/// Reads the Secrets the served Ingresses ask for; errors go to `l`.
pub(crate) fn resolve(l: &mut Loader<'_>, ingresses: &mut [Ingress], secrets: &[SecretDecl]) {
    let by_name: HashMap<(&str, &str), &SecretDecl> = secrets
        .iter()
        .map(|s| ((s.namespace.as_str(), s.name.as_str()), s))
        .collect();
    for ing in ingresses
        .iter_mut()
        .filter(|i| i.disposition == Disposition::Served)
    {
        let Some(request) = ing.basic_auth_request.clone() else {
            continue;
        };
        let (ns, name) = (&request.secret.0, &request.secret.1);
        let error = |message: String| {
            ConfigError::new(message)
                .at(ing.origin.clone())
                .object(format!("Ingress {}", ing.key()))
                .field(format!("metadata.annotations[\"{}\"]", request.annotation))
        };
        let Some(secret) = by_name.get(&(ns.as_str(), name.as_str())) else {
            l.errors.push(error(format!(
                "Secret {ns}/{name} is not in any manifest file; the Ingress is not served without its authentication"
            )));
            continue;
        };
        let parsed = if request.map {
            let pairs: Result<Vec<(&str, &str)>, String> = secret
                .data
                .iter()
                .map(|(k, v)| {
                    std::str::from_utf8(v)
                        .map(|v| (k.as_str(), v))
                        .map_err(|_| format!("the value of {k:?} is not text"))
                })
                .collect();
            pairs.and_then(|p| Credentials::from_pairs(p).map_err(|e| e.to_string()))
        } else {
            match secret.data.get("auth").map(|v| std::str::from_utf8(v)) {
                None => Err("has no key \"auth\" (the htpasswd lines)".to_string()),
                Some(Err(_)) => Err("key \"auth\" is not text".to_string()),
                Some(Ok(text)) => {
                    Credentials::parse(text).map_err(|e| format!("key \"auth\": {e}"))
                }
            }
        };
        match parsed {
            Ok(credentials) => {
                ing.basic_auth = Some(BasicAuth {
                    realm: request.realm.clone(),
                    credentials: Arc::new(credentials),
                    secret: format!("{ns}/{name}"),
                });
            }
            Err(why) => l.errors.push(
                ConfigError::new(format!(
                    "{why}; the Ingress {} is not served without its authentication",
                    ing.key()
                ))
                .at(secret.origin.clone())
                .object(format!("Secret {ns}/{name}")),
            ),
        }
    }
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
    fn requests_and_refusals() {
        let r = parse_request(
            &map(&[
                ("auth-type", "basic"),
                ("auth-secret", "users"),
                ("auth-realm", "Shop"),
            ]),
            "shop",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.secret, ("shop".to_string(), "users".to_string()));
        assert_eq!((r.map, r.realm.as_str()), (false, "Shop"));
        let r = parse_request(
            &map(&[
                ("auth-type", "basic"),
                ("auth-secret", "auth/users"),
                ("auth-secret-type", "auth-map"),
            ]),
            "shop",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (r.secret.0.as_str(), r.map, r.realm.as_str()),
            ("auth", true, DEFAULT_REALM)
        );
        assert_eq!(parse_request(&map(&[]), "shop"), Ok(None));
        for bad in [
            &[("auth-type", "digest"), ("auth-secret", "u")][..],
            &[("auth-type", "basic")][..],
            &[("auth-secret", "u")][..],
            &[("auth-type", "basic"), ("auth-secret", "a/b/c")][..],
            &[
                ("auth-type", "basic"),
                ("auth-secret", "u"),
                ("auth-secret-type", "x"),
            ][..],
            &[
                ("auth-type", "basic"),
                ("auth-secret", "u"),
                ("auth-realm", "a\"b"),
            ][..],
        ] {
            assert!(parse_request(&map(bad), "shop").is_err(), "{bad:?}");
        }
    }
}
