//! Upstream timeouts, explicit so that nothing waits on the kernel's defaults.

use std::time::Duration;

/// Timeouts applied to every connection and request to an upstream endpoint.
///
/// Defaults: connect 1 s (endpoints are in the same region; a zone that does
/// not answer a SYN within a second is treated as down), read 60 s and write
/// 60 s between bytes (nginx's `proxy_read_timeout` / `proxy_send_timeout`),
/// idle pooled connections kept 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpstreamTimeouts {
    /// TCP connect timeout.
    pub connect: Duration,
    /// Longest wait for the next byte of the response.
    pub read: Duration,
    /// Longest wait for the request to be written.
    pub write: Duration,
    /// How long an idle upstream connection is kept for reuse.
    pub idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}
