//! Compiling a [`Config`] into a [`Snapshot`]: the configuration's
//! Ingresses, Services and settings, fed to a [`RouterBuilder`].
//!
//! All the work a request would otherwise repeat happens here, once per
//! load: Services are resolved to pools, subsets are split into priority
//! tiers with pools of their own, and rules go into the route table. Pools
//! whose endpoints and settings did not change are taken over from the
//! previous snapshot, keeping their connections and health.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use fleetgate_discovery::{service_endpoints, StoreSnapshot};

use fleetgate_config::{
    BackendRef, Balancing, Config, ConfigError, ConfigErrors, CorsOrigins, Disposition,
    EndpointSource, EndpointSpec, HeaderOp, HealthCheckKind, Ingress, Rule, Service,
    UpstreamProtocol,
};
use fleetgate_ingress::{HostPattern, RegexRouteRefused};
use fleetgate_pool::{
    Condition, Endpoint, HealthCheckConfig, HealthChecks, OutlierConfig, PeerProtocol, PeerTls,
    PoolOptions, Probe, UpstreamTimeouts,
};
use fleetgate_proxy::modules::{
    route_modules, AppRoot, BasicAuth, BodySizeLimit, CompressionChoice, CookieAffinity,
    CookieSettings, Cors, CorsSettings, ForwardAuth, ForwardAuthSettings, HashBy, HeaderChange,
    HeaderRewrite, LeastRequestBalance, Mirror, MirrorTarget, ModuleChain, NextUpstream, RateLimit,
    RateLimitSettings, Redirect, RouteTimeouts, SourceRangeFilter, StatusSet, UpstreamPathRewrite,
};
use fleetgate_proxy::{
    BodyLimits, CompileReport, CompressionPolicy, EdgePolicy, ForwardedHeaders, Snapshot,
};
use fleetgate_router::{
    HashKey, PoolSpec, RequestPolicy, Route, RouterBuilder, ServicePool, Target, TargetPools, Tiers,
};
use fleetgate_subset::{PriorityConfig, SubsetSelector};
use fleetgate_tls::{CertStore, CertStoreBuilder};

/// The pool crate's protocol settings for a Service spoken to with
/// `protocol`.
fn peer_protocol(s: &Service, protocol: UpstreamProtocol) -> PeerProtocol {
    PeerProtocol {
        http2: protocol.http2(),
        tls: protocol.tls().then(|| PeerTls {
            sni: s.tls.sni.clone().unwrap_or_default(),
            verify: s.tls.verify,
            ca_pem: s.tls.ca_pem.clone(),
        }),
    }
}

/// Pool settings for a Service, from the config model.
fn pool_options(s: &Service, protocol: UpstreamProtocol) -> PoolOptions {
    let u = &s.timeouts;
    PoolOptions {
        protocol: peer_protocol(s, protocol),
        timeouts: UpstreamTimeouts {
            connect: u.connect_timeout,
            read: u.read_timeout,
            write: u.write_timeout,
            idle: u.idle_timeout,
        },
        outlier: OutlierConfig {
            consecutive_failures: u.outlier.consecutive_failures,
            base_ejection_time: u.outlier.base_ejection_time,
            max_ejection_percent: u.outlier.max_ejection_percent,
            max_ejection_time: u.outlier.max_ejection_time,
            failure_percentage: u.outlier.failure_percentage,
            failure_percentage_min_requests: u.outlier.failure_percentage_min_requests,
            interval: u.outlier.interval,
        },
    }
}

/// Active health-check settings for a Service, from the config model.
fn health_config(s: &Service, protocol: UpstreamProtocol) -> Option<HealthCheckConfig> {
    let h = s.health_check.as_ref()?;
    Some(HealthCheckConfig {
        protocol: peer_protocol(s, protocol),
        probe: match &h.kind {
            HealthCheckKind::Http { path, host, expect } => Probe::Http {
                path: path.clone(),
                host: host.clone(),
                expect: *expect,
            },
            HealthCheckKind::Tcp => Probe::Tcp,
        },
        interval: h.interval,
        timeout: h.timeout,
        healthy_threshold: h.healthy_threshold,
        unhealthy_threshold: h.unhealthy_threshold,
    })
}

/// Endpoints interned by address (then compared on everything else), so
/// that a pod listed by many Services (or subsets, or both tiers) is one
/// object. Keyed by address alone so that a lookup allocates nothing.
pub(crate) type Interned = HashMap<std::net::SocketAddr, Vec<Arc<Endpoint>>>;

