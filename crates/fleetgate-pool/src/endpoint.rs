//! One upstream endpoint (a pod address) and its labels.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The label naming an endpoint's cluster (Istio's convention, used by MSE).
pub const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
/// The label naming an endpoint's zone (Kubernetes' well-known label).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Endpoint labels, ordered for stable output.
pub type Labels = BTreeMap<String, String>;

/// Whether an endpoint takes new traffic, as Kubernetes reports it
/// (EndpointSlice conditions). Endpoints that are neither ready nor serving
/// never reach a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Condition {
    /// Ready: takes traffic.
    #[default]
    Ready,
    /// Serving but terminating: its pod is shutting down. It takes new
    /// traffic only when its Service has no ready endpoint left (as
    /// kube-proxy and Envoy do); otherwise it drains.
    Terminating,
}

impl Condition {
    /// `ready` or `terminating`, for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ready => "ready",
            Condition::Terminating => "terminating",
        }
    }
}

/// An upstream endpoint: where it is, which cluster and zone it runs in, how
/// much traffic it takes relative to its peers, and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's address (IP and container port).
    pub address: SocketAddr,
    /// The id of the cluster it runs in.
    pub cluster: String,
    /// The cluster's zone, if known.
    pub zone: Option<String>,
    /// Relative weight (default 1: one pod, one share).
    pub weight: u32,
    /// All labels, including [`CLUSTER_LABEL`] and, with a zone, [`ZONE_LABEL`].
    pub labels: Labels,
    /// Ready or terminating.
    pub condition: Condition,
}

impl Endpoint {
    /// An endpoint of weight 1 in `cluster`, labelled with it.
    pub fn new(address: SocketAddr, cluster: &str) -> Self {
        let mut labels = Labels::new();
        labels.insert(CLUSTER_LABEL.to_string(), cluster.to_string());
        Endpoint {
            address,
            cluster: cluster.to_string(),
            zone: None,
            weight: 1,
            labels,
            condition: Condition::Ready,
        }
    }

    /// Sets the condition.
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }

    /// Sets the zone (and its label).
    pub fn with_zone(mut self, zone: &str) -> Self {
        self.zone = Some(zone.to_string());
        self.labels.insert(ZONE_LABEL.to_string(), zone.to_string());
        self
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Adds labels of the endpoint's own. The cluster and zone labels always
    /// reflect `cluster` and `zone`, whatever `labels` says.
    pub fn with_labels(mut self, labels: &Labels) -> Self {
        for (k, v) in labels {
            if k != CLUSTER_LABEL && k != ZONE_LABEL {
                self.labels.insert(k.clone(), v.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_labels_come_from_cluster_and_zone() {
        let mut own = Labels::new();
        own.insert("app".into(), "web-demo".into());
        own.insert(CLUSTER_LABEL.into(), "spoofed".into());
        let e = Endpoint::new("127.0.0.1:1".parse().unwrap(), "c1")
            .with_zone("zone-a")
            .with_labels(&own);
        assert_eq!(e.labels[CLUSTER_LABEL], "c1");
        assert_eq!(e.labels[ZONE_LABEL], "zone-a");
        assert_eq!(e.labels["app"], "web-demo");
    }
}
