//! A route's own upstream settings (`proxy-connect-timeout`,
//! `proxy-read-timeout`, `proxy-send-timeout`, `proxy-body-size`),
//! overriding the Service's and the gateway's for the requests it routes.

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