/// The endpoints of `previous`, interned: a build that finds an endpoint
/// unchanged reuses the very object, so that comparing a pool with its
/// predecessor is a pointer comparison per endpoint and nothing is
/// allocated for it.
fn interned_from(previous: Option<&Snapshot>) -> Interned {
    let mut interned = Interned::new();
    for pool in previous.into_iter().flat_map(|p| p.router.pools()) {
        for e in pool.endpoints() {
            let same = interned.entry(e.address).or_default();
            if !same.iter().any(|x| Arc::ptr_eq(x, e)) {
                same.push(Arc::clone(e));
            }
        }
    }
    interned
}

/// Builds the endpoints of a Service with their cluster and zone labels,
/// sharing identical ones through `interned`. Terminating endpoints keep
/// their weight only while the Service has no ready endpoint; otherwise
/// they are listed with weight 0 and drain.
pub(crate) fn endpoints(
    config: &Config,
    specs: &[EndpointSpec],
    interned: &mut Interned,
) -> Vec<Arc<Endpoint>> {
    let any_ready = specs
        .iter()
        .any(|e| e.condition == Condition::Ready && e.weight > 0);
    specs
        .iter()
        .map(|e| {
            let weight = if e.condition == Condition::Terminating && any_ready {
                0
            } else {
                e.weight
            };
            let zone = e.zone.as_deref().or_else(|| {
                config
                    .clusters
                    .iter()
                    .find(|c| c.id == e.cluster)
                    .and_then(|c| c.zone.as_deref())
            });
            let same = interned.entry(e.address).or_default();
            let found = same.iter().find(|x| {
                x.cluster == e.cluster
                    && x.weight == weight
                    && x.condition == e.condition
                    && x.zone.as_deref() == zone
                    && own_labels_equal(x, &e.labels)
            });
            if let Some(x) = found {
                return Arc::clone(x);
            }
            let mut ep = Endpoint::new(e.address, &e.cluster)
                .with_weight(weight)
                .with_labels(&e.labels)
                .with_condition(e.condition);
            if let Some(zone) = zone {
                ep = ep.with_zone(zone);
            }
            let ep = Arc::new(ep);
            same.push(Arc::clone(&ep));
            ep
        })
        .collect()
}

/// Whether `x`'s labels, apart from the cluster and zone ones it always
/// has, are `own`.
fn own_labels_equal(x: &Endpoint, own: &std::collections::BTreeMap<String, String>) -> bool {
    use fleetgate_pool::{CLUSTER_LABEL, ZONE_LABEL};
    let topology = |k: &String| k == CLUSTER_LABEL || k == ZONE_LABEL;
    x.labels
        .iter()
        .filter(|(k, _)| !topology(k))
        .eq(own.iter().filter(|(k, _)| !topology(k)))
}

/// The name a `dns` source stores a Service port's answers under:
/// `name:port`, one per port (a Kubernetes source stores slices under the
/// Service's name; their port names tell ports apart).
pub fn dns_service_name(s: &Service) -> String {
    format!("{}:{}", s.name, s.port)
}

/// A Service's endpoints: those the configuration holds (static and
/// files), then, for every cluster with a live source, what that source
/// last said (`discovered`), by the same Kubernetes rules.
pub(crate) fn endpoint_specs<'c>(
    config: &Config,
    s: &'c Service,
    discovered: Option<&StoreSnapshot>,
    mut warnings: Option<&mut Vec<String>>,
) -> Cow<'c, [EndpointSpec]> {
    let Some(discovered) = discovered else {
        return Cow::Borrowed(&s.endpoints);
    };
    let mut live = config
        .clusters
        .iter()
        .filter(|c| c.source.is_live())
        .peekable();
    if live.peek().is_none() {
        return Cow::Borrowed(&s.endpoints);
    }
    let mut all = s.endpoints.clone();
    for c in live {
        let found = service_endpoints(
            match c.source {
                EndpointSource::Dns(_) => {
                    discovered.slices(&c.id, &s.namespace, &dns_service_name(s))
                }
                _ => discovered.slices(&c.id, &s.namespace, &s.name),
            },
            s.port_name.as_deref(),
            c.ip_family,
        );
        if let (Some(w), Some(mismatch)) = (
            warnings.as_deref_mut(),
            found.port_mismatch(&c.id, s.port_name.as_deref()),
        ) {
            w.push(format!(
                "Service {}: {mismatch}: set port_name on the [[service]]; it has no endpoints there",
                s.key()
            ));
        }
        all.extend(found.endpoints.into_iter().map(|e| EndpointSpec {
            cluster: c.id.clone(),
            address: e.address,
            weight: e.weight,
            labels: e.labels,
            zone: e.zone,
            condition: e.condition,
        }));
    }
    Cow::Owned(all)
}

