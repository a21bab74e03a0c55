//! EndpointSlices (and legacy Endpoints) into endpoints of one Service
//! port, by kube-proxy's rules (see the crate docs).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use fleetgate_pool::{Condition, Labels, ZONE_LABEL};
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The endpoint label that carries a slice's zone hints (comma-separated).
pub const ZONE_HINTS_LABEL: &str = "fleetgate.io/zone-hints";
/// The endpoint label that carries the node a pod runs on.
pub const NODE_LABEL: &str = "kubernetes.io/hostname";

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressFamily {
    /// IPv4.
    #[default]
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl AddressFamily {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            AddressFamily::Ipv4
        } else {
            AddressFamily::Ipv6
        }
    }

    /// The other family.
    pub fn other(self) -> Self {
        match self {
            AddressFamily::Ipv4 => AddressFamily::Ipv6,
            AddressFamily::Ipv6 => AddressFamily::Ipv4,
        }
    }

    /// `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Ipv4 => "ipv4",
            AddressFamily::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One port of a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    /// Its name: the Service port's name (`""` for an unnamed port).
    pub name: String,
    /// The pods' port (the Service's target port, resolved).
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP` (`TCP` when not given).
    pub protocol: String,
}

/// One endpoint of a slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    /// Its address (the first one listed, as kube-proxy uses).
    pub address: IpAddr,
    /// Ready or terminating; `None` when it is neither ready nor serving.
    pub condition: Option<Condition>,
    /// Its zone, if the slice says.
    pub zone: Option<String>,
    /// The zones it is hinted for.
    pub zone_hints: Vec<String>,
    /// The node it runs on.
    pub node: Option<String>,
    /// Its share of traffic relative to the others (1 for a pod; DNS SRV
    /// records carry their own).
    pub weight: u32,
}

/// One EndpointSlice (or one subset of a legacy Endpoints object), in the
/// form the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The Service it belongs to.
    pub service: String,
    /// The family of its addresses.
    pub family: AddressFamily,
    /// Its ports.
    pub ports: Vec<SlicePort>,
    /// Its endpoints.
    pub endpoints: Vec<SliceEndpoint>,
}

fn port_number(port: Option<i32>, what: &str) -> Result<Option<u16>, String> {
    match port {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| format!("{what} {p} is out of range 1-65535")),
    }
}

fn namespace_of(namespace: Option<&String>, default_ns: &str) -> String {
    namespace
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| default_ns.to_string())
}

/// The condition kube-proxy derives: `ready` (unknown counts as ready)
/// takes traffic; else `serving` (unknown counts as serving) and
/// `terminating` drains; else nothing.
fn condition(
    ready: Option<bool>,
    serving: Option<bool>,
    terminating: Option<bool>,
) -> Option<Condition> {
    let ready = ready.unwrap_or(true);
    let serving = serving.unwrap_or(true);
    let terminating = terminating.unwrap_or(false);
    if ready {
        Some(Condition::Ready)
    } else if serving && terminating {
        Some(Condition::Terminating)
    } else {
        None
    }
}

impl Slice {
    /// Reads an EndpointSlice. `Ok(None)` for a slice that names no
    /// Service (no `kubernetes.io/service-name` label) or carries `FQDN`
    /// addresses, which no Service port resolves to. Errors say which
    /// field is wrong.
    pub fn from_endpoint_slice(
        s: EndpointSlice,
        default_ns: &str,
    ) -> Result<Option<Slice>, String> {
        let name = s
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or("metadata.name is required")?;
        let Some(service) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .filter(|n| !n.is_empty())
            .cloned()
        else {
            return Ok(None);
        };
        let family = match s.address_type.as_str() {
            "IPv4" => AddressFamily::Ipv4,
            "IPv6" => AddressFamily::Ipv6,
            "FQDN" => return Ok(None),
            other => {
                return Err(format!(
                    "addressType: \"{other}\" is not IPv4, IPv6 or FQDN"
                ))
            }
        };
        let mut ports = Vec::new();
        for (i, p) in s.ports.unwrap_or_default().into_iter().enumerate() {
            // A port without a number means "all ports": nothing a Service
            // port can be matched to.
            let Some(port) = port_number(p.port, &format!("ports[{i}].port"))? else {
                continue;
            };
            ports.push(SlicePort {
                name: p.name.unwrap_or_default(),
                port,
                protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
            });
        }
        let mut endpoints = Vec::with_capacity(s.endpoints.len());
        for (i, e) in s.endpoints.into_iter().enumerate() {
            let Some(first) = e.addresses.first() else {
                return Err(format!(
                    "endpoints[{i}].addresses: at least one address is required"
                ));
            };
            let address: IpAddr = first.parse().map_err(|_| {
                format!("endpoints[{i}].addresses[0]: \"{first}\" is not an IP address")
            })?;
            if AddressFamily::of(address) != family {
                return Err(format!(
                    "endpoints[{i}].addresses[0]: {address} is not an {} address (addressType {})",
                    family, s.address_type
                ));
            }
            let c = e.conditions.unwrap_or_default();
            endpoints.push(SliceEndpoint {
                address,
                condition: condition(c.ready, c.serving, c.terminating),
                zone: e.zone.filter(|z| !z.is_empty()),
                zone_hints: e
                    .hints
                    .and_then(|h| h.for_zones)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|z| z.name)
                    .collect(),
                node: e.node_name.filter(|n| !n.is_empty()),
                weight: 1,
            });
        }
        Ok(Some(Slice {
            namespace: namespace_of(s.metadata.namespace.as_ref(), default_ns),
            name,
            service,
            family,
            ports,
            endpoints,
        }))
    }

    /// Reads a legacy `v1` Endpoints object (named like its Service): one
    /// slice per subset and family. `addresses` are ready;
    /// `notReadyAddresses` are left out, as Endpoints has no terminating
    /// state.
    pub fn from_endpoints(e: Endpoints, default_ns: &str) -> Result<Vec<Slice>, String> {
        let name = e
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or("metadata.name is required")?;
        let namespace = namespace_of(e.metadata.namespace.as_ref(), default_ns);
        let mut out = Vec::new();
        for (i, subset) in e.subsets.unwrap_or_default().into_iter().enumerate() {
            let mut ports = Vec::new();
            for (j, p) in subset.ports.unwrap_or_default().into_iter().enumerate() {
                let port = port_number(Some(p.port), &format!("subsets[{i}].ports[{j}].port"))?
                    .unwrap_or_default();
                ports.push(SlicePort {
                    name: p.name.unwrap_or_default(),
                    port,
                    protocol: p.protocol.unwrap_or_else(|| "TCP".to_string()),
                });
            }
            let mut by_family: [Vec<SliceEndpoint>; 2] = [Vec::new(), Vec::new()];
            for (j, a) in subset.addresses.unwrap_or_default().into_iter().enumerate() {
                let address: IpAddr = a.ip.parse().map_err(|_| {
                    format!(
                        "subsets[{i}].addresses[{j}].ip: \"{}\" is not an IP address",
                        a.ip
                    )
                })?;
                let slot = usize::from(AddressFamily::of(address) == AddressFamily::Ipv6);
                by_family[slot].push(SliceEndpoint {
                    address,
                    condition: Some(Condition::Ready),
                    zone: None,
                    zone_hints: Vec::new(),
                    node: a.node_name.filter(|n| !n.is_empty()),
                    weight: 1,
                });
            }
            for (family, endpoints) in [AddressFamily::Ipv4, AddressFamily::Ipv6]
                .into_iter()
                .zip(by_family)
            {
                if !endpoints.is_empty() {
                    out.push(Slice {
                        namespace: namespace.clone(),
                        name: format!("{name} (subset {i})"),
                        service: name.clone(),
                        family,
                        ports: ports.clone(),
                        endpoints,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The port of this slice that a Service port named `port_name`
    /// (`None`: unnamed) reaches: the TCP port of that name; for an
    /// unnamed Service port, also the slice's only TCP port.
    pub fn port_for(&self, port_name: Option<&str>) -> Option<u16> {
        let tcp = || {
            self.ports
                .iter()
                .filter(|p| p.protocol.eq_ignore_ascii_case("TCP"))
        };
        let wanted = port_name.unwrap_or("");
        if let Some(p) = tcp().find(|p| p.name == wanted) {
            return Some(p.port);
        }
        if port_name.is_none() {
            let mut only = tcp();
            if let (Some(p), None) = (only.next(), only.next()) {
                return Some(p.port);
            }
        }
        None
    }
}

/// One endpoint of a Service port, found in its slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredEndpoint {
    /// Pod address and target port.
    pub address: SocketAddr,
    /// Ready or terminating.
    pub condition: Condition,
    /// Its zone, if known.
    pub zone: Option<String>,
    /// Its labels: zone, zone hints and node, where known.
    pub labels: Labels,
    /// Its relative weight.
    pub weight: u32,
}

/// What a Service port's slices hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEndpoints {
    /// The endpoints, in slice order, each address once.
    pub endpoints: Vec<DiscoveredEndpoint>,
    /// The family used, if any slice matched.
    pub family: Option<AddressFamily>,
    /// The names of the TCP ports of slices that had no port for this
    /// Service port (for an error that says what is there).
    pub unmatched_port_names: BTreeSet<String>,
}

impl ServiceEndpoints {
    /// When the slices had ports but none for the Service port named
    /// `port_name` (`None`: unnamed), what to tell the user: "no port of
    /// its EndpointSlices in cluster "c1" is named "http"; they have
    /// "admin", "metrics"".
    pub fn port_mismatch(&self, cluster: &str, port_name: Option<&str>) -> Option<String> {
        if self.family.is_some() || self.unmatched_port_names.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .unmatched_port_names
            .iter()
            .map(|n| {
                if n.is_empty() {
                    "(unnamed)".to_string()
                } else {
                    format!("\"{n}\"")
                }
            })
            .collect();
        Some(format!(
            "no port of its EndpointSlices in cluster \"{cluster}\" is {}; they have {}",
            port_name.map_or_else(|| "unnamed".to_string(), |n| format!("named \"{n}\"")),
            names.join(", ")
        ))
    }
}

/// The endpoints of the Service port named `port_name` (`None`: the
/// unnamed one) in `slices`, which all belong to one Service in one
/// cluster. Of a dual-stack Service, `prefer`'s family is used if its
/// slices hold any endpoint, else the other.
pub fn service_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a Slice>,
    port_name: Option<&str>,
    prefer: AddressFamily,
) -> ServiceEndpoints {
    let mut out = ServiceEndpoints::default();
    let mut index: std::collections::HashMap<SocketAddr, usize> = std::collections::HashMap::new();
    let mut matched: Vec<(&Slice, u16)> = Vec::new();
    for s in slices {
        match s.port_for(port_name) {
            Some(port) => matched.push((s, port)),
            None => out.unmatched_port_names.extend(
                s.ports
                    .iter()
                    .filter(|p| p.protocol.eq_ignore_ascii_case("TCP"))
                    .map(|p| p.name.clone()),
            ),
        }
    }
    let serving = |family: AddressFamily| {
        matched
            .iter()
            .any(|(s, _)| s.family == family && s.endpoints.iter().any(|e| e.condition.is_some()))
    };
    let family = if serving(prefer) || !serving(prefer.other()) {
        prefer
    } else {
        prefer.other()
    };
    if matched.iter().any(|(s, _)| s.family == family) {
        out.family = Some(family);
    }
    for (slice, port) in matched.into_iter().filter(|(s, _)| s.family == family) {
        for e in &slice.endpoints {
            let Some(condition) = e.condition else {
                continue;
            };
            let address = SocketAddr::new(e.address, port);
            if let Some(&i) = index.get(&address) {
                // The same pod in two slices: ready wins.
                if condition == Condition::Ready {
                    out.endpoints[i].condition = Condition::Ready;
                }
                continue;
            }
            index.insert(address, out.endpoints.len());
            let mut labels = Labels::new();
            if let Some(zone) = &e.zone {
                labels.insert(ZONE_LABEL.to_string(), zone.clone());
            }
            if !e.zone_hints.is_empty() {
                labels.insert(ZONE_HINTS_LABEL.to_string(), e.zone_hints.join(","));
            }
            if let Some(node) = &e.node {
                labels.insert(NODE_LABEL.to_string(), node.clone());
            }
            out.endpoints.push(DiscoveredEndpoint {
                address,
                condition,
                zone: e.zone.clone(),
                labels,
                weight: e.weight,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
