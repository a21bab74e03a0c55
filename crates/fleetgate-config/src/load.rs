//! Loading: read the TOML, expand manifest globs, parse, validate, merge.
//!
//! Every problem is collected, so one run of `fleetgate check` shows them
//! all; a configuration with any error is rejected whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetgate_ingress::ClassFilter;

use crate::draft::{BackendDraft, IngressDraft, PathDraft, RuleDraft};
use crate::error::{ConfigError, ConfigErrors, Location};
use crate::manifests::{self, ServicePortDecl};
use crate::model::*;
use crate::toml_schema::*;

/// The admin listener when `[admin] listen` is not given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";
/// The namespace for objects without one when `[manifests] namespace` is not given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The graceful shutdown bound when `[gateway] grace_period` is not given.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Converts a byte offset into a 1-based line and column.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

struct Loader<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Loader<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> Location {
        let (line, col) = line_col(self.text, span.start);
        Location::at(self.file, line, col)
    }

    fn error(&mut self, span: std::ops::Range<usize>, field: &str, message: impl Into<String>) {
        let e = ConfigError::new(message)
            .at(self.at(span))
            .field(field.to_string());
        self.errors.push(e);
    }
}

impl Config {
    /// Loads and validates the configuration in `path` and every manifest it
    /// names. Returns every error found, or a configuration that is complete.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read: {e}")).at(Location::file(path)))?;
        Config::from_toml_str(path, &text)
    }

    /// Like [`Config::load`], with the TOML text given. `path` names it in
    /// errors and anchors relative manifest paths.
    pub fn from_toml_str(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let raw: FileToml = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    Location::at(path, line, col)
                }
                None => Location::file(path),
            };
            ConfigError::new(e.message().trim().to_string()).at(location)
        })?;
        let mut l = Loader {
            file: path,
            text,
            errors: Vec::new(),
        };
        let upstream = upstream_defaults(&mut l, &raw.upstream);
        let gateway = gateway(&mut l, &raw.gateway);
        let admin = admin(&mut l, &raw.admin);
        let clusters = clusters(&mut l, &raw.cluster);
        let mut services = services(&mut l, &raw.service, &clusters, &upstream, &raw);

        let default_ns = raw
            .manifests
            .as_ref()
            .and_then(|m| m.namespace.clone())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let mut drafts = Vec::new();
        let mut port_decls = Vec::new();
        let manifest_files = match &raw.manifests {
            Some(m) => expand_files(path, &m.files, &mut l.errors),
            None => Vec::new(),
        };
        for file in &manifest_files {
            match std::fs::read_to_string(file) {
                Ok(yaml) => {
                    let (objects, errs) = manifests::parse_file(file, &yaml, &default_ns);
                    l.errors.extend(errs);
                    drafts.extend(objects.ingresses);
                    port_decls.extend(objects.service_ports);
                }
                Err(e) => l.errors.push(
                    ConfigError::new(format!("cannot read manifest: {e}")).at(Location::file(file)),
                ),
            }
        }
        for ing in &raw.ingress {
            drafts.push(toml_ingress_draft(&l, ing, &default_ns));
        }
        merge_service_ports(&mut l.errors, &mut services, port_decls, &upstream);

        let classes = ClassFilter::new(gateway.ingress_class.clone(), gateway.default_class);
        let mut ingresses = Vec::new();
        let mut seen: HashMap<(String, String), Location> = HashMap::new();
        for d in drafts {
            let key = (d.namespace.clone(), d.name.clone());
            if let Some(first) = seen.get(&key) {
                l.errors.push(
                    ConfigError::new(format!("defined twice; first definition at {first}"))
                        .at(d.origin.clone())
                        .object(format!("Ingress {}/{}", d.namespace, d.name)),
                );
                continue;
            }
            seen.insert(key, d.origin.clone());
            match d.validate(&classes, gateway.canary_flavour) {
                Ok(i) => ingresses.push(i),
                Err(errs) => l.errors.extend(errs),
            }
        }

        if !l.errors.is_empty() {
            return Err(ConfigErrors(l.errors));
        }
        let log = log_settings(path, &raw.log);
        Ok(Config {
            log,
            source: path.to_path_buf(),
            gateway,
            admin,
            upstream,
            clusters,
            services,
            ingresses,
            manifest_files,
        })
    }
}

