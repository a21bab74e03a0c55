//! The TOML file as written, before validation. Unknown keys are errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::byte_size::ByteSize;
use crate::duration::HumanDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileToml {
    pub gateway: GatewayToml,
    #[serde(default)]
    pub admin: AdminToml,
    #[serde(default)]
    pub upstream: UpstreamToml,
    #[serde(default)]
    pub cluster: Vec<Spanned<ClusterToml>>,
    #[serde(default)]
    pub service: Vec<Spanned<ServiceToml>>,
    #[serde(default)]
    pub manifests: Option<ManifestsToml>,
    #[serde(default)]
    pub ingress: Vec<Spanned<IngressToml>>,
    #[serde(default)]
    pub log: LogToml,
    #[serde(default)]
    pub compression: CompressionToml,
    #[serde(default)]
    pub certificate: Vec<Spanned<CertificateToml>>,
}

/// `[[certificate]]` and `[gateway] default_certificate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateToml {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub cert: String,
    pub key: String,
}

/// `[service.tls]`: how the gateway verifies an HTTPS or GRPCS upstream.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTlsToml {
    pub verify: Option<bool>,
    pub ca_file: Option<String>,
    pub sni: Option<String>,
}

/// `[compression]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompressionToml {
    pub enabled: Option<bool>,
    pub gzip_level: Option<u32>,
    pub brotli_level: Option<u32>,
    pub min_length: Option<ByteSize>,
    pub types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogToml {
    pub access: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayToml {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    #[serde(default = "default_class")]
    pub ingress_class: String,
    #[serde(default)]
    pub default_class: bool,
    #[serde(default)]
    pub advertise: Vec<String>,
    #[serde(default = "default_threads")]
    pub threads: usize,
    #[serde(default)]
    pub grace_period: Option<HumanDuration>,
    pub shutdown_delay: Option<HumanDuration>,
    #[serde(default)]
    pub default_backend: Option<Spanned<DefaultBackendToml>>,
    #[serde(default)]
    pub canary_flavour: Option<String>,
    #[serde(default)]
    pub canary_seed: Option<u64>,
    #[serde(default)]
    pub forwarded_headers: Option<ForwardedHeadersToml>,
    #[serde(default)]
    pub runtime_dir: Option<String>,
    pub zone: Option<String>,
    #[serde(default)]
    pub listen_tls: Vec<Spanned<String>>,
    #[serde(default)]
    pub h2c: bool,
    #[serde(default)]
    pub default_certificate: Option<Spanned<CertificateToml>>,
    #[serde(default)]
    pub ssl_redirect_default: bool,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    pub keepalive_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub keepalive_requests: Option<u32>,
    #[serde(default)]
    pub client_header_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub client_body_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub client_max_header_size: Option<ByteSize>,
    #[serde(default)]
    pub client_max_body_size: Option<ByteSize>,
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub path_normalization: Option<String>,
    #[serde(default)]
    pub unsupported_annotations: Option<String>,
    #[serde(default)]
    pub limit_status: Option<u16>,
    #[serde(default)]
    pub merge_slashes: Option<bool>,
    #[serde(default)]
    pub request_id: Option<bool>,
}

fn default_name() -> String {
    "fleetgate".to_string()
}

fn default_class() -> String {
    "fleetgate".to_string()
}

/// `forwarded_headers`: a switch, or the name of a mode.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ForwardedHeadersToml {
    Switch(bool),
    Mode(String),
}

fn default_threads() -> usize {
    1
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminToml {
    pub listen: Option<Spanned<String>>,
    pub token: Option<String>,
    pub drain_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamToml {
    pub connect_timeout: Option<HumanDuration>,
    pub read_timeout: Option<HumanDuration>,
    pub write_timeout: Option<HumanDuration>,
    pub idle_timeout: Option<HumanDuration>,
    pub retries: Option<u32>,
    pub overprovisioning_factor: Option<f64>,
    pub panic_threshold: Option<f64>,
    pub outlier_detection: Option<OutlierToml>,
    pub websocket_idle_timeout: Option<HumanDuration>,
    pub retry_non_idempotent: Option<bool>,
    pub max_requests_per_endpoint: Option<u32>,
    pub queue_timeout: Option<HumanDuration>,
    pub balance: Option<String>,
    pub prefer_zone: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutlierToml {
    pub consecutive_failures: Option<u32>,
    pub base_ejection_time: Option<HumanDuration>,
    pub max_ejection_time: Option<HumanDuration>,
    pub max_ejection_percent: Option<u32>,
    pub failure_percentage: Option<u32>,
    pub failure_percentage_min_requests: Option<u32>,
    pub interval: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthCheckToml {
    pub kind: String,
    pub path: Option<String>,
    pub host: Option<String>,
    pub expect: Option<String>,
    pub interval: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub healthy_threshold: Option<u32>,
    pub unhealthy_threshold: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterToml {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub endpoint_slices: Vec<String>,
    #[serde(default)]
    pub ip_family: Option<String>,
    #[serde(default)]
    pub dns_server: Option<String>,
    #[serde(default)]
    pub dns_min_ttl: Option<HumanDuration>,
    #[serde(default)]
    pub dns_max_ttl: Option<HumanDuration>,
    #[serde(default)]
    pub dns_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub kubeconfig: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub api_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub keep_on_empty_list: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceToml {
    pub namespace: Option<String>,
    pub name: String,
    pub port: u16,
    pub port_name: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<EndpointToml>,
    pub connect_timeout: Option<HumanDuration>,
    pub read_timeout: Option<HumanDuration>,
    pub write_timeout: Option<HumanDuration>,
    pub idle_timeout: Option<HumanDuration>,
    pub retries: Option<u32>,
    pub health_check: Option<HealthCheckToml>,
    pub outlier_detection: Option<OutlierToml>,
    pub protocol: Option<Spanned<String>>,
    pub tls: Option<UpstreamTlsToml>,
    pub retry_non_idempotent: Option<bool>,
    pub max_requests_per_endpoint: Option<u32>,
    pub queue_timeout: Option<HumanDuration>,
    pub balance: Option<String>,
    pub prefer_zone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointToml {
    pub cluster: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub dns: Option<String>,
    #[serde(default)]
    pub dns_srv: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestsToml {
    pub namespace: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
    pub source: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub api_timeout: Option<HumanDuration>,
    pub keep_on_empty_list: Option<bool>,
    pub cache: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressToml {
    pub namespace: Option<String>,
    pub name: String,
    pub class: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub default_backend: Option<BackendToml>,
    #[serde(default)]
    pub rules: Vec<RuleToml>,
    #[serde(default)]
    pub tls_hosts: Vec<String>,
    #[serde(default)]
    pub tls: Vec<IngressTlsToml>,
}

/// `[[ingress.tls]]`: as an Ingress's `spec.tls[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngressTlsToml {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub secret_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleToml {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub paths: Vec<PathToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathToml {
    #[serde(default)]
    pub path: String,
    #[serde(rename = "type", default = "default_path_type")]
    pub path_type: String,
    pub service: String,
    pub port: PortToml,
}

fn default_path_type() -> String {
    "Prefix".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendToml {
    pub service: String,
    pub port: PortToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultBackendToml {
    pub namespace: Option<String>,
    pub service: String,
    pub port: PortToml,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum PortToml {
    Number(u16),
    Name(String),
}
