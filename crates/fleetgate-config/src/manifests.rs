//! Kubernetes manifests: multi-document YAML, as users `kubectl apply` it.
//!
//! Each document is parsed twice: first into a generic YAML value, which
//! catches syntax errors and duplicate keys (with line and column) and tells
//! the kind; then into the official `k8s-openapi` type for its kind, which
//! checks field types, again with positions. Kinds other than Ingress,
//! Service, Secret, EndpointSlice, Endpoints and List are skipped with a
//! log line.

use std::collections::BTreeMap;
use std::path::Path;

use fleetgate_discovery::objects::ApiObject;
use k8s_openapi::api::core::v1::{Secret as K8sSecret, Service as K8sService};
use k8s_openapi::api::networking::v1::{Ingress as K8sIngress, IngressBackend};
use serde_yaml_ng::Value;

use crate::draft::{BackendDraft, IngressDraft, PathDraft, RuleDraft};
use crate::duplicate_keys::walk;
use crate::error::{ConfigError, Location};
use crate::input_limits::{flow_too_deep, MAX_NESTING_DEPTH};

use fleetgate_ingress::LEGACY_CLASS_ANNOTATION;

/// A named Service port declared by a Service manifest.
#[derive(Debug, Clone)]
pub(crate) struct ServicePortDecl {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    pub port_name: Option<String>,
    pub origin: Location,
}

/// A Secret, with `stringData` merged over `data` as the API server does.
#[derive(Debug, Clone)]
pub(crate) struct SecretDecl {
    pub namespace: String,
    pub name: String,
    /// `type`, e.g. `kubernetes.io/tls`.
    pub secret_type: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
    pub origin: Location,
}

/// What one file contributed.
#[derive(Debug, Default)]
pub(crate) struct ManifestObjects {
    pub ingresses: Vec<IngressDraft>,
    pub service_ports: Vec<ServicePortDecl>,
    pub secrets: Vec<SecretDecl>,
    /// EndpointSlices, and Endpoints read as slices, with where each was.
    pub slices: Vec<(fleetgate_discovery::Slice, Location)>,
    /// Objects read, of any kind (other kinds are skipped).
    pub objects: usize,
}

impl ManifestObjects {
    /// Whether the file held no object at all.
    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }
}

/// One YAML document and the 1-based line it starts on.
struct Document<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a YAML stream on `---` document markers, remembering where each
/// document starts so error positions can be made absolute.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t") {
            docs.push(Document {
                text: &text[start..offset],
                first_line: start_line,
            });
            if trimmed.trim_start_matches('-').trim().is_empty() {
                // Nothing after the marker: the document starts on the next line.
                start = offset + line.len();
                start_line = i + 2;
            } else {
                start = offset + 3;
                start_line = i + 1;
            }
        }
        offset += line.len();
    }
    docs.push(Document {
        text: &text[start..],
        first_line: start_line,
    });
    docs.retain(|d| d.object_line().is_some());
    docs
}

impl Document<'_> {
    /// The absolute line where the object begins: its first line that is
    /// neither blank nor a comment.
    fn object_line(&self) -> Option<usize> {
        self.text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|i| self.first_line + i)
    }
}

fn yaml_error(file: &Path, doc: &Document<'_>, e: &serde_yaml_ng::Error) -> ConfigError {
    let msg = strip_position(&e.to_string());
    match e.location() {
        Some(loc) => ConfigError::new(msg).at(Location::at(
            file,
            doc.first_line + loc.line() - 1,
            loc.column(),
        )),
        None => ConfigError::new(msg).at(Location::at(file, doc.first_line, 1)),
    }
}

/// serde_yaml appends " at line L column C" (relative to the document); we
/// print our own absolute position instead.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// What one stream of manifests holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManifestSummary {
    /// Ingresses read.
    pub ingresses: usize,
    /// Service ports read.
    pub service_ports: usize,
    /// Secrets read.
    pub secrets: usize,
    /// Objects read, of any kind.
    pub objects: usize,
}

