//! Where endpoints come from, when they are not written by hand.
//!
//! Pods move: every rollout gives them new addresses. Kubernetes publishes
//! where a Service's pods are in EndpointSlices; this crate reads them with
//! the rules kube-proxy applies, so that a gateway in front of several
//! clusters sends traffic where each cluster's own Service would:
//!
//! - a Service port is matched to the slices' ports by name (the unnamed
//!   port of a single-port Service is `""`), and the slices' port numbers
//!   are the pods' target ports;
//! - `ready` endpoints take traffic; `serving` and `terminating` ones take
//!   it only when no ready endpoint is left, otherwise they drain;
//!   endpoints that are neither are left out;
//! - a pod listed twice (slices overlap while the controller moves it) is
//!   one endpoint;
//! - a dual-stack Service has one slice set per family: one family is used
//!   (the preferred one if it has endpoints), so that each pod counts once;
//! - zone, zone hints and node become endpoint labels, for subsets.
//!
//! Legacy `v1` Endpoints objects are read into the same form.
//!
//! Routing can follow a cluster too: [`objects`] and [`HubStore`] hold the
//! Ingresses, Services and Secrets of a hub cluster, which `hub` (feature
//! `kubernetes`) watches, writing each served Ingress's status back.
//!
//! ```
//! use fleetgate_discovery::{service_endpoints, AddressFamily, Slice};
//! let yaml = r#"
//! apiVersion: discovery.k8s.io/v1
//! kind: EndpointSlice
//! metadata:
//!   name: web-abc12
//!   namespace: shop
//!   labels: { kubernetes.io/service-name: web }
//! addressType: IPv4
//! ports: [{ name: http, port: 8080, protocol: TCP }]
//! endpoints:
//!   - addresses: ["10.0.0.7"]
//!     conditions: { ready: true }
//!     zone: zone-a
//! "#;
//! # let slice: k8s_openapi::api::discovery::v1::EndpointSlice =
//! #     serde_yaml_ng::from_str(yaml).unwrap();
//! let slice = Slice::from_endpoint_slice(slice, "default").unwrap().unwrap();
//! let found = service_endpoints([&slice], Some("http"), AddressFamily::Ipv4);
//! assert_eq!(found.endpoints[0].address.to_string(), "10.0.0.7:8080");
//! ```

#![warn(missing_docs)]

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "kubernetes")]
pub mod hub;
mod hub_store;
#[cfg(feature = "kubernetes")]
pub mod kube;
pub mod objects;
mod slices;
mod store;

pub use hub_store::{Advertised, HubStore, IngressName, StatusWrite, StatusWrites};
pub use slices::{
    service_endpoints, AddressFamily, DiscoveredEndpoint, ServiceEndpoints, Slice, SliceEndpoint,
    SlicePort, NODE_LABEL, SERVICE_NAME_LABEL, ZONE_HINTS_LABEL,
};
pub use store::{EndpointStore, ServiceKey, ServiceSlices, SourceStatus, StoreSnapshot};
