//! The `dns` source: a name per Service port and cluster, resolved again
//! when its answer expires.
//!
//! A name's A and AAAA records are pod (or load balancer) addresses on a
//! port the configuration gives; an SRV name gives targets with their own
//! ports and weights (the lowest priority present is used, as RFC 2782
//! asks). Each answer is kept for its TTL, clamped to
//! `[min_ttl, max_ttl]`: a TTL of 0 does not turn into a query storm, a
//! long one does not hide a change for hours.
//!
//! A name that does not exist (NXDOMAIN) or has no records is an answer:
//! the Service has no endpoints there. A server that does not answer, or
//! answers with an error, is not: the last answer keeps serving, the
//! cluster is reported disconnected with the error, and the name is asked
//! again after a backoff (doubling from `min_ttl` up to `max_ttl`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetgate_pool::Condition;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::slices::{AddressFamily, Slice, SliceEndpoint, SlicePort};
use crate::store::EndpointStore;

/// What to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DnsQuery {
    /// A and AAAA records of `name`, on `port`.
    Address {
        /// The name.
        name: String,
        /// The endpoints' port.
        port: u16,
    },
    /// SRV records of `name` (e.g. `_http._tcp.web.zone-b.example`).
    Srv {
        /// The name.
        name: String,
    },
}

impl DnsQuery {
    /// The name asked for.
    pub fn name(&self) -> &str {
        match self {
            DnsQuery::Address { name, .. } | DnsQuery::Srv { name } => name,
        }
    }
}

/// A name that gives one Service port's endpoints in one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsTarget {
    /// The cluster.
    pub cluster: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name, as the store keys it. The gateway uses
    /// `name:port`, so that two ports of one Service never mix their
    /// answers.
    pub service: String,
    /// The Service port's name (the slices written carry it, so the port
    /// matches as a Kubernetes slice would).
    pub port_name: Option<String>,
    /// What to ask.
    pub query: DnsQuery,
}

/// How one cluster's names are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsSettings {
    /// The server to ask (UDP, then TCP for truncated answers); `None`:
    /// the system's (`/etc/resolv.conf`).
    pub resolver: Option<SocketAddr>,
    /// Shortest time an answer is kept.
    pub min_ttl: Duration,
    /// Longest time an answer is kept.
    pub max_ttl: Duration,
    /// How long one query may take.
    pub timeout: Duration,
}

fn resolver(settings: &DnsSettings) -> Result<TokioResolver, String> {
    let mut builder = match settings.resolver {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?,
    };
    let options = builder.options_mut();
    options.timeout = settings.timeout;
    options.attempts = 1;
    // fleetgate keeps answers itself, for their clamped TTL: a cached
    // answer would hide a change until the resolver's own expiry.
    options.cache_size = 0;
    builder.build().map_err(|e| format!("resolver: {e}"))
}

/// One answer: the slices it makes and how long it holds.
struct Answer {
    slices: Vec<(String, Option<Slice>)>,
    ttl: Duration,
}

fn slice(
    target: &DnsTarget,
    name: String,
    family: AddressFamily,
    port: u16,
    endpoints: Vec<SliceEndpoint>,
) -> Slice {
    Slice {
        namespace: target.namespace.clone(),
        name,
        service: target.service.clone(),
        family,
        ports: vec![SlicePort {
            name: target.port_name.clone().unwrap_or_default(),
            port,
            protocol: "TCP".to_string(),
        }],
        endpoints,
    }
}

fn endpoint(address: IpAddr, weight: u32) -> SliceEndpoint {
    SliceEndpoint {
        address,
        condition: Some(Condition::Ready),
        zone: None,
        zone_hints: Vec::new(),
        node: None,
        weight,
    }
}

/// The slice names one target writes: one per family (and, for SRV, per
/// record), all starting with this prefix.
fn slice_prefix(target: &DnsTarget) -> String {
    format!("dns {}", target.query.name())
}

fn no_records(e: &hickory_resolver::net::NetError) -> bool {
    e.is_no_records_found() || e.is_nx_domain()
}

/// The A and AAAA records of `name`, asked separately: "no such record"
/// for one type is an empty answer for that family, any other failure of
/// either query fails the whole lookup (a timeout must never read as "no
/// endpoints"). Returns the addresses and how long the answers hold.
async fn addresses(
    resolver: &TokioResolver,
    name: &str,
) -> Result<(Vec<IpAddr>, Duration), String> {
    let mut out = Vec::new();
    let mut ttl: Option<Duration> = None;
    for record_type in [RecordType::A, RecordType::AAAA] {
        match resolver.lookup(name, record_type).await {
            Ok(found) => {
                let held = found
                    .valid_until()
                    .saturating_duration_since(Instant::now());
                ttl = Some(ttl.map_or(held, |t| t.min(held)));
                out.extend(found.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                }));
            }
            Err(e) if no_records(&e) => {}
            Err(e) => return Err(format!("{name} ({record_type}): {e}")),
        }
    }
    Ok((out, ttl.unwrap_or(Duration::ZERO)))
}

