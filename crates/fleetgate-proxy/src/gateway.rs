//! The `ProxyHttp` that composes the routing stages: match, then pool, then peer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use crate::responses::{self, SERVER};
use crate::snapshot::{SharedSnapshot, Snapshot};

/// Per-request state.
pub struct RequestCtx {
    /// The snapshot this request routes with, pinned for its whole life.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Index of the matched route in the snapshot.
    pub route: Option<u32>,
    /// `(pool, endpoint)` indices of the endpoint picked last.
    pub endpoint: Option<(usize, usize)>,
    _in_flight: InFlight,
}

/// Counts requests in flight, for graceful shutdown.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The fleetgate proxy.
pub struct Gateway {
    snapshot: SharedSnapshot,
    in_flight: Arc<AtomicUsize>,
}

impl Gateway {
    /// A gateway routing with whatever `snapshot` currently holds.
    pub fn new(snapshot: SharedSnapshot) -> Self {
        Gateway {
            snapshot,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The number of requests being served now; shared, so a shutdown
    /// watcher can wait for it to reach zero.
    pub fn in_flight(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.in_flight)
    }
}

/// The request's host: the Host header, else the URI authority (HTTP/2, or
/// an absolute-form request line).
fn request_host(req: &RequestHeader) -> &str {
    if let Some(h) = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    {
        return h;
    }
    req.uri.authority().map_or("", |a| a.as_str())
}

fn no_endpoint() -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(503), "no healthy endpoint")
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestCtx {
            snapshot: None,
            route: None,
            endpoint: None,
            _in_flight: InFlight(Arc::clone(&self.in_flight)),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.snapshot.load_full();
        let req = session.req_header();
        let route = snapshot
            .table
            .lookup(request_host(req), req.uri.path())
            .map(|m| *m.target);
        ctx.snapshot = Some(snapshot);
        match route {
            Some(r) => {
                ctx.route = Some(r);
                Ok(false)
            }
            None => {
                responses::send(session, 404).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (Some(snapshot), Some(route)) = (ctx.snapshot.as_ref(), ctx.route) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no route selected",
            ));
        };
        let route = &snapshot.routes[route as usize];
        let pool_index = route.pool.ok_or_else(no_endpoint)?;
        let pool = &snapshot.pools[pool_index];
        let picked = pool.select().ok_or_else(no_endpoint)?;
        ctx.endpoint = Some((pool_index, picked.index));
        Ok(pool.peer(picked))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) {
            let ip = addr.ip().to_string();
            let forwarded = match upstream_request
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prior) => format!("{prior}, {ip}"),
                None => ip.clone(),
            };
            upstream_request.insert_header("X-Forwarded-For", forwarded)?;
            upstream_request.insert_header("X-Real-IP", ip)?;
        }
        if upstream_request.headers.get("x-forwarded-proto").is_none() {
            upstream_request.insert_header("X-Forwarded-Proto", "http")?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header("Server", SERVER)?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 {
            if let Err(write_err) = responses::send(session, code).await {
                log::debug!("could not send {code} to the client: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}
