//! The validated configuration model that the rest of fleetgate compiles.
//!
//! Both sources (native TOML and Kubernetes manifests) end up here in one
//! shape, so the compiler downstream has one input and no parsing concerns.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fleetgate_ingress::{HostPattern, PathType};

use crate::annotations::UnsupportedAnnotations;
use crate::basic_auth::{BasicAuth, BasicAuthRequest};
use crate::cors::CorsPolicy;
use crate::error::Location;
use crate::header_rules::HeaderRules;
use crate::rate_limits::RateLimits;
use crate::redirects::RedirectRule;
use crate::route_upstream::RouteUpstream;
use crate::source_ranges::SourceRanges;

/// A complete, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The TOML file it was loaded from.
    pub source: PathBuf,
    /// `[gateway]`.
    pub gateway: Gateway,
    /// `[admin]`.
    pub admin: Admin,
    /// `[upstream]`: defaults for every Service.
    pub upstream: UpstreamDefaults,
    /// `[[cluster]]`, in file order.
    pub clusters: Vec<Cluster>,
    /// Service ports with their endpoints, from `[[service]]` and Service manifests.
    pub services: Vec<Service>,
    /// Every Ingress read, served or not, in load order.
    pub ingresses: Vec<Ingress>,
    /// The manifest files read.
    pub manifest_files: Vec<PathBuf>,
    /// Where Ingresses come from: files, or a hub cluster's API server.
    pub manifest_source: ManifestSource,
    /// `[compression]`.
    pub compression: crate::Compression,
    /// `[log]`.
    pub log: LogSettings,
    /// Server certificates: `[[certificate]]`, `[gateway]
    /// default_certificate` and the Secrets named by served Ingresses.
    pub tls: TlsConfig,
    /// Problems that do not stop the gateway (an expired certificate, a TLS
    /// host its certificate does not cover), for `check`, logs and status.
    pub warnings: Vec<String>,
    /// Service ports by `(namespace, name, port)` and `(namespace, name,
    /// port name)`, so resolving a backend does not scan every Service.
    pub(crate) service_index: ServiceIndex,
}

/// Positions in [`Config::services`] by number and by port name.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceIndex {
    by_number: std::collections::HashMap<(String, String, u16), usize>,
    by_name: std::collections::HashMap<(String, String, String), usize>,
}

impl ServiceIndex {
    /// Indexes `services` (the first of duplicates wins).
    pub(crate) fn new(services: &[Service]) -> ServiceIndex {
        let mut index = ServiceIndex::default();
        for (i, s) in services.iter().enumerate() {
            index
                .by_number
                .entry((s.namespace.clone(), s.name.clone(), s.port))
                .or_insert(i);
            if let Some(name) = &s.port_name {
                index
                    .by_name
                    .entry((s.namespace.clone(), s.name.clone(), name.clone()))
                    .or_insert(i);
            }
        }
        index
    }
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

/// The certificates of the TLS listeners.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Host bindings in precedence order: `[[certificate]]` tables first,
    /// then Ingress `spec.tls` entries in load order. A host bound twice
    /// keeps its first certificate.
    pub certificates: Vec<CertificateBinding>,
    /// Served to handshakes that match no host, or send no SNI.
    pub default_certificate: Option<CertificateBinding>,
}

/// A certificate and the hosts it is served for.
#[derive(Debug, Clone)]
pub struct CertificateBinding {
    /// Names or `*.domain` wildcards, as configured (the certificate's own
    /// names when none are given).
    pub hosts: Vec<String>,
    /// The checked certificate and key.
    pub certificate: std::sync::Arc<fleetgate_tls::ServerCertificate>,
    /// Where it came from, e.g. `Secret gateway-demo/foo-tls` or
    /// `certificate certs/foo.pem`.
    pub source: String,
    /// Where it was configured.
    pub origin: Location,
}

