//! Server certificates: `[[certificate]]` tables, `[gateway]
//! default_certificate`, and the `kubernetes.io/tls` Secrets that served
//! Ingresses name in `spec.tls[].secretName`.
//!
//! Every certificate is parsed and checked here, at load, so that a bad one
//! is a configuration error with its place (the Secret's file and line, or
//! the TOML table) and never a handshake failure later. Dates and host
//! coverage only warn: an expired certificate still beats no TLS at all
//! while an operator renews it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fleetgate_tls::{ServerCertificate, Validity};

use crate::error::{ConfigError, Location};
use crate::files::relative_to;
use crate::load::Loader;
use crate::manifests::SecretDecl;
use crate::model::{CertificateBinding, Disposition, Ingress, TlsConfig};
use crate::toml_schema::{CertificateToml, FileToml};

/// The Secret type that holds a TLS certificate and key.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Builds the TLS configuration, reporting errors on `l` and warnings in
/// `warnings`.
pub(crate) fn tls_config(
    l: &mut Loader<'_>,
    raw: &FileToml,
    ingresses: &[Ingress],
    secrets: &[SecretDecl],
    warnings: &mut Vec<String>,
) -> TlsConfig {
    let mut tls = TlsConfig::default();
    for (i, c) in raw.certificate.iter().enumerate() {
        if let Some(b) = toml_certificate(l, c, &format!("certificate[{i}]")) {
            tls.certificates.push(b);
        }
    }
    if let Some(c) = &raw.gateway.default_certificate {
        tls.default_certificate = toml_certificate(l, c, "gateway.default_certificate");
    }
    let by_name: HashMap<(&str, &str), &SecretDecl> = secrets
        .iter()
        .map(|s| ((s.namespace.as_str(), s.name.as_str()), s))
        .collect();
    let mut parsed: HashMap<(String, String), Option<Arc<ServerCertificate>>> = HashMap::new();
    for ing in ingresses
        .iter()
        .filter(|i| i.disposition == Disposition::Served)
    {
        for (i, entry) in ing.tls.iter().enumerate() {
            let Some(secret_name) = &entry.secret_name else {
                continue;
            };
            let field = format!("spec.tls[{i}].secretName");
            let key = (ing.namespace.clone(), secret_name.clone());
            let certificate = match parsed.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let from_hub =
                        fleetgate_discovery::objects::ObjectKey::from_location(&ing.origin.file)
                            .is_some();
                    let c = match by_name.get(&(ing.namespace.as_str(), secret_name.as_str())) {
                        // At a hub, a certificate is often issued after its
                        // Ingress exists (cert-manager): the routes serve,
                        // and the hosts get the default certificate, if any,
                        // until the Secret appears.
                        None if from_hub => {
                            warnings.push(format!(
                                "Ingress {}: {field}: Secret {}/{secret_name} does not exist (yet); its hosts get the default certificate, if any, until it does",
                                ing.key(),
                                ing.namespace
                            ));
                            None
                        }
                        None => {
                            l.errors.push(
                                ConfigError::new(format!(
                                    "Secret {}/{secret_name} is not in any manifest file",
                                    ing.namespace
                                ))
                                .at(ing.origin.clone())
                                .object(format!("Ingress {}", ing.key()))
                                .field(field.clone()),
                            );
                            None
                        }
                        Some(secret) => secret_certificate(l, secret),
                    };
                    parsed.insert(key, c.clone());
                    c
                }
            };
            let Some(certificate) = certificate else {
                continue;
            };
            let hosts = if entry.hosts.is_empty() {
                certificate.names().to_vec()
            } else {
                entry.hosts.clone()
            };
            tls.certificates.push(CertificateBinding {
                hosts,
                certificate,
                source: format!("Secret {}/{secret_name}", ing.namespace),
                origin: ing.origin.clone(),
            });
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let bindings = tls
        .certificates
        .iter()
        .chain(tls.default_certificate.as_ref());
    let mut dated = std::collections::HashSet::new();
    for b in bindings {
        let c = &b.certificate;
        if dated.insert(b.source.clone()) {
            match c.validity_at(now) {
                Validity::Valid => {}
                Validity::Expired => warnings.push(format!(
                    "{} ({}): the certificate expired on {} (valid from {})",
                    b.source,
                    b.origin,
                    c.not_after(),
                    c.not_before()
                )),
                Validity::NotYetValid => warnings.push(format!(
                    "{} ({}): the certificate is not valid before {} (until {})",
                    b.source,
                    b.origin,
                    c.not_before(),
                    c.not_after()
                )),
            }
        }
        for h in &b.hosts {
            if !c.covers(h) {
                warnings.push(format!(
                    "{} ({}): the certificate does not cover host {h} (it names {}); {h} gets the default certificate",
                    b.source,
                    b.origin,
                    c.names().join(", ")
                ));
            }
        }
    }
    tls
}