/// Parses a stream of Kubernetes manifests as `[manifests] files` would,
/// without reading any file: `file` only names it in errors. Objects
/// without a namespace get `default_ns`. For tools (and fuzzing) that check
/// manifests on their own; [`crate::Config::load`] does this for every file
/// it names.
pub fn parse_manifests(
    file: &Path,
    text: &str,
    default_ns: &str,
) -> Result<ManifestSummary, crate::ConfigErrors> {
    let (objects, errors) = parse_file(file, text, default_ns);
    if !errors.is_empty() {
        return Err(crate::ConfigErrors(errors));
    }
    Ok(ManifestSummary {
        ingresses: objects.ingresses.len(),
        service_ports: objects.service_ports.len(),
        secrets: objects.secrets.len(),
        objects: objects.objects,
    })
}

/// Parses one manifest file. Objects without a namespace get `default_ns`.
pub(crate) fn parse_file(
    file: &Path,
    text: &str,
    default_ns: &str,
) -> (ManifestObjects, Vec<ConfigError>) {
    let mut out = ManifestObjects::default();
    let mut errors = Vec::new();
    for doc in split_documents(text) {
        let report = walk(doc.text, MAX_NESTING_DEPTH);
        // The walk stops at the limit; where it could not finish (a syntax
        // error), a conservative count of brackets stands in for it, so
        // that no deep nesting reaches the main parser either way.
        let too_deep = report.too_deep.or_else(|| {
            report
                .syntax_error
                .then(|| flow_too_deep(doc.text, MAX_NESTING_DEPTH))
                .flatten()
        });
        if let Some(line) = too_deep {
            errors.push(
                ConfigError::new(format!(
                    "mappings and sequences nest deeper than {MAX_NESTING_DEPTH} levels; the document is not parsed"
                ))
                .at(Location::at(file, doc.first_line + line - 1, 1)),
            );
            continue;
        }
        let duplicates = report.duplicates;
        if !duplicates.is_empty() {
            for d in duplicates {
                let field = if d.parent.is_empty() {
                    d.key.clone()
                } else {
                    format!("{}.{}", d.parent, d.key)
                };
                errors.push(
                    ConfigError::new(format!(
                        "duplicated key \"{}\" (first given at line {})",
                        d.key,
                        doc.first_line + d.first_line - 1
                    ))
                    .at(Location::at(file, doc.first_line + d.line - 1, d.column))
                    .field(field),
                );
            }
            continue;
        }
        let value: Value = match serde_yaml_ng::from_str(doc.text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(yaml_error(file, &doc, &e));
                continue;
            }
        };
        let origin = Location::at(file, doc.object_line().unwrap_or(doc.first_line), 1);
        if let Err(e) = parse_object(&value, Some(&doc), file, origin, default_ns, &mut out) {
            errors.push(e);
        }
    }
    (out, errors)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn parse_object(
    value: &Value,
    doc: Option<&Document<'_>>,
    file: &Path,
    origin: Location,
    default_ns: &str,
    out: &mut ManifestObjects,
) -> Result<(), ConfigError> {
    if value.is_null() {
        return Ok(());
    }
    out.objects += 1;
    let (api_version, kind) = match (str_field(value, "apiVersion"), str_field(value, "kind")) {
        (Some(a), Some(k)) => (a, k),
        _ => {
            return Err(ConfigError::new(
                "not a Kubernetes object: apiVersion and kind are required",
            )
            .at(origin));
        }
    };
    // Typed parse from the value already parsed (no second YAML pass). The
    // document text stays the authority: if the value does not convert
    // (e.g. a plain scalar `80` for a string field, which text parsing
    // accepts), the text is parsed, and its error, with a position, is the
    // one reported.
    fn typed<T: serde::de::DeserializeOwned>(
        value: &Value,
        doc: Option<&Document<'_>>,
        file: &Path,
        origin: &Location,
    ) -> Result<T, ConfigError> {
        if let Ok(typed) = <T as serde::Deserialize>::deserialize(value) {
            return Ok(typed);
        }
        match doc {
            Some(doc) => serde_yaml_ng::from_str(doc.text).map_err(|e| yaml_error(file, doc, &e)),
            None => serde_yaml_ng::from_value(value.clone())
                .map_err(|e| ConfigError::new(strip_position(&e.to_string())).at(origin.clone())),
        }
    }
    match (api_version, kind) {
        ("networking.k8s.io/v1", "Ingress") => {
            let ing: K8sIngress = typed(value, doc, file, &origin)?;
            out.ingresses.push(ingress_draft(ing, origin, default_ns)?);
        }
        (_, "Ingress") => {
            return Err(ConfigError::new(format!(
                "Ingress apiVersion \"{api_version}\" is not supported: use networking.k8s.io/v1"
            ))
            .at(origin));
        }
        ("v1", "Service") => {
            let svc: K8sService = typed(value, doc, file, &origin)?;
            out.service_ports
                .extend(service_ports(svc, &origin, default_ns)?);
        }
        ("v1", "Secret") => {
            let secret: K8sSecret = typed(value, doc, file, &origin)?;
            out.secrets.push(secret_decl(secret, origin, default_ns)?);
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let slice: k8s_openapi::api::discovery::v1::EndpointSlice =
                typed(value, doc, file, &origin)?;
            let name = slice.metadata.name.clone().unwrap_or_default();
            match fleetgate_discovery::Slice::from_endpoint_slice(slice, default_ns) {
                Ok(Some(s)) => out.slices.push((s, origin)),
                Ok(None) => log::info!(
                    "{origin}: skipping EndpointSlice {name}: no {} label, or FQDN addresses",
                    fleetgate_discovery::SERVICE_NAME_LABEL
                ),
                Err(e) => {
                    return Err(ConfigError::new(e)
                        .at(origin)
                        .object(format!("EndpointSlice {name}")))
                }
            }
        }
        ("v1", "Endpoints") => {
            let endpoints: k8s_openapi::api::core::v1::Endpoints =
                typed(value, doc, file, &origin)?;
            let name = endpoints.metadata.name.clone().unwrap_or_default();
            let slices = fleetgate_discovery::Slice::from_endpoints(endpoints, default_ns)
                .map_err(|e| {
                    ConfigError::new(e)
                        .at(origin.clone())
                        .object(format!("Endpoints {name}"))
                })?;
            out.slices
                .extend(slices.into_iter().map(|s| (s, origin.clone())));
        }
        ("v1", "List") => {
            let items = value
                .get("items")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for item in &items {
                parse_object(item, None, file, origin.clone(), default_ns, out)?;
            }
        }
        _ => log::info!("{origin}: skipping {kind} ({api_version}): not used by the gateway"),
    }
    Ok(())
}

