//! Allow and deny lists of client addresses for a route (the
//! `whitelist-source-range` and `denylist-source-range` annotations).
//!
//! The client is the one [`crate::edge::client_address`] tells; a request
//! whose client address cannot be told (an unreadable `X-Forwarded-For`
//! from a trusted proxy) is refused: the lists fail closed.

use std::net::IpAddr;

use ipnet::IpNet;
use pingora_core::Result;
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::edge;
use crate::gateway::RequestCtx;

/// Answers 403 to clients outside `allow` (when it is not empty) or
/// inside `deny` (checked first).
#[derive(Debug, Clone, Default)]
pub struct SourceRangeFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl SourceRangeFilter {
    /// A filter admitting addresses in `allow` (every address when empty)
    /// that are not in `deny`.
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        SourceRangeFilter { allow, deny }
    }

    /// Whether `ip` may pass.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }
}

impl GatewayModule for SourceRangeFilter {
    fn name(&self) -> &str {
        "source-ranges"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let edge = ctx.snapshot.as_ref().map(|s| &s.edge);
        let client = edge::client_address(session, ctx.origin.peer_trusted, edge);
        if client.is_some_and(|ip| self.admits(ip)) {
            return Ok(Flow::Continue);
        }
        log::debug!(
            "refused {} {} from {}: not admitted by the route's source ranges",
            session.req_header().method,
            session.req_header().uri,
            client.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string())
        );
        Ok(Flow::Answer(Answer::new(403)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn deny_first_then_allow() {
        let filter = SourceRangeFilter::new(
            nets(&["10.0.0.0/8", "2001:db8::/32"]),
            nets(&["10.9.0.0/16"]),
        );
        assert!(filter.admits("10.1.2.3".parse().unwrap()));
        assert!(!filter.admits("10.9.0.1".parse().unwrap()));
        assert!(!filter.admits("127.0.0.1".parse().unwrap()));
        assert!(filter.admits("2001:db8::7".parse().unwrap()));
        // An IPv4 client of a dual-stack listener.
        assert!(filter.admits("::ffff:10.1.2.3".parse().unwrap()));
        let deny_only = SourceRangeFilter::new(Vec::new(), nets(&["127.0.0.0/8"]));
        assert!(!deny_only.admits("127.0.0.1".parse().unwrap()));
        assert!(deny_only.admits("192.0.2.1".parse().unwrap()));
    }
}
