//! Loading: read the TOML, expand manifest globs, parse, validate, merge.
//!
//! Every problem is collected, so one run of `fleetgate check` shows them
//! all; a configuration with any error is rejected whole.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use fleetgate_ingress::ClassFilter;

use crate::certificates::tls_config;
use crate::error::{ConfigError, ConfigErrors, Location};
use crate::files::expand_files;
use crate::input_limits::read_bounded;
use crate::manifests;
use crate::model::*;
use crate::sections::{admin, clusters, gateway, log_settings, upstream_defaults};
use crate::services::{merge_service_ports, services};
use crate::toml_ingress::toml_ingress_draft;
use crate::toml_schema::*;

/// The admin listener when `[admin] listen` is not given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";
/// The namespace for objects without one when `[manifests] namespace` is not given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The graceful shutdown bound when `[gateway] grace_period` is not given.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Where each line of a text starts, so that turning an offset into a
/// line and column is a binary search, not a scan from the start (which
/// made 20,000 TOML Ingresses take seconds).
pub(crate) struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The 1-based line and column of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.len);
        let line = self.starts.partition_point(|&s| s <= offset);
        (line, offset - self.starts[line - 1] + 1)
    }
}

pub(crate) struct Loader<'a> {
    pub(crate) file: &'a Path,
    pub(crate) lines: LineIndex,
    pub(crate) errors: Vec<ConfigError>,
}

impl Loader<'_> {
    pub(crate) fn at(&self, span: std::ops::Range<usize>) -> Location {
        let (line, col) = self.lines.line_col(span.start);
        Location::at(self.file, line, col)
    }

    pub(crate) fn error(
        &mut self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) {
        let e = ConfigError::new(message)
            .at(self.at(span))
            .field(field.to_string());
        self.errors.push(e);
    }
}

/// `prefer_zone = "local"` needs `[gateway] zone` (an error); a gateway
/// zone that no `[[cluster]]` is in is most likely a typo (a warning:
/// live sources may still label endpoints with it).
fn check_zone_preference(
    l: &mut Loader<'_>,
    gateway: &Gateway,
    clusters: &[Cluster],
    services: &[Service],
) -> Option<String> {
    let preferring: Vec<String> = services
        .iter()
        .filter(|s| s.timeouts.prefer_local_zone)
        .map(|s| s.key())
        .collect();
    match &gateway.zone {
        None if !preferring.is_empty() => {
            l.errors.push(
                ConfigError::new(format!(
                    "prefer_zone = \"local\" (on {}) needs [gateway] zone: the zone this gateway runs in",
                    preferring.join(", ")
                ))
                .at(Location::file(l.file))
                .field("gateway.zone"),
            );
            None
        }
        Some(zone)
            if !clusters
                .iter()
                .any(|c| c.zone.as_deref() == Some(zone.as_str())) =>
        {
            let zones: Vec<&str> = clusters.iter().filter_map(|c| c.zone.as_deref()).collect();
            Some(format!(
                "[gateway] zone \"{zone}\" is the zone of no [[cluster]] (zones: {}); only endpoints labelled with it count as local",
                if zones.is_empty() { "none set".to_string() } else { zones.join(", ") }
            ))
        }
        _ => None,
    }
}