/// A Secret as the gateway keeps it.
fn secret_decl(
    secret: K8sSecret,
    origin: Location,
    default_ns: &str,
) -> Result<SecretDecl, ConfigError> {
    let (namespace, name) = object_name("Secret", &secret.metadata, &origin, default_ns)?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(SecretDecl {
        namespace,
        name,
        secret_type: secret.type_,
        data,
        origin,
    })
}

/// Reads objects a hub cluster's API server delivered, as files are read;
/// errors about one name it by
/// [`fleetgate_discovery::objects::ObjectKey::location`].
pub(crate) fn api_objects<'a>(
    objects: impl IntoIterator<Item = &'a ApiObject>,
    default_ns: &str,
) -> (ManifestObjects, Vec<ConfigError>) {
    let mut out = ManifestObjects::default();
    let mut errors = Vec::new();
    for object in objects {
        out.objects += 1;
        let origin = Location::file(&object.key(default_ns).location());
        let read = match object.clone() {
            ApiObject::Ingress(i) => {
                ingress_draft(*i, origin, default_ns).map(|d| out.ingresses.push(d))
            }
            ApiObject::Service(s) => {
                service_ports(*s, &origin, default_ns).map(|p| out.service_ports.extend(p))
            }
            ApiObject::Secret(s) => {
                secret_decl(*s, origin, default_ns).map(|d| out.secrets.push(d))
            }
        };
        if let Err(e) = read {
            errors.push(e);
        }
    }
    (out, errors)
}

