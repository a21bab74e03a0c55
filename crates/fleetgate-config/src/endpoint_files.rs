//! `[[cluster]]` endpoint sources, and the `files` source: EndpointSlice
//! (and legacy Endpoints) manifests, per cluster, turned into the
//! endpoints of the declared Services by Kubernetes' rules (see
//! `fleetgate-discovery`).
//!
//! A slice file is a snapshot of one cluster (`kubectl get endpointslices
//! -o yaml` of it); a reload (SIGHUP, `--watch`) reads it again. A slice
//! belongs to the Service its `kubernetes.io/service-name` label names, in
//! its own namespace; slices of Services the configuration does not declare
//! are not used.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use fleetgate_discovery::{service_endpoints, Slice};

use crate::error::{ConfigError, Location};
use crate::files::expand_files;
use crate::input_limits::read_bounded;
use crate::load::Loader;
use crate::manifests;
use crate::model::{Cluster, DnsSource, EndpointSource, EndpointSpec, KubernetesSource, Service};
use crate::toml_schema::ClusterToml;

/// The endpoint source of a `[[cluster]]` table: `source`, or `files`
/// where `endpoint_slices` is given, else `static`.
pub(crate) fn cluster_source(
    l: &mut Loader<'_>,
    span: std::ops::Range<usize>,
    c: &ClusterToml,
) -> Option<EndpointSource> {
    let kind = c
        .source
        .as_deref()
        .unwrap_or(if c.endpoint_slices.is_empty() {
            "static"
        } else {
            "files"
        });
    if kind != "kubernetes" && has_kube_keys(c) {
        l.error(
            span,
            "cluster.kubeconfig",
            format!(
                "cluster \"{}\": kubeconfig, context, api_timeout and keep_on_empty_list apply to source = \"kubernetes\" only",
                c.id
            ),
        );
        return None;
    }
    if kind != "dns" && has_dns_keys(c) {
        l.error(
            span,
            "cluster.dns_server",
            format!(
                "cluster \"{}\": dns_server, dns_min_ttl, dns_max_ttl and dns_timeout apply to source = \"dns\" only",
                c.id
            ),
        );
        return None;
    }
    match kind {
        "static" if c.endpoint_slices.is_empty() => Some(EndpointSource::Static),
        "files" if !c.endpoint_slices.is_empty() => {
            let field = "cluster.endpoint_slices";
            let mut errors = Vec::new();
            let files = expand_files(l.file, &c.endpoint_slices, field, &mut errors);
            let ok = errors.is_empty();
            l.errors.extend(
                errors
                    .into_iter()
                    .map(|e| e.object(format!("cluster \"{}\"", c.id))),
            );
            ok.then(|| EndpointSource::Files {
                patterns: c.endpoint_slices.clone(),
                files,
            })
        }
        "files" => {
            l.error(
                span,
                "cluster.endpoint_slices",
                format!(
                    "cluster \"{}\": source = \"files\" needs endpoint_slices = [\"path or glob\", ...]",
                    c.id
                ),
            );
            None
        }
        "dns" if c.endpoint_slices.is_empty() => dns_source(l, span, c),
        "kubernetes" if c.endpoint_slices.is_empty() => {
            Some(EndpointSource::Kubernetes(KubernetesSource {
                kubeconfig: match c.kubeconfig.as_deref() {
                    None => None,
                    Some(p) => {
                        let path = crate::files::relative_to(l.file, p);
                        if !path.is_file() {
                            l.error(
                                span,
                                "cluster.kubeconfig",
                                format!(
                                    "cluster \"{}\": kubeconfig {} is not a readable file",
                                    c.id,
                                    path.display()
                                ),
                            );
                            return None;
                        }
                        Some(path)
                    }
                },
                context: c.context.clone().filter(|s| !s.is_empty()),
                timeout: c
                    .api_timeout
                    .map_or(Duration::from_secs(30), Into::into)
                    .max(Duration::from_secs(2)),
                keep_on_empty_list: c.keep_on_empty_list.unwrap_or(true),
            }))
        }
        "static" | "dns" | "kubernetes" => {
            l.error(
                span,
                "cluster.endpoint_slices",
                format!(
                    "cluster \"{}\": endpoint_slices are read only with source = \"files\"",
                    c.id
                ),
            );
            None
        }
        other => {
            l.error(
                span,
                "cluster.source",
                format!(
                    "cluster \"{}\": source \"{other}\" is not \"static\", \"files\", \"dns\" or \"kubernetes\"",
                    c.id
                ),
            );
            None
        }
    }
}

