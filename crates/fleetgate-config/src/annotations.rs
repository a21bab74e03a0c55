//! The registry of Ingress annotations: every key fleetgate knows under the
//! `nginx.ingress.kubernetes.io/`, `mse.ingress.kubernetes.io/` and
//! `higress.io/` prefixes, whether it is implemented, and what ignoring it
//! would do.
//!
//! Users move to fleetgate by copying Ingress YAML written for
//! ingress-nginx, MSE or Higress. An annotation the gateway does not
//! implement is therefore never silently dropped: it is reported (by
//! `check`, `routes`, the log and the admin API's `/ingresses`), and one
//! that restricts access (authentication, allow and deny lists, rate and
//! connection limits, client certificates, and snippets, which may hold
//! any of these) keeps its Ingress from being served at all, unless
//! `[gateway] unsupported_annotations = "warn"`: an application published
//! without the protection its owner asked for is worse than one not
//! published. docs/annotations.md is this table for users.

use std::collections::BTreeMap;

use fleetgate_canary::{KeyScope, MSE_PREFIX, PREFIXES};

/// An annotation whose value could not be read: its key as written and
/// why. Every annotation parser returns it; the Ingress turns it into a
/// configuration error at the annotation's field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnotationError {
    /// The key as written (with its prefix).
    pub key: String,
    /// Why the value was refused.
    pub message: String,
}

/// Whether fleetgate implements an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Implemented as documented.
    Implemented,
    /// Known, not implemented: reported, and refused when it restricts
    /// access.
    Unsupported,
}

/// One annotation fleetgate knows (its key without prefix).
#[derive(Debug, Clone, Copy)]
pub struct KnownAnnotation {
    /// The key without prefix, e.g. `canary-weight`.
    pub key: &'static str,
    /// Whether it is implemented.
    pub support: Support,
    /// Whether ignoring it would let through requests its owner meant to
    /// keep out (refused when unsupported).
    pub restricts_access: bool,
}

const fn implemented(key: &'static str) -> KnownAnnotation {
    KnownAnnotation {
        key,
        support: Support::Implemented,
        restricts_access: false,
    }
}

const fn implemented_access(key: &'static str) -> KnownAnnotation {
    KnownAnnotation {
        key,
        support: Support::Implemented,
        restricts_access: true,
    }
}

const fn unsupported(key: &'static str) -> KnownAnnotation {
    KnownAnnotation {
        key,
        support: Support::Unsupported,
        restricts_access: false,
    }
}

const fn unsupported_access(key: &'static str) -> KnownAnnotation {
    KnownAnnotation {
        key,
        support: Support::Unsupported,
        restricts_access: true,
    }
}

