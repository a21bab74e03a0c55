//! Request mirroring annotations of an Ingress (MSE/Higress):
//! `mirror-target-service` (`namespace/name:port`, `name:port` or `name`,
//! in the Ingress's namespace unless given) and `mirror-percentage`.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

/// Where, and how much of, an Ingress's traffic is mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Its port; `None`: the first port declared for it.
    pub port: Option<u16>,
    /// The share of requests copied, 0 to 100.
    pub percent: u32,
}

/// Reads the mirror annotations of an Ingress in `namespace`.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
) -> Result<Option<MirrorSpec>, AnnotationError> {
    let get = |key: &str| fleetgate_canary::annotation(annotations, key);
    let Some((key, target)) = get("mirror-target-service") else {
        return Ok(None);
    };
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
    Ok(Some(MirrorSpec {
        namespace: ns.to_string(),
        name: name.to_string(),
        port,
        percent,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("mse.ingress.kubernetes.io/{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn targets_and_percentages() {
        let m = parse(&map(&[("mirror-target-service", "shadow:8080")]), "shop")
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.namespace.as_str(), m.name.as_str(), m.port, m.percent),
            ("shop", "shadow", Some(8080), 100)
        );
        let m = parse(
            &map(&[
                ("mirror-target-service", "test/shadow"),
                ("mirror-percentage", "25"),
            ]),
            "shop",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.namespace.as_str(), m.port, m.percent),
            ("test", None, 25)
        );
        assert_eq!(parse(&map(&[]), "shop"), Ok(None));
        for bad in ["Shadow", "shadow:http", "a/b/c", "shadow:0"] {
            assert!(
                parse(&map(&[("mirror-target-service", bad)]), "shop").is_err(),
                "{bad}"
            );
        }
    }
}
