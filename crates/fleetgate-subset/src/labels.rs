//! Well-known annotation and label keys, and Kubernetes label syntax checks.
//!
//! The keys live in one place so the parser, the matcher and callers that
//! attach topology labels to endpoints agree on the spelling. The syntax
//! checks exist so that a subset that could never match anything (because no
//! Kubernetes object can carry such a label) is reported when the Ingress is
//! read, instead of silently falling back to the whole Service at run time.

/// Annotation naming the subset a route sends traffic to (MSE Ingress).
pub const SERVICE_SUBSET: &str = "mse.ingress.kubernetes.io/service-subset";

/// Annotation listing the labels that define the subset, one `key value` pair
/// per line (MSE Ingress).
pub const SUBSET_LABELS: &str = "mse.ingress.kubernetes.io/subset-labels";

/// Endpoint label carrying the id of the cluster the endpoint lives in.
pub const CLUSTER_LABEL: &str = "topology.istio.io/cluster";

/// Endpoint label carrying the zone of the endpoint's cluster, when it has one.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Prefix of the OpenSergo canary labels: an endpoint carrying any label whose
/// key starts with it is not part of the `base` subset.
pub const CANARY_LABEL_PREFIX: &str = "opensergo.io/canary";

/// Longest name part of a label key, and longest label value.
const MAX_NAME_LEN: usize = 63;

/// Longest DNS-subdomain prefix of a label key.
const MAX_PREFIX_LEN: usize = 253;

/// Whether `value` is a legal label value: empty, or at most 63 characters of
/// `[A-Za-z0-9_.-]` starting and ending with an alphanumeric.
pub(crate) fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

/// Whether `key` is a legal label key: `[prefix/]name`, the prefix a DNS
/// subdomain of at most 253 characters, the name a non-empty label value.
pub(crate) fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_NAME_LEN
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns_subdomain(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix.split('.').all(|part| {
            let bytes = part.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_keys_are_legal() {
        for key in [CLUSTER_LABEL, ZONE_LABEL, "opensergo.io/canary-gray", "app"] {
            assert!(is_label_key(key), "{key}");
        }
    }

    #[test]
    fn rejects_illegal_keys() {
        for key in [
            "",
            "/app",
            "Example.com/app",
            "example..com/app",
            "example.com/",
            "a/b/c",
            "-app",
            "app-",
            "app name",
            &"x".repeat(64),
        ] {
            assert!(!is_label_key(key), "{key:?}");
        }
    }

    #[test]
    fn label_values() {
        assert!(is_label_value(""));
        assert!(is_label_value("cd3007b2"));
        assert!(is_label_value("cn-hangzhou-h"));
        assert!(is_label_value("A.b_c-9"));
        assert!(is_label_value(&"v".repeat(63)));
        assert!(!is_label_value(&"v".repeat(64)));
        assert!(!is_label_value("-gray"));
        assert!(!is_label_value("gray."));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value("a=b"));
    }
}