/// Every annotation fleetgate knows, by family. Keys are looked up under
/// any of the three prefixes (the MSE-only ones under the MSE prefix only,
/// see [`fleetgate_canary::KeyScope`]).
pub const KNOWN: &[KnownAnnotation] = &[
    // Canary releases.
    implemented("canary"),
    implemented("canary-by-header"),
    implemented("canary-by-header-value"),
    implemented("canary-by-header-pattern"),
    implemented("canary-by-cookie"),
    implemented("canary-by-cookie-value"),
    implemented("canary-by-query"),
    implemented("canary-by-query-value"),
    implemented("canary-by-query-pattern"),
    implemented("canary-weight"),
    implemented("canary-weight-total"),
    // Cluster subsets.
    implemented("service-subset"),
    implemented("subset-labels"),
    // Upstream protocol, HTTPS redirects.
    implemented("backend-protocol"),
    implemented("ssl-redirect"),
    implemented("force-ssl-redirect"),
    // Upstream timeouts and the body size, per route.
    implemented("proxy-connect-timeout"),
    implemented("proxy-read-timeout"),
    implemented("proxy-send-timeout"),
    implemented("proxy-body-size"),
    implemented("proxy-next-upstream"),
    implemented("proxy-next-upstream-tries"),
    implemented("proxy-next-upstream-timeout"),
    // CORS.
    implemented("enable-cors"),
    implemented("cors-allow-origin"),
    implemented("cors-allow-methods"),
    implemented("cors-allow-headers"),
    implemented("cors-expose-headers"),
    implemented("cors-allow-credentials"),
    implemented("cors-max-age"),
    // Header changes.
    implemented("upstream-vhost"),
    implemented("x-forwarded-prefix"),
    implemented("request-header-control-add"),
    implemented("request-header-control-update"),
    implemented("request-header-control-remove"),
    implemented("response-header-control-add"),
    implemented("response-header-control-update"),
    implemented("response-header-control-remove"),
    // Load balancing and affinity.
    implemented("load-balance"),
    implemented("upstream-hash-by"),
    implemented("affinity"),
    implemented("affinity-mode"),
    implemented("session-cookie-name"),
    implemented("session-cookie-path"),
    implemented("session-cookie-domain"),
    implemented("session-cookie-max-age"),
    implemented("session-cookie-expires"),
    implemented("session-cookie-secure"),
    implemented("session-cookie-samesite"),
    // Request mirroring.
    implemented("mirror-target-service"),
    implemented("mirror-percentage"),
    implemented("mirror-target"),
    implemented("mirror-host"),
    implemented("mirror-request-body"),
    // Regex paths and upstream path rewrites.
    implemented("use-regex"),
    implemented("rewrite-target"),
    implemented("rewrite-path"),
    implemented("rewrite-host"),
    // Redirects and host aliases.
    implemented("permanent-redirect"),
    implemented("permanent-redirect-code"),
    implemented("temporal-redirect"),
    implemented("temporal-redirect-code"),
    implemented("app-root"),
    implemented("server-alias"),
    // Source address lists.
    implemented_access("whitelist-source-range"),
    implemented_access("allowlist-source-range"),
    implemented_access("denylist-source-range"),
    implemented_access("blacklist-source-range"),
    // Rate and concurrency limits per client.
    implemented_access("limit-rps"),
    implemented_access("limit-rpm"),
    implemented_access("limit-connections"),
    implemented_access("limit-burst-multiplier"),
    implemented_access("limit-whitelist"),
    implemented_access("limit-allowlist"),
    // Basic authentication.
    implemented_access("auth-type"),
    implemented_access("auth-secret"),
    implemented_access("auth-secret-type"),
    implemented_access("auth-realm"),
    unsupported_access("domain-whitelist-source-range"),
    unsupported_access("domain-blacklist-source-range"),
    // External authentication.
    implemented_access("auth-url"),
    implemented_access("auth-method"),
    implemented_access("auth-signin"),
    implemented_access("auth-signin-redirect-param"),
    implemented_access("auth-response-headers"),
    implemented_access("auth-request-redirect"),
    implemented_access("auth-keepalive"),
    implemented_access("auth-keepalive-requests"),
    implemented_access("auth-keepalive-timeout"),
    unsupported_access("auth-cache-key"),
    unsupported_access("auth-cache-duration"),
    unsupported_access("auth-keepalive-share-vars"),
    unsupported_access("auth-proxy-set-headers"),
    unsupported_access("auth-snippet"),
    unsupported_access("auth-always-set-cookie"),
    unsupported_access("enable-global-auth"),
    unsupported_access("satisfy"),
    // Client certificates.
    unsupported_access("auth-tls-secret"),
    unsupported_access("auth-tls-verify-client"),
    unsupported_access("auth-tls-verify-depth"),
    unsupported_access("auth-tls-error-page"),
    unsupported_access("auth-tls-pass-certificate-to-upstream"),
    unsupported_access("auth-tls-match-cn"),
    // Rate and connection limits.
    unsupported_access("route-limit-rps"),
    unsupported_access("route-limit-rpm"),
    unsupported_access("route-limit-burst-multiplier"),
    unsupported_access("global-rate-limit"),
    unsupported_access("global-rate-limit-window"),
    unsupported_access("global-rate-limit-key"),
    unsupported_access("global-rate-limit-ignored-cidrs"),
    // Web application firewall.
    unsupported_access("enable-modsecurity"),
    unsupported_access("enable-owasp-core-rules"),
    unsupported_access("modsecurity-transaction-id"),
    unsupported_access("modsecurity-snippet"),
    // nginx configuration snippets: they may hold `deny`, `auth_*`,
    // `limit_req`, anything.
    unsupported_access("configuration-snippet"),
    unsupported_access("server-snippet"),
    unsupported_access("stream-snippet"),
    // Paths and redirects.
    unsupported("from-to-www-redirect"),
    unsupported("preserve-trailing-slash"),
    unsupported("enable-rewrite-log"),
    // The upstream request.
    unsupported("timeout"),
    unsupported("client-body-buffer-size"),
    unsupported("proxy-request-buffering"),
    unsupported("proxy-buffering"),
    unsupported("proxy-buffers-number"),
    unsupported("proxy-buffer-size"),
    unsupported("proxy-max-temp-file-size"),
    unsupported("proxy-http-version"),
    unsupported("proxy-set-headers"),
    unsupported("proxy-redirect-from"),
    unsupported("proxy-redirect-to"),
    unsupported("proxy-cookie-domain"),
    unsupported("proxy-cookie-path"),
    unsupported("connection-proxy-header"),
    unsupported("service-upstream"),
    unsupported("custom-http-errors"),
    unsupported("default-backend"),
    // Upstream TLS (fleetgate's own is [service.tls]).
    unsupported("proxy-ssl-secret"),
    unsupported("proxy-ssl-ciphers"),
    unsupported("proxy-ssl-name"),
    unsupported("proxy-ssl-protocols"),
    unsupported("proxy-ssl-verify"),
    unsupported("proxy-ssl-verify-depth"),
    unsupported("proxy-ssl-server-name"),
    unsupported("ssl-passthrough"),
    unsupported("ssl-ciphers"),
    unsupported("ssl-prefer-server-ciphers"),
    unsupported("http2-push-preload"),
    // Load balancing and affinity (not implemented).
    unsupported("upstream-hash-by-subset"),
    unsupported("upstream-hash-by-subset-size"),
    unsupported("affinity-canary-behavior"),
    unsupported("session-cookie-conditional-samesite-none"),
    unsupported("session-cookie-change-on-failure"),
    // CORS, mirroring, observability.
    unsupported("enable-access-log"),
    unsupported("enable-opentracing"),
    unsupported("opentracing-trust-incoming-span"),
    unsupported("enable-opentelemetry"),
    unsupported("opentelemetry-trust-incoming-span"),
];

