//! The TOML sections that are not Services or Ingresses: `[gateway]`,
//! `[admin]`, `[upstream]`, `[log]`, `[[cluster]]`. Each turns its raw
//! table into the model, reporting problems on the [`Loader`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::annotations::UnsupportedAnnotations;
use crate::byte_size::ByteSize;
use crate::error::{ConfigError, Location};
use crate::load::{Loader, DEFAULT_ADMIN_LISTEN, DEFAULT_GRACE_PERIOD, DEFAULT_NAMESPACE};
use crate::model::*;
use crate::toml_schema::*;

/// Outlier detection defaults: 5 consecutive failures, or half of at
/// least 20 requests within 10 s; 30 s base ejection, at most 300 s, at
/// most half of a pool ejected.
pub(crate) const DEFAULT_OUTLIER: OutlierDetection = OutlierDetection {
    consecutive_failures: 5,
    base_ejection_time: Duration::from_secs(30),
    max_ejection_time: Duration::from_secs(300),
    max_ejection_percent: 50,
    failure_percentage: 50,
    failure_percentage_min_requests: 20,
    interval: Duration::from_secs(10),
};

pub(crate) fn outlier(o: Option<&OutlierToml>, base: &OutlierDetection) -> OutlierDetection {
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
        failure_percentage: o.failure_percentage.unwrap_or(base.failure_percentage),
        failure_percentage_min_requests: o
            .failure_percentage_min_requests
            .unwrap_or(base.failure_percentage_min_requests),
        interval: o.interval.map_or(base.interval, Into::into),
    }
}

pub(crate) fn check_outlier(l: &mut Loader<'_>, o: &OutlierDetection, field: &str) {
    let mut problems = Vec::new();
    if o.max_ejection_percent > 100 {
        problems.push(format!(
            "max_ejection_percent {} is over 100",
            o.max_ejection_percent
        ));
    }
    if o.failure_percentage > 100 {
        problems.push(format!(
            "failure_percentage {} is over 100 (0 disables it)",
            o.failure_percentage
        ));
    }
    if o.failure_percentage > 0 && o.interval.is_zero() {
        problems.push("interval must be longer than 0s while failure_percentage is on".to_string());
    }
    for p in problems {
        l.errors.push(
            ConfigError::new(p)
                .at(Location::file(l.file))
                .field(field.to_string()),
        );
    }
}

pub(crate) fn upstream_defaults(l: &mut Loader<'_>, u: &UpstreamToml) -> UpstreamDefaults {
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
        websocket_idle_timeout: u
            .websocket_idle_timeout
            .map_or(Duration::from_secs(3600), Into::into),
        retry_non_idempotent: u.retry_non_idempotent.unwrap_or(false),
        max_requests_per_endpoint: u.max_requests_per_endpoint.unwrap_or(0),
        queue_timeout: u.queue_timeout.map_or(Duration::from_secs(1), Into::into),
        least_request: balance(l, u.balance.as_deref(), false, "upstream.balance"),
        prefer_local_zone: prefer_zone(l, u.prefer_zone.as_deref(), false, "upstream.prefer_zone"),
    }
}

/// `prefer_zone = "local" | "none"`: whether the gateway's own zone comes
/// first; `base` when unset.
pub(crate) fn prefer_zone(
    l: &mut Loader<'_>,
    value: Option<&str>,
    base: bool,
    field: &str,
) -> bool {
    match value {
        None => base,
        Some("local") => true,
        Some("none") => false,
        Some(other) => {
            l.errors.push(
                ConfigError::new(format!(
                    "\"{other}\" is not a zone preference: \"local\" (the gateway's [gateway] zone first) or \"none\" (the default)"
                ))
                .at(Location::file(l.file))
                .field(field.to_string()),
            );
            base
        }
    }
}

