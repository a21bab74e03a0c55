//! A route's own upstream settings (`proxy-connect-timeout`,
//! `proxy-read-timeout`, `proxy-send-timeout`, `proxy-body-size`,
//! `proxy-next-upstream*`), overriding the Service's and the gateway's for
//! the requests it routes.

use std::time::Duration;

use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_proxy::Session;

use super::{Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// Timeouts of each try to an endpoint; `None` keeps the Service's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// To establish the connection.
    pub connect: Option<Duration>,
    /// Between two reads of the response (an idle upgraded connection
    /// keeps `websocket_idle_timeout`).
    pub read: Option<Duration>,
    /// Between two writes of the request.
    pub write: Option<Duration>,
}

impl GatewayModule for RouteTimeouts {
    fn name(&self) -> &str {
        "upstream-timeouts"
    }

    fn steps(&self) -> Steps {
        Steps::UPSTREAM_PEER
    }

    fn upstream_peer(
        &self,
        _session: &Session,
        peer: &mut HttpPeer,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(t) = self.connect {
            peer.options.connection_timeout = Some(t);
        }
        if let Some(t) = self.read {
            peer.options.read_timeout = Some(t);
        }
        if let Some(t) = self.write {
            peer.options.write_timeout = Some(t);
        }
        Ok(())
    }
}

/// When a route's requests go on to another endpoint
/// (`proxy-next-upstream`, `-tries`, `-timeout`), in place of the
/// Service's retry policy. A retry always goes to an endpoint not tried
/// yet, and never once a response byte has gone to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NextUpstream {
    /// On a connection refused or reset, or an upstream that closed
    /// before answering (`error`).
    pub on_error: bool,
    /// On a connect, read or write timeout (`timeout`).
    pub on_timeout: bool,
    /// On a response head that cannot be read (`invalid_header`).
    pub on_invalid_header: bool,
    /// On these response statuses (`http_500`, ...), before the response
    /// goes to the client.
    pub statuses: StatusSet,
    /// Also for methods that are not idempotent (`non_idempotent`).
    pub non_idempotent: bool,
    /// At most this many retries (tries - 1; `u32::MAX`: no limit but the
    /// endpoints, each tried once); `None`: the Service's `retries`.
    pub max_retries: Option<u32>,
    /// No retry once the request is this old.
    pub timeout: Option<Duration>,
}

/// A set of the statuses `proxy-next-upstream` can name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSet(u8);

impl StatusSet {
    /// The statuses a set can hold.
    pub const KNOWN: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];

    /// `self` with `status` (one of [`StatusSet::KNOWN`]; others are left
    /// out).
    pub fn with(self, status: u16) -> Self {
        match Self::KNOWN.iter().position(|&s| s == status) {
            Some(i) => StatusSet(self.0 | 1 << i),
            None => self,
        }
    }

    /// Whether `status` is in the set.
    pub fn contains(self, status: u16) -> bool {
        Self::KNOWN
            .iter()
            .position(|&s| s == status)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl GatewayModule for NextUpstream {
    fn name(&self) -> &str {
        "next-upstream"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        ctx.next_upstream = Some(*self);
        Ok(Flow::Continue)
    }
}

/// Whether the route's responses are compressed (an Ingress's
/// `fleetgate.io/compression`), in place of `[compression] enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionChoice(pub bool);

impl GatewayModule for CompressionChoice {
    fn name(&self) -> &str {
        "compression"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        ctx.compress = Some(self.0);
        Ok(Flow::Continue)
    }
}

/// The largest request body the route accepts (`None`: no limit), in
/// place of `client_max_body_size`. A larger one is answered 413: at once
/// when its length is declared, else when the limit is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySizeLimit(pub Option<u64>);

impl GatewayModule for BodySizeLimit {
    fn name(&self) -> &str {
        "body-size"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        ctx.max_body_size = self.0;
        Ok(Flow::Continue)
    }
}
