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

pub(crate) struct Loader<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl Loader<'_> {
    pub(crate) fn at(&self, span: std::ops::Range<usize>) -> Location {
        let (line, col) = line_col(self.text, span.start);
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
        let mut secrets = Vec::new();
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
                    secrets.extend(objects.secrets);
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

        let mut warnings = Vec::new();
        let tls = tls_config(&mut l, &raw, &ingresses, &secrets, &mut warnings);
        if !l.errors.is_empty() {
            return Err(ConfigErrors(l.errors));
        }
        let log = log_settings(path, &raw.log);
        let service_index = ServiceIndex::new(&services);
        Ok(Config {
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = "ab\ncd\nef";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(line_col(t, 6), (3, 1));
    }
}
