//! `[[ingress]]` tables: the same information as an Ingress object, turned
//! into the draft that Kubernetes manifests become too, so both sources are
//! validated by one code path.

use std::collections::BTreeMap;

use crate::draft::{BackendDraft, IngressDraft, PathDraft, RuleDraft};
use crate::load::Loader;
use crate::toml_schema::*;

pub(crate) fn toml_ingress_draft(
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
        tls_hosts: i
            .tls_hosts
            .iter()
            .chain(i.tls.iter().flat_map(|t| &t.hosts))
            .cloned()
            .collect(),
        tls: i
            .tls
            .iter()
            .map(|t| crate::model::IngressTls {
                hosts: t.hosts.clone(),
                secret_name: t.secret_name.clone().filter(|s| !s.is_empty()),
            })
            .collect(),
        origin,
    }
}
