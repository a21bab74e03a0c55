//! The library half of the `fleetgate` binary: turning a loaded
//! configuration into a router and a serving snapshot.
//!
//! The routing crates know nothing of configuration files; this is the one
//! place that reads [`fleetgate_config::Config`] and builds a
//! [`fleetgate_router::Router`] from it, so that `fleetgate-proxy` and
//! `fleetgate-router` stay usable without TOML, YAML or Kubernetes types.
//! The binary uses it to load and reload; the routing benchmark uses it
//! to build large configurations.

#![warn(missing_docs)]

pub mod compile;
pub mod patch;