/// The state of one compilation.
struct Compiler<'a> {
    config: &'a Config,
    /// What live sources said.
    discovered: Option<&'a StoreSnapshot>,
    builder: RouterBuilder,
    /// Shared endpoint objects.
    interned: Interned,
    /// Each Service's endpoints, built once (by [`Service::key`]).
    service_endpoints: HashMap<String, Arc<[Arc<Endpoint>]>>,
    report: CompileReport,
    /// Hosts whose paths are matched as regexes.
    regex_hosts: std::collections::BTreeSet<HostPattern>,
}

/// The request policy of a Service's pools, from the config model.
fn request_policy(service: &Service) -> RequestPolicy {
    let t = &service.timeouts;
    RequestPolicy {
        retries: t.retries,
        retry_non_idempotent: t.retry_non_idempotent,
        websocket_idle_timeout: t.websocket_idle_timeout,
        max_requests_per_endpoint: t.max_requests_per_endpoint,
        queue_timeout: t.queue_timeout,
        least_request: t.least_request,
    }
}

impl Compiler<'_> {
    /// Adds (or reuses) a pool named `name` over `eps`, spoken to with
    /// `protocol`.
    fn add_pool(
        &mut self,
        name: String,
        eps: Vec<Arc<Endpoint>>,
        service: &Service,
        protocol: UpstreamProtocol,
    ) -> Arc<ServicePool> {
        self.builder.pool(PoolSpec {
            name,
            endpoints: eps,
            options: pool_options(service, protocol),
            health_check: health_config(service, protocol),
            policy: request_policy(service),
        })
    }

    /// The target for a backend of an Ingress, split by `subset` if given;
    /// `protocol` is the Ingress's `backend-protocol`, if it has one.
    fn target(
        &mut self,
        ns: &str,
        ingress: &str,
        b: &BackendRef,
        subset: Option<&SubsetSelector>,
        protocol: Option<UpstreamProtocol>,
    ) -> Target {
        let config = self.config;
        let Some(service) = config.resolve_service(ns, b) else {
            self.report.warnings.push(format!(
                "Ingress {ingress}: backend service {ns}/{b} is not declared; its requests get 503"
            ));
            return Target::new(ingress, &format!("{ns}/{b}"), TargetPools::Undeclared);
        };
        let service_key = service.key();
        let protocol = protocol.unwrap_or(service.protocol);
        // A pool speaks one protocol: an Ingress that overrides the
        // Service's gets pools of its own.
        let key = if protocol == service.protocol {
            service_key.clone()
        } else {
            format!("{service_key}[{protocol}]")
        };
        let all: Vec<Arc<Endpoint>> = match self.service_endpoints.get(&service_key) {
            Some(eps) => eps.to_vec(),
            None => {
                let specs = endpoint_specs(config, service, self.discovered, None);
                endpoints(config, &specs, &mut self.interned)
            }
        };
        // Without the live sources' data (`check`, `routes`), endpoints
        // that only live clusters give are not missing.
        let live_elsewhere =
            self.discovered.is_none() && config.clusters.iter().any(|c| c.source.is_live());
        if all.is_empty() && !live_elsewhere {
            self.report.warnings.push(format!(
                "Ingress {ingress}: backend service {service_key} has no endpoints; its requests get 503"
            ));
        }
        // Priority tiers: (name, pool key, endpoints), tier 0 first. A
        // subset splits the Service; the gateway's zone then splits each
        // part (subset first, then zone within it).
        let mut tiers: Vec<(String, String, Vec<Arc<Endpoint>>)> = match subset {
            None => vec![(String::new(), key.clone(), all)],
            Some(sel) => {
                let (inside, outside): (Vec<_>, Vec<_>) =
                    all.into_iter().partition(|e| sel.matches(&e.labels));
                if inside.is_empty() {
                    self.report.warnings.push(format!(
                        "Ingress {ingress}: subset {sel} of {key} has no endpoints; the whole Service is used"
                    ));
                }
                vec![
                    (
                        format!("subset {sel}"),
                        format!("{key}[subset {}]", sel.name()),
                        inside,
                    ),
                    (
                        "the rest".to_string(),
                        format!("{key}[outside subset {}]", sel.name()),
                        outside,
                    ),
                ]
            }
        };
        let local_zone = config
            .gateway
            .zone
            .as_deref()
            .filter(|_| service.timeouts.prefer_local_zone);
        if let Some(zone) = local_zone {
            // Local: the endpoint's own zone (live sources' EndpointSlice
            // zone) or its cluster's configured zone is the gateway's.
            let local_clusters: Vec<&str> = config
                .clusters
                .iter()
                .filter(|c| c.zone.as_deref() == Some(zone))
                .map(|c| c.id.as_str())
                .collect();
            tiers = tiers
                .into_iter()
                .flat_map(|(name, pool_key, eps)| {
                    let (local, other): (Vec<_>, Vec<_>) = eps.into_iter().partition(|e| {
                        e.zone.as_deref() == Some(zone)
                            || local_clusters.contains(&e.cluster.as_str())
                    });
                    let (local_name, other_name) = if name.is_empty() {
                        (format!("zone {zone}"), "other zones".to_string())
                    } else {
                        (
                            format!("{name} in zone {zone}"),
                            format!("{name} in other zones"),
                        )
                    };
                    [
                        (local_name, format!("{pool_key}[zone {zone}]"), local),
                        (other_name, format!("{pool_key}[other zones]"), other),
                    ]
                })
                .collect();
        }
        let selector: Arc<str> = match (subset, local_zone) {
            (Some(sel), Some(zone)) => format!("subset {sel}, then zone {zone}").into(),
            (Some(sel), None) => sel.to_string().into(),
            (None, Some(zone)) => format!("zone {zone}").into(),
            (None, None) => "".into(),
        };
        let pools = if tiers.len() == 1 {
            let (_, pool_key, eps) = tiers.remove(0);
            TargetPools::Whole(self.add_pool(pool_key, eps, service, protocol))
        } else {
            let priority = PriorityConfig {
                overprovisioning_factor: service.timeouts.overprovisioning_factor,
                panic_threshold: service.timeouts.panic_threshold,
            };
            let mut names = Vec::with_capacity(tiers.len());
            let mut pools = Vec::with_capacity(tiers.len());
            for (name, pool_key, eps) in tiers {
                names.push(Arc::from(name));
                pools.push(self.add_pool(pool_key, eps, service, protocol));
            }
            TargetPools::Tiered(Tiers::over(pools, names, selector, priority))
        };
        Target::new(ingress, &service_key, pools)
    }
}

