//! `[manifests] source`: Ingresses from files, or from a hub cluster.
//!
//! With `source = "kubernetes"` the gateway serves the Ingresses that a
//! hub (fleet) cluster holds, the way the managed multi-cluster gateways
//! do: operators `kubectl apply` to the hub and every gateway follows. The
//! keys that reach the API server are those of a `kubernetes` cluster, so
//! that one kubeconfig habit covers both.

use std::path::Path;
use std::time::Duration;

use crate::error::{ConfigError, Location};
use crate::model::{HubSource, KubernetesSource, ManifestSource};
use crate::toml_schema::ManifestsToml;

/// The manifest source `[manifests]` declares; problems go to `errors`.
pub(crate) fn manifest_source(
    file: &Path,
    manifests: Option<&ManifestsToml>,
    errors: &mut Vec<ConfigError>,
) -> ManifestSource {
    let Some(m) = manifests else {
        return ManifestSource::Files;
    };
    let mut error = |field: &str, message: String| {
        errors.push(
            ConfigError::new(message)
                .at(Location::file(file))
                .field(format!("manifests.{field}")),
        );
    };
    let hub_keys = m.kubeconfig.is_some()
        || m.context.is_some()
        || !m.namespaces.is_empty()
        || m.api_timeout.is_some()
        || m.keep_on_empty_list.is_some()
        || m.cache.is_some();
    match m.source.as_deref().unwrap_or("files") {
        "files" => {
            if hub_keys {
                error(
                    "source",
                    "kubeconfig, context, namespaces, api_timeout, keep_on_empty_list and cache \
                     apply to source = \"kubernetes\" only"
                        .to_string(),
                );
            }
            ManifestSource::Files
        }
        "kubernetes" => {
            if !m.files.is_empty() {
                error(
                    "files",
                    "source = \"kubernetes\" reads Ingresses from the hub cluster; files cannot be \
                     given as well"
                        .to_string(),
                );
            }
            let kubeconfig = match m.kubeconfig.as_deref() {
                None => None,
                Some(p) => {
                    let path = crate::files::relative_to(file, p);
                    if !path.is_file() {
                        error(
                            "kubeconfig",
                            format!("kubeconfig {} is not a readable file", path.display()),
                        );
                    }
                    Some(path)
                }
            };
            for ns in &m.namespaces {
                if !valid_name(ns) {
                    error(
                        "namespaces",
                        format!(
                            "\"{ns}\" is not a namespace name (lower-case letters, digits and '-')"
                        ),
                    );
                }
            }
            let cache = m.cache.as_deref().map(|p| {
                let path = crate::files::relative_to(file, p);
                let dir_ok = path
                    .parent()
                    .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir());
                if !dir_ok {
                    error(
                        "cache",
                        format!("the directory of cache {} does not exist", path.display()),
                    );
                }
                path
            });
            let mut namespaces = m.namespaces.clone();
            namespaces.sort();
            namespaces.dedup();
            ManifestSource::Kubernetes(HubSource {
                api: KubernetesSource {
                    kubeconfig,
                    context: m.context.clone().filter(|s| !s.is_empty()),
                    timeout: m
                        .api_timeout
                        .map_or(Duration::from_secs(30), Into::into)
                        .max(Duration::from_secs(2)),
                    keep_on_empty_list: m.keep_on_empty_list.unwrap_or(true),
                },
                namespaces,
                cache,
            })
        }
        other => {
            error(
                "source",
                format!("\"{other}\" is not a manifest source: use \"files\" or \"kubernetes\""),
            );
            ManifestSource::Files
        }
    }
}

/// A DNS label, as namespace names are.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> (ManifestSource, Vec<ConfigError>) {
        let m: ManifestsToml = toml::from_str(toml).expect("schema");
        let mut errors = Vec::new();
        let source = manifest_source(Path::new("/etc/fleetgate/gw.toml"), Some(&m), &mut errors);
        (source, errors)
    }

    #[test]
    fn a_hub_is_declared_with_defaults() {
        let (source, errors) =
            parse("source = \"kubernetes\"\nnamespaces = [\"shop\", \"shop\"]\n");
        assert!(errors.is_empty(), "{errors:?}");
        let ManifestSource::Kubernetes(hub) = source else {
            panic!("not a hub");
        };
        assert_eq!(hub.namespaces, vec!["shop".to_string()]);
        assert_eq!(hub.api.timeout, Duration::from_secs(30));
        assert!(hub.api.keep_on_empty_list && hub.api.kubeconfig.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let (_, errors) =
            parse("source = \"kubernetes\"\nfiles = [\"a.yaml\"]\nnamespaces = [\"Shop\"]\n");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{text:?}");
        assert!(text[0].contains("manifests.files"), "{text:?}");
        assert!(
            text[1].contains("\"Shop\" is not a namespace name"),
            "{text:?}"
        );
        let (_, errors) = parse("files = [\"a.yaml\"]\nnamespaces = [\"shop\"]\n");
        assert!(errors[0]
            .to_string()
            .contains("source = \"kubernetes\" only"));
        let (_, errors) = parse("source = \"etcd\"\n");
        assert!(errors[0]
            .to_string()
            .contains("use \"files\" or \"kubernetes\""));
    }
}
