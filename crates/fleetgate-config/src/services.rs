//! `[[service]]` tables and Service manifests: the ports Ingress backends
//! refer to, their endpoints in every cluster, timeouts, retries, outlier
//! detection and active health checks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ConfigError;
use crate::load::{Loader, DEFAULT_NAMESPACE};
use crate::manifests::ServicePortDecl;
use crate::model::*;
use crate::sections::{balance, check_outlier, outlier, prefer_zone};
use crate::toml_schema::*;

pub(crate) fn services(
    l: &mut Loader<'_>,
    raw: &[toml::Spanned<ServiceToml>],
    clusters: &[Cluster],
    defaults: &UpstreamDefaults,
    file: &FileToml,
) -> Vec<Service> {
    let default_ns = file
        .manifests
        .as_ref()
        .and_then(|m| m.namespace.clone())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let mut out: Vec<Service> = Vec::new();
    let mut declared: HashSet<(String, String, u16)> = HashSet::new();
    for s in raw {
        let span = s.span();
        let s = s.get_ref();
        let namespace = s.namespace.clone().unwrap_or_else(|| default_ns.clone());
        let key = format!("{namespace}/{}:{}", s.name, s.port);
        if s.port == 0 {
            l.error(
                span.clone(),
                "service.port",
                format!("{key}: port 0 is not valid"),
            );
        }
        if !declared.insert((namespace.clone(), s.name.clone(), s.port)) {
            l.error(span.clone(), "service", format!("{key} is declared twice"));
            continue;
        }
        let mut endpoints = Vec::new();
        let mut dns = Vec::new();
        for (i, e) in s.endpoints.iter().enumerate() {
            let field = format!("service.endpoints[{i}]");
            let Some(cluster) = clusters.iter().find(|c| c.id == e.cluster) else {
                l.error(
                    span.clone(),
                    &field,
                    format!(
                        "{key}: cluster \"{}\" is not declared in [[cluster]]",
                        e.cluster
                    ),
                );
                continue;
            };
            if matches!(cluster.source, EndpointSource::Kubernetes(_)) {
                l.error(
                    span.clone(),
                    &field,
                    format!(
                        "{key}: cluster \"{}\" takes its endpoints from its Kubernetes API server: remove this entry",
                        e.cluster
                    ),
                );
                continue;
            }
            let is_dns = matches!(cluster.source, EndpointSource::Dns(_));
            match (&e.address, &e.dns, &e.dns_srv) {
                (Some(address), None, None) if !is_dns => {
                    let address = match address.parse::<SocketAddr>() {
                        Ok(a) => a,
                        Err(err) => {
                            l.error(
                                span.clone(),
                                &field,
                                format!("{key}: address \"{address}\" is not IP:port: {err}"),
                            );
                            continue;
                        }
                    };
                    if endpoints
                        .iter()
                        .any(|x: &EndpointSpec| x.address == address)
                    {
                        l.error(
                            span.clone(),
                            &field,
                            format!("{key}: address {address} is listed twice"),
                        );
                        continue;
                    }
                    endpoints.push(EndpointSpec {
                        cluster: e.cluster.clone(),
                        address,
                        weight: e.weight,
                        labels: e.labels.clone(),
                        zone: None,
                        condition: fleetgate_pool::Condition::Ready,
                    });
                }
                (None, Some(name), None) if is_dns => match dns_name_port(name) {
                    Ok((name, port)) => dns.push(DnsEndpoint {
                        cluster: e.cluster.clone(),
                        name,
                        port: Some(port),
                    }),
                    Err(why) => l.error(span.clone(), &field, format!("{key}: dns \"{name}\": {why}")),
                },
                (None, None, Some(name)) if is_dns => match dns_name(name) {
                    Ok(name) => dns.push(DnsEndpoint {
                        cluster: e.cluster.clone(),
                        name,
                        port: None,
                    }),
                    Err(why) => {
                        l.error(span.clone(), &field, format!("{key}: dns_srv \"{name}\": {why}"))
                    }
                },
                (None, None, None) => l.error(
                    span.clone(),
                    &field,
                    format!("{key}: an endpoint needs address (or, in a dns cluster, dns or dns_srv)"),
                ),
                (Some(_), None, None) => l.error(
                    span.clone(),
                    &field,
                    format!(
                        "{key}: cluster \"{}\" takes its endpoints from DNS: give dns = \"name:port\" or dns_srv = \"name\", not address",
                        e.cluster
                    ),
                ),
                (None, _, _) if !is_dns && (e.dns.is_some() ^ e.dns_srv.is_some()) => l.error(
                    span.clone(),
                    &field,
                    format!(
                        "{key}: dns and dns_srv need a cluster with source = \"dns\"; cluster \"{}\" is {}",
                        e.cluster,
                        cluster.source.kind()
                    ),
                ),
                _ => l.error(
                    span.clone(),
                    &field,
                    format!("{key}: give one of address, dns and dns_srv"),
                ),
            }
        }
        out.push(Service {
            namespace,
            name: s.name.clone(),
            port: s.port,
            port_name: s.port_name.clone().filter(|n| !n.is_empty()),
            endpoints,
            dns,
            timeouts: UpstreamDefaults {
                connect_timeout: s
                    .connect_timeout
                    .map_or(defaults.connect_timeout, Into::into),
                read_timeout: s.read_timeout.map_or(defaults.read_timeout, Into::into),
                write_timeout: s.write_timeout.map_or(defaults.write_timeout, Into::into),
                idle_timeout: s.idle_timeout.map_or(defaults.idle_timeout, Into::into),
                retries: s.retries.unwrap_or(defaults.retries),
                retry_non_idempotent: s
                    .retry_non_idempotent
                    .unwrap_or(defaults.retry_non_idempotent),
                max_requests_per_endpoint: s
                    .max_requests_per_endpoint
                    .unwrap_or(defaults.max_requests_per_endpoint),
                queue_timeout: s.queue_timeout.map_or(defaults.queue_timeout, Into::into),
                prefer_local_zone: prefer_zone(
                    l,
                    s.prefer_zone.as_deref(),
                    defaults.prefer_local_zone,
                    &format!("{key}: service.prefer_zone"),
                ),
                least_request: balance(
                    l,
                    s.balance.as_deref(),
                    defaults.least_request,
                    &format!("{key}: service.balance"),
                ),
                outlier: {
                    let o = outlier(s.outlier_detection.as_ref(), &defaults.outlier);
                    check_outlier(l, &o, &format!("{key}: service.outlier_detection"));
                    o
                },
                ..*defaults
            },
            health_check: s
                .health_check
                .as_ref()
                .and_then(|h| health_check(l, span.clone(), &key, h)),
            protocol: protocol(l, s, &key),
            tls: upstream_tls(l, span.clone(), &key, s.tls.as_ref()),
        });
    }
    out
}