/// Whether plain-HTTP requests for `host` of this Ingress are redirected to
/// HTTPS: `force-ssl-redirect: "true"`; or, on a host listed under
/// `spec.tls`, `ssl-redirect: "true"` (or, with `[gateway]
/// ssl_redirect_default`, unless `ssl-redirect: "false"`). Otherwise plain
/// HTTP is served, as MSE and Higress do.
fn https_redirect(ing: &Ingress, host: &HostPattern, redirect_by_default: bool) -> bool {
    let value = |key: &str| {
        fleetgate_canary::annotation(&ing.annotations, key).map(|(_, v)| v.trim() == "true")
    };
    if value("force-ssl-redirect") == Some(true) {
        return true;
    }
    value("ssl-redirect").unwrap_or(redirect_by_default)
        && ing
            .tls_hosts
            .iter()
            .any(|h| HostPattern::parse(h).ok().as_ref() == Some(host))
}

/// The proxy's form of header changes. The loader checked names (tokens)
/// and values (no control characters), so every one converts; one that
/// did not would be logged, not applied half-way.
fn header_changes(ops: &[HeaderOp]) -> Vec<HeaderChange> {
    let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).ok();
    let value = |v: &str| http::HeaderValue::from_str(v).ok();
    ops.iter()
        .filter_map(|op| {
            let change = match op {
                HeaderOp::Add(n, v) => Some(HeaderChange::Add(name(n)?, value(v)?)),
                HeaderOp::Set(n, v) => Some(HeaderChange::Set(name(n)?, value(v)?)),
                HeaderOp::Remove(n) => Some(HeaderChange::Remove(name(n)?)),
            };
            if change.is_none() {
                log::error!("header change {op:?} cannot be applied and is left out");
            }
            change
        })
        .collect()
}

/// Attaches an Ingress's policy chain to one of its routes; a route
/// without policies gets no chain and costs nothing more.
fn with_policies(route: Route, chain: &ModuleChain) -> Route {
    if chain.is_empty() {
        route
    } else {
        // The modules are shared: every route of the Ingress counts
        // against the same limits (one zone per Ingress, as ingress-nginx).
        route_modules(route, chain.clone())
    }
}