/// The certificate of a `kubernetes.io/tls` Secret.
fn secret_certificate(l: &mut Loader<'_>, s: &SecretDecl) -> Option<Arc<ServerCertificate>> {
    let object = format!("Secret {}/{}", s.namespace, s.name);
    let error = |field: &str, message: String| {
        ConfigError::new(message)
            .at(s.origin.clone())
            .object(object.clone())
            .field(field.to_string())
    };
    if s.secret_type.as_deref() != Some(TLS_SECRET_TYPE) {
        l.errors.push(error(
            "type",
            format!(
                "type is {}, not {TLS_SECRET_TYPE}",
                s.secret_type
                    .as_deref()
                    .map_or("not set".to_string(), |t| format!("\"{t}\""))
            ),
        ));
        return None;
    }
    let (Some(cert), Some(key)) = (s.data.get("tls.crt"), s.data.get("tls.key")) else {
        let missing = if s.data.contains_key("tls.crt") {
            "tls.key"
        } else {
            "tls.crt"
        };
        l.errors.push(error(
            &format!("data[\"{missing}\"]"),
            format!("a {TLS_SECRET_TYPE} Secret needs data \"tls.crt\" and \"tls.key\""),
        ));
        return None;
    };
    match ServerCertificate::from_pem(cert, key) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            let field = if e.concerns_key() {
                "data[\"tls.key\"]"
            } else {
                "data[\"tls.crt\"]"
            };
            l.errors.push(error(field, e.to_string()));
            None
        }
    }
}

/// A `[[certificate]]` table or `[gateway] default_certificate`.
fn toml_certificate(
    l: &mut Loader<'_>,
    c: &toml::Spanned<CertificateToml>,
    field: &str,
) -> Option<CertificateBinding> {
    let origin = l.at(c.span());
    let t = c.get_ref();
    let cert_path = relative_to(l.file, &t.cert);
    let key_path = relative_to(l.file, &t.key);
    let read = |l: &mut Loader<'_>, path: &std::path::Path, what: &str| match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            l.errors.push(
                ConfigError::new(format!("cannot read {}: {e}", path.display()))
                    .at(origin.clone())
                    .field(format!("{field}.{what}")),
            );
            None
        }
    };
    let cert = read(l, &cert_path, "cert");
    let key = read(l, &key_path, "key");
    let (cert, key) = (cert?, key?);
    let certificate = match ServerCertificate::from_pem(&cert, &key) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            let (what, path) = if e.concerns_key() {
                ("key", &key_path)
            } else {
                ("cert", &cert_path)
            };
            l.errors.push(
                ConfigError::new(format!("{}: {e}", path.display()))
                    .at(origin.clone())
                    .field(format!("{field}.{what}")),
            );
            return None;
        }
    };
    for h in &t.hosts {
        if let Err(e) = fleetgate_ingress::HostPattern::parse(h) {
            l.errors.push(
                ConfigError::new(format!("host \"{h}\": {e}"))
                    .at(origin.clone())
                    .field(format!("{field}.hosts")),
            );
        }
    }
    let hosts = if t.hosts.is_empty() {
        certificate.names().to_vec()
    } else {
        t.hosts.clone()
    };
    Some(CertificateBinding {
        hosts,
        certificate,
        source: format!("certificate {}", t.cert),
        origin: Location::clone(&origin),
    })
}
