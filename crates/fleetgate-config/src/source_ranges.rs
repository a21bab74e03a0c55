//! The source address lists of an Ingress: `whitelist-source-range` (or
//! its newer name `allowlist-source-range`) and `denylist-source-range`
//! (`blacklist-source-range` in MSE and Higress), comma-separated CIDRs
//! or single addresses, IPv4 and IPv6.

use std::collections::BTreeMap;

use crate::annotations::AnnotationError;

use ipnet::IpNet;

/// Which client addresses may use an Ingress's routes: none in `deny`,
/// and, when `allow` is not empty, only those in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceRanges {
    /// The allow-list (empty: every address not denied).
    pub allow: Vec<IpNet>,
    /// The deny-list, checked first.
    pub deny: Vec<IpNet>,
}

/// Keys of the allow-list, by the same precedence as every annotation
/// (prefix first): two of them on one Ingress are an error, since each
/// alone would admit a different set of clients.
const ALLOW_KEYS: [&str; 2] = ["whitelist-source-range", "allowlist-source-range"];
/// Keys of the deny-list.
const DENY_KEYS: [&str; 2] = ["denylist-source-range", "blacklist-source-range"];

/// Reads the lists from `annotations`; `None` when neither is set.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<SourceRanges>, AnnotationError> {
    let allow = list(annotations, &ALLOW_KEYS)?;
    let deny = list(annotations, &DENY_KEYS)?;
    if allow.is_none() && deny.is_none() {
        return Ok(None);
    }
    Ok(Some(SourceRanges {
        allow: allow.unwrap_or_default(),
        deny: deny.unwrap_or_default(),
    }))
}

/// The list under one of `keys` (any prefix), parsed.
fn list(
    annotations: &BTreeMap<String, String>,
    keys: &[&str],
) -> Result<Option<Vec<IpNet>>, AnnotationError> {
    let mut found: Option<(&str, &str)> = None;
    for key in keys {
        let Some((full, value)) = fleetgate_canary::annotation(annotations, key) else {
            continue;
        };
        if let Some((first, _)) = found {
            return Err(AnnotationError {
                key: full.to_string(),
                message: format!("{first} is set too; give the list once"),
            });
        }
        found = Some((full, value));
    }
    let Some((full, value)) = found else {
        return Ok(None);
    };
    let mut nets = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let net = network(item).ok_or_else(|| AnnotationError {
            key: full.to_string(),
            message: format!(
                "value {value:?}: {item:?} is not a CIDR (10.0.0.0/8, 2001:db8::/32) or an address"
            ),
        })?;
        nets.push(net);
    }
    if nets.is_empty() {
        return Err(AnnotationError {
            key: full.to_string(),
            message: format!("value {value:?}: the list is empty"),
        });
    }
    Ok(Some(nets))
}

/// One entry of an address list: a CIDR (host bits cleared) or a single
/// address, IPv4-mapped networks read as IPv4 (see [`unmapped`]).
pub(crate) fn network(item: &str) -> Option<IpNet> {
    let net = item
        .parse::<IpNet>()
        .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()?;
    Some(unmapped(net.trunc()))
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4
/// network it stands for: client addresses are compared in their IPv4
/// form, so a mapped entry would otherwise never match.
fn unmapped(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), true) = (v6.addr().to_ipv4_mapped(), v6.prefix_len() >= 96) {
            if let Ok(n) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96) {
                return IpNet::V4(n.trunc());
            }
        }
    }
    net
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
    fn lists_of_cidrs_and_addresses_both_families() {
        let got = parse(&map(&[
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::1",
            ),
            ("higress.io/blacklist-source-range", "10.1.0.0/16"),
        ]))
        .unwrap()
        .unwrap();
        let text: Vec<String> = got.allow.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128"]
        );
        assert_eq!(got.deny, ["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(parse(&map(&[("x/y", "1")])), Ok(None));
    }

    #[test]
    fn bad_values_name_the_key_and_the_item() {
        let err = parse(&map(&[(
            "nginx.ingress.kubernetes.io/denylist-source-range",
            "10.0.0.0/8,10.0.0.300",
        )]))
        .unwrap_err();
        assert_eq!(err.key, "nginx.ingress.kubernetes.io/denylist-source-range");
        assert!(err.message.contains("\"10.0.0.300\""), "{}", err.message);
        let err = parse(&map(&[(
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            " , ",
        )]))
        .unwrap_err();
        assert!(err.message.contains("empty"));
        let err = parse(&map(&[
            (
                "nginx.ingress.kubernetes.io/whitelist-source-range",
                "10.0.0.0/8",
            ),
            (
                "nginx.ingress.kubernetes.io/allowlist-source-range",
                "0.0.0.0/0",
            ),
        ]))
        .unwrap_err();
        assert!(err.message.contains("set too"), "{}", err.message);
    }

    #[test]
    fn mapped_networks_become_ipv4() {
        let got = parse(&map(&[(
            "nginx.ingress.kubernetes.io/denylist-source-range",
            "::ffff:127.0.0.0/104, ::ffff:0:0/96",
        )]))
        .unwrap()
        .unwrap();
        let text: Vec<String> = got.deny.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["127.0.0.0/8", "0.0.0.0/0"]);
    }

    #[test]
    fn host_bits_are_cleared() {
        let got = parse(&map(&[(
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "10.1.2.3/8",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(got.allow[0].to_string(), "10.0.0.0/8");
    }
}
