//! Ingresses as read from either source, before validation.
//!
//! TOML and Kubernetes YAML both become an [`IngressDraft`]; one validation
//! pass then turns drafts into model Ingresses, so both sources obey exactly
//! the same rules and produce the same error messages.

use std::collections::BTreeMap;

use fleetgate_ingress::{validate_path, ClassFilter, HostPattern, PathType};

use crate::annotations::{self, AnnotationError, UnsupportedAnnotations};
use crate::error::{ConfigError, Location};
use crate::model::{BackendRef, Disposition, Ingress, IngressPath, PortRef, Rule};

/// An Ingress as written.
#[derive(Debug, Clone)]
pub(crate) struct IngressDraft {
    pub namespace: String,
    pub name: String,
    pub class: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub default_backend: Option<BackendDraft>,
    pub rules: Vec<RuleDraft>,
    pub tls_hosts: Vec<String>,
    pub tls: Vec<crate::model::IngressTls>,
    pub origin: Location,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDraft {
    pub host: Option<String>,
    pub paths: Vec<PathDraft>,
}

#[derive(Debug, Clone)]
pub(crate) struct PathDraft {
    pub path: Option<String>,
    pub path_type: Option<String>,
    pub backend: BackendDraft,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct BackendDraft {
    pub service: Option<String>,
    pub port_number: Option<i64>,
    pub port_name: Option<String>,
    /// `backend.resource` is set (not supported by this gateway).
    pub resource: bool,
}

impl IngressDraft {
    fn object(&self) -> String {
        format!("Ingress {}/{}", self.namespace, self.name)
    }

    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::new(message)
            .at(self.origin.clone())
            .object(self.object())
            .field(field)
    }