/// Parts of a key that mark an annotation fleetgate does not know as one
/// that restricts access, so that it fails closed too.
const ACCESS_MARKERS: [&str; 17] = [
    "auth",
    "allowlist",
    "whitelist",
    "denylist",
    "blacklist",
    "deny",
    "acl",
    "limit",
    "access-control",
    "ip-access",
    "source-range",
    "cert",
    "modsecurity",
    "waf",
    "jwt",
    "snippet",
    // Higress/MSE request matchers (match-method, exact-match-header-*,
    // ...): a route that should take only some requests would take all.
    "match-",
];

/// Implemented annotations that a canary Ingress takes from its main
/// Ingress (its own are ignored, as in ingress-nginx): they act on the
/// route, which the main Ingress owns. A canary's subset and
/// `backend-protocol` are its own.
const FROM_MAIN_ON_CANARY: [&str; 73] = [
    "mirror-target",
    "mirror-host",
    "mirror-request-body",
    "mirror-target-service",
    "mirror-percentage",
    "load-balance",
    "upstream-hash-by",
    "affinity",
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-domain",
    "session-cookie-max-age",
    "session-cookie-expires",
    "session-cookie-secure",
    "session-cookie-samesite",
    "proxy-next-upstream",
    "proxy-next-upstream-tries",
    "proxy-next-upstream-timeout",
    "auth-url",
    "auth-method",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-response-headers",
    "auth-request-redirect",
    "auth-keepalive",
    "auth-keepalive-requests",
    "auth-keepalive-timeout",
    "use-regex",
    "rewrite-target",
    "rewrite-path",
    "rewrite-host",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-expose-headers",
    "cors-allow-credentials",
    "cors-max-age",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "proxy-body-size",
    "upstream-vhost",
    "x-forwarded-prefix",
    "request-header-control-add",
    "request-header-control-update",
    "request-header-control-remove",
    "response-header-control-add",
    "response-header-control-update",
    "response-header-control-remove",
    "limit-rps",
    "limit-rpm",
    "limit-connections",
    "limit-burst-multiplier",
    "limit-whitelist",
    "limit-allowlist",
    "auth-type",
    "auth-secret",
    "auth-secret-type",
    "auth-realm",
    "ssl-redirect",
    "force-ssl-redirect",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "temporal-redirect-code",
    "app-root",
    "server-alias",
    "whitelist-source-range",
    "allowlist-source-range",
    "denylist-source-range",
    "blacklist-source-range",
];