/// How the gateway talks to a Service's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over TCP (the default).
    #[default]
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// HTTP/2 over TCP (prior knowledge, h2c).
    Http2,
    /// gRPC: HTTP/2 over TCP.
    Grpc,
    /// gRPC over TLS (ALPN h2).
    Grpcs,
}

impl UpstreamProtocol {
    /// Parses a `backend-protocol` annotation value or a TOML `protocol`
    /// (case-insensitive: `HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `GRPCS`).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_uppercase().as_str() {
            "HTTP" => Ok(UpstreamProtocol::Http),
            "HTTPS" => Ok(UpstreamProtocol::Https),
            "HTTP2" | "H2C" => Ok(UpstreamProtocol::Http2),
            "GRPC" => Ok(UpstreamProtocol::Grpc),
            "GRPCS" => Ok(UpstreamProtocol::Grpcs),
            other => Err(format!(
                "\"{other}\" is not a supported protocol (HTTP, HTTPS, HTTP2, GRPC, GRPCS)"
            )),
        }
    }

    /// Whether connections use TLS.
    pub fn tls(self) -> bool {
        matches!(self, UpstreamProtocol::Https | UpstreamProtocol::Grpcs)
    }

    /// Whether requests go over HTTP/2.
    pub fn http2(self) -> bool {
        matches!(
            self,
            UpstreamProtocol::Http2 | UpstreamProtocol::Grpc | UpstreamProtocol::Grpcs
        )
    }

    /// The name used in listings (`HTTP`, `GRPCS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http => "HTTP",
            UpstreamProtocol::Https => "HTTPS",
            UpstreamProtocol::Http2 => "HTTP2",
            UpstreamProtocol::Grpc => "GRPC",
            UpstreamProtocol::Grpcs => "GRPCS",
        }
    }
}

