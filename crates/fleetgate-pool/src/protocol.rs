//! How the gateway speaks to a pool's endpoints: HTTP/1.1 or HTTP/2, plain
//! or over TLS, and how TLS upstreams are verified.
//!
//! Built into each endpoint's prepared peer at load, so a request only
//! clones the peer (and, for TLS upstreams without a fixed server name,
//! sets the request's host as SNI).

use std::net::SocketAddr;
use std::sync::Arc;

use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::WrappedX509;

use crate::timeouts::UpstreamTimeouts;

/// The wire protocol to the endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerProtocol {
    /// HTTP/2 only: prior knowledge (h2c) on plain TCP, ALPN `h2` on TLS.
    pub http2: bool,
    /// TLS settings; `None` is plain TCP.
    pub tls: Option<PeerTls>,
}

/// TLS to the endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerTls {
    /// Server name sent and verified. Empty: the request's host.
    pub sni: String,
    /// Verify the certificate chain and the name.
    pub verify: bool,
    /// PEM CA bundle (checked at load); `None`: the system's roots.
    pub ca_pem: Option<Arc<[u8]>>,
}

impl PeerProtocol {
    /// Whether each request must set its own SNI (TLS without a fixed name).
    pub fn sni_from_request(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.sni.is_empty())
    }
}

/// The CA certificates of a PEM bundle in Pingora's form. Certificates that
/// do not parse are skipped (the configuration loader rejects such bundles).
fn ca_list(pem: &[u8]) -> Option<Arc<[WrappedX509]>> {
    let certs = fleetgate_tls::ca_certificates(pem).ok()?;
    let list: Vec<WrappedX509> = certs
        .into_iter()
        .map(|der| WrappedX509::new(der.to_vec(), pingora_core::utils::tls::parse_x509))
        .collect();
    Some(list.into())
}

/// A peer for `address` with explicit timeouts and `protocol`.
pub(crate) fn make_peer(
    address: SocketAddr,
    timeouts: &UpstreamTimeouts,
    protocol: &PeerProtocol,
) -> HttpPeer {
    let (tls, sni) = match &protocol.tls {
        Some(t) => (true, t.sni.clone()),
        None => (false, String::new()),
    };
    let mut peer = HttpPeer::new(address, tls, sni);
    peer.options.connection_timeout = Some(timeouts.connect);
    peer.options.read_timeout = Some(timeouts.read);
    peer.options.write_timeout = Some(timeouts.write);
    peer.options.idle_timeout = Some(timeouts.idle);
    peer.options.alpn = if protocol.http2 { ALPN::H2 } else { ALPN::H1 };
    if protocol.http2 {
        // One connection multiplexes many requests, as gRPC clients expect.
        peer.options.max_h2_streams = 100;
    }
    if let Some(t) = &protocol.tls {
        peer.options.verify_cert = t.verify;
        peer.options.verify_hostname = t.verify;
        peer.options.ca = t.ca_pem.as_deref().and_then(ca_list);
        // Pingora's connection reuse does not look at the CA: keep pooled
        // connections verified against one bundle away from another's.
        if let Some(pem) = &t.ca_pem {
            peer.group_key = ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(pem);
        }
    }
    peer
}