/// Outlier detection defaults: 5 consecutive failures, 30 s base ejection,
/// at most 300 s, at most half of a pool ejected.
const DEFAULT_OUTLIER: OutlierDetection = OutlierDetection {
    consecutive_failures: 5,
    base_ejection_time: Duration::from_secs(30),
    max_ejection_time: Duration::from_secs(300),
    max_ejection_percent: 50,
};

fn outlier(o: Option<&OutlierToml>, base: &OutlierDetection) -> OutlierDetection {
    let Some(o) = o else { return *base };
    OutlierDetection {
        consecutive_failures: o.consecutive_failures.unwrap_or(base.consecutive_failures),
        base_ejection_time: o
            .base_ejection_time
            .map_or(base.base_ejection_time, Into::into),
        max_ejection_time: o
            .max_ejection_time
            .map_or(base.max_ejection_time, Into::into),
        max_ejection_percent: o.max_ejection_percent.unwrap_or(base.max_ejection_percent),
    }
}

fn upstream_defaults(l: &mut Loader<'_>, u: &UpstreamToml) -> UpstreamDefaults {
    let overprovisioning_factor = u.overprovisioning_factor.unwrap_or(1.4);
    if !(1.0..=100.0).contains(&overprovisioning_factor) {
        l.errors.push(
            ConfigError::new(format!(
                "{overprovisioning_factor} is not between 1.0 and 100"
            ))
            .at(Location::file(l.file))
            .field("upstream.overprovisioning_factor"),
        );
    }
    let panic_threshold = u.panic_threshold.unwrap_or(50.0);
    if !(0.0..=100.0).contains(&panic_threshold) {
        l.errors.push(
            ConfigError::new(format!("{panic_threshold} is not a percentage (0-100)"))
                .at(Location::file(l.file))
                .field("upstream.panic_threshold"),
        );
    }
    let outlier = outlier(u.outlier_detection.as_ref(), &DEFAULT_OUTLIER);
    check_outlier(l, &outlier, "upstream.outlier_detection");
    UpstreamDefaults {
        retries: u.retries.unwrap_or(2),
        overprovisioning_factor,
        panic_threshold,
        outlier,
        connect_timeout: u.connect_timeout.map_or(Duration::from_secs(1), Into::into),
        read_timeout: u.read_timeout.map_or(Duration::from_secs(60), Into::into),
        write_timeout: u.write_timeout.map_or(Duration::from_secs(60), Into::into),
        idle_timeout: u.idle_timeout.map_or(Duration::from_secs(60), Into::into),
    }
}

fn gateway(l: &mut Loader<'_>, g: &GatewayToml) -> Gateway {
    let mut listen = Vec::new();
    for addr in &g.listen {
        match addr.get_ref().parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(e) => l.error(
                addr.span(),
                "gateway.listen",
                format!("\"{}\" is not an IP:port address: {e}", addr.get_ref()),
            ),
        }
    }
    if g.listen.is_empty() {
        l.errors.push(
            ConfigError::new("at least one listener is required")
                .at(Location::file(l.file))
                .field("gateway.listen"),
        );
    }
    if g.threads == 0 {
        l.errors.push(
            ConfigError::new("must be at least 1")
                .at(Location::file(l.file))
                .field("gateway.threads"),
        );
    }
    let default_backend = g.default_backend.as_ref().map(|b| {
        let inner = b.get_ref();
        NamespacedBackend {
            namespace: inner
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            backend: BackendRef {
                service: inner.service.clone(),
                port: port_ref(&inner.port),
            },
        }
    });
    let canary_flavour = match g.canary_flavour.as_deref() {
        None => fleetgate_canary::Flavour::default(),
        Some(f) => match f.parse() {
            Ok(f) => f,
            Err(e) => {
                l.errors.push(
                    ConfigError::new(format!("{e}"))
                        .at(Location::file(l.file))
                        .field("gateway.canary_flavour"),
                );
                fleetgate_canary::Flavour::default()
            }
        },
    };
    Gateway {
        runtime_dir: PathBuf::from(g.runtime_dir.as_deref().unwrap_or("/tmp")),
        canary_flavour,
        canary_seed: g.canary_seed.unwrap_or(0x5eed_f1ee_7ea7_u64),
        name: g.name.clone(),
        listen,
        ingress_class: g.ingress_class.clone(),
        default_class: g.default_class,
        advertise: g.advertise.clone(),
        threads: g.threads,
        grace_period: g.grace_period.map_or(DEFAULT_GRACE_PERIOD, Into::into),
        default_backend,
    }
}