impl fmt::Display for UpstreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[service.tls]`: verification of an HTTPS or GRPCS upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    /// Verify the upstream's certificate chain and name (default true).
    pub verify: bool,
    /// PEM CA bundle to verify against, instead of the system's roots.
    pub ca_pem: Option<std::sync::Arc<[u8]>>,
    /// The CA file, for listings.
    pub ca_file: Option<PathBuf>,
    /// Server name sent (SNI) and verified; default: the request's host.
    pub sni: Option<String>,
}

impl Default for UpstreamTls {
    /// Verification on, the system's roots, the request's host as SNI.
    fn default() -> Self {
        UpstreamTls {
            verify: true,
            ca_pem: None,
            ca_file: None,
            sni: None,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The access log (default: stdout).
    pub access: AccessLogTarget,
    /// How access log lines are written (default: text).
    pub format: AccessLogFormat,
}

/// How access log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// Space-separated `key=value` (`"text"`).
    #[default]
    Text,
    /// One JSON object per line (`"json"`).
    Json,
}

impl Config {
    /// The Service port an Ingress backend refers to, resolving port names.
    pub fn resolve_service(&self, namespace: &str, backend: &BackendRef) -> Option<&Service> {
        let ns = namespace.to_string();
        let name = backend.service.clone();
        let i = match &backend.port {
            PortRef::Number(n) => self.service_index.by_number.get(&(ns, name, *n)),
            PortRef::Name(port) => self.service_index.by_name.get(&(ns, name, port.clone())),
        }?;
        self.services.get(*i)
    }

    /// The Ingresses this gateway serves.
    pub fn served_ingresses(&self) -> impl Iterator<Item = &Ingress> {
        self.ingresses
            .iter()
            .filter(|i| i.disposition == Disposition::Served)
    }

    /// The hosts whose paths are matched as regular expressions (see
    /// [`crate::regex_hosts`]).
    pub fn regex_hosts(&self) -> std::collections::BTreeSet<fleetgate_ingress::HostPattern> {
        crate::regex_hosts(self.ingresses.iter())
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// A name for logs and status.
    pub name: String,
    /// HTTP listeners.
    pub listen: Vec<SocketAddr>,
    /// The ingress class served.
    pub ingress_class: String,
    /// Whether Ingresses without a class are served too.
    pub default_class: bool,
    /// Addresses reported in Ingress status.
    pub advertise: Vec<String>,
    /// Worker threads.
    pub threads: usize,
    /// Upper bound on a graceful shutdown after SIGTERM.
    pub grace_period: Duration,
    /// How long a SIGTERM keeps the listeners open while `/readyz`
    /// answers 503 and responses close their connections, so that a load
    /// balancer takes the replica out before it stops accepting
    /// (`[gateway] shutdown_delay`, default 0).
    pub shutdown_delay: Duration,
    /// Backend for requests that match nothing, before the built-in 404.
    pub default_backend: Option<NamespacedBackend>,
    /// Which canary semantics to apply (`mse`, the default, or `nginx`).
    pub canary_flavour: fleetgate_canary::Flavour,
    /// Seed of the weighted-canary and tier dice (fixed: reproducible runs).
    pub canary_seed: u64,
    /// What upstream requests get of `X-Forwarded-For`, `X-Real-IP` and
    /// `X-Forwarded-Proto` (default: appended to, as ingress-nginx does).
    pub forwarded_headers: ForwardedHeaders,
    /// Where the pid file and the upgrade socket live (default `/tmp`).
    pub runtime_dir: PathBuf,
    /// The zone this gateway runs in (`[gateway] zone`): Services with
    /// `prefer_zone = "local"` keep traffic in it while it is healthy.
    pub zone: Option<String>,
    /// HTTPS listeners (TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`).
    pub listen_tls: Vec<SocketAddr>,
    /// Whether plain listeners also take HTTP/2 with prior knowledge (h2c).
    pub h2c: bool,
    /// Redirect plain-HTTP requests for hosts listed under an Ingress's
    /// `spec.tls` unless it says `ssl-redirect: "false"` (ingress-nginx's
    /// default); off by default, as MSE and Higress.
    pub ssl_redirect_default: bool,
    /// Peers whose `X-Forwarded-Proto` is believed: proxies or load
    /// balancers in front of the gateway.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long an idle client keep-alive connection is kept (default 75 s,
    /// as nginx; zero turns keep-alive off).
    pub keepalive_timeout: Duration,
    /// Requests served on one client connection before it is closed
    /// (default 1000, as nginx).
    pub keepalive_requests: u32,
    /// What one client may send and hold.
    pub client_limits: ClientLimits,
    /// How request paths are normalised before routing.
    pub path_normalization: PathNormalization,
    /// What to do with an Ingress carrying an unsupported annotation that
    /// restricts access (default: refuse the configuration).
    pub unsupported_annotations: UnsupportedAnnotations,
    /// The status of a request refused by a rate or concurrency limit:
    /// 503 (the default, as ingress-nginx) or 429.
    pub limit_status: u16,
    /// Give every request an `X-Request-Id` (kept from trusted proxies,
    /// generated otherwise), sent upstream and logged (default: on).
    pub request_id: bool,
}

/// How request paths are normalised before routing (defined with the
/// matching it serves).
pub use fleetgate_ingress::PathNormalization;

/// How the gateway treats the forwarding headers of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeaders {
    /// None are added (`false` or `"off"`).
    Off,
    /// The client's address is appended to `X-Forwarded-For` (`true` or
    /// `"append"`, the default); `X-Real-IP` and `X-Forwarded-Proto` are
    /// set.
    #[default]
    Append,
    /// Like `Append` for peers in `trusted_proxies`; from any other peer,
    /// client-sent `X-Forwarded-For`, `X-Forwarded-Host`,
    /// `X-Forwarded-Port`, `Forwarded` and `X-Real-IP` are dropped first, so upstreams
    /// only see what the gateway or a trusted proxy wrote (`"overwrite"`).
    Overwrite,
}