/// What to do with an Ingress carrying an unsupported annotation that
/// restricts access (`[gateway] unsupported_annotations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnsupportedAnnotations {
    /// The configuration is refused (`"refuse"`, the default).
    #[default]
    Refuse,
    /// The Ingress is served without it, with a warning (`"warn"`).
    Warn,
}

impl UnsupportedAnnotations {
    /// Parses `"refuse"` or `"warn"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refuse" => Some(Self::Refuse),
            "warn" => Some(Self::Warn),
            _ => None,
        }
    }
}

/// The prefix of fleetgate's own annotations.
pub const FLEETGATE_PREFIX: &str = "fleetgate.io/";

/// The registry entry for `key` (without prefix).
pub fn known(key: &str) -> Option<&'static KnownAnnotation> {
    KNOWN.iter().find(|a| a.key == key)
}

/// The prefix `full` is under, and the rest of it.
fn split_prefix(full: &str) -> Option<(&'static str, &str)> {
    PREFIXES
        .iter()
        .find_map(|p| full.strip_prefix(p).map(|rest| (*p, rest)))
}

/// What the review of one Ingress's annotations found: each finding names
/// the annotation (as written) and says why.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Reported; the Ingress is served.
    pub warnings: Vec<(String, String)>,
    /// The Ingress cannot be served as written.
    pub errors: Vec<(String, String)>,
}

/// Reviews the annotations of a served Ingress (`canary`: it is a canary
/// Ingress, whose other annotations its main Ingress decides).
pub(crate) fn review(
    annotations: &BTreeMap<String, String>,
    canary: bool,
    policy: UnsupportedAnnotations,
) -> Findings {
    let mut found = Findings::default();
    for full in annotations.keys() {
        // fleetgate's own annotations.
        if let Some(key) = full.strip_prefix(FLEETGATE_PREFIX) {
            if full != crate::COMPRESSION_ANNOTATION {
                found
                    .warnings
                    .push((full.clone(), unsupported_text(false).into()));
            } else if canary {
                found.warnings.push((
                    full.clone(),
                    format!("is ignored on a canary Ingress: the main Ingress's {key} applies"),
                ));
            }
            continue;
        }
        let Some((prefix, key)) = split_prefix(full) else {
            continue;
        };
        let entry = known(key);
        let restricts = entry.map_or_else(
            || ACCESS_MARKERS.iter().any(|m| key.contains(m)),
            |e| e.restricts_access,
        );
        match entry {
            Some(e) if e.support == Support::Implemented => {
                if KeyScope::of(key) == KeyScope::MseOnly && prefix != MSE_PREFIX {
                    found.warnings.push((
                        full.clone(),
                        format!("is read only as {MSE_PREFIX}{key}; ignored"),
                    ));
                } else if let Some(winner) = shadowed_by(annotations, prefix, key) {
                    found.warnings.push((
                        full.clone(),
                        format!("is also set as {winner}, which takes precedence; ignored"),
                    ));
                } else if canary && FROM_MAIN_ON_CANARY.contains(&key) {
                    if e.restricts_access && policy == UnsupportedAnnotations::Refuse {
                        // Its owner asked for a protection the canary
                        // cannot have on its own: say so rather than
                        // serve the canary's traffic without it.
                        found.errors.push((
                            full.clone(),
                            "restricts access, and a canary Ingress takes its main Ingress's access rules \
                             (as in ingress-nginx): put it on the main Ingress \
                             (or set [gateway] unsupported_annotations = \"warn\" to serve without it)"
                                .into(),
                        ));
                    } else {
                        found.warnings.push((
                            full.clone(),
                            "is ignored on a canary Ingress: the main Ingress's applies (as in ingress-nginx)"
                                .into(),
                        ));
                    }
                }
            }
            _ if canary && !restricts => found
                .warnings
                .push((full.clone(), unsupported_text(entry.is_some()).into())),
            _ if restricts => {
                let what = if entry.is_some() {
                    "restricts access and is not implemented by fleetgate"
                } else {
                    "is not an annotation fleetgate knows, and its name says it restricts access"
                };
                match policy {
                    UnsupportedAnnotations::Refuse => found.errors.push((
                        full.clone(),
                        format!(
                            "{what}: the Ingress is not served rather than served without it \
                             (remove it, or set [gateway] unsupported_annotations = \"warn\" to serve without it)"
                        ),
                    )),
                    UnsupportedAnnotations::Warn => found.warnings.push((
                        full.clone(),
                        format!("{what}: served WITHOUT it (unsupported_annotations = \"warn\")"),
                    )),
                }
            }
            _ => found
                .warnings
                .push((full.clone(), unsupported_text(entry.is_some()).into())),
        }
    }
    found
}