/// The modules an Ingress's annotations ask for, built once for all its
/// routes (paths, aliases, default backend).
fn policy_chain(ing: &Ingress, limit_status: u16) -> ModuleChain {
    let mut chain = ModuleChain::new();
    if ing.basic_auth_request.is_some() && ing.basic_auth.is_none() {
        // Authentication asked for and not loaded (only possible for a
        // hand-made Config): nobody passes.
        log::error!(
            "Ingress {}: basic auth was asked for but not loaded; its routes refuse every request",
            ing.key()
        );
        let everyone = ["0.0.0.0/0", "::/0"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        return chain.with(SourceRangeFilter::new(Vec::new(), everyone));
    }
    // Access first: a client the lists refuse learns nothing, not even
    // where the route redirects.
    if let Some(ranges) = &ing.source_ranges {
        chain = chain.with(SourceRangeFilter::new(
            ranges.allow.clone(),
            ranges.deny.clone(),
        ));
    }
    if let Some(l) = &ing.rate_limits {
        chain = chain.with(RateLimit::new(&RateLimitSettings {
            rps: l.rps,
            rpm: l.rpm,
            burst_multiplier: l.burst_multiplier,
            connections: l.connections,
            exempt: l.exempt.clone(),
            status: limit_status,
        }));
    }
    // CORS before authentication: browsers send preflights without
    // credentials (as nginx answers them in its rewrite phase, before
    // access checks).
    if let Some(c) = &ing.cors {
        let settings = CorsSettings {
            origins: match &c.origins {
                CorsOrigins::Any => None,
                CorsOrigins::List(list) => Some(list.clone()),
            },
            methods: c.methods.clone(),
            headers: c.headers.clone(),
            expose: c.expose.clone(),
            credentials: c.credentials,
            max_age: c.max_age,
        };
        // The loader checked every value is visible ASCII.
        match Cors::new(&settings) {
            Some(m) => chain = chain.with(m),
            None => log::error!(
                "Ingress {}: CORS values cannot be headers; CORS is off",
                ing.key()
            ),
        }
    }
    if let Some(auth) = &ing.basic_auth {
        chain = chain.with(BasicAuth::new(Arc::clone(&auth.credentials), &auth.realm));
    }
    if let Some(f) = &ing.forward_auth {
        let settings = ForwardAuthSettings {
            url: f.url.clone(),
            method: f.method.clone(),
            signin: f.signin.clone(),
            response_headers: f.response_headers.clone(),
            request_redirect: f.request_redirect.clone(),
        };
        match ForwardAuth::new(&settings) {
            Ok(m) => chain = chain.with(m),
            Err(e) => {
                // The loader checked the settings: only a hand-made Config
                // gets here, and its routes stay closed.
                log::error!(
                    "Ingress {}: external authentication cannot be set up ({e}); its routes refuse every request",
                    ing.key()
                );
                let everyone = ["0.0.0.0/0", "::/0"]
                    .iter()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                return ModuleChain::new().with(SourceRangeFilter::new(Vec::new(), everyone));
            }
        }
    }
    if let Some(u) = &ing.upstream {
        if let Some(limit) = u.body_size {
            chain = chain.with(BodySizeLimit(limit));
        }
        let timeouts = RouteTimeouts {
            connect: u.connect_timeout,
            read: u.read_timeout,
            write: u.write_timeout,
        };
        if timeouts != RouteTimeouts::default() {
            chain = chain.with(timeouts);
        }
        if let Some(r) = u.next_upstream {
            chain = chain.with(NextUpstream {
                on_error: r.on_error,
                on_timeout: r.on_timeout,
                on_invalid_header: r.on_invalid_header,
                statuses: r.statuses().fold(StatusSet::default(), StatusSet::with),
                non_idempotent: r.non_idempotent,
                max_retries: r.tries.map(|t| if t == 0 { u32::MAX } else { t - 1 }),
                timeout: r.timeout,
            });
        }
    }
    match &ing.balancing {
        None => {}
        Some(Balancing::HashBy(key)) => match HashKey::parse(key) {
            Ok(k) => chain = chain.with(HashBy::new(k)),
            Err(e) => log::error!(
                "Ingress {}: upstream-hash-by is not applied: {e}",
                ing.key()
            ),
        },
        Some(Balancing::LeastRequest) => chain = chain.with(LeastRequestBalance),
        Some(Balancing::Cookie(c)) => {
            chain = chain.with(CookieAffinity::new(&CookieSettings {
                name: c.name.clone(),
                path: c.path.clone(),
                max_age: c.max_age,
                same_site: c.same_site.clone(),
                secure: c.secure,
                domain: c.domain.clone(),
            }));
        }
    }
    if let Some(on) = ing.compression {
        chain = chain.with(CompressionChoice(on));
    }
    if let Some(rules) = &ing.header_rules {
        chain = chain.with(HeaderRewrite::new(
            header_changes(&rules.request),
            header_changes(&rules.response),
        ));
    }
    if let Some(r) = &ing.redirect {
        // The loader checked the location is visible ASCII.
        if let Some(m) = Redirect::new(r.code, &r.location) {
            chain = chain.with(m);
        }
    }
    if let Some(path) = &ing.app_root {
        chain = chain.with(AppRoot::new(path));
    }
    chain
}

/// The hosts an Ingress's `server-alias` adds: those no Ingress names in
/// a rule (a host routed on its own keeps its own routes, as in
/// ingress-nginx); the others are reported.
fn usable_aliases(c: &mut Compiler<'_>, ing: &Ingress) -> Vec<HostPattern> {
    let key = ing.key();
    let config = c.config;
    let mut usable = Vec::new();
    for alias in &ing.server_aliases {
        let taken = config
            .served_ingresses()
            .any(|other| other.rules.iter().any(|r| &r.host == alias));
        if taken {
            c.report.warnings.push(format!(
                "Ingress {key}: server-alias {alias} is a host of an Ingress rule; the alias is not used"
            ));
        } else if !usable.contains(alias) {
            usable.push(alias.clone());
        }
    }
    usable
}

/// Adds the mirror an Ingress asks for to its chain, if its target can be
/// used; reports it otherwise.
fn with_mirror(
    c: &mut Compiler<'_>,
    key: &str,
    m: &fleetgate_config::MirrorSpec,
    chain: ModuleChain,
) -> ModuleChain {
    let host = m
        .host
        .as_deref()
        .and_then(|h| http::HeaderValue::from_str(h).ok());
    let target = match &m.target {
        fleetgate_config::MirrorTarget::Service {
            namespace,
            name,
            port,
        } => {
            let service = c.config.services.iter().find(|s| {
                &s.namespace == namespace && &s.name == name && port.is_none_or(|p| s.port == p)
            });
            match service.and_then(|s| c.builder.pool_named(&s.key()).cloned()) {
                Some(pool) => MirrorTarget::Service(pool),
                None => {
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    c.report.warnings.push(format!(
                        "Ingress {key}: mirror-target-service {namespace}/{name}{port} is not a Service of the configuration; requests are not mirrored"
                    ));
                    return chain;
                }
            }
        }
        fleetgate_config::MirrorTarget::Url(url) => match MirrorTarget::url(url) {
            Ok(t) => t,
            Err(e) => {
                c.report
                    .warnings
                    .push(format!("Ingress {key}: mirror-target is not used: {e}"));
                return chain;
            }
        },
    };
    chain.with(Mirror::new(target, m.percent, host, m.request_body))
}

/// Adds the routes of a main (non-canary) Ingress.
fn add_main_routes(c: &mut Compiler<'_>, ing: &Ingress) {
    let key = ing.key();
    let aliases = usable_aliases(c, ing);
    let mut policies = policy_chain(ing, c.config.gateway.limit_status);
    if let Some(m) = &ing.mirror {
        policies = with_mirror(c, &key, m, policies);
    }
    // Each rule under its own host, then every rule under each alias.
    let hosts = ing.rules.iter().map(|r| (r, r.host.clone())).chain(
        aliases
            .iter()
            .flat_map(|a| ing.rules.iter().map(move |r| (r, a.clone()))),
    );
    for (rule, host) in hosts.collect::<Vec<_>>() {
        let rule = &Rule {
            host,
            paths: rule.paths.clone(),
        };
        let regex = c.regex_hosts.contains(&rule.host);
        for p in &rule.paths {
            let main = c.target(
                &ing.namespace,
                &key,
                &p.backend,
                ing.subset.as_ref(),
                ing.backend_protocol,
            );
            let redirect = https_redirect(ing, &rule.host, c.config.gateway.ssl_redirect_default);
            let rewrite = match ing.path_matching.rewrite_for(&p.path, p.path_type, regex) {
                Ok(r) => r,
                Err(e) => {
                    // The loader checked it; only a hand-made Config gets here.
                    c.report.warnings.push(format!(
                        "Ingress {key}: path {}: the rewrite is not applied: {e}",
                        p.path
                    ));
                    None
                }
            };
            let route = Route::new(&key, main).with_https_redirect(redirect);
            let route = match rewrite {
                // The path's own modules after the Ingress's shared ones.
                Some(rw) => {
                    with_policies(route, &policies.clone().with(UpstreamPathRewrite::new(rw)))
                }
                None => with_policies(route, &policies),
            };
            let refused = if regex {
                c.builder
                    .add_regex_path(&rule.host, &p.path, p.path_type, route)
                    .err()
                    .map(|(_, why)| why)
            } else {
                c.builder
                    .add_path(&rule.host, &p.path, p.path_type, route)
                    .err()
                    .map(|_| RegexRouteRefused::Duplicate(()))
            };
            match refused {
                None => {}
                Some(RegexRouteRefused::Duplicate(())) => c.report.warnings.push(format!(
                    "Ingress {key}: host {} path {} ({}) is already routed by an earlier Ingress; this rule is not used",
                    rule.host, p.path, p.path_type
                )),
                Some(RegexRouteRefused::Invalid((), why)) => c.report.warnings.push(format!(
                    "Ingress {key}: host {} path {} ({}) is not used: {why}",
                    rule.host, p.path, p.path_type
                )),
            }
        }
    }
    if let Some(b) = &ing.default_backend {
        let main = c.target(
            &ing.namespace,
            &key,
            b,
            ing.subset.as_ref(),
            ing.backend_protocol,
        );
        let id = c
            .builder
            .add_default_route(with_policies(Route::new(&key, main), &policies));
        let mut hosts: Vec<_> = ing.rules.iter().map(|r| r.host.clone()).collect();
        if hosts.is_empty() {
            hosts.push(HostPattern::Any);
        }
        hosts.extend(aliases.iter().cloned());
        hosts.sort();
        hosts.dedup();
        for h in hosts {
            if c.builder.set_host_default(&h, id).is_err() {
                c.report.warnings.push(format!(
                    "Ingress {key}: host {h} already has a default backend from an earlier Ingress"
                ));
            }
        }
    }
}

/// Binds a canary Ingress to the main routes with the same host, path and
/// pathType; rules without one are reported as unbound.
fn bind_canary(c: &mut Compiler<'_>, ing: &Ingress, errors: &mut Vec<ConfigError>) {
    let Some(annotations) = &ing.canary else {
        return;
    };
    let key = ing.key();
    if ing.default_backend.is_some() {
        c.report.warnings.push(format!(
            "Ingress {key}: a canary Ingress's defaultBackend is not used"
        ));
    }
    for rule in &ing.rules {
        for p in &rule.paths {
            let Some(id) = c.builder.route_at(&rule.host, &p.path, p.path_type) else {
                let what = format!("host {} path {} ({})", rule.host, p.path, p.path_type);
                log::warn!("canary Ingress {key} is unbound: no main route for {what}");
                c.report.unbound.push((key.clone(), what));
                continue;
            };
            let target = c.target(
                &ing.namespace,
                &key,
                &p.backend,
                ing.subset.as_ref(),
                ing.backend_protocol,
            );
            if let Err(conflict) = c.builder.add_canary(id, &key, annotations, target) {
                errors.push(
                    ConfigError::new(format!(
                        "host {} path {} ({}): {conflict}",
                        rule.host, p.path, p.path_type
                    ))
                    .at(ing.origin.clone())
                    .object(format!("Ingress {key}")),
                );
            }
        }
    }
}

/// Compiles `config` into generation `generation` of the snapshot, taking
/// over the unchanged pools of `previous`. Errors are configuration errors
/// only compiling can find (two canaries on one route in the `nginx`
/// flavour).
pub fn compile(
    config: &Config,
    generation: u64,
    checks: &Arc<HealthChecks>,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, ConfigErrors> {
    compile_with(config, generation, checks, previous, None)
}

/// Like [`compile`], with the endpoints live sources (DNS) found for their
/// clusters in `discovered`; without it, those clusters have none.
pub fn compile_with(
    config: &Config,
    generation: u64,
    checks: &Arc<HealthChecks>,
    previous: Option<&Snapshot>,
    discovered: Option<&StoreSnapshot>,
) -> Result<Snapshot, ConfigErrors> {
    let mut builder = RouterBuilder::new(checks).canary_flavour(config.gateway.canary_flavour);
    if let Some(previous) = previous {
        builder = builder.reuse_pools_of(&previous.router);
    }
    let mut c = Compiler {
        config,
        builder,
        discovered,
        interned: interned_from(previous),
        service_endpoints: HashMap::new(),
        report: CompileReport::default(),
        regex_hosts: config.regex_hosts(),
    };
    // Every Service port gets its pool, referenced or not, so status and
    // health cover all of them.
    for s in &config.services {
        let specs = endpoint_specs(config, s, c.discovered, Some(&mut c.report.warnings));
        let eps = endpoints(config, &specs, &mut c.interned);
        c.service_endpoints.insert(s.key(), eps.clone().into());
        c.add_pool(s.key(), eps, s, s.protocol);
    }
    c.report.warnings.extend(config.warnings.iter().cloned());

    for ing in &config.ingresses {
        if let Disposition::Ignored(reason) = &ing.disposition {
            log::info!("Ingress {} ignored: {reason}", ing.key());
            c.report.ignored.push((ing.key(), reason.clone()));
            continue;
        }
        c.report.served.push(ing.key());
        if ing.canary.is_none() {
            add_main_routes(&mut c, ing);
        }
    }
    let mut errors = Vec::new();
    for ing in config.served_ingresses() {
        bind_canary(&mut c, ing, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    if let Some(d) = &config.gateway.default_backend {
        let main = c.target(
            &d.namespace,
            "(gateway default backend)",
            &d.backend,
            None,
            None,
        );
        let id = c
            .builder
            .add_default_route(Route::new("(gateway default backend)", main));
        // The id was just handed out by this builder: it cannot be refused.
        let _ = c.builder.set_global_default(id);
    }
    for w in &c.report.warnings {
        log::warn!("{w}");
    }
    let certificates = Arc::new(certificate_store(config, &mut c.report));
    let compression = &config.compression;
    let edge = EdgePolicy {
        trusted_proxies: config.gateway.trusted_proxies.clone(),
        path_normalization: config.gateway.path_normalization,
        request_id: config.gateway.request_id,
        compression: CompressionPolicy {
            enabled: compression.enabled,
            gzip_level: compression.gzip_level,
            brotli_level: compression.brotli_level,
            min_length: compression.min_length,
            types: compression.types.as_ref().map_or_else(
                || CompressionPolicy::default().types,
                |list| list.iter().map(|t| t.as_str().into()).collect(),
            ),
        },
    };
    Ok(Snapshot::new(generation, c.builder.build(), certificates)
        .with_edge(edge)
        .with_report(c.report))
}

/// The certificates of the TLS listeners, by host. A host bound twice keeps
/// its first certificate; the second binding is reported. A certificate is
/// never bound to a host it does not cover (the loader warned): that host
/// gets the default certificate, as in ingress-nginx.
fn certificate_store(config: &Config, report: &mut CompileReport) -> CertStore {
    let mut store = CertStoreBuilder::new();
    for b in &config.tls.certificates {
        for host in b.hosts.iter().filter(|h| b.certificate.covers(h)) {
            if let Err(first) = store.add(host, Arc::clone(&b.certificate), &b.source) {
                if *first != *b.source {
                    report.warnings.push(format!(
                        "{} ({}): host {host} already has the certificate of {first}; this one is not used for it",
                        b.source, b.origin
                    ));
                }
            }
        }
    }
    if let Some(d) = &config.tls.default_certificate {
        store.default_certificate(Arc::clone(&d.certificate), &d.source);
    }
    let store = store.build();
    if store.is_empty() && !config.gateway.listen_tls.is_empty() {
        report.warnings.push(
            "gateway.listen_tls is set but no certificate is configured: every TLS handshake fails"
                .to_string(),
        );
    }
    store
}

/// The proxy's forwarding-header mode for the configured one.
pub fn forwarded_headers(mode: fleetgate_config::ForwardedHeaders) -> ForwardedHeaders {
    match mode {
        fleetgate_config::ForwardedHeaders::Off => ForwardedHeaders::Off,
        fleetgate_config::ForwardedHeaders::Append => ForwardedHeaders::Append,
        fleetgate_config::ForwardedHeaders::Overwrite => ForwardedHeaders::Overwrite,
    }
}

/// The proxy's body limits from the configured client limits (the head
/// and connection limits go to the connection guard).
pub fn body_limits(limits: &fleetgate_config::ClientLimits) -> BodyLimits {
    BodyLimits {
        timeout: limits.body_timeout,
        max_size: limits.max_body_size,
    }
}
