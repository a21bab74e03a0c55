//! Test harness: real processes on loopback.
//!
//! Starts the real `fleetgate` binary and real `web-demo` backends, waits for
//! readiness (a printed address, an answering socket) instead of sleeping,
//! and talks HTTP/1.1 over real sockets. Every process is killed when its
//! handle drops, so a failing test leaves nothing behind.

#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod dns;
pub mod kube_api;
pub mod load;
pub mod process;
pub mod python;
pub mod tls;
pub mod upstream;

pub use client::{exchange, HttpClient, Response};
pub use load::{assert_none_failed, Load, Sample};
pub use process::{bin_path, fleetgate_cli, free_port, Backend, Gateway, TempDir};