impl ForwardedHeaders {
    /// Parses `"off"`, `"append"` or `"overwrite"`.
    pub fn parse(text: &str) -> Option<ForwardedHeaders> {
        match text {
            "off" => Some(ForwardedHeaders::Off),
            "append" => Some(ForwardedHeaders::Append),
            "overwrite" => Some(ForwardedHeaders::Overwrite),
            _ => None,
        }
    }
}

/// Limits on what one client may send and hold, so that no client can
/// exhaust the gateway's memory or connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Longest time from the first byte of a request head to its end
    /// (default 60 s, as nginx); not reset by each byte. Answered with 408.
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body (default 60 s, as
    /// nginx). Answered with 408.
    pub body_timeout: Duration,
    /// Largest request head, request line and headers together (default
    /// 32 KiB, nginx's four 8 KiB buffers). Answered with 431.
    pub max_header_size: usize,
    /// Largest request body, or `None` for no limit (the default).
    /// Answered with 413.
    pub max_body_size: Option<u64>,
    /// Most client connections open at once (default 10,000); connections
    /// beyond it are closed at once.
    pub max_connections: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_header_size: 32 * 1024,
            max_body_size: None,
            max_connections: 10_000,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// Bearer token required by the admin API, if set.
    pub token: Option<String>,
    /// Where drains made through the admin API are kept, so that they
    /// outlive a restart (read at start, written on every change).
    pub drain_file: Option<PathBuf>,
}

/// `[upstream]`: settings for every Service unless it overrides them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamDefaults {
    /// Extra tries on another endpoint after a connect failure (or, for
    /// idempotent requests, a reset before any response byte).
    pub retries: u32,
    /// Envoy's overprovisioning factor for subset spill-over (default 1.4).
    pub overprovisioning_factor: f64,
    /// Below this percentage of healthy endpoints a tier ignores health (default 50).
    pub panic_threshold: f64,
    /// Passive outlier detection.
    pub outlier: OutlierDetection,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout between response bytes.
    pub read_timeout: Duration,
    /// Write timeout.
    pub write_timeout: Duration,
    /// How long idle upstream connections are kept.
    pub idle_timeout: Duration,
    /// How long an upgraded (WebSocket) connection may stay silent in both
    /// directions before the gateway closes it.
    pub websocket_idle_timeout: Duration,
    /// Also retry requests with non-idempotent methods (POST, PATCH, gRPC
    /// calls) after a reset or timeout before any response byte.
    pub retry_non_idempotent: bool,
    /// Most requests in flight to one endpoint at once (0: no limit, the
    /// default); for HTTP/1.1 upstreams, the connections in use. Envoy's
    /// circuit breakers, per endpoint.
    pub max_requests_per_endpoint: u32,
    /// How long a request waits for an endpoint under its
    /// `max_requests_per_endpoint` before it is answered 503.
    pub queue_timeout: Duration,
    /// Pick endpoints by least request (power of two choices) instead of
    /// weighted round robin: a slow endpoint, whose requests pile up,
    /// gets fewer (`balance = "least_request"`).
    pub least_request: bool,
    /// Prefer endpoints in the gateway's own zone (`prefer_zone =
    /// "local"`): they are the first priority tier, the others the next.
    pub prefer_local_zone: bool,
}

/// `[[cluster]]`: one Kubernetes cluster behind the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Cluster id; becomes the `topology.istio.io/cluster` label.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Zone; becomes the `topology.kubernetes.io/zone` label of endpoints
    /// whose source does not name their zone.
    pub zone: Option<String>,
    /// Where its endpoints come from.
    pub source: EndpointSource,
    /// The family used of a dual-stack Service's endpoints (the other one
    /// only when this one has none).
    pub ip_family: fleetgate_discovery::AddressFamily,
}