/// `balance = "round_robin" | "least_request"`: whether it is least
/// request; `base` when unset.
pub(crate) fn balance(l: &mut Loader<'_>, value: Option<&str>, base: bool, field: &str) -> bool {
    match value {
        None => base,
        Some("round_robin") => false,
        Some("least_request") => true,
        Some(other) => {
            l.errors.push(
                ConfigError::new(format!(
                    "\"{other}\" is not a balancing: \"round_robin\" (weighted, the default) or \"least_request\" (power of two choices)"
                ))
                .at(Location::file(l.file))
                .field(field.to_string()),
            );
            base
        }
    }
}

/// Parses listener addresses, reporting each bad one at its position;
/// `plain` are the plain listeners, which TLS listeners must not repeat.
fn addresses(
    l: &mut Loader<'_>,
    raw: &[toml::Spanned<String>],
    field: &str,
    plain: &[SocketAddr],
) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for addr in raw {
        match addr.get_ref().parse::<SocketAddr>() {
            Ok(a) if out.contains(&a) => {
                l.error(addr.span(), field, format!("{a} is listed twice"))
            }
            Ok(a) if plain.contains(&a) => l.error(
                addr.span(),
                field,
                format!("{a} is also a plain listener in gateway.listen"),
            ),
            Ok(a) => out.push(a),
            Err(e) => l.error(
                addr.span(),
                field,
                format!("\"{}\" is not an IP:port address: {e}", addr.get_ref()),
            ),
        }
    }
    out
}

/// Parses `trusted_proxies`: CIDRs (`10.0.0.0/8`) or single addresses.
fn trusted_proxies(l: &mut Loader<'_>, raw: &[toml::Spanned<String>]) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for entry in raw {
        let text = entry.get_ref().trim();
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => out.push(net.trunc()),
            Err(_) => l.error(
                entry.span(),
                "gateway.trusted_proxies",
                format!("\"{text}\" is not a CIDR (10.0.0.0/8) or an IP address"),
            ),
        }
    }
    out
}

/// An IP address, or a DNS name as Ingress status takes one.
fn advertisable(a: &str) -> bool {
    a.parse::<std::net::IpAddr>().is_ok()
        || (!a.is_empty()
            && a.len() <= 253
            && a.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }))
}

