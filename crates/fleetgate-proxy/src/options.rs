//! What the gateway enforces on clients and adds for upstreams, set by
//! whoever builds it (the binary maps its configuration onto these).

use std::time::Duration;

/// How the gateway treats the forwarding headers of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeaders {
    /// None are added.
    Off,
    /// The client's address is appended to `X-Forwarded-For` (the
    /// default); `X-Real-IP` and `X-Forwarded-Proto` are set.
    #[default]
    Append,
    /// Like `Append` for peers in the trusted proxies; from any other peer,
    /// client-sent `X-Forwarded-For`, `X-Forwarded-Host`,
    /// `X-Forwarded-Port`, `Forwarded` and `X-Real-IP` are dropped first, so
    /// upstreams only see what the gateway or a trusted proxy wrote.
    Overwrite,
}

/// How slowly, and how much, a client may send as a request body (the
/// connection and head limits are [`crate::GuardedApp`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Longest wait for the next piece of a request body (408 after it).
    pub timeout: Duration,
    /// Largest request body, or `None` for no limit (413 above it).
    pub max_size: Option<u64>,
}

impl Default for BodyLimits {
    /// 60 s between pieces (as nginx), no size limit.
    fn default() -> Self {
        BodyLimits {
            timeout: Duration::from_secs(60),
            max_size: None,
        }
    }
}