    /// Classifies and validates. Ingresses of another class are kept, with
    /// their reason, but not validated: they belong to another controller.
    pub fn validate(
        self,
        classes: &ClassFilter,
        flavour: fleetgate_canary::Flavour,
        unsupported: UnsupportedAnnotations,
    ) -> Result<Ingress, Vec<ConfigError>> {
        let disposition = match classes.accepts(self.class.as_deref()) {
            Ok(()) => Disposition::Served,
            Err(reason) => Disposition::Ignored(reason),
        };
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        let mut default_backend = None;
        let mut subset = None;
        let mut canary = None;
        let mut backend_protocol = None;
        let mut source_ranges = None;
        let mut redirect = None;
        let mut app_root = None;
        let mut server_aliases = Vec::new();
        let mut basic_auth_request = None;
        let mut rate_limits = None;
        let mut header_rules = None;
        let mut upstream = None;
        let mut cors = None;
        let mut path_matching = crate::PathMatching::default();
        let mut forward_auth = None;
        let mut compression = None;
        let mut balancing = None;
        let mut mirror = None;
        let mut warnings = Vec::new();
        if disposition == Disposition::Served {
            match fleetgate_canary::annotation(&self.annotations, "backend-protocol") {
                None => {}
                Some((key, value)) => match crate::model::UpstreamProtocol::parse(value) {
                    Ok(p) => backend_protocol = Some(p),
                    Err(e) => {
                        errors.push(self.error(format!("metadata.annotations[\"{key}\"]"), e))
                    }
                },
            }
            match fleetgate_canary::parse_canary_for(&self.annotations, flavour) {
                Ok(c) => canary = c,
                Err(e) => errors.push(self.error(
                    format!("metadata.annotations[\"{}\"]", e.key),
                    format!("value {:?}: {}", e.value, e.reason),
                )),
            }
            match fleetgate_subset::parse_subset(&self.annotations) {
                Ok(s) => subset = s,
                Err(e) => errors.push(self.error(
                    format!("metadata.annotations[\"{}\"]", e.key),
                    format!("value {:?}: {}", e.value, e.reason),
                )),
            }
            source_ranges = self.read(crate::source_ranges::parse(&self.annotations), &mut errors);
            redirect = self.read(
                crate::redirects::parse_redirect(&self.annotations),
                &mut errors,
            );
            basic_auth_request = self.read(
                crate::basic_auth::parse_request(&self.annotations, &self.namespace),
                &mut errors,
            );
            cors = self.read(crate::cors::parse(&self.annotations), &mut errors);
            forward_auth = self.read(crate::forward_auth::parse(&self.annotations), &mut errors);
            compression = self.read(
                crate::compression::parse_choice(&self.annotations),
                &mut errors,
            );
            mirror = self.read(
                crate::mirror::parse(&self.annotations, &self.namespace),
                &mut errors,
            );
            if mirror.is_none() {
                if let Some((key, _)) =
                    fleetgate_canary::annotation(&self.annotations, "mirror-percentage")
                {
                    warnings.push(format!(
                        "{} ({}): metadata.annotations[\"{key}\"] does nothing without mirror-target-service",
                        self.object(),
                        self.origin
                    ));
                }
            }
            let (object, origin) = (self.object(), self.origin.clone());
            balancing = self.read(
                crate::balancing::parse(&self.annotations, &mut |key, why| {
                    warnings.push(format!(
                        "{object} ({origin}): metadata.annotations[\"{key}\"] {why}"
                    ))
                }),
                &mut errors,
            );
            if !matches!(balancing, Some(crate::Balancing::Cookie(_))) {
                for option in crate::balancing::COOKIE_OPTIONS {
                    if let Some((key, _)) = fleetgate_canary::annotation(&self.annotations, option)
                    {
                        warnings.push(format!(
                            "{} ({}): metadata.annotations[\"{key}\"] does nothing without affinity: cookie",
                            self.object(),
                            self.origin
                        ));
                    }
                }
            }
            if cors.is_none() {
                // cors-* keys do nothing without enable-cors: say so.
                for key in self.annotations.keys().filter(|k| k.contains("/cors-")) {
                    warnings.push(format!(
                            "{} ({}): metadata.annotations[\"{key}\"] does nothing without enable-cors: \"true\"",
                            self.object(),
                            self.origin
                        ));
                }
            }
            upstream = self.read(crate::route_upstream::parse(&self.annotations), &mut errors);
            path_matching = self
                .read(
                    crate::path_rewrites::parse(&self.annotations).map(Some),
                    &mut errors,
                )
                .unwrap_or_default();
            header_rules = self.read(crate::header_rules::parse(&self.annotations), &mut errors);
            rate_limits = self.read(crate::rate_limits::parse(&self.annotations), &mut errors);
            app_root = self.read(
                crate::redirects::parse_app_root(&self.annotations),
                &mut errors,
            );
            if let Some((key, value)) =
                fleetgate_canary::annotation(&self.annotations, "server-alias")
            {
                for alias in value.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    match HostPattern::parse(alias) {
                        Ok(h) if h != HostPattern::Any => server_aliases.push(h),
                        Ok(_) => errors.push(self.error(
                            format!("metadata.annotations[\"{key}\"]"),
                            format!("value {value:?}: an alias needs a host name"),
                        )),
                        Err(e) => errors.push(self.error(
                            format!("metadata.annotations[\"{key}\"]"),
                            format!("value {value:?}: {alias:?}: {e}"),
                        )),
                    }
                }
            }
            let findings = annotations::review(&self.annotations, canary.is_some(), unsupported);
            for (key, why) in findings.errors {
                errors.push(self.error(format!("metadata.annotations[\"{key}\"]"), why));
            }
            for (key, why) in findings.warnings {
                warnings.push(format!(
                    "{} ({}): metadata.annotations[\"{key}\"] {why}",
                    self.object(),
                    self.origin
                ));
            }
            if let Some(b) = &self.default_backend {
                match self.backend(b, "spec.defaultBackend") {
                    Ok(b) => default_backend = Some(b),
                    Err(e) => errors.push(e),
                }
            }
            for (ri, rule) in self.rules.iter().enumerate() {
                let host_field = format!("spec.rules[{ri}].host");
                let host = match HostPattern::parse(rule.host.as_deref().unwrap_or("")) {
                    Ok(h) => h,
                    Err(e) => {
                        errors.push(self.error(host_field, e.to_string()));
                        continue;
                    }
                };
                let mut paths = Vec::new();
                for (pi, p) in rule.paths.iter().enumerate() {
                    let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                    match self.path(p, &field) {
                        Ok(p) => paths.push(p),
                        Err(e) => errors.push(e),
                    }
                }
                rules.push(Rule { host, paths });
            }
            let uses_host = forward_auth.as_ref().is_some_and(|f| f.url_uses_host())
                || mirror.as_ref().is_some_and(|m| m.url_uses_host());
            if uses_host {
                // An Ingress without rules serves any host (its default
                // backend becomes the default for every host).
                let any = HostPattern::Any;
                let loose = rules
                    .iter()
                    .map(|r| &r.host)
                    .chain(&server_aliases)
                    .chain(rules.is_empty().then_some(&any))
                    .find(|h| !matches!(h, HostPattern::Exact(_)));
                if let Some(h) = loose {
                    let key = ["auth-url", "mirror-target"]
                        .iter()
                        .filter_map(|k| fleetgate_canary::annotation(&self.annotations, k))
                        .find(|(_, v)| v.contains("$host") || v.contains("${host}"))
                        .map_or("auth-url", |(k, _)| k);
                    let url =
                        fleetgate_canary::annotation(&self.annotations, key).map_or("", |(_, v)| v);
                    let host = if *h == HostPattern::Any {
                        "a rule without a host".to_string()
                    } else {
                        format!("host {h}")
                    };
                    errors.push(self.error(
                        format!("metadata.annotations[\"{key}\"]"),
                        format!(
                            "value {url:?}: $host takes the client's Host header, and {host} matches any name, \
                             so the client would choose the server that vouches for it (or gets the copies); \
                             use a fixed URL"
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Ingress {
            namespace: self.namespace,
            name: self.name,
            class: self.class,
            annotations: self.annotations,
            default_backend,
            rules,
            tls_hosts: self.tls_hosts,
            tls: self.tls,
            backend_protocol,
            subset,
            canary,
            source_ranges,
            redirect,
            app_root,
            server_aliases,
            basic_auth_request,
            basic_auth: None,
            rate_limits,
            header_rules,
            upstream,
            cors,
            path_matching,
            forward_auth,
            compression,
            balancing,
            mirror,
            warnings,
            origin: self.origin,
            disposition,
        })
    }

    /// What an annotation parser read; its error, if any, goes to
    /// `errors` at the annotation's field.
    fn read<T>(
        &self,
        parsed: Result<Option<T>, AnnotationError>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        parsed.unwrap_or_else(|e| {
            errors.push(self.error(format!("metadata.annotations[\"{}\"]", e.key), e.message));
            None
        })
    }

    fn path(&self, p: &PathDraft, field: &str) -> Result<IngressPath, ConfigError> {
        let path_type: PathType = match p.path_type.as_deref() {
            None => {
                return Err(self.error(
                    format!("{field}.pathType"),
                    "pathType is required (Exact, Prefix or ImplementationSpecific)",
                ))
            }
            Some(t) => t
                .parse()
                .map_err(|e: String| self.error(format!("{field}.pathType"), e))?,
        };
        let path = p.path.clone().unwrap_or_default();
        validate_path(&path, path_type)
            .map_err(|e| self.error(format!("{field}.path"), e.to_string()))?;
        let backend = self.backend(&p.backend, &format!("{field}.backend"))?;
        Ok(IngressPath {
            path,
            path_type,
            backend,
        })
    }

    fn backend(&self, b: &BackendDraft, field: &str) -> Result<BackendRef, ConfigError> {
        if b.resource {
            return Err(self.error(
                format!("{field}.resource"),
                "resource backends are not supported; use a service backend",
            ));
        }
        let service = match b.service.as_deref() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                return Err(self.error(
                    format!("{field}.service.name"),
                    "a service name is required",
                ))
            }
        };
        let port = match (b.port_number, b.port_name.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    format!("{field}.service.port"),
                    "give the port by number or by name, not both",
                ))
            }
            (Some(n), None) => match u16::try_from(n) {
                Ok(n) if n > 0 => PortRef::Number(n),
                _ => {
                    return Err(self.error(
                        format!("{field}.service.port.number"),
                        format!("port {n} is out of range 1-65535"),
                    ))
                }
            },
            (None, Some(name)) if !name.is_empty() => PortRef::Name(name.to_string()),
            _ => {
                return Err(self.error(
                    format!("{field}.service.port"),
                    "a service port (number or name) is required",
                ))
            }
        };
        Ok(BackendRef { service, port })
    }
}