/// `protocol = "..."` of a `[[service]]` (default HTTP).
fn protocol(l: &mut Loader<'_>, s: &ServiceToml, key: &str) -> UpstreamProtocol {
    let Some(p) = &s.protocol else {
        return UpstreamProtocol::Http;
    };
    match UpstreamProtocol::parse(p.get_ref()) {
        Ok(p) => p,
        Err(e) => {
            l.error(p.span(), "service.protocol", format!("{key}: {e}"));
            UpstreamProtocol::Http
        }
    }
}

/// `[service.tls]`: verification is on unless `verify = false`, which is
/// allowed and logged loudly at every load.
fn upstream_tls(
    l: &mut Loader<'_>,
    span: std::ops::Range<usize>,
    key: &str,
    t: Option<&UpstreamTlsToml>,
) -> UpstreamTls {
    let Some(t) = t else {
        return UpstreamTls::default();
    };
    let verify = t.verify.unwrap_or(true);
    if !verify {
        log::warn!(
            "{key}: [service.tls] verify = false: upstream certificates are NOT verified; \
             anyone on the path to these endpoints can read and change their traffic"
        );
    }
    let mut tls = UpstreamTls {
        verify,
        sni: t.sni.clone().filter(|s| !s.is_empty()),
        ..UpstreamTls::default()
    };
    if let Some(ca) = &t.ca_file {
        let path = crate::files::relative_to(l.file, ca);
        match std::fs::read(&path) {
            Ok(pem) => match fleetgate_tls::ca_certificates(&pem) {
                Ok(_) => {
                    tls.ca_pem = Some(pem.into());
                    tls.ca_file = Some(path);
                }
                Err(e) => l.error(
                    span,
                    "service.tls.ca_file",
                    format!("{key}: {}: {e}", path.display()),
                ),
            },
            Err(e) => l.error(
                span,
                "service.tls.ca_file",
                format!("{key}: cannot read {}: {e}", path.display()),
            ),
        }
    }
    tls
}

