//! A route and the plan of one request on it.

use std::sync::Arc;

use fleetgate_canary::CanaryRoute;

use crate::target::Target;

/// A route's position in its router; only its builder hands them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(pub(crate) u32);

impl RouteId {
    /// As an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A route: the Ingress that defined it and where its requests go.
#[derive(Debug)]
pub struct Route {
    /// `namespace/name` of the Ingress.
    pub ingress: Arc<str>,
    /// The main destination.
    pub main: Target,
    /// Canary Ingresses bound to this route, if any.
    pub canaries: Option<CanaryRoute<Target>>,
    /// Answer plain HTTP with a 308 to `https://` (`ssl-redirect` on a TLS
    /// host, or `force-ssl-redirect`).
    pub https_redirect: bool,
    /// Whatever the code around the router attaches to the route, by type:
    /// a proxy's per-route modules or policies (empty costs nothing).
    pub extensions: http::Extensions,
}

impl Route {
    /// A route of `ingress` whose requests go to `main`.
    pub fn new(ingress: &str, main: Target) -> Self {
        Route {
            ingress: ingress.into(),
            main,
            canaries: None,
            https_redirect: false,
            extensions: http::Extensions::new(),
        }
    }

    /// Attaches `value` (one per type; a second replaces the first).
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The same route over the pools in `replaced` (by id); `None` when one
    /// of its targets cannot be carried over (see [`Target`]'s rules).
    pub(crate) fn remapped(
        &self,
        replaced: &std::collections::HashMap<crate::PoolId, Arc<crate::ServicePool>>,
    ) -> Option<Route> {
        let canaries = match &self.canaries {
            Some(c) => Some(c.try_map_targets(|t| t.remapped(replaced))?),
            None => None,
        };
        Some(Route {
            ingress: Arc::clone(&self.ingress),
            main: self.main.remapped(replaced)?,
            canaries,
            https_redirect: self.https_redirect,
            extensions: self.extensions.clone(),
        })
    }

    /// Redirects plain-HTTP requests to HTTPS.
    pub fn with_https_redirect(mut self, redirect: bool) -> Self {
        self.https_redirect = redirect;
        self
    }

    /// The target a plan on this route sends to: the chosen canary's, else
    /// main.
    pub fn target(&self, canary: Option<usize>) -> &Target {
        match (canary, &self.canaries) {
            (Some(i), Some(c)) => c.get(i).unwrap_or(&self.main),
            _ => &self.main,
        }
    }

    /// The canary Ingress chosen by `canary`, if any.
    pub fn canary_ingress(&self, canary: Option<usize>) -> Option<&str> {
        self.canaries.as_ref()?.ingress(canary?)
    }

    /// Every target of the route: main, then its canaries.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        let canaries = self
            .canaries
            .iter()
            .flat_map(|c| (0..c.len()).map(|i| c.target(i)));
        std::iter::once(&self.main).chain(canaries)
    }
}

/// Where one request goes on its route: main or one canary. Decided once,
/// on the first try, and kept for every retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The matched route.
    pub route: RouteId,
    /// The canary chosen (its index among the route's canaries), `None`
    /// for main.
    pub canary: Option<usize>,
}
