//! Request mirroring (MSE/Higress `mirror-target-service`,
//! `mirror-percentage`; ingress-nginx `mirror-target`, `mirror-host`,
//! `mirror-request-body`): a copy of a share of a route's requests goes to
//! another Service or a URL, and its answer is thrown away.
//!
//! The copy never holds up or fails the real request: it is sent from a
//! task of its own, once the real request's body has been read (a request
//! without a body is copied at once). Only requests that passed the
//! route's access rules are copied: the copy is made when the first try
//! goes upstream, from its head (the gateway's `X-Forwarded-*` and header
//! changes included, framing and hop-by-hop headers aside); its body is
//! the client's when it is at most [`MIRROR_MAX_BODY`] (a larger one is
//! not mirrored). At
//! most [`MIRROR_MAX_IN_FLIGHT`] copies of one route are under way at
//! once, and each has short timeouts, so a slow or dead mirror costs the
//! gateway a bounded number of tasks. Which requests are copied is
//! decided by a counter, not a die: `mirror-percentage: 25` copies every
//! fourth request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fleetgate_auth::forward::{RequestVars, UrlTemplate};
use fleetgate_router::ServicePool;
use http::{HeaderValue, Uri};
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use super::{GatewayModule, Steps};
use crate::gateway::RequestCtx;
use crate::resolver::Resolver;

/// The largest request body that is mirrored.
pub const MIRROR_MAX_BODY: usize = 64 * 1024;
/// Copies of one route's requests under way at once, at most.
pub const MIRROR_MAX_IN_FLIGHT: usize = 256;
/// Connecting to the mirror.
const MIRROR_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Between two reads or writes of a copy.
const MIRROR_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// A copy's whole life, resolving included.
const MIRROR_DEADLINE: Duration = Duration::from_secs(20);

/// Request headers a copy does not carry: they frame or route the
/// client's message.
const NOT_COPIED: [&str; 9] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

/// What a mirror did, for logs and tests.
#[derive(Debug, Default)]
pub struct MirrorCounts {
    /// Copies sent whose answer came back (any status).
    pub answered: AtomicU64,
    /// Copies that failed (no endpoint, connection, timeout).
    pub failed: AtomicU64,
    /// Copies not made: too many under way, or a body too large.
    pub skipped: AtomicU64,
}

/// Where copies go.
pub enum MirrorTarget {
    /// A Service's endpoints (round robin, any cluster).
    Service(Arc<ServicePool>),
    /// A URL with nginx variables (`$request_uri`, `$host`, ...).
    Url(UrlTemplate),
}

impl MirrorTarget {
    /// A URL target from its text (see [`UrlTemplate::parse`]).
    pub fn url(text: &str) -> std::result::Result<Self, String> {
        UrlTemplate::parse(text).map(MirrorTarget::Url)
    }
}

/// Mirrors a share of a route's requests to a Service or a URL.
pub struct Mirror {
    shared: Arc<Shared>,
    percent: u64,
    seen: AtomicU64,
    body: bool,
}

struct Shared {
    target: MirrorTarget,
    host: Option<HeaderValue>,
    connector: Connector,
    resolver: Resolver,
    in_flight: AtomicUsize,
    counts: Arc<MirrorCounts>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("percent", &self.percent)
            .finish_non_exhaustive()
    }
}

/// What the mirror decided for a request (kept in its context).
#[derive(Clone)]
struct MirrorState {
    /// A copy waiting for the rest of the body, if any.
    pending: Option<Pending>,
}

/// A copy waiting for the rest of the request body.
#[derive(Clone)]
struct Pending {
    head: Box<RequestHeader>,
    url: Option<String>,
    body: BytesMut,
}

impl Mirror {
    /// Mirrors `percent` (0 to 100) of the route's requests to `target`,
    /// with their bodies when `body`; copies carry `host` as `Host` when
    /// given (else the client's for a Service, the URL's for a URL).
    pub fn new(target: MirrorTarget, percent: u32, host: Option<HeaderValue>, body: bool) -> Self {
        Mirror {
            shared: Arc::new(Shared {
                target,
                host,
                connector: Connector::new(None),
                resolver: Resolver::new(),
                in_flight: AtomicUsize::new(0),
                counts: Arc::new(MirrorCounts::default()),
            }),
            percent: u64::from(percent.min(100)),
            seen: AtomicU64::new(0),
            body,
        }
    }

