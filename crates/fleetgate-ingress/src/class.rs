//! Which Ingresses this gateway serves.
//!
//! Kubernetes lets several controllers share a cluster; each serves only the
//! Ingresses of its class. An Ingress names its class in
//! `spec.ingressClassName` or, in older manifests, in the
//! `kubernetes.io/ingress.class` annotation. Ingresses with no class at all
//! are served only by the controller marked as the default class.

/// The annotation older manifests use instead of `spec.ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Decides whether an Ingress belongs to this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFilter {
    class: String,
    default_class: bool,
}

impl ClassFilter {
    /// A filter serving Ingresses of `class`; with `default_class`, also those
    /// that name no class.
    pub fn new(class: impl Into<String>, default_class: bool) -> Self {
        ClassFilter {
            class: class.into(),
            default_class,
        }
    }

    /// The class this gateway serves.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Whether an Ingress with the given class (from `spec.ingressClassName`,
    /// else the legacy annotation) is served. `Err` carries the reason it is
    /// not, for status reports.
    pub fn accepts(&self, class: Option<&str>) -> Result<(), String> {
        match class {
            Some(c) if c == self.class => Ok(()),
            Some(c) => Err(format!(
                "ingress class \"{c}\" is not this gateway's class \"{}\"",
                self.class
            )),
            None if self.default_class => Ok(()),
            None => Err(format!(
                "no ingress class, and this gateway (class \"{}\") is not the default class",
                self.class
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_class_is_served() {
        assert!(ClassFilter::new("mse", false).accepts(Some("mse")).is_ok());
    }

    #[test]
    fn foreign_class_is_ignored_with_reason() {
        let err = ClassFilter::new("mse", true)
            .accepts(Some("nginx"))
            .unwrap_err();
        assert!(err.contains("\"nginx\""), "{err}");
    }

    #[test]
    fn classless_only_when_default() {
        assert!(ClassFilter::new("mse", false).accepts(None).is_err());
        assert!(ClassFilter::new("mse", true).accepts(None).is_ok());
    }
}
