//! Where a request came from: the scheme the client used, judged from the
//! gateway's own connection or, only for trusted proxies in front of it,
//! from their `X-Forwarded-Proto`.
//!
//! This decides the HTTPS redirect and the `X-Forwarded-Proto` sent
//! upstream. A client-sent header is never believed on its own: anyone can
//! write `X-Forwarded-Proto: https`, and behind a TLS terminator the header
//! is the only way to know the client used HTTPS, so it counts only from
//! `[gateway] trusted_proxies`.

use std::net::IpAddr;

use http::header::HeaderName;
use pingora_proxy::Session;

use crate::snapshot::EdgePolicy;

/// `x-forwarded-proto`, for lookups.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What the gateway concluded about a request's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The client's scheme.
    pub scheme: Scheme,
    /// A trusted proxy reported the scheme.
    pub reported_by_proxy: bool,
    /// The peer is in `trusted_proxies`.
    pub peer_trusted: bool,
}

impl Default for Origin {
    /// Plain HTTP from a peer that is not a trusted proxy.
    fn default() -> Self {
        Origin {
            scheme: Scheme::Http,
            reported_by_proxy: false,
            peer_trusted: false,
        }
    }
}

impl Origin {
    /// Whether a route that redirects to HTTPS should redirect this
    /// request: it came over plain HTTP and there is somewhere to go: this
    /// gateway's TLS listener (`local_https`: one is running and has a
    /// certificate for the host), or a proxy in front that said the client
    /// used plain HTTP. Otherwise a redirect would loop or lead nowhere.
    pub fn should_upgrade(&self, local_https: bool) -> bool {
        self.scheme == Scheme::Http && (local_https || self.reported_by_proxy)
    }
}

/// Judges the origin of the request in `session`.
pub(crate) fn judge(session: &Session, edge: &EdgePolicy) -> Origin {
    if !edge.trusted_proxies.is_empty() {
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_canonical());
        if let Some(ip) = peer.filter(|ip| edge.trusts(*ip)) {
            let peer_trusted = true;
            // The last value is the one the trusted proxy added; earlier
            // ones came from further away (perhaps from the client).
            let reported = session
                .req_header()
                .headers
                .get_all(X_FORWARDED_PROTO)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            let scheme = match reported {
                Some(p) if p.eq_ignore_ascii_case("https") => Some(Scheme::Https),
                Some(p) if p.eq_ignore_ascii_case("http") => Some(Scheme::Http),
                _ => None,
            };
            if let Some(scheme) = scheme {
                log::trace!("trusted proxy {ip} reports scheme {}", scheme.as_str());
                return Origin {
                    scheme,
                    reported_by_proxy: true,
                    peer_trusted,
                };
            }
            return Origin {
                peer_trusted,
                ..local_origin(session)
            };
        }
    }
    local_origin(session)
}

/// The origin as this hop sees it: the listener's scheme, no proxy.
fn local_origin(session: &Session) -> Origin {
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    Origin {
        scheme: if tls { Scheme::Https } else { Scheme::Http },
        reported_by_proxy: false,
        peer_trusted: false,
    }
}

/// `x-forwarded-for`, for lookups.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address, for per-client policies (source ranges, rate
/// limits): the connection's peer, unless the peer is a trusted proxy
/// (`[gateway] trusted_proxies`); then it is the nearest address in
/// `X-Forwarded-For`, read from the right, that is not itself a trusted
/// proxy. Addresses further left were written by the client or by hops
/// nobody vouches for, so a client cannot choose its own. `None` when it
/// cannot be told (no IP peer, or an unreadable hop).
pub(crate) fn client_address(
    session: &Session,
    peer_trusted: bool,
    edge: Option<&EdgePolicy>,
) -> Option<IpAddr> {
    let peer = session.client_addr()?.as_inet()?.ip().to_canonical();
    let Some(edge) = edge.filter(|_| peer_trusted) else {
        return Some(peer);
    };
    let mut client = peer;
    // Header lines in order, each a list: read the whole chain from the
    // right.
    let lines = session.req_header().headers.get_all(X_FORWARDED_FOR);
    for line in lines.iter().rev() {
        for hop in line.as_bytes().rsplit(|b| *b == b',') {
            let hop = std::str::from_utf8(hop).ok()?.trim();
            if hop.is_empty() {
                continue;
            }
            client = parse_hop(hop)?.to_canonical();
            if !edge.trusts(client) {
                return Some(client);
            }
        }
    }
    // Every hop is a trusted proxy: the leftmost is as far as the chain
    // goes.
    Some(client)
}

/// One `X-Forwarded-For` element: an address, perhaps with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_with_ports() {
        assert_eq!(parse_hop("192.0.2.1:4711"), "192.0.2.1".parse().ok());
        assert_eq!(parse_hop("[2001:db8::1]:80"), "2001:db8::1".parse().ok());
        assert_eq!(parse_hop("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_hop("unknown"), None);
    }
}
