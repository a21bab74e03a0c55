//! Routing objects read from a hub cluster's API server: Ingresses, and the
//! Services and Secrets they refer to.
//!
//! They are kept as the gateway reads them, not as the server sends them:
//! the status, resource versions, managed fields and labels are dropped on
//! arrival. Two versions of an object that differ only there compare
//! equal, so the gateway's own status write-back (and every other status
//! or bookkeeping change) never causes a rebuild.

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The kinds a hub cluster contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiKind {
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `v1` Service (its ports and their names).
    Service,
    /// `v1` Secret (TLS certificates, basic-auth files).
    Secret,
}

impl ApiKind {
    /// The kind's name, as in `kind:`.
    pub fn name(self) -> &'static str {
        match self {
            ApiKind::Ingress => "Ingress",
            ApiKind::Service => "Service",
            ApiKind::Secret => "Secret",
        }
    }

    /// The resource's plural, as in API paths.
    pub fn plural(self) -> &'static str {
        match self {
            ApiKind::Ingress => "ingresses",
            ApiKind::Service => "services",
            ApiKind::Secret => "secrets",
        }
    }

    fn from_plural(plural: &str) -> Option<ApiKind> {
        [ApiKind::Ingress, ApiKind::Service, ApiKind::Secret]
            .into_iter()
            .find(|k| k.plural() == plural)
    }
}

/// Which object: kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: ApiKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// The scheme of [`ObjectKey::location`]: errors about an object from a
/// hub cluster name it where errors about a file name the file.
const LOCATION_SCHEME: &str = "hub:";

impl ObjectKey {
    /// Where errors about the object point: `hub:ingresses/NS/NAME`, the
    /// way a file path names a manifest.
    pub fn location(&self) -> PathBuf {
        PathBuf::from(format!(
            "{LOCATION_SCHEME}{}/{}/{}",
            self.kind.plural(),
            self.namespace,
            self.name
        ))
    }

    /// The object a [`ObjectKey::location`] names, if `path` is one.
    pub fn from_location(path: &Path) -> Option<ObjectKey> {
        let rest = path.to_str()?.strip_prefix(LOCATION_SCHEME)?;
        let mut parts = rest.splitn(3, '/');
        let kind = ApiKind::from_plural(parts.next()?)?;
        let namespace = parts.next()?.to_string();
        let name = parts.next()?.to_string();
        Some(ObjectKey {
            kind,
            namespace,
            name,
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.name(), self.namespace, self.name)
    }
}

/// One object, reduced to what the gateway reads (see the module docs).
/// Boxed: the kinds differ in size by hundreds of bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiObject {
    /// An Ingress: name, namespace, annotations and spec.
    Ingress(Box<Ingress>),
    /// A Service: name, namespace and spec.
    Service(Box<Service>),
    /// A Secret: name, namespace, type and data.
    Secret(Box<Secret>),
}

/// The metadata the gateway reads: name, namespace and, for Ingresses,
/// annotations.
fn reduced_meta(meta: ObjectMeta, annotations: bool) -> ObjectMeta {
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        annotations: if annotations { meta.annotations } else { None },
        ..ObjectMeta::default()
    }
}

impl ApiObject {
    /// An Ingress as the gateway reads it.
    pub fn ingress(ingress: Ingress) -> Self {
        ApiObject::Ingress(Box::new(Ingress {
            metadata: reduced_meta(ingress.metadata, true),
            spec: ingress.spec,
            status: None,
        }))
    }

    /// A Service as the gateway reads it.
    pub fn service(service: Service) -> Self {
        ApiObject::Service(Box::new(Service {
            metadata: reduced_meta(service.metadata, false),
            spec: service.spec,
            status: None,
        }))
    }

    /// A Secret as the gateway reads it.
    pub fn secret(secret: Secret) -> Self {
        ApiObject::Secret(Box::new(Secret {
            metadata: reduced_meta(secret.metadata, false),
            data: secret.data,
            string_data: secret.string_data,
            type_: secret.type_,
            immutable: None,
        }))
    }

    /// Its kind.
    pub fn kind(&self) -> ApiKind {
        match self {
            ApiObject::Ingress(_) => ApiKind::Ingress,
            ApiObject::Service(_) => ApiKind::Service,
            ApiObject::Secret(_) => ApiKind::Secret,
        }
    }

    /// Its metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            ApiObject::Ingress(o) => &o.metadata,
            ApiObject::Service(o) => &o.metadata,
            ApiObject::Secret(o) => &o.metadata,
        }
    }

    /// Its key; objects without a namespace are in `default_ns`.
    pub fn key(&self, default_ns: &str) -> ObjectKey {
        let meta = self.metadata();
        ObjectKey {
            kind: self.kind(),
            namespace: meta
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_ns.to_string()),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{IngressLoadBalancerIngress, IngressStatus};

    #[test]
    fn locations_name_the_object_and_read_back() {
        let key = ObjectKey {
            kind: ApiKind::Ingress,
            namespace: "shop".into(),
            name: "web".into(),
        };
        assert_eq!(key.location(), PathBuf::from("hub:ingresses/shop/web"));
        assert_eq!(ObjectKey::from_location(&key.location()), Some(key.clone()));
        assert_eq!(key.to_string(), "Ingress shop/web");
        assert_eq!(ObjectKey::from_location(Path::new("conf/web.yaml")), None);
        assert_eq!(
            ObjectKey::from_location(Path::new("hub:pods/shop/web")),
            None
        );
    }

    #[test]
    fn status_and_bookkeeping_do_not_make_a_new_version() {
        let mut a = Ingress::default();
        a.metadata.name = Some("web".into());
        a.metadata.namespace = Some("shop".into());
        let mut b = a.clone();
        b.metadata.resource_version = Some("77".into());
        b.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
        b.status = Some(IngressStatus {
            load_balancer: Some(
                k8s_openapi::api::networking::v1::IngressLoadBalancerStatus {
                    ingress: Some(vec![IngressLoadBalancerIngress {
                        ip: Some("192.0.2.1".into()),
                        ..Default::default()
                    }]),
                },
            ),
        });
        assert_eq!(ApiObject::ingress(a.clone()), ApiObject::ingress(b));
        let mut c = a.clone();
        c.metadata.annotations = Some([("k".to_string(), "v".to_string())].into());
        assert_ne!(ApiObject::ingress(a), ApiObject::ingress(c));
    }
}