    /// What it did so far.
    pub fn counts(&self) -> Arc<MirrorCounts> {
        Arc::clone(&self.shared.counts)
    }

    /// Whether the `n`-th request (from 0) is copied: spread evenly.
    fn chosen(&self, n: u64) -> bool {
        (n + 1) * self.percent / 100 > n * self.percent / 100
    }
}

/// The client's head, without what frames or routes its message.
fn copy_head(req: &RequestHeader) -> Option<Box<RequestHeader>> {
    let mut head = RequestHeader::build(
        req.method.clone(),
        req.uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
        Some(req.headers.len()),
    )
    .ok()?;
    for (name, value) in &req.headers {
        if !NOT_COPIED.contains(&name.as_str()) {
            head.append_header(name.clone(), value.clone()).ok()?;
        }
    }
    Some(Box::new(head))
}

/// The mirror URL for this request.
fn expand(template: &UrlTemplate, session: &Session, ctx: &RequestCtx) -> String {
    let req = session.req_header();
    let http_host = fleetgate_router::request_host(req);
    let mut host_buf = [0u8; 256];
    let host = fleetgate_ingress::normalize_request_host(http_host, &mut host_buf);
    let request_uri = req
        .uri
        .path_and_query()
        .map_or_else(|| req.uri.path(), |p| p.as_str());
    let edge_policy = ctx.snapshot.as_deref().map(|s| &s.edge);
    let remote_addr = crate::edge::client_address(session, ctx.origin.peer_trusted, edge_policy)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let vars = RequestVars {
        host,
        http_host,
        scheme: ctx.origin.scheme.as_str(),
        request_uri,
        remote_addr: &remote_addr,
    };
    let mut url = String::new();
    template.expand(&vars, &mut url);
    url
}

/// Whether the request has a body to come.
fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

impl Shared {
    /// Sends the copy from a task of its own.
    fn spawn(
        self: &Arc<Self>,
        mut head: Box<RequestHeader>,
        url: Option<String>,
        body: Option<Bytes>,
    ) {
        let taken = self.in_flight.fetch_add(1, Ordering::Relaxed);
        if taken >= MIRROR_MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(b) = &body {
            let _ = head.insert_header(http::header::CONTENT_LENGTH, b.len().to_string());
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let result =
                match tokio::time::timeout(MIRROR_DEADLINE, shared.send(head, url, body)).await {
                    Ok(r) => r,
                    Err(_) => Err(pingora_core::Error::explain(
                        pingora_core::ErrorType::ReadTimedout,
                        "the mirror took too long",
                    )),
                };
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            match result {
                Ok(()) => shared.counts.answered.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    log::debug!("mirrored request failed: {e}");
                    shared.counts.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        });
    }

    /// The peer a copy goes to; sets the copy's path and `Host` for a URL.
    async fn peer(&self, head: &mut RequestHeader, url: Option<&str>) -> Result<Box<HttpPeer>> {
        let invalid = |what: &str| {
            pingora_core::Error::explain(pingora_core::ErrorType::InternalError, what.to_string())
        };
        let peer = match (&self.target, url) {
            (MirrorTarget::Service(pool), _) => {
                let pool = pool.endpoint_pool();
                let picked = pool.select().ok_or_else(|| {
                    pingora_core::Error::explain(
                        pingora_core::ErrorType::ConnectNoRoute,
                        "the mirror Service has no available endpoint",
                    )
                })?;
                let mut peer = pool.peer(picked);
                if peer.is_tls() && peer.sni.is_empty() {
                    // The Service names its server from the request: the
                    // copy's Host, as the real request's.
                    if let Some(host) = head.headers.get(http::header::HOST) {
                        let host = String::from_utf8_lossy(host.as_bytes()).to_string();
                        peer.sni = host
                            .rsplit_once(':')
                            .map_or(host.as_str(), |(h, _)| h)
                            .to_string();
                    }
                }
                peer
            }
            (MirrorTarget::Url(_), Some(url)) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|_| invalid("mirror-target is not a URL"))?;
                let tls = uri.scheme_str() == Some("https");
                let host = uri.host().unwrap_or_default();
                let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
                let addr = self.resolver.resolve(host, port).await?;
                // `https://host/$request_uri` gives `//path`: one slash.
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let path = format!("/{}", path.trim_start_matches('/'));
                head.set_raw_path(path.as_bytes())?;
                if self.host.is_none() {
                    let authority = uri.authority().map_or(host, |a| a.as_str());
                    head.insert_header(http::header::HOST, authority)?;
                }
                Box::new(HttpPeer::new(
                    addr,
                    tls,
                    host.trim_matches(['[', ']']).to_string(),
                ))
            }
            (MirrorTarget::Url(_), None) => return Err(invalid("no mirror URL")),
        };
        if let Some(h) = &self.host {
            head.insert_header(http::header::HOST, h.clone())?;
        }
        Ok(peer)
    }

    async fn send(
        &self,
        mut head: Box<RequestHeader>,
        url: Option<String>,
        body: Option<Bytes>,
    ) -> Result<()> {
        let mut peer = self.peer(&mut head, url.as_deref()).await?;
        peer.options.connection_timeout = Some(MIRROR_CONNECT_TIMEOUT);
        peer.options.total_connection_timeout = Some(MIRROR_CONNECT_TIMEOUT);
        let (mut http, _) = self.connector.get_http_session(&*peer).await?;
        http.set_read_timeout(Some(MIRROR_IO_TIMEOUT));
        http.set_write_timeout(Some(MIRROR_IO_TIMEOUT));
        http.write_request_header(head).await?;
        if let Some(b) = body {
            http.write_request_body(b, true).await?;
        }
        http.finish_request_body().await?;
        http.read_response_header().await?;
        let mut read = 0usize;
        while let Some(chunk) = http.read_response_body().await? {
            read += chunk.len();
            if read > MIRROR_MAX_BODY {
                http.shutdown().await;
                return Ok(());
            }
        }
        if http.response_done() {
            self.connector
                .release_http_session(http, &*peer, Some(Duration::from_secs(60)))
                .await;
        }
        Ok(())
    }
}