fn unsupported_text(known: bool) -> &'static str {
    if known {
        "is not implemented by fleetgate; ignored"
    } else {
        "is not an annotation fleetgate knows; ignored"
    }
}

/// The key under a prefix of higher precedence than `prefix` that is also
/// set, if any.
fn shadowed_by<'a>(
    annotations: &'a BTreeMap<String, String>,
    prefix: &str,
    key: &str,
) -> Option<&'a str> {
    PREFIXES.iter().take_while(|p| **p != prefix).find_map(|p| {
        annotations
            .get_key_value(&format!("{p}{key}"))
            .map(|(k, _)| k.as_str())
    })
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

    fn keys(list: &[(String, String)]) -> Vec<&str> {
        list.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn every_key_is_listed_once() {
        for (i, a) in KNOWN.iter().enumerate() {
            assert!(KNOWN[..i].iter().all(|b| b.key != a.key), "{} twice", a.key);
        }
    }

    #[test]
    fn the_user_docs_list_every_annotation_in_its_section() {
        let docs = include_str!("../../../docs/annotations.md");
        let section = |title: &str| {
            let start = docs.find(title).unwrap_or_else(|| panic!("{title}"));
            let rest = &docs[start + title.len()..];
            &rest[..rest.find("\n## ").unwrap_or(rest.len())]
        };
        let implemented = section("## Implemented");
        let refused = section("## Not implemented, refused");
        let reported = section("## Not implemented, reported");
        for a in KNOWN {
            let quoted = format!("`{}`", a.key);
            let home = match (a.support, a.restricts_access) {
                (Support::Implemented, _) => implemented,
                (Support::Unsupported, true) => refused,
                (Support::Unsupported, false) => reported,
            };
            assert!(
                home.contains(&quoted),
                "{} is not where docs/annotations.md should list it",
                a.key
            );
        }
    }

    #[test]
    fn access_restrictions_fail_closed_and_the_rest_warn() {
        let annotations = map(&[
            ("nginx.ingress.kubernetes.io/auth-cache-key", "$remote_user"),
            ("higress.io/route-limit-rps", "10"),
            ("mse.ingress.kubernetes.io/my-own-jwt-check", "on"),
            ("nginx.ingress.kubernetes.io/rewrite-target", "/"),
            ("nginx.ingress.kubernetes.io/no-such-thing", "1"),
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8",
            ),
            ("nginx.ingress.kubernetes.io/canary-weight", "10"),
            ("example.com/anything", "x"),
        ]);
        let found = review(&annotations, false, UnsupportedAnnotations::Refuse);
        assert_eq!(
            keys(&found.errors),
            [
                "higress.io/route-limit-rps",
                "mse.ingress.kubernetes.io/my-own-jwt-check",
                "nginx.ingress.kubernetes.io/auth-cache-key",
            ]
        );
        assert_eq!(
            keys(&found.warnings),
            ["nginx.ingress.kubernetes.io/no-such-thing"]
        );
        let relaxed = review(&annotations, false, UnsupportedAnnotations::Warn);
        assert!(relaxed.errors.is_empty());
        assert_eq!(relaxed.warnings.len(), 4);
        assert!(relaxed
            .warnings
            .iter()
            .any(|(_, why)| why.contains("WITHOUT")));
    }

    #[test]
    fn matchers_fail_closed_and_regex_paths_are_served() {
        let guarded = map(&[
            ("nginx.ingress.kubernetes.io/use-regex", "true"),
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8",
            ),
            ("higress.io/match-method", "GET HEAD"),
            ("higress.io/exact-match-header-x-key", "s3cr3t"),
        ]);
        let found = review(&guarded, false, UnsupportedAnnotations::Refuse);
        assert_eq!(
            keys(&found.errors),
            [
                "higress.io/exact-match-header-x-key",
                "higress.io/match-method",
            ]
        );
        let open = map(&[("nginx.ingress.kubernetes.io/use-regex", "true")]);
        let found = review(&open, false, UnsupportedAnnotations::Refuse);
        assert_eq!(found, Findings::default());
    }

    #[test]
    fn misplaced_and_shadowed_keys_warn() {
        let annotations = map(&[
            ("nginx.ingress.kubernetes.io/service-subset", "c1"),
            ("nginx.ingress.kubernetes.io/canary-weight", "10"),
            ("mse.ingress.kubernetes.io/canary-weight", "20"),
        ]);
        let found = review(&annotations, false, UnsupportedAnnotations::Refuse);
        assert!(found.errors.is_empty());
        assert_eq!(
            keys(&found.warnings),
            [
                "mse.ingress.kubernetes.io/canary-weight",
                "nginx.ingress.kubernetes.io/service-subset",
            ]
        );
    }

    #[test]
    fn on_a_canary_the_main_ingress_decides() {
        let annotations = map(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8",
            ),
            ("nginx.ingress.kubernetes.io/auth-url", "http://auth/check"),
        ]);
        let found = review(&annotations, true, UnsupportedAnnotations::Refuse);
        // Access restrictions on a canary fail closed, implemented or
        // not: the canary's owner asked for them.
        assert_eq!(
            keys(&found.errors),
            [
                "nginx.ingress.kubernetes.io/auth-url",
                "nginx.ingress.kubernetes.io/whitelist-source-range"
            ]
        );
        let relaxed = review(&annotations, true, UnsupportedAnnotations::Warn);
        assert!(relaxed.errors.is_empty());
        let redirect = map(&[
            ("nginx.ingress.kubernetes.io/canary", "true"),
            ("nginx.ingress.kubernetes.io/ssl-redirect", "true"),
        ]);
        let found = review(&redirect, true, UnsupportedAnnotations::Refuse);
        assert_eq!(
            keys(&found.warnings),
            ["nginx.ingress.kubernetes.io/ssl-redirect"]
        );
    }

    #[test]
    fn fleetgate_keys_are_read_or_reported() {
        let annotations = map(&[
            ("fleetgate.io/compression", "true"),
            ("fleetgate.io/compresion", "true"),
        ]);
        let found = review(&annotations, false, UnsupportedAnnotations::Refuse);
        assert!(found.errors.is_empty());
        assert_eq!(keys(&found.warnings), ["fleetgate.io/compresion"]);
        let on_canary = review(
            &map(&[("fleetgate.io/compression", "true")]),
            true,
            UnsupportedAnnotations::Refuse,
        );
        assert_eq!(keys(&on_canary.warnings), ["fleetgate.io/compression"]);
    }
}