/// Where a cluster's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// Written in `[[service]] endpoints`.
    Static,
    /// EndpointSlice (or Endpoints) manifests, as `kubectl get
    /// endpointslices -o yaml` writes them.
    Files {
        /// The patterns, as written.
        patterns: Vec<String>,
        /// The files they matched, in order.
        files: Vec<PathBuf>,
    },
    /// DNS names of each Service (`[[service]] endpoints = [{ cluster,
    /// dns }]`), resolved again as their answers expire.
    Dns(DnsSource),
    /// The cluster's API server: the EndpointSlices of the declared
    /// Services, watched.
    Kubernetes(KubernetesSource),
}

/// How a `kubernetes` cluster's API server is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KubernetesSource {
    /// The kubeconfig file; `None`: in-cluster credentials.
    pub kubeconfig: Option<PathBuf>,
    /// Its context; `None`: the current one.
    pub context: Option<String>,
    /// Bounds connects and reads (default 30 s); watches are renewed
    /// within it.
    pub timeout: Duration,
    /// Keep the old endpoints when a relist finds no slice at all where
    /// there were some (default true).
    pub keep_on_empty_list: bool,
}

/// Where Ingresses (and the Services and Secrets they use) come from:
/// `[manifests] source`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ManifestSource {
    /// `files` (the default): the manifests `[manifests] files` names.
    #[default]
    Files,
    /// `kubernetes`: watched in a hub cluster's API server.
    Kubernetes(HubSource),
}

impl ManifestSource {
    /// One line for logs and `check`: where Ingresses come from.
    pub fn describe(&self, files: usize) -> String {
        match self {
            ManifestSource::Files => format!("{files} manifest file(s)"),
            ManifestSource::Kubernetes(h) => format!(
                "the hub cluster via {}{}, {}",
                h.api.kubeconfig.as_ref().map_or_else(
                    || "in-cluster credentials".to_string(),
                    |p| p.display().to_string()
                ),
                h.api
                    .context
                    .as_ref()
                    .map(|c| format!(" (context {c})"))
                    .unwrap_or_default(),
                if h.namespaces.is_empty() {
                    "all namespaces".to_string()
                } else {
                    format!("namespaces {}", h.namespaces.join(", "))
                }
            ),
        }
    }
}

/// A hub cluster whose Ingresses the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSource {
    /// How its API server is reached (the same keys as a `kubernetes`
    /// cluster's).
    pub api: KubernetesSource,
    /// The namespaces watched; empty: all.
    pub namespaces: Vec<String>,
    /// Where the objects that serve are kept on disk, so that a gateway
    /// started while the hub is unreachable serves them until it answers.
    pub cache: Option<PathBuf>,
}

/// How a `dns` cluster's names are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsSource {
    /// The server asked; `None`: the system's resolvers.
    pub server: Option<SocketAddr>,
    /// Shortest time an answer is kept (default 1 s).
    pub min_ttl: Duration,
    /// Longest time an answer is kept (default 30 s).
    pub max_ttl: Duration,
    /// How long one query may take (default 2 s).
    pub timeout: Duration,
}

/// A DNS name giving a Service's endpoints in one `dns` cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsEndpoint {
    /// The cluster.
    pub cluster: String,
    /// The name.
    pub name: String,
    /// The endpoints' port for A/AAAA names; `None` for SRV names (each
    /// record has its port).
    pub port: Option<u16>,
}