fn object_name(
    kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    origin: &Location,
    default_ns: &str,
) -> Result<(String, String), ConfigError> {
    let namespace = meta
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_ns.to_string());
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => Ok((namespace, n.to_string())),
        _ => Err(ConfigError::new("metadata.name is required")
            .at(origin.clone())
            .object(kind.to_string())),
    }
}

fn ingress_draft(
    ing: K8sIngress,
    origin: Location,
    default_ns: &str,
) -> Result<IngressDraft, ConfigError> {
    let (namespace, name) = object_name("Ingress", &ing.metadata, &origin, default_ns)?;
    let annotations: BTreeMap<String, String> = ing.metadata.annotations.unwrap_or_default();
    let spec = ing.spec.unwrap_or_default();
    let class = spec
        .ingress_class_name
        .clone()
        .or_else(|| annotations.get(LEGACY_CLASS_ANNOTATION).cloned());
    let rules = spec
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| RuleDraft {
            host: r.host,
            paths: r
                .http
                .map(|h| h.paths)
                .unwrap_or_default()
                .into_iter()
                .map(|p| PathDraft {
                    path: p.path,
                    path_type: Some(p.path_type),
                    backend: backend_draft(p.backend),
                })
                .collect(),
        })
        .collect();
    let tls: Vec<crate::model::IngressTls> = spec
        .tls
        .unwrap_or_default()
        .into_iter()
        .map(|t| crate::model::IngressTls {
            hosts: t.hosts.unwrap_or_default(),
            secret_name: t.secret_name.filter(|s| !s.is_empty()),
        })
        .collect();
    let tls_hosts = tls.iter().flat_map(|t| t.hosts.iter().cloned()).collect();
    Ok(IngressDraft {
        namespace,
        name,
        class,
        annotations,
        default_backend: spec.default_backend.map(backend_draft),
        rules,
        tls_hosts,
        tls,
        origin,
    })
}

fn backend_draft(b: IngressBackend) -> BackendDraft {
    let service = b.service;
    BackendDraft {
        service: service.as_ref().map(|s| s.name.clone()),
        port_number: service
            .as_ref()
            .and_then(|s| s.port.as_ref())
            .and_then(|p| p.number)
            .map(i64::from),
        port_name: service
            .as_ref()
            .and_then(|s| s.port.as_ref())
            .and_then(|p| p.name.clone()),
        resource: b.resource.is_some(),
    }
}

