//! The canaries of one route, compiled for the request path.
//!
//! A route (host + path + pathType) has one main Service and zero or more
//! canary Ingresses bound to it. [`CanaryRouteBuilder`] collects them at
//! configuration time, compiling names and regexes once; the resulting
//! [`CanaryRoute`] is immutable and answers "which canary, if any?" per
//! request without allocating or parsing anything.

use std::fmt;

use crate::annotations::CanaryAnnotations;
use crate::flavour::Flavour;
use crate::mse::MsePolicy;
use crate::nginx::NginxPolicy;
use crate::request::RequestView;

/// A second canary Ingress on a route in the nginx flavour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryConflict {
    /// The canary Ingress the route already has (`namespace/name`).
    pub existing: String,
    /// The canary Ingress that was refused (`namespace/name`).
    pub rejected: String,
}

impl fmt::Display for CanaryConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "route already has canary Ingress {:?}; ingress-nginx allows one canary per route, so {:?} is rejected",
            self.existing, self.rejected
        )
    }
}

impl std::error::Error for CanaryConflict {}

/// One canary of a route.
#[derive(Debug, Clone)]
struct Entry<T> {
    ingress: String,
    description: String,
    target: T,
}

/// The compiled decision, per flavour.
#[derive(Debug, Clone)]
enum Policy {
    Mse(MsePolicy),
    Nginx(Option<NginxPolicy>),
}

/// Collects the canaries of one route; see [`CanaryRoute`].
#[derive(Debug, Clone)]
pub struct CanaryRouteBuilder<T> {
    flavour: Flavour,
    entries: Vec<Entry<T>>,
    policy: Policy,
}

impl<T> CanaryRouteBuilder<T> {
    /// An empty route compiled for `flavour`.
    pub fn new(flavour: Flavour) -> Self {
        let policy = match flavour {
            Flavour::Mse => Policy::Mse(MsePolicy::default()),
            Flavour::Nginx => Policy::Nginx(None),
        };
        CanaryRouteBuilder {
            flavour,
            entries: Vec::new(),
            policy,
        }
    }

    /// The flavour the route is compiled for.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// Adds the canary Ingress `ingress` (`namespace/name`, used in messages)
    /// with its settings and the target it routes to. Canaries are indexed
    /// in the order they are added.
    ///
    /// In the nginx flavour a route takes one canary; a second one is a
    /// [`CanaryConflict`] naming both.
    ///
    /// `canary` is expected to have passed [`crate::parse_canary_for`] (or
    /// [`CanaryAnnotations::validate`]). Nothing here fails on a bad value:
    /// a regex that does not compile is kept as an invalid condition with
    /// the request-time meaning of the flavour (MSE: the condition never
    /// matches; nginx: a present header sends the request to the main
    /// Service, as ingress-nginx does when its regex fails), and an invalid
    /// header name never matches. [`CanaryRoute::describe`] shows both.
    pub fn add(
        &mut self,
        ingress: &str,
        canary: &CanaryAnnotations,
        target: T,
    ) -> Result<(), CanaryConflict> {
        let index = self.entries.len();
        let description = match &mut self.policy {
            Policy::Mse(policy) => policy.add(index, canary),
            Policy::Nginx(slot) => {
                if let Some(existing) = self.entries.first() {
                    return Err(CanaryConflict {
                        existing: existing.ingress.clone(),
                        rejected: ingress.to_owned(),
                    });
                }
                let (policy, description) = NginxPolicy::new(canary);
                *slot = Some(policy);
                description
            }
        };
        self.entries.push(Entry {
            ingress: ingress.to_owned(),
            description,
            target,
        });
        Ok(())
    }

    /// The finished, immutable route.
    pub fn build(self) -> CanaryRoute<T> {
        CanaryRoute {
            flavour: self.flavour,
            entries: self.entries,
            policy: self.policy,
        }
    }
}

/// The compiled canaries of one route.
///
/// ```
/// use fleetgate_canary::{CanaryAnnotations, CanaryRouteBuilder, Dice, Flavour, RequestView};
/// use http::HeaderMap;
///
/// let mut builder = CanaryRouteBuilder::new(Flavour::Mse);
/// let by_header = CanaryAnnotations {
///     header: Some("canary-dest".into()),
///     header_value: Some("cluster1".into()),
///     ..Default::default()
/// };
/// builder.add("shop/web-canary", &by_header, "web-v2").unwrap();
/// let route = builder.build();
///
/// let mut headers = HeaderMap::new();
/// headers.insert("canary-dest", "cluster1".parse().unwrap());
/// let dice = Dice::new(1);
/// let request = RequestView { headers: &headers, query: None };
/// let chosen = route.decide(&request, || dice.roll());
/// assert_eq!(chosen.map(|i| *route.target(i)), Some("web-v2"));
/// ```
#[derive(Debug, Clone)]
pub struct CanaryRoute<T> {
    flavour: Flavour,
    entries: Vec<Entry<T>>,
    policy: Policy,
}

impl<T> CanaryRoute<T> {
    /// Which canary this request goes to, as an index for [`Self::target`];
    /// `None` means the main Service.
    ///
    /// `roll` must return a uniformly random `u64` (see [`crate::Dice`]). It
    /// is called at most once, and only when the outcome depends on weights.
    #[inline]
    pub fn decide(&self, req: &RequestView<'_>, roll: impl FnOnce() -> u64) -> Option<usize> {
        match &self.policy {
            Policy::Mse(policy) => policy.decide(req, roll),
            Policy::Nginx(Some(policy)) => policy.decide(req, roll).then_some(0),
            Policy::Nginx(None) => None,
        }
    }

    /// The target of canary `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`; indices from [`Self::decide`] are always valid.
    pub fn target(&self, i: usize) -> &T {
        &self.entries[i].target
    }

    /// The target of canary `i`, or `None` if there is no such canary.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.entries.get(i).map(|e| &e.target)
    }

    /// The same decision over other targets: `f` maps each canary's target
    /// (in index order); `None` from any of them is `None`.
    pub fn try_map_targets<U>(&self, mut f: impl FnMut(&T) -> Option<U>) -> Option<CanaryRoute<U>> {
        let entries = self
            .entries
            .iter()
            .map(|e| {
                Some(Entry {
                    ingress: e.ingress.clone(),
                    description: e.description.clone(),
                    target: f(&e.target)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CanaryRoute {
            flavour: self.flavour,
            entries,
            policy: self.policy.clone(),
        })
    }

    /// Every canary's target, in index order, to update in place (e.g. to
    /// number them once the route is finished).
    pub fn targets_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().map(|e| &mut e.target)
    }

    /// The Ingress (`namespace/name`) of canary `i`, if there is one.
    pub fn ingress(&self, i: usize) -> Option<&str> {
        self.entries.get(i).map(|e| e.ingress.as_str())
    }

    /// The number of canaries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the route has no canary (every request goes to main).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The flavour the route is compiled for.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// For a routes table: each canary's Ingress and a human description of
    /// its conditions and weight (e.g. `header canary-dest = always|cluster1`,
    /// `weight 20/100`), in index order.
    pub fn describe(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|e| (e.ingress.clone(), e.description.clone()))
            .collect()
    }
}