fn log_settings(config: &Path, l: &LogToml) -> LogSettings {
    let access = match l.access.as_deref() {
        None | Some("stdout") | Some("-") => AccessLogTarget::Stdout,
        Some("off") | Some("") => AccessLogTarget::Off,
        Some(path) => {
            let p = Path::new(path);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                config.parent().unwrap_or_else(|| Path::new(".")).join(p)
            };
            AccessLogTarget::File(full)
        }
    };
    LogSettings { access }
}

fn port_ref(p: &PortToml) -> PortRef {
    match p {
        PortToml::Number(n) => PortRef::Number(*n),
        PortToml::Name(s) => PortRef::Name(s.clone()),
    }
}

fn admin(l: &mut Loader<'_>, a: &AdminToml) -> Admin {
    let listen = match &a.listen {
        Some(s) => match s.get_ref().parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(e) => {
                l.error(
                    s.span(),
                    "admin.listen",
                    format!("\"{}\" is not an IP:port address: {e}", s.get_ref()),
                );
                DEFAULT_ADMIN_LISTEN.parse().expect("valid default")
            }
        },
        None => DEFAULT_ADMIN_LISTEN.parse().expect("valid default"),
    };
    let token = a.token.clone().filter(|t| !t.is_empty());
    if !listen.ip().is_loopback() && token.is_none() {
        let span = a.listen.as_ref().map(|s| s.span()).unwrap_or(0..0);
        l.error(
            span,
            "admin.listen",
            format!(
                "{listen} is not a loopback address: set [admin] token to expose the admin API"
            ),
        );
    }
    Admin { listen, token }
}

fn clusters(l: &mut Loader<'_>, raw: &[toml::Spanned<ClusterToml>]) -> Vec<Cluster> {
    let mut out: Vec<Cluster> = Vec::new();
    for c in raw {
        let span = c.span();
        let c = c.get_ref();
        if c.id.is_empty() {
            l.error(span, "cluster.id", "must not be empty");
            continue;
        }
        if out.iter().any(|o| o.id == c.id) {
            l.error(
                span,
                "cluster.id",
                format!("cluster id \"{}\" is declared twice", c.id),
            );
            continue;
        }
        out.push(Cluster {
            id: c.id.clone(),
            name: c.name.clone().unwrap_or_else(|| c.id.clone()),
            zone: c.zone.clone().filter(|z| !z.is_empty()),
        });
    }
    out
}

fn services(
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
        if out
            .iter()
            .any(|o| o.namespace == namespace && o.name == s.name && o.port == s.port)
        {
            l.error(span.clone(), "service", format!("{key} is declared twice"));
            continue;
        }
        let mut endpoints = Vec::new();
        for (i, e) in s.endpoints.iter().enumerate() {
            let field = format!("service.endpoints[{i}]");
            if !clusters.iter().any(|c| c.id == e.cluster) {
                l.error(
                    span.clone(),
                    &field,
                    format!(
                        "{key}: cluster \"{}\" is not declared in [[cluster]]",
                        e.cluster
                    ),
                );
                continue;
            }
            let address = match e.address.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(err) => {
                    l.error(
                        span.clone(),
                        &field,
                        format!("{key}: address \"{}\" is not IP:port: {err}", e.address),
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
            });
        }
        out.push(Service {
            namespace,
            name: s.name.clone(),
            port: s.port,
            port_name: s.port_name.clone().filter(|n| !n.is_empty()),
            endpoints,
            timeouts: UpstreamDefaults {
                connect_timeout: s
                    .connect_timeout
                    .map_or(defaults.connect_timeout, Into::into),
                read_timeout: s.read_timeout.map_or(defaults.read_timeout, Into::into),
                write_timeout: s.write_timeout.map_or(defaults.write_timeout, Into::into),
                idle_timeout: s.idle_timeout.map_or(defaults.idle_timeout, Into::into),
                retries: s.retries.unwrap_or(defaults.retries),
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
        });
    }
    out
}