/// Service manifests name ports; endpoints come from TOML. A manifest port
/// with no TOML endpoints becomes a Service with none (its routes answer 503).
pub(crate) fn merge_service_ports(
    errors: &mut Vec<ConfigError>,
    services: &mut Vec<Service>,
    decls: Vec<ServicePortDecl>,
    defaults: &UpstreamDefaults,
) {
    let mut index: HashMap<(String, String, u16), usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.namespace.clone(), s.name.clone(), s.port), i))
        .collect();
    for d in decls {
        let key = (d.namespace.clone(), d.name.clone(), d.port);
        match index.get(&key).map(|&i| &mut services[i]) {
            Some(s) => match (&s.port_name, &d.port_name) {
                (Some(a), Some(b)) if a != b => errors.push(
                    ConfigError::new(format!(
                        "port {} is named \"{b}\" here but \"{a}\" in the TOML [[service]]",
                        d.port
                    ))
                    .at(d.origin.clone())
                    .object(format!("Service {}/{}", d.namespace, d.name)),
                ),
                (None, Some(b)) => s.port_name = Some(b.clone()),
                _ => {}
            },
            None => {
                index.insert(key, services.len());
                services.push(Service {
                    namespace: d.namespace,
                    name: d.name,
                    port: d.port,
                    port_name: d.port_name,
                    endpoints: Vec::new(),
                    dns: Vec::new(),
                    timeouts: *defaults,
                    health_check: None,
                    protocol: UpstreamProtocol::Http,
                    tls: UpstreamTls::default(),
                });
            }
        }
    }
}

/// A DNS name as a resolver takes it: labels of letters, digits, `-` and
/// `_` (SRV names start with `_service._proto`), at most 253 characters; an
/// IP address is refused (it is an `address`).
fn dns_name(name: &str) -> Result<String, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.parse::<std::net::IpAddr>().is_ok() {
        return Err("is an IP address: use address = \"IP:port\"".to_string());
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if trimmed.is_empty() || trimmed.len() > 253 || !trimmed.split('.').all(valid_label) {
        return Err(
            "is not a DNS name (letters, digits, '-' and '_' in dot-separated labels)".to_string(),
        );
    }
    Ok(name.to_string())
}

/// `name:port` of an A/AAAA name.
fn dns_name_port(text: &str) -> Result<(String, u16), String> {
    let Some((name, port)) = text.rsplit_once(':') else {
        return Err("needs a port: \"name:port\"".to_string());
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port \"{port}\" is not 1-65535"))?;
    Ok((dns_name(name)?, port))
}

/// Parses `"200-399"` or `"200"`.
pub(crate) fn status_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v = s.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some((lo, hi))
}

pub(crate) fn health_check(
    l: &mut Loader<'_>,
    span: std::ops::Range<usize>,
    key: &str,
    h: &HealthCheckToml,
) -> Option<HealthCheck> {
    let field = "service.health_check";
    let kind = match h.kind.as_str() {
        "http" => {
            let path = h.path.clone().unwrap_or_else(|| "/".to_string());
            if !path.starts_with('/') {
                l.error(
                    span,
                    field,
                    format!("{key}: path \"{path}\" must start with '/'"),
                );
                return None;
            }
            let expect_text = h.expect.clone().unwrap_or_else(|| "200-399".to_string());
            let Some(expect) = status_range(&expect_text) else {
                l.error(
                    span,
                    field,
                    format!(
                        "{key}: expect \"{expect_text}\" is not a status or range like \"200-399\""
                    ),
                );
                return None;
            };
            HealthCheckKind::Http {
                path,
                host: h.host.clone().unwrap_or_else(|| "localhost".to_string()),
                expect,
            }
        }
        "tcp" => {
            if h.path.is_some() || h.expect.is_some() || h.host.is_some() {
                l.error(
                    span,
                    field,
                    format!("{key}: path, host and expect apply to kind = \"http\" only"),
                );
                return None;
            }
            HealthCheckKind::Tcp
        }
        other => {
            l.error(
                span,
                field,
                format!("{key}: kind \"{other}\" is not \"http\" or \"tcp\""),
            );
            return None;
        }
    };
    let interval: Duration = h.interval.map_or(Duration::from_secs(5), Into::into);
    let timeout: Duration = h.timeout.map_or(Duration::from_secs(1), Into::into);
    if interval.is_zero() || timeout.is_zero() {
        l.error(
            span,
            field,
            format!("{key}: interval and timeout must be above zero"),
        );
        return None;
    }
    Some(HealthCheck {
        kind,
        interval,
        timeout,
        healthy_threshold: h.healthy_threshold.unwrap_or(1).max(1),
        unhealthy_threshold: h.unhealthy_threshold.unwrap_or(2).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(status_range("200-399"), Some((200, 399)));
        assert_eq!(status_range("204"), Some((204, 204)));
        assert_eq!(status_range("399-200"), None);
        assert_eq!(status_range("abc"), None);
        assert_eq!(status_range("0-99"), None);
    }
}