fn service_ports(
    svc: K8sService,
    origin: &Location,
    default_ns: &str,
) -> Result<Vec<ServicePortDecl>, ConfigError> {
    let (namespace, name) = object_name("Service", &svc.metadata, origin, default_ns)?;
    let mut out = Vec::new();
    for (i, p) in svc
        .spec
        .unwrap_or_default()
        .ports
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        // The gateway proxies TCP: a UDP or SCTP port (kube-dns has 53 of
        // both) is not a backend.
        .filter(|(_, p)| matches!(p.protocol.as_deref(), None | Some("TCP")))
    {
        let port = u16::try_from(p.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                ConfigError::new(format!("port {} is out of range 1-65535", p.port))
                    .at(origin.clone())
                    .object(format!("Service {namespace}/{name}"))
                    .field(format!("spec.ports[{i}].port"))
            })?;
        out.push(ServicePortDecl {
            namespace: namespace.clone(),
            name: name.clone(),
            port,
            port_name: p.name.filter(|n| !n.is_empty()),
            origin: origin.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_nesting_is_refused_however_it_is_dressed() {
        let deep = "[".repeat(100_000);
        for text in [
            format!("apiVersion: v1\nkind: ConfigMap\ndata: {deep}\n"),
            // A quote in a plain scalar does not open a quoted scalar.
            format!("apiVersion: v1\nkind: ConfigMap\nnote: it's\ndata: {deep}\n"),
            // Nor does one in a block scalar.
            format!("apiVersion: v1\nkind: ConfigMap\nnote: |\n  \"\ndata: {deep}\n"),
            // A syntax error early on leaves the bracket count.
            format!("apiVersion: v1\nkind: [\n: : :\ndata: \"]]]]\" {deep}\n"),
        ] {
            let errors = parse_manifests(Path::new("deep.yaml"), &text, "default").unwrap_err();
            assert!(
                errors.to_string().contains("nest deeper than 64 levels"),
                "{errors}"
            );
        }
        let fine = format!(
            "apiVersion: v1\nkind: ConfigMap\ndata: {}1{}\n",
            "[".repeat(60),
            "]".repeat(60)
        );
        assert!(parse_manifests(Path::new("ok.yaml"), &fine, "default").is_ok());
    }

    use super::*;

    #[test]
    fn documents_know_their_first_line() {
        let text = "a: 1\n---\nb: 2\nc: 3\n--- \n# only a comment\n---\n\nd: 4\n--- e: 5\n";
        let docs = split_documents(text);
        let lines: Vec<_> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(lines, vec![1, 3, 8, 10]);
        let objects: Vec<_> = docs.iter().map(|d| d.object_line()).collect();
        assert_eq!(objects, vec![Some(1), Some(3), Some(9), Some(10)]);
        assert!(docs[1].text.starts_with("b: 2"));
        assert!(docs[3].text.trim() == "e: 5");
    }

    const INGRESS_HEAD: &str =
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n";

    #[test]
    fn plain_scalars_for_strings_parse_as_the_text_says() {
        // Unquoted numbers and booleans in annotations are strings to the
        // text parser; the faster path from the parsed value must not
        // change that.
        let text = format!(
            "{INGRESS_HEAD}  annotations:\n    a/weight: 10\n    a/flag: true\n    a/ratio: 0.5\n\
             spec:\n  defaultBackend:\n    service:\n      name: svc\n      port:\n        number: 80\n"
        );
        let (objects, errors) = parse_file(Path::new("m.yaml"), &text, "ns");
        assert!(errors.is_empty(), "{errors:?}");
        let a = &objects.ingresses[0].annotations;
        assert_eq!(a["a/weight"], "10");
        assert_eq!(a["a/flag"], "true");
        assert_eq!(a["a/ratio"], "0.5");
    }

    #[test]
    fn type_errors_keep_their_position() {
        let text = format!("---\n{INGRESS_HEAD}spec:\n  rules: not-a-list\n");
        let (_, errors) = parse_file(Path::new("m.yaml"), &text, "ns");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].location.as_ref().and_then(|l| l.line),
            Some(7),
            "{errors:?}"
        );
        assert!(
            errors[0].to_string().contains("spec.rules"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn secrets_merge_string_data_over_base64_data() {
        // "YQ==" is base64 for "a".
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: kubernetes.io/tls\n\
                    data:\n  tls.crt: YQ==\n  tls.key: YQ==\nstringData:\n  tls.key: plain\n";
        let (objects, errors) = parse_file(Path::new("m.yaml"), text, "ns");
        assert!(errors.is_empty(), "{errors:?}");
        let s = &objects.secrets[0];
        assert_eq!((s.namespace.as_str(), s.name.as_str()), ("ns", "s"));
        assert_eq!(s.secret_type.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(s.data["tls.crt"], b"a");
        assert_eq!(s.data["tls.key"], b"plain");
        assert_eq!(s.origin.line, Some(1));
    }

    #[test]
    fn secret_data_that_is_not_base64_is_an_error_with_its_line() {
        let text = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  tls.crt: \"not base64!\"\n";
        let (_, errors) = parse_file(Path::new("m.yaml"), text, "ns");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].location.as_ref().and_then(|l| l.line),
            Some(7),
            "{errors:?}"
        );
    }
}
