//! Rate and concurrency limits of an Ingress's routes, per client address:
//! `limit-rps`, `limit-rpm`, `limit-burst-multiplier`,
//! `limit-connections` and `limit-whitelist` (or `limit-allowlist`), as
//! ingress-nginx reads them.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

use ipnet::IpNet;

/// `limit-burst-multiplier` when not given (ingress-nginx's default).
pub const DEFAULT_BURST_MULTIPLIER: u32 = 5;

/// The limits of one Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per client (`limit-rps`).
    pub rps: Option<u32>,
    /// Requests per minute per client (`limit-rpm`).
    pub rpm: Option<u32>,
    /// How many requests beyond the rate a client may send at once, as a
    /// multiple of the rate (`limit-burst-multiplier`).
    pub burst_multiplier: u32,
    /// Requests in progress at once per client (`limit-connections`).
    pub connections: Option<u32>,
    /// Clients the limits do not apply to (`limit-whitelist`).
    pub exempt: Vec<IpNet>,
}

/// Reads the limits; `None` when no limit is set. The multiplier or the
/// exemptions without a limit are an error: they would look like
/// protection and be none.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<RateLimits>, AnnotationError> {
    let number = |key: &str| -> Result<Option<(String, u32)>, AnnotationError> {
        let Some((full, value)) = fleetgate_canary::annotation(annotations, key) else {
            return Ok(None);
        };
        match value.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some((full.to_string(), n))),
            _ => Err(AnnotationError {
                key: full.to_string(),
                message: format!("value {value:?}: a whole number of at least 1"),
            }),
        }
    };
    let rps = number("limit-rps")?;
    let rpm = number("limit-rpm")?;
    let connections = number("limit-connections")?;
    let multiplier = number("limit-burst-multiplier")?;
    let mut exempt_key = None;
    let mut exempt = Vec::new();
    for key in ["limit-whitelist", "limit-allowlist"] {
        let Some((full, value)) = fleetgate_canary::annotation(annotations, key) else {
            continue;
        };
        if let Some(first) = &exempt_key {
            return Err(AnnotationError {
                key: full.to_string(),
                message: format!("{first} is set too; give the list once"),
            });
        }
        exempt_key = Some(full.to_string());
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = crate::source_ranges::network(item).ok_or_else(|| AnnotationError {
                key: full.to_string(),
                message: format!("value {value:?}: {item:?} is not a CIDR or an address"),
            })?;
            exempt.push(net);
        }
    }
    if rps.is_none() && rpm.is_none() && connections.is_none() {
        if let Some(key) = multiplier.map(|(k, _)| k).or(exempt_key) {
            return Err(AnnotationError {
                key,
                message: "needs limit-rps, limit-rpm or limit-connections; alone it limits nothing"
                    .into(),
            });
        }
        return Ok(None);
    }
    Ok(Some(RateLimits {
        rps: rps.map(|(_, n)| n),
        rpm: rpm.map(|(_, n)| n),
        burst_multiplier: multiplier.map_or(DEFAULT_BURST_MULTIPLIER, |(_, n)| n),
        connections: connections.map(|(_, n)| n),
        exempt,
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
    fn limits_and_defaults() {
        let l = parse(&map(&[
            ("limit-rps", "10"),
            ("limit-connections", "3"),
            ("limit-whitelist", "10.0.0.0/8, 192.0.2.1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((l.rps, l.rpm, l.connections), (Some(10), None, Some(3)));
        assert_eq!(l.burst_multiplier, DEFAULT_BURST_MULTIPLIER);
        assert_eq!(l.exempt.len(), 2);
        assert_eq!(parse(&map(&[])), Ok(None));
    }

    #[test]
    fn values_that_limit_nothing_are_refused() {
        for bad in [
            &[("limit-rps", "0")][..],
            &[("limit-rpm", "ten")][..],
            &[("limit-burst-multiplier", "2")][..],
            &[("limit-whitelist", "10.0.0.0/8")][..],
            &[("limit-rps", "1"), ("limit-whitelist", "10.0.0.300")][..],
        ] {
            assert!(parse(&map(bad)).is_err(), "{bad:?}");
        }
    }
}