impl Config {
    /// Loads and validates the configuration in `path` and every manifest it
    /// names. Returns every error found, or a configuration that is complete.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = Config::read_text(path)?;
        Config::from_toml_str(path, &text)
    }

    /// Where the configuration in `text` reads its Ingresses from: only
    /// `[manifests]` is read (a caller learns whether to start watching a
    /// hub before loading the rest with its objects).
    pub fn manifest_source_of(path: &Path, text: &str) -> Result<ManifestSource, ConfigErrors> {
        #[derive(serde::Deserialize)]
        struct OnlyManifests {
            manifests: Option<ManifestsToml>,
        }
        let raw: OnlyManifests = toml::from_str(text).map_err(|e| {
            ConfigError::new(e.message().trim().to_string()).at(Location::file(path))
        })?;
        let mut errors = Vec::new();
        let source = crate::hub_source::manifest_source(path, raw.manifests.as_ref(), &mut errors);
        if errors.is_empty() {
            Ok(source)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The `[admin]` section of the configuration in `text`, checked as a
    /// full load checks it; nothing else is read (for commands that talk
    /// to a running gateway's admin API).
    pub fn admin_of(path: &Path, text: &str) -> Result<Admin, ConfigErrors> {
        #[derive(serde::Deserialize)]
        struct OnlyAdmin {
            #[serde(default)]
            admin: AdminToml,
        }
        let raw: OnlyAdmin = toml::from_str(text).map_err(|e| {
            ConfigError::new(e.message().trim().to_string()).at(Location::file(path))
        })?;
        let mut l = Loader {
            file: path,
            lines: LineIndex::new(text),
            errors: Vec::new(),
        };
        let admin = admin(&mut l, &raw.admin);
        if l.errors.is_empty() {
            Ok(admin)
        } else {
            Err(ConfigErrors(l.errors))
        }
    }

    /// Reads the TOML file at `path` (bounded in size, UTF-8), for
    /// [`Config::from_toml_str`] and its variants.
    pub fn read_text(path: &Path) -> Result<String, ConfigErrors> {
        Ok(read_bounded(path, "the configuration")?)
    }

    /// Like [`Config::load`], with the TOML text given. `path` names it in
    /// errors and anchors relative manifest paths.
    pub fn from_toml_str(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml_str_with_objects(path, text, [])
    }

    /// Like [`Config::from_toml_str`], with Ingresses, Services and Secrets
    /// from a hub cluster's API server read as if they were in manifest
    /// files. Errors about one of them name it by
    /// [`fleetgate_discovery::objects::ObjectKey::location`], so a caller
    /// can tell which object to leave out.
    pub fn from_toml_str_with_objects<'a>(
        path: &Path,
        text: &str,
        objects: impl IntoIterator<Item = &'a fleetgate_discovery::objects::ApiObject>,
    ) -> Result<Config, ConfigErrors> {
        let raw: FileToml = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (line, col) = LineIndex::new(text).line_col(span.start);
                    Location::at(path, line, col)
                }
                None => Location::file(path),
            };
            ConfigError::new(e.message().trim().to_string()).at(location)
        })?;
        let mut l = Loader {
            file: path,
            lines: LineIndex::new(text),
            errors: Vec::new(),
        };
        let upstream = upstream_defaults(&mut l, &raw.upstream);
        let gateway = gateway(&mut l, &raw.gateway);
        let admin = admin(&mut l, &raw.admin);
        let clusters = clusters(&mut l, &raw.cluster);
        let mut services = services(&mut l, &raw.service, &clusters, &upstream, &raw);
        let zone_warning = check_zone_preference(&mut l, &gateway, &clusters, &services);

        let default_ns = raw
            .manifests
            .as_ref()
            .and_then(|m| m.namespace.clone())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let mut warnings: Vec<String> = zone_warning.into_iter().collect();
        let mut drafts = Vec::new();
        let mut port_decls = Vec::new();
        let mut secrets = Vec::new();
        let manifest_files = match &raw.manifests {
            Some(m) => expand_files(path, &m.files, "manifests.files", &mut l.errors),
            None => Vec::new(),
        };
        for file in &manifest_files {
            match read_bounded(file, "the manifest") {
                Ok(yaml) => {
                    let (objects, errs) = manifests::parse_file(file, &yaml, &default_ns);
                    if errs.is_empty() && objects.is_empty() {
                        // Often a file truncated by a failed write or an
                        // editor: its routes are gone, which deserves a word.
                        warnings.push(format!(
                            "manifest {} holds no objects: any Ingresses it held are no longer served",
                            file.display()
                        ));
                    }
                    l.errors.extend(errs);
                    if !objects.slices.is_empty() {
                        warnings.push(format!(
                            "manifest {}: its {} EndpointSlice(s) are not used: endpoints are read from [[cluster]] endpoint_slices",
                            file.display(),
                            objects.slices.len()
                        ));
                    }
                    drafts.extend(objects.ingresses);
                    port_decls.extend(objects.service_ports);
                    secrets.extend(objects.secrets);
                }
                Err(e) => l.errors.push(e),
            }
        }
        // TOML Ingresses before the hub's: an object the hub adds under a
        // TOML Ingress's name is the one "defined twice", and left out.
        for ing in &raw.ingress {
            drafts.push(toml_ingress_draft(&l, ing, &default_ns));
        }
        let manifest_source =
            crate::hub_source::manifest_source(path, raw.manifests.as_ref(), &mut l.errors);
        let (objects, errs) = manifests::api_objects(objects, &default_ns);
        l.errors.extend(errs);
        drafts.extend(objects.ingresses);
        port_decls.extend(objects.service_ports);
        secrets.extend(objects.secrets);
        merge_service_ports(&mut l.errors, &mut services, port_decls, &upstream);
        let slices = crate::endpoint_files::read_slices(
            &mut l.errors,
            &mut warnings,
            &clusters,
            &default_ns,
        );
        crate::endpoint_files::assign_slices(
            &mut l.errors,
            &mut warnings,
            &mut services,
            &clusters,
            &slices,
        );
        drop(slices);

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
            match d.validate(
                &classes,
                gateway.canary_flavour,
                gateway.unsupported_annotations,
            ) {
                Ok(i) => {
                    warnings.extend(i.warnings.iter().cloned());
                    ingresses.push(i);
                }
                Err(errs) => l.errors.extend(errs),
            }
        }

        crate::basic_auth::resolve(&mut l, &mut ingresses, &secrets);
        crate::path_rewrites::check_regex_paths(&ingresses, &mut l.errors);
        warnings.extend(crate::path_rewrites::shadowed_access_rules(&ingresses));
        let tls = tls_config(&mut l, &raw, &ingresses, &secrets, &mut warnings);
        if !l.errors.is_empty() {
            return Err(ConfigErrors(l.errors));
        }
        let log = log_settings(&mut l, path, &raw.log);
        let compression = crate::compression::compression(&mut l, &raw.compression);
        if !l.errors.is_empty() {
            return Err(ConfigErrors(l.errors));
        }
        let service_index = ServiceIndex::new(&services);
        Ok(Config {
            compression,
            log,
            tls,
            warnings,
            service_index,
            source: path.to_path_buf(),
            gateway,
            admin,
            upstream,
            clusters,
            services,
            ingresses,
            manifest_files,
            manifest_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = LineIndex::new("ab\ncd\nef\n");
        assert_eq!(t.line_col(0), (1, 1));
        assert_eq!(t.line_col(2), (1, 3));
        assert_eq!(t.line_col(3), (2, 1));
        assert_eq!(t.line_col(4), (2, 2));
        assert_eq!(t.line_col(6), (3, 1));
        assert_eq!(t.line_col(9), (4, 1));
        assert_eq!(t.line_col(99), (4, 1));
    }
}