impl GatewayModule for Mirror {
    fn name(&self) -> &str {
        "mirror"
    }

    fn steps(&self) -> Steps {
        Steps::UPSTREAM_REQUEST | Steps::REQUEST_BODY
    }

    /// On the first try, once access rules and header changes are done:
    /// decides, and copies the head as it goes upstream. A retry starts
    /// the body copy again (Pingora sends the body again).
    fn upstream_request(
        &self,
        session: &Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(state) = ctx.extensions.get_mut::<MirrorState>() {
            if let Some(p) = state.pending.as_mut() {
                p.body.clear();
            }
            return Ok(());
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        if !self.chosen(n) {
            ctx.extensions.insert(MirrorState { pending: None });
            return Ok(());
        }
        let url = match &self.shared.target {
            MirrorTarget::Url(template) => Some(expand(template, session, ctx)),
            MirrorTarget::Service(_) => None,
        };
        let client = session.req_header();
        let Some(mut head) = copy_head(request) else {
            ctx.extensions.insert(MirrorState { pending: None });
            return Ok(());
        };
        if !head.headers.contains_key(http::header::HOST) {
            let host = fleetgate_router::request_host(client).to_string();
            head.insert_header(http::header::HOST, host)?;
        }
        let pending = if self.body && has_body(client) {
            Some(Pending {
                head,
                url,
                body: BytesMut::new(),
            })
        } else {
            self.shared.spawn(head, url, None);
            None
        };
        ctx.extensions.insert(MirrorState { pending });
        Ok(())
    }

    fn request_body(
        &self,
        _session: &Session,
        body: Option<&Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(state) = ctx.extensions.get_mut::<MirrorState>() else {
            return Ok(());
        };
        let Some(pending) = state.pending.as_mut() else {
            return Ok(());
        };
        if let Some(chunk) = body {
            if pending.body.len() + chunk.len() > MIRROR_MAX_BODY {
                state.pending = None;
                self.shared.counts.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            pending.body.extend_from_slice(chunk);
        }
        if end {
            if let Some(p) = state.pending.take() {
                self.shared.spawn(p.head, p.url, Some(p.body.freeze()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_percentage_is_spread_evenly() {
        let chosen = |percent: u64, n: u64| (n + 1) * percent / 100 > n * percent / 100;
        for percent in [0u64, 1, 10, 25, 50, 99, 100] {
            let count = (0..1000).filter(|&n| chosen(percent, n)).count() as u64;
            assert_eq!(count, percent * 10, "{percent}");
        }
        // 25 %: every fourth.
        let picked: Vec<u64> = (0..8).filter(|&n| chosen(25, n)).collect();
        assert_eq!(picked, [3, 7]);
    }
}