/// The settings of a `dns` cluster. `dns_*` keys on another kind of
/// cluster are an error (they would do nothing).
fn dns_source(
    l: &mut Loader<'_>,
    span: std::ops::Range<usize>,
    c: &ClusterToml,
) -> Option<EndpointSource> {
    let server = match c.dns_server.as_deref() {
        None => None,
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                l.error(
                    span,
                    "cluster.dns_server",
                    format!("cluster \"{}\": \"{s}\" is not IP:port", c.id),
                );
                return None;
            }
        },
    };
    let min_ttl = c.dns_min_ttl.map_or(Duration::from_secs(1), Into::into);
    let max_ttl = c.dns_max_ttl.map_or(Duration::from_secs(30), Into::into);
    let timeout = c.dns_timeout.map_or(Duration::from_secs(2), Into::into);
    if min_ttl.is_zero() || timeout.is_zero() || max_ttl < min_ttl {
        l.error(
            span,
            "cluster.dns_min_ttl",
            format!(
                "cluster \"{}\": dns_min_ttl and dns_timeout must be above zero and dns_max_ttl at least dns_min_ttl",
                c.id
            ),
        );
        return None;
    }
    Some(EndpointSource::Dns(DnsSource {
        server,
        min_ttl,
        max_ttl,
        timeout,
    }))
}

/// Whether a `[[cluster]]` table sets DNS keys.
pub(crate) fn has_dns_keys(c: &ClusterToml) -> bool {
    c.dns_server.is_some()
        || c.dns_min_ttl.is_some()
        || c.dns_max_ttl.is_some()
        || c.dns_timeout.is_some()
}

/// Whether a `[[cluster]]` table sets Kubernetes API keys.
fn has_kube_keys(c: &ClusterToml) -> bool {
    c.kubeconfig.is_some()
        || c.context.is_some()
        || c.api_timeout.is_some()
        || c.keep_on_empty_list.is_some()
}

/// Slices of one cluster, with where each was read.
type ClusterSlices = Vec<(Slice, Location)>;

/// Reads the slice files of every `files` cluster. Other objects in them
/// are not used, which is said once per file.
pub(crate) fn read_slices(
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
    clusters: &[Cluster],
    default_ns: &str,
) -> HashMap<String, ClusterSlices> {
    let mut out: HashMap<String, ClusterSlices> = HashMap::new();
    for c in clusters {
        let EndpointSource::Files { files, .. } = &c.source else {
            continue;
        };
        let slices = out.entry(c.id.clone()).or_default();
        for file in files {
            let text = match read_bounded(file, "the EndpointSlice file") {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let (objects, errs) = manifests::parse_file(file, &text, default_ns);
            errors.extend(errs);
            let others =
                objects.ingresses.len() + objects.service_ports.len() + objects.secrets.len();
            if others > 0 {
                warnings.push(format!(
                    "{}: {others} Ingress, Service or Secret object(s) in an endpoint_slices file of cluster \"{}\" are not used (list them under [manifests] files)",
                    file.display(),
                    c.id
                ));
            }
            slices.extend(objects.slices);
        }
    }
    out
}

/// Gives each declared Service its endpoints from the slices of every
/// `files` cluster. A Service with static endpoints and slices in one
/// cluster, or whose port matches no port of its slices, is an error.
pub(crate) fn assign_slices(
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
    services: &mut [Service],
    clusters: &[Cluster],
    slices: &HashMap<String, ClusterSlices>,
) {
    for c in clusters {
        let Some(cluster_slices) = slices.get(&c.id) else {
            continue;
        };
        let mut by_service: HashMap<(&str, &str), Vec<&(Slice, Location)>> = HashMap::new();
        for entry in cluster_slices {
            let s = &entry.0;
            by_service
                .entry((s.namespace.as_str(), s.service.as_str()))
                .or_default()
                .push(entry);
        }
        for service in services.iter_mut() {
            let Some(found) = by_service.get(&(service.namespace.as_str(), service.name.as_str()))
            else {
                continue;
            };
            let key = service.key();
            let origin = found[0].1.clone();
            if service.endpoints.iter().any(|e| e.cluster == c.id) {
                errors.push(
                    ConfigError::new(format!(
                        "Service {key} has endpoints in [[service]] and EndpointSlices for cluster \"{}\": give one or the other",
                        c.id
                    ))
                    .at(origin),
                );
                continue;
            }
            let resolved = service_endpoints(
                found.iter().map(|(s, _)| s),
                service.port_name.as_deref(),
                c.ip_family,
            );
            if let Some(mismatch) = resolved.port_mismatch(&c.id, service.port_name.as_deref()) {
                errors.push(
                    ConfigError::new(format!(
                        "Service {key}: {mismatch}: set port_name on the [[service]] (or in its Service manifest)"
                    ))
                    .at(origin),
                );
                continue;
            }
            if resolved.endpoints.is_empty() {
                warnings.push(format!(
                    "Service {key}: its EndpointSlices in cluster \"{}\" hold no ready or serving endpoint",
                    c.id
                ));
            }
            service
                .endpoints
                .extend(resolved.endpoints.into_iter().map(|e| EndpointSpec {
                    cluster: c.id.clone(),
                    address: e.address,
                    weight: e.weight,
                    labels: e.labels,
                    zone: e.zone,
                    condition: e.condition,
                }));
        }
    }
}

/// Every slice file of `clusters`, for `--watch`.
pub fn slice_files(clusters: &[Cluster]) -> impl Iterator<Item = &Path> {
    clusters.iter().flat_map(|c| {
        match &c.source {
            EndpointSource::Files { files, .. } => files.as_slice(),
            _ => &[],
        }
        .iter()
        .map(|p| p.as_path())
    })
}
