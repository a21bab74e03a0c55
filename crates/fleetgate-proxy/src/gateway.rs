//! The `ProxyHttp` that composes the routing stages: match, then pool, then peer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use fleetgate_pool::{EndpointPool, Outcome};

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
    /// Retries used so far.
    pub retries: u32,
    /// Endpoints that failed this request (empty, and unallocated, unless
    /// something failed).
    pub failed: Vec<std::net::SocketAddr>,
    /// Whether any response byte came from the upstream (no retry after that).
    pub response_started: bool,
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

/// Whether endpoints of `cluster` other than the ones this request already
/// tried are failing too: then a retry should leave the cluster.
fn cluster_looks_down(pool: &EndpointPool, cluster: &str, failed: &[std::net::SocketAddr]) -> bool {
    let failed_here = pool
        .endpoints()
        .iter()
        .filter(|e| e.cluster == cluster && failed.contains(&e.address))
        .count();
    if failed_here > 1 {
        return true;
    }
    pool.endpoints().iter().enumerate().any(|(i, e)| {
        e.cluster == cluster
            && !failed.contains(&e.address)
            && (!pool.is_available(i) || pool.state(i).consecutive_failures() > 0)
    })
}

/// Picks an endpoint for a retry: not tried yet, from another cluster first
/// when the failed one looks down.
fn pick_retry<'a>(
    pool: &'a EndpointPool,
    failed: &[std::net::SocketAddr],
) -> Option<fleetgate_pool::Picked<'a>> {
    let last_cluster = failed.last().and_then(|addr| {
        pool.endpoints()
            .iter()
            .find(|e| e.address == *addr)
            .map(|e| e.cluster.as_str())
    });
    if let Some(cluster) = last_cluster {
        if cluster_looks_down(pool, cluster, failed) {
            if let Some(p) =
                pool.select_with(|e| e.cluster != cluster && !failed.contains(&e.address))
            {
                return Some(p);
            }
        }
    }
    pool.select_with(|e| !failed.contains(&e.address))
}

impl RequestCtx {
    /// The pool and endpoint this request used last.
    fn last_endpoint(&self) -> Option<(&EndpointPool, usize)> {
        let snapshot = self.snapshot.as_ref()?;
        let (pool, index) = self.endpoint?;
        Some((snapshot.pools[pool].as_ref(), index))
    }

    /// Records a failure of the last endpoint and whether a retry is allowed.
    fn record_failure(&mut self) -> bool {
        let Some((pool_index, index)) = self.endpoint else {
            return false;
        };
        let Some(snapshot) = self.snapshot.as_ref() else {
            return false;
        };
        let pool = &snapshot.pools[pool_index];
        pool.report(index, Outcome::Failure);
        self.failed.push(pool.endpoints()[index].address);
        let allowed = self.retries < snapshot.pool_retries[pool_index];
        if allowed {
            self.retries += 1;
        }
        allowed
    }
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
            retries: 0,
            failed: Vec::new(),
            response_started: false,
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
        let picked = if ctx.failed.is_empty() {
            pool.select()
        } else {
            pick_retry(pool, &ctx.failed)
        };
        let picked = match picked {
            Some(p) => p,
            None if !ctx.failed.is_empty() => {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(502),
                    "every endpoint tried failed",
                ))
            }
            None => return Err(no_endpoint()),
        };
        ctx.endpoint = Some((pool_index, picked.index));
        Ok(pool.peer(picked))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let retry = ctx.record_failure();
        log::debug!("connect to {peer} failed ({e}); retry: {retry}");
        if retry {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        // A stale pooled connection is not the endpoint's fault.
        let stale_reuse = client_reused && !ctx.response_started;
        let idempotent = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        if ctx.response_started || !idempotent {
            if !ctx.response_started && e.esource() == &ErrorSource::Upstream {
                ctx.record_failure();
            }
            e.set_retry(false);
            return e;
        }
        if stale_reuse {
            e.retry.decide_reuse(client_reused);
            return e;
        }
        // An idempotent request that failed before any response byte (reset,
        // timeout): try another endpoint.
        let retry = ctx.record_failure();
        e.set_retry(retry);
        e
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.response_started = true;
        if let Some((pool, index)) = ctx.last_endpoint() {
            let outcome = if upstream_response.status.is_server_error() {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            pool.report(index, outcome);
        }
        Ok(())
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