async fn ask(resolver: &TokioResolver, target: &DnsTarget) -> Result<Answer, String> {
    let prefix = slice_prefix(target);
    match &target.query {
        DnsQuery::Address { name, port } => {
            let (found, ttl) = addresses(resolver, name).await?;
            let mut slices = Vec::new();
            for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
                let eps: Vec<SliceEndpoint> = found
                    .iter()
                    .filter(|a| AddressFamily::of(**a) == family)
                    .map(|a| endpoint(*a, 1))
                    .collect();
                let slice_name = format!("{prefix}:{port} {family}");
                let value = (!eps.is_empty())
                    .then(|| slice(target, slice_name.clone(), family, *port, eps));
                slices.push((slice_name, value));
            }
            Ok(Answer { slices, ttl })
        }
        DnsQuery::Srv { name } => {
            let records = match resolver.lookup(name.as_str(), RecordType::SRV).await {
                Ok(found) => {
                    let ttl = found
                        .valid_until()
                        .saturating_duration_since(Instant::now());
                    let srv: Vec<_> = found
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::SRV(srv) => Some(srv.clone()),
                            _ => None,
                        })
                        .collect();
                    (srv, ttl)
                }
                Err(e) if no_records(&e) => (Vec::new(), Duration::ZERO),
                Err(e) => return Err(format!("{name}: {e}")),
            };
            let (records, mut ttl) = records;
            let best = records.iter().map(|r| r.priority).min();
            let mut slices = Vec::new();
            for r in records.iter().filter(|r| Some(r.priority) == best) {
                let target_name = r.target.to_utf8();
                let (found, held) = addresses(resolver, &target_name)
                    .await
                    .map_err(|e| format!("{name}: target {e}"))?;
                ttl = ttl.min(held);
                // RFC 2782: weight 0 is "very small", not "none".
                let weight = u32::from(r.weight.max(1));
                for family in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
                    let eps: Vec<SliceEndpoint> = found
                        .iter()
                        .filter(|a| AddressFamily::of(**a) == family)
                        .map(|a| endpoint(*a, weight))
                        .collect();
                    if !eps.is_empty() {
                        let slice_name = format!("{prefix} {target_name}:{} {family}", r.port);
                        slices.push((
                            slice_name.clone(),
                            Some(slice(target, slice_name, family, r.port, eps)),
                        ));
                    }
                }
            }
            Ok(Answer { slices, ttl })
        }
    }
}

/// Writes `answer` as the target's slices, removing the ones it no longer
/// has. Returns how many endpoints it holds.
fn write(
    store: &EndpointStore,
    target: &DnsTarget,
    answer: Answer,
    previous: &mut Vec<String>,
) -> usize {
    let mut now = Vec::new();
    let mut endpoints = 0;
    for (name, slice) in answer.slices {
        if let Some(s) = &slice {
            endpoints += s.endpoints.len();
            now.push(name.clone());
        }
        store.put_slice(
            &target.cluster,
            &target.namespace,
            &target.service,
            &name,
            slice,
        );
    }
    for gone in previous.iter().filter(|n| !now.contains(n)) {
        store.put_slice(
            &target.cluster,
            &target.namespace,
            &target.service,
            gone,
            None,
        );
    }
    *previous = now;
    endpoints
}

/// Resolves `targets` (all of `cluster`) until the task is dropped,
/// writing what they give to `store`. The cluster is synced once every
/// name has had an answer.
pub async fn run(
    store: Arc<EndpointStore>,
    cluster: String,
    settings: DnsSettings,
    targets: Vec<DnsTarget>,
) {
    store.register(&cluster);
    let resolver = match resolver(&settings) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            log::error!("cluster {cluster}: DNS source cannot start: {e}");
            store.report(&cluster, Err(e), false);
            return;
        }
    };
    if targets.is_empty() {
        store.report(&cluster, Ok(()), true);
        return;
    }
    let pending = Arc::new(AtomicUsize::new(targets.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let (store, resolver, settings, pending) = (
            Arc::clone(&store),
            Arc::clone(&resolver),
            settings.clone(),
            Arc::clone(&pending),
        );
        tasks.spawn(async move {
            let mut written = Vec::new();
            let mut answered = false;
            let mut backoff = settings.min_ttl;
            loop {
                let wait = match ask(&resolver, &target).await {
                    Ok(answer) => {
                        let ttl = answer.ttl.clamp(settings.min_ttl, settings.max_ttl);
                        let n = write(&store, &target, answer, &mut written);
                        if n == 0 {
                            log::warn!(
                                "cluster {}: {} has no records: Service {}/{} has no endpoints there",
                                target.cluster,
                                target.query.name(),
                                target.namespace,
                                target.service
                            );
                        }
                        let synced = !answered && pending.fetch_sub(1, Ordering::AcqRel) == 1;
                        answered = true;
                        store.report_part(&target.cluster, target.query.name(), Ok(()), synced);
                        backoff = settings.min_ttl;
                        ttl
                    }
                    Err(e) => {
                        log::warn!(
                            "cluster {}: DNS lookup failed, the last answer keeps serving: {e}",
                            target.cluster
                        );
                        store.report_part(&target.cluster, target.query.name(), Err(e), false);
                        let wait = backoff;
                        backoff = (backoff * 2).min(settings.max_ttl);
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