impl EndpointSource {
    /// `static`, `files` or `dns`.
    pub fn kind(&self) -> &'static str {
        match self {
            EndpointSource::Static => "static",
            EndpointSource::Files { .. } => "files",
            EndpointSource::Dns(_) => "dns",
            EndpointSource::Kubernetes(_) => "kubernetes",
        }
    }

    /// Whether endpoints come from a live source (one that changes them
    /// between reloads).
    pub fn is_live(&self) -> bool {
        matches!(self, EndpointSource::Dns(_) | EndpointSource::Kubernetes(_))
    }

    /// One line for logs and status: the kind and what it reads.
    pub fn describe(&self) -> String {
        match self {
            EndpointSource::Static => "static (TOML)".to_string(),
            EndpointSource::Files { patterns, files } => {
                format!("files: {} ({} file(s))", patterns.join(", "), files.len())
            }
            EndpointSource::Dns(d) => format!(
                "dns via {}",
                d.server
                    .map_or_else(|| "the system resolver".to_string(), |s| s.to_string())
            ),
            EndpointSource::Kubernetes(k) => format!(
                "kubernetes via {}{}",
                k.kubeconfig.as_ref().map_or_else(
                    || "in-cluster credentials".to_string(),
                    |p| p.display().to_string()
                ),
                k.context
                    .as_ref()
                    .map(|c| format!(" (context {c})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// One port of a Service, with its endpoints in every cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// The Service port Ingress backends refer to.
    pub port: u16,
    /// The port's name, if it has one.
    pub port_name: Option<String>,
    /// Endpoints (pods) in all clusters, as loaded (static and files).
    pub endpoints: Vec<EndpointSpec>,
    /// DNS names whose answers are its endpoints in `dns` clusters.
    pub dns: Vec<DnsEndpoint>,
    /// Timeouts and retries (the `[upstream]` defaults unless overridden).
    pub timeouts: UpstreamDefaults,
    /// Active health checks, if configured.
    pub health_check: Option<HealthCheck>,
    /// How the gateway talks to the endpoints (an Ingress's
    /// `backend-protocol` annotation overrides it for its routes).
    pub protocol: UpstreamProtocol,
    /// Verification settings for HTTPS and GRPCS.
    pub tls: UpstreamTls,
}

/// `[service.health_check]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// HTTP or TCP.
    pub kind: HealthCheckKind,
    /// Time between probes.
    pub interval: Duration,
    /// Probe timeout.
    pub timeout: Duration,
    /// Successes that make an endpoint healthy.
    pub healthy_threshold: u32,
    /// Failures that make an endpoint unhealthy.
    pub unhealthy_threshold: u32,
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HealthCheckKind {
    /// `GET path` with `Host: host`, status within `expect` (inclusive).
    Http {
        /// Path.
        path: String,
        /// Host header.
        host: String,
        /// Accepted status range.
        expect: (u16, u16),
    },
    /// TCP connect.
    Tcp,
}

/// `[upstream.outlier_detection]` / `[service.outlier_detection]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutlierDetection {
    /// Consecutive failures that eject an endpoint (0 disables).
    pub consecutive_failures: u32,
    /// First ejection time; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// Longest ejection.
    pub max_ejection_time: Duration,
    /// Most of a pool ejected at once, percent.
    pub max_ejection_percent: u32,
    /// Failure share over a window that ejects, percent (0 disables).
    pub failure_percentage: u32,
    /// Requests a window needs before its failure share counts.
    pub failure_percentage_min_requests: u32,
    /// The failure-percentage window.
    pub interval: Duration,
}

impl Service {
    /// `namespace/name:port`.
    pub fn key(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// One endpoint of a Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Cluster id (declared in `[[cluster]]`).
    pub cluster: String,
    /// Pod address.
    pub address: SocketAddr,
    /// Relative weight.
    pub weight: u32,
    /// The endpoint's own labels.
    pub labels: BTreeMap<String, String>,
    /// Its zone, where its source names one (else its cluster's).
    pub zone: Option<String>,
    /// Ready, or terminating (takes traffic only when its Service has no
    /// ready endpoint).
    pub condition: fleetgate_pool::Condition,
}

/// Whether the gateway serves an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Served.
    Served,
    /// Ignored, with the reason (e.g. a foreign class).
    Ignored(String),
}

/// An Ingress, from a manifest or from TOML.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingress {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.ingressClassName`, else the legacy class annotation.
    pub class: Option<String>,
    /// All annotations.
    pub annotations: BTreeMap<String, String>,
    /// `spec.defaultBackend`.
    pub default_backend: Option<BackendRef>,
    /// Rules (validated when the Ingress is served; empty otherwise).
    pub rules: Vec<Rule>,
    /// Hosts listed under `spec.tls`.
    pub tls_hosts: Vec<String>,
    /// `spec.tls` entries.
    pub tls: Vec<IngressTls>,
    /// Its `backend-protocol` annotation, if any.
    pub backend_protocol: Option<UpstreamProtocol>,
    /// The cluster subset its backends are pinned to (MSE `service-subset`).
    pub subset: Option<fleetgate_subset::SubsetSelector>,
    /// Its canary annotations, when it is a canary Ingress.
    pub canary: Option<fleetgate_canary::CanaryAnnotations>,
    /// The client addresses its routes admit (`whitelist-source-range`,
    /// `denylist-source-range`), if it restricts them.
    pub source_ranges: Option<SourceRanges>,
    /// The redirect every request on its routes gets
    /// (`permanent-redirect`, `temporal-redirect`), if any.
    pub redirect: Option<RedirectRule>,
    /// Where requests for `/` are redirected (`app-root`), if anywhere.
    pub app_root: Option<String>,
    /// More hosts serving its rules (`server-alias`).
    pub server_aliases: Vec<HostPattern>,
    /// What its basic-auth annotations ask for (read with the Ingress).
    pub basic_auth_request: Option<BasicAuthRequest>,
    /// Its basic authentication, with the Secret read (set once every
    /// manifest is loaded).
    pub basic_auth: Option<BasicAuth>,
    /// Its per-client rate and concurrency limits, if any.
    pub rate_limits: Option<RateLimits>,
    /// Header changes on its upstream requests and responses, if any.
    pub header_rules: Option<HeaderRules>,
    /// Its own upstream timeouts and body size limit, if any.
    pub upstream: Option<RouteUpstream>,
    /// Its CORS policy (`enable-cors`), if any.
    pub cors: Option<CorsPolicy>,
    /// Its external authentication (`auth-url`), if any.
    pub forward_auth: Option<crate::ForwardAuth>,
    /// How its routes keep clients on endpoints (`upstream-hash-by`,
    /// `affinity`), if they do.
    pub balancing: Option<crate::Balancing>,
    /// Where a share of its requests is mirrored, if anywhere.
    pub mirror: Option<crate::MirrorSpec>,
    /// Its choice on response compression (`fleetgate.io/compression`).
    pub compression: Option<bool>,
    /// Its path annotations: regex matching and upstream path rewrites.
    pub path_matching: crate::PathMatching,
    /// What the review of its annotations reported (unsupported or
    /// misplaced annotations), one line each, naming the Ingress.
    pub warnings: Vec<String>,
    /// Where it was defined.
    pub origin: Location,
    /// Served or ignored.
    pub disposition: Disposition,
}

impl Ingress {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One `spec.tls[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressTls {
    /// Its hosts.
    pub hosts: Vec<String>,
    /// The `kubernetes.io/tls` Secret in the Ingress's namespace.
    pub secret_name: Option<String>,
}

/// One `spec.rules[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The host (or any host).
    pub host: HostPattern,
    /// Its paths.
    pub paths: Vec<IngressPath>,
}

/// One `spec.rules[].http.paths[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressPath {
    /// The path as written (validated).
    pub path: String,
    /// Its type.
    pub path_type: PathType,
    /// Where it routes.
    pub backend: BackendRef,
}

/// A Service backend in the Ingress's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// Service name.
    pub service: String,
    /// Service port, by number or name.
    pub port: PortRef,
}

impl fmt::Display for BackendRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.port)
    }
}

/// A backend with an explicit namespace (the gateway-wide default backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacedBackend {
    /// Namespace.
    pub namespace: String,
    /// The backend.
    pub backend: BackendRef,
}

/// A Service port reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    /// By number.
    Number(u16),
    /// By name.
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}