/// Service manifests name ports; endpoints come from TOML. A manifest port
/// with no TOML endpoints becomes a Service with none (its routes answer 503).
fn merge_service_ports(
    errors: &mut Vec<ConfigError>,
    services: &mut Vec<Service>,
    decls: Vec<ServicePortDecl>,
    defaults: &UpstreamDefaults,
) {
    for d in decls {
        match services
            .iter_mut()
            .find(|s| s.namespace == d.namespace && s.name == d.name && s.port == d.port)
        {
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
            None => services.push(Service {
                namespace: d.namespace,
                name: d.name,
                port: d.port,
                port_name: d.port_name,
                endpoints: Vec::new(),
                timeouts: *defaults,
                health_check: None,
            }),
        }
    }
}

fn check_outlier(l: &mut Loader<'_>, o: &OutlierDetection, field: &str) {
    if o.max_ejection_percent > 100 {
        l.errors.push(
            ConfigError::new(format!(
                "max_ejection_percent {} is over 100",
                o.max_ejection_percent
            ))
            .at(Location::file(l.file))
            .field(field.to_string()),
        );
    }
}

/// Parses `"200-399"` or `"200"`.
fn status_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v = s.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some((lo, hi))
}

fn health_check(
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

fn expand_files(config: &Path, patterns: &[String], errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let base = config.parent().unwrap_or_else(|| Path::new("."));
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let full_str = full.to_string_lossy().to_string();
        let is_glob = pattern.contains(['*', '?', '[']);
        let mut matched: Vec<PathBuf> = Vec::new();
        if is_glob {
            match glob::glob(&full_str) {
                Ok(paths) => {
                    for p in paths {
                        match p {
                            Ok(p) if p.is_file() => matched.push(p),
                            Ok(_) => {}
                            Err(e) => errors.push(
                                ConfigError::new(format!("cannot read: {e}"))
                                    .at(Location::file(config))
                                    .field("manifests.files"),
                            ),
                        }
                    }
                }
                Err(e) => errors.push(
                    ConfigError::new(format!("invalid pattern \"{pattern}\": {e}"))
                        .at(Location::file(config))
                        .field("manifests.files"),
                ),
            }
        } else if full.is_file() {
            matched.push(full.clone());
        }
        if matched.is_empty() {
            errors.push(
                ConfigError::new(format!(
                    "\"{pattern}\" matches no file (looked for {full_str})"
                ))
                .at(Location::file(config))
                .field("manifests.files"),
            );
        }
        matched.sort();
        for m in matched {
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
    }
    out
}

fn toml_ingress_draft(
    l: &Loader<'_>,
    ing: &toml::Spanned<IngressToml>,
    default_ns: &str,
) -> IngressDraft {
    let origin = l.at(ing.span());
    let i = ing.get_ref();
    let backend = |service: &str, port: &PortToml| BackendDraft {
        service: Some(service.to_string()),
        port_number: match port {
            PortToml::Number(n) => Some(i64::from(*n)),
            PortToml::Name(_) => None,
        },
        port_name: match port {
            PortToml::Name(s) => Some(s.clone()),
            PortToml::Number(_) => None,
        },
        resource: false,
    };
    let annotations: BTreeMap<String, String> = i.annotations.clone();
    let class = i.class.clone().or_else(|| {
        annotations
            .get(fleetgate_ingress::LEGACY_CLASS_ANNOTATION)
            .cloned()
    });
    IngressDraft {
        namespace: i
            .namespace
            .clone()
            .unwrap_or_else(|| default_ns.to_string()),
        name: i.name.clone(),
        class,
        annotations,
        default_backend: i
            .default_backend
            .as_ref()
            .map(|b| backend(&b.service, &b.port)),
        rules: i
            .rules
            .iter()
            .map(|r| RuleDraft {
                host: Some(r.host.clone()).filter(|h| !h.is_empty()),
                paths: r
                    .paths
                    .iter()
                    .map(|p| PathDraft {
                        path: Some(p.path.clone()),
                        path_type: Some(p.path_type.clone()),
                        backend: backend(&p.service, &p.port),
                    })
                    .collect(),
            })
            .collect(),
        tls_hosts: i.tls_hosts.clone(),
        origin,
    }
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

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = "ab\ncd\nef";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(line_col(t, 6), (3, 1));
    }
}