pub(crate) fn gateway(l: &mut Loader<'_>, g: &GatewayToml) -> Gateway {
    let listen = addresses(l, &g.listen, "gateway.listen", &[]);
    let listen_tls = addresses(l, &g.listen_tls, "gateway.listen_tls", &listen);
    if g.listen.is_empty() && g.listen_tls.is_empty() {
        l.errors.push(
            ConfigError::new("at least one listener (listen or listen_tls) is required")
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
    for a in &g.advertise {
        if !advertisable(a) {
            l.errors.push(
                ConfigError::new(format!(
                    "\"{a}\" is neither an IP address nor a host name (no port, no brackets): it is what Ingress status lists"
                ))
                .at(Location::file(l.file))
                .field("gateway.advertise"),
            );
        }
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
        runtime_dir: g
            .runtime_dir
            .as_deref()
            .map_or_else(default_runtime_dir, PathBuf::from),
        zone: g.zone.clone().filter(|z| !z.is_empty()),
        canary_flavour,
        canary_seed: g.canary_seed.unwrap_or(0x5eed_f1ee_7ea7_u64),
        forwarded_headers: match &g.forwarded_headers {
            None | Some(ForwardedHeadersToml::Switch(true)) => ForwardedHeaders::Append,
            Some(ForwardedHeadersToml::Switch(false)) => ForwardedHeaders::Off,
            Some(ForwardedHeadersToml::Mode(m)) => ForwardedHeaders::parse(m).unwrap_or_else(|| {
                l.errors.push(
                    ConfigError::new(format!(
                        "\"{m}\" is not a mode: use \"append\", \"overwrite\" or \"off\" (or true/false)"
                    ))
                    .at(Location::file(l.file))
                    .field("gateway.forwarded_headers"),
                );
                ForwardedHeaders::Append
            }),
        },
        name: g.name.clone(),
        listen,
        listen_tls,
        h2c: g.h2c,
        ssl_redirect_default: g.ssl_redirect_default,
        trusted_proxies: trusted_proxies(l, &g.trusted_proxies),
        keepalive_timeout: g
            .keepalive_timeout
            .map_or(Duration::from_secs(75), Into::into),
        keepalive_requests: match g.keepalive_requests {
            Some(0) => {
                l.errors.push(
                    ConfigError::new("must be at least 1")
                        .at(Location::file(l.file))
                        .field("gateway.keepalive_requests"),
                );
                1
            }
            n => n.unwrap_or(1000),
        },
        client_limits: client_limits(l, g),
        path_normalization: path_normalization(l, g),
        unsupported_annotations: match g.unsupported_annotations.as_deref() {
            None => UnsupportedAnnotations::default(),
            Some(v) => UnsupportedAnnotations::parse(v).unwrap_or_else(|| {
                l.errors.push(
                    ConfigError::new(format!(
                        "\"{v}\" is not a policy: use \"refuse\" (the default) or \"warn\""
                    ))
                    .at(Location::file(l.file))
                    .field("gateway.unsupported_annotations"),
                );
                UnsupportedAnnotations::default()
            }),
        },
        limit_status: match g.limit_status {
            None => 503,
            Some(s @ (429 | 503)) => s,
            Some(other) => {
                l.errors.push(
                    ConfigError::new(format!("{other} is not a limit status: use 503 (the default) or 429"))
                        .at(Location::file(l.file))
                        .field("gateway.limit_status"),
                );
                503
            }
        },
        request_id: g.request_id.unwrap_or(true),
        ingress_class: g.ingress_class.clone(),
        default_class: g.default_class,
        advertise: g.advertise.clone(),
        threads: g.threads,
        grace_period: g.grace_period.map_or(DEFAULT_GRACE_PERIOD, Into::into),
        shutdown_delay: g.shutdown_delay.map_or(Duration::ZERO, Into::into),
        default_backend,
    }
}

/// `path_normalization` and `merge_slashes`.
fn path_normalization(l: &mut Loader<'_>, g: &GatewayToml) -> PathNormalization {
    let merge_slashes = g.merge_slashes.unwrap_or(true);
    match g.path_normalization.as_deref() {
        None | Some("rfc3986") => PathNormalization::Rfc3986 { merge_slashes },
        Some("none") => {
            if g.merge_slashes.is_some() {
                l.errors.push(
                    ConfigError::new("only applies with path_normalization = \"rfc3986\"")
                        .at(Location::file(l.file))
                        .field("gateway.merge_slashes"),
                );
            }
            PathNormalization::None
        }
        Some(other) => {
            l.errors.push(
                ConfigError::new(format!(
                    "\"{other}\" is not a normalisation: use \"rfc3986\" or \"none\""
                ))
                .at(Location::file(l.file))
                .field("gateway.path_normalization"),
            );
            PathNormalization::default()
        }
    }
}

/// The `client_*` limits and `max_connections`, checked for values that
/// would refuse every request.
fn client_limits(l: &mut Loader<'_>, g: &GatewayToml) -> ClientLimits {
    let defaults = ClientLimits::default();
    let mut refuse = |field: &str, why: &str| {
        l.errors.push(
            ConfigError::new(why)
                .at(Location::file(l.file))
                .field(format!("gateway.{field}")),
        );
    };
    let header_timeout = g
        .client_header_timeout
        .map_or(defaults.header_timeout, Into::into);
    if header_timeout.is_zero() {
        refuse("client_header_timeout", "must be more than zero");
    }
    let body_timeout = g
        .client_body_timeout
        .map_or(defaults.body_timeout, Into::into);
    if body_timeout.is_zero() {
        refuse("client_body_timeout", "must be more than zero");
    }
    let max_header_size = match g.client_max_header_size {
        None => defaults.max_header_size,
        Some(ByteSize(n)) if !(1024..=1 << 20).contains(&n) => {
            refuse(
                "client_max_header_size",
                "must be between 1k and 1m (the HTTP/1 parser holds at most 1 MiB)",
            );
            defaults.max_header_size
        }
        Some(ByteSize(n)) => n as usize,
    };
    let max_connections = match g.max_connections {
        Some(0) => {
            refuse("max_connections", "must be at least 1");
            defaults.max_connections
        }
        n => n.unwrap_or(defaults.max_connections),
    };
    ClientLimits {
        header_timeout,
        body_timeout,
        max_header_size,
        // 0 means no limit, as nginx's client_max_body_size 0.
        max_body_size: g.client_max_body_size.map(|s| s.0).filter(|&n| n > 0),
        max_connections,
    }
}

pub(crate) fn log_settings(l: &mut Loader<'_>, config: &Path, raw: &LogToml) -> LogSettings {
    let access = match raw.access.as_deref() {
        None | Some("stdout") | Some("-") => AccessLogTarget::Stdout,
        Some("off") | Some("") => AccessLogTarget::Off,
        Some(path) => AccessLogTarget::File(crate::files::relative_to(config, path)),
    };
    let format = match raw.format.as_deref() {
        None | Some("text") => AccessLogFormat::Text,
        Some("json") => AccessLogFormat::Json,
        Some(other) => {
            l.errors.push(
                ConfigError::new(format!(
                    "\"{other}\" is not a log format: use \"text\" (the default) or \"json\""
                ))
                .at(Location::file(l.file))
                .field("log.format"),
            );
            AccessLogFormat::Text
        }
    };
    LogSettings { access, format }
}

pub(crate) fn port_ref(p: &PortToml) -> PortRef {
    match p {
        PortToml::Number(n) => PortRef::Number(*n),
        PortToml::Name(s) => PortRef::Name(s.clone()),
    }
}

pub(crate) fn admin(l: &mut Loader<'_>, a: &AdminToml) -> Admin {
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
    let token = a.token.clone();
    if let Some(t) = &token {
        let why = if !t.bytes().all(|b| b.is_ascii_graphic()) {
            Some(
                "must be visible ASCII characters only (no whitespace or control characters)"
                    .to_string(),
            )
        } else if t.chars().count() < MIN_ADMIN_TOKEN_LENGTH {
            Some(format!(
                "is too short to resist guessing: use at least {MIN_ADMIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 16`)"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            l.errors.push(
                ConfigError::new(format!("the token {why}"))
                    .at(Location::file(l.file))
                    .field("admin.token"),
            );
        }
    }
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
    let drain_file = a
        .drain_file
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| crate::files::relative_to(l.file, p));
    Admin {
        listen,
        token,
        drain_file,
    }
}

/// The shortest `[admin] token` accepted.
pub(crate) const MIN_ADMIN_TOKEN_LENGTH: usize = 16;

pub(crate) fn clusters(l: &mut Loader<'_>, raw: &[toml::Spanned<ClusterToml>]) -> Vec<Cluster> {
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
        let Some(source) = crate::endpoint_files::cluster_source(l, span.clone(), c) else {
            continue;
        };
        let ip_family = match c.ip_family.as_deref() {
            None | Some("ipv4") => fleetgate_discovery::AddressFamily::Ipv4,
            Some("ipv6") => fleetgate_discovery::AddressFamily::Ipv6,
            Some(other) => {
                l.error(
                    span,
                    "cluster.ip_family",
                    format!(
                        "cluster \"{}\": \"{other}\" is not \"ipv4\" or \"ipv6\"",
                        c.id
                    ),
                );
                continue;
            }
        };
        out.push(Cluster {
            id: c.id.clone(),
            name: c.name.clone().unwrap_or_else(|| c.id.clone()),
            zone: c.zone.clone().filter(|z| !z.is_empty()),
            source,
            ip_family,
        });
    }
    out
}

/// `runtime_dir`'s default: the directory systemd made for the unit
/// (`RuntimeDirectory=` sets `$RUNTIME_DIRECTORY`), else `/tmp`.
fn default_runtime_dir() -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        .and_then(|dirs| {
            let first = dirs.to_str()?.split(':').next()?.to_string();
            (!first.is_empty()).then(|| PathBuf::from(first))
        })
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}
