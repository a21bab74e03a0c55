//! The `ProxyHttp` that composes the routing stages: match, then pool, then peer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use fleetgate_canary::Dice;
use fleetgate_pool::EndpointPermit;
use fleetgate_router::{
    request_host, Attempt, Attempts, EndpointPicker, LeastRequest, Plan, Rendezvous, Route,
    RouteId, Sticky, Target, TryResult, WeightedRoundRobin,
};
use pingora_core::modules::http::compression::ResponseCompressionBuilder;
use pingora_core::modules::http::{HttpModules, ModuleBuilder};

use crate::access_log::AccessLog;
use crate::client_guard;
use crate::edge::{self, Origin};
use crate::metrics::Metrics;
use crate::modules::{
    AccessLogObserver, Balance, Flow, ForwardedHeadersModule, GatewayModule, HttpsRedirect,
    MetricsObserver, ModuleChain, ServerHeader,
};
use crate::options::{BodyLimits, ForwardedHeaders};
use crate::request_checks;
use crate::request_id;
use crate::responses;
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::stats::GatewayStats;

/// Per-request state.
pub struct RequestCtx {
    /// The snapshot this request routes with, pinned for its whole life.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The matched route.
    pub route: Option<RouteId>,
    /// Main or canary, decided on the first try.
    pub plan: Option<Plan>,
    /// The tries so far: endpoints, failures, retries.
    pub attempts: Attempts,
    /// Whether any response byte came from the upstream (no retry after that).
    pub response_started: bool,
    /// When the request arrived.
    pub started: Instant,
    /// When the last endpoint was chosen.
    pub upstream_started: Option<Instant>,
    /// How long the last try took to get its upstream connection.
    pub upstream_connect: Option<std::time::Duration>,
    /// How long the last try waited for its response header, from the
    /// choice of its endpoint.
    pub upstream_response: Option<std::time::Duration>,
    /// This request's `X-Request-Id` (see [`crate::request_id`]), when
    /// the gateway gives requests one.
    pub request_id: Option<http::HeaderValue>,
    /// Where the request came from: the scheme the client used (its own
    /// connection's, or the one a trusted proxy in front reported), and
    /// whether its peer is a trusted proxy.
    pub origin: Origin,
    /// A gRPC request (`content-type: application/grpc...`): the gateway's
    /// own answers are gRPC statuses.
    pub grpc: bool,
    /// The HTTP status of an answer the gateway wrote itself, for logs and
    /// metrics (a gRPC answer is HTTP 200 on the wire).
    pub own_status: Option<u16>,
    /// The upstream timed out while the client had not sent the whole
    /// request body: the client's fault (408), not the endpoint's.
    pub client_stalled: bool,
    /// Every endpoint was at `max_requests_per_endpoint` for
    /// `queue_timeout` (503).
    pub overflowed: bool,
    /// This request's place under the endpoint's
    /// `max_requests_per_endpoint`, held until the request ends.
    pub permit: Option<EndpointPermit>,
    /// This request, counted among those in flight to the cluster of the
    /// endpoint its latest try went to (what tells a draining cluster from
    /// a drained one), until the request ends.
    pub cluster_flight: Option<fleetgate_pool::ClusterFlight>,
    /// Request body bytes received so far (counted only under a body size
    /// limit).
    pub body_bytes: u64,
    /// The body size limit of this request: the gateway's
    /// `client_max_body_size` unless a module of the matched route set
    /// another (`None`: no limit).
    pub max_body_size: Option<u64>,
    /// The matched route's own retry rule (`proxy-next-upstream`), if a
    /// module set one; else the Service's policy applies.
    pub next_upstream: Option<crate::modules::NextUpstream>,
    /// The matched route's choice on response compression, if it made
    /// one; else the gateway's `[compression] enabled`.
    pub compress: Option<bool>,
    /// How the matched route picks endpoints, if a module of it says
    /// (consistent hashing, cookie affinity); else the gateway's picker.
    pub balance: Option<crate::modules::Balance>,
    /// A response status the route retries on was seen and a retry taken:
    /// the error that ends the try is that retry.
    status_retry: bool,
    /// The client sent more body than `client_max_body_size` allows (413).
    pub body_too_large: bool,
    /// Whatever an embedder's code wants to carry through a request.
    pub extensions: http::Extensions,
    /// The matched route's module chain, if it has one.
    route_modules: Option<Arc<ModuleChain>>,
    in_flight: InFlight,
}

/// Counts a request in flight until dropped, for graceful shutdown; also
/// the request's handle on the gateway counters.
struct InFlight(Arc<GatewayStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The fleetgate proxy: Pingora's `ProxyHttp` around a [`Router`](fleetgate_router::Router),
/// with a module chain (see [`crate::modules`]). `P` chooses one endpoint
/// of a pool for each try ([`WeightedRoundRobin`] unless
/// [`Gateway::with_picker`] says otherwise).
pub struct Gateway<P: EndpointPicker = WeightedRoundRobin> {
    snapshot: SharedSnapshot,
    stats: Arc<GatewayStats>,
    dice: Dice,
    metrics: Metrics,
    access_log: Option<AccessLog>,
    forwarded_headers: ForwardedHeaders,
    /// The port of the TLS listener redirects send clients to, if one runs.
    https_port: Option<u16>,
    /// Idle limit of client keep-alive connections, in seconds (0: off).
    keepalive_secs: u64,
    /// How slowly and how much a client may send as a body.
    body_limits: BodyLimits,
    /// The built-in modules, called directly (no dynamic dispatch), and
    /// rebuilt by the builder methods that configure one.
    builtins: Builtins,
    /// The embedder's modules, run after the built-in ones.
    modules: ModuleChain,
    /// Pingora HTTP modules for the downstream session, handed to Pingora
    /// once, when the service starts.
    http_modules: std::sync::Mutex<Vec<ModuleBuilder>>,
    picker: P,
}

impl Gateway {
    /// A gateway routing with whatever `snapshot` currently holds.
    pub fn new(snapshot: SharedSnapshot) -> Self {
        let metrics = Metrics::new();
        Gateway {
            snapshot,
            stats: Arc::new(GatewayStats::default()),
            dice: Dice::default(),
            builtins: Builtins::new(None, ForwardedHeaders::Append, &metrics, None),
            metrics,
            access_log: None,
            forwarded_headers: ForwardedHeaders::Append,
            https_port: None,
            keepalive_secs: 75,
            body_limits: BodyLimits::default(),
            modules: ModuleChain::new(),
            http_modules: std::sync::Mutex::new(Vec::new()),
            picker: WeightedRoundRobin,
        }
    }
}

impl<P: EndpointPicker> Gateway<P> {
    /// Chooses endpoints with `picker` instead (consistent hashing,
    /// least-request, ...); the router still decides which endpoints a try
    /// may use.
    pub fn with_picker<Q: EndpointPicker>(self, picker: Q) -> Gateway<Q> {
        Gateway {
            snapshot: self.snapshot,
            stats: self.stats,
            dice: self.dice,
            metrics: self.metrics,
            access_log: self.access_log,
            forwarded_headers: self.forwarded_headers,
            https_port: self.https_port,
            keepalive_secs: self.keepalive_secs,
            body_limits: self.body_limits,
            builtins: self.builtins,
            modules: self.modules,
            http_modules: self.http_modules,
            picker,
        }
    }

    /// Adds `module` to the gateway's chain, after the built-in modules
    /// and those added before it (see [`crate::modules`]). For one route
    /// only, attach a chain to the route instead
    /// ([`crate::modules::route_modules`]).
    pub fn with_module(mut self, module: impl GatewayModule) -> Self {
        self.modules.push(Arc::new(module));
        self
    }

    /// Adds a Pingora HTTP module (compression, a body filter, ...) to
    /// every client session; Pingora runs its filters around the
    /// gateway's.
    pub fn with_http_module(self, module: ModuleBuilder) -> Self {
        self.http_modules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(module);
        self
    }

    /// The names of the gateway's modules, in the order they run: the
    /// built-in ones, then the embedder's.
    pub fn module_names(&self) -> Vec<&str> {
        self.builtins.names().chain(self.modules.names()).collect()
    }

    fn rebuild_builtins(&mut self) {
        self.builtins = Builtins::new(
            self.https_port,
            self.forwarded_headers,
            &self.metrics,
            self.access_log.as_ref(),
        );
    }

    /// How long an idle client keep-alive connection is kept (rounded up
    /// to whole seconds; zero closes every connection after its response).
    /// HTTP/1.1 pipelining is served in order on kept connections.
    pub fn with_keepalive_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.keepalive_secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        self
    }

    /// Sets the client body timeout and body size limit (the connection
    /// and head limits are [`crate::GuardedApp`]'s).
    pub fn with_body_limits(mut self, limits: BodyLimits) -> Self {
        self.body_limits = limits;
        self
    }

    /// Tells the gateway that a TLS listener runs on `port`: plain-HTTP
    /// requests to routes that ask for HTTPS are redirected there (when a
    /// certificate covers their host).
    pub fn with_https_port(mut self, port: Option<u16>) -> Self {
        self.https_port = port;
        self.rebuild_builtins();
        self
    }

    /// How to treat `X-Forwarded-For`, `X-Real-IP` and `X-Forwarded-Proto`
    /// on upstream requests (default: append).
    pub fn with_forwarded_headers(mut self, mode: ForwardedHeaders) -> Self {
        self.forwarded_headers = mode;
        self.rebuild_builtins();
        self
    }

    /// Seeds the dice of weighted canaries and tier splits. Without a seed
    /// the dice start from a random one; the binary passes
    /// `[gateway] canary_seed`, which has a fixed default so that runs are
    /// reproducible.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.dice = Dice::new(seed);
        self
    }

    /// Records metrics in `metrics` (to share its registry with an admin API).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self.rebuild_builtins();
        self
    }

    /// Writes an access log line per request.
    pub fn with_access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self.rebuild_builtins();
        self
    }

    /// The gateway's counters; shared, so a shutdown watcher can wait for
    /// the in-flight count to reach zero and the admin API can read them.
    pub fn stats(&self) -> Arc<GatewayStats> {
        Arc::clone(&self.stats)
    }
}

/// Retries on a response status stop before Pingora's own limit of tries
/// (16 by default), so that the last answer always reaches the client.
const STATUS_RETRY_LIMIT: usize = 14;

/// Whether the request may be sent again: an idempotent method (or any,
/// when the route's rule or the latest try's Service allows it), a body
/// still whole in the retry buffer, and no upgrade.
fn retryable_request(session: &Session, ctx: &RequestCtx) -> bool {
    let any_method = ctx.next_upstream.map_or_else(
        || {
            ctx.last_attempt()
                .is_some_and(|a| a.pool().policy().retry_non_idempotent)
        },
        |r| r.non_idempotent,
    );
    (any_method || session.req_header().method.is_idempotent())
        && !session.as_ref().retry_buffer_truncated()
        && !is_websocket_upgrade(session)
}

/// Whether the request asks to become a WebSocket (`Upgrade: websocket` on
/// HTTP/1.1). Other upgrade tokens (`h2c` from curl, for one) keep the
/// ordinary timeouts.
fn is_websocket_upgrade(session: &Session) -> bool {
    session.is_upgrade_req()
        && session
            .req_header()
            .headers
            .get(http::header::UPGRADE)
            .is_some_and(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
            })
}

fn no_endpoint() -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(503), "no healthy endpoint")
}

/// The gateway's built-in modules. They run before the embedder's
/// modules at every step, and are called as the concrete types they are:
/// every request goes through them, so no dynamic call and no empty
/// loop is paid for them.
struct Builtins {
    https_redirect: HttpsRedirect,
    forwarded_headers: Option<ForwardedHeadersModule>,
    server_header: ServerHeader,
    metrics: MetricsObserver,
    access_log: Option<AccessLogObserver>,
}

impl Builtins {
    fn new(
        https_port: Option<u16>,
        forwarded_headers: ForwardedHeaders,
        metrics: &Metrics,
        access_log: Option<&AccessLog>,
    ) -> Self {
        Builtins {
            https_redirect: HttpsRedirect { https_port },
            forwarded_headers: (forwarded_headers != ForwardedHeaders::Off).then_some(
                ForwardedHeadersModule {
                    mode: forwarded_headers,
                },
            ),
            server_header: ServerHeader,
            metrics: MetricsObserver::new(metrics.clone()),
            access_log: access_log.cloned().map(AccessLogObserver::new),
        }
    }

    /// Their names, in order.
    fn names(&self) -> impl Iterator<Item = &str> {
        let forwarded = self.forwarded_headers.as_ref();
        let access_log = self.access_log.as_ref();
        [
            Some(self.https_redirect.name()),
            forwarded.map(|m| m.name()),
            Some(self.server_header.name()),
            Some(self.metrics.name()),
            access_log.map(|m| m.name()),
        ]
        .into_iter()
        .flatten()
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        self.https_redirect.after_match(session, ctx)
    }

    fn upstream_request(
        &self,
        session: &Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match &self.forwarded_headers {
            Some(m) => m.upstream_request(session, request, ctx),
            None => Ok(()),
        }
    }

    fn upstream_response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.metrics.upstream_response(session, response, ctx)
    }

    fn response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.server_header.response(session, response, ctx)
    }

    fn logging(&self, session: &Session, ctx: &RequestCtx, status: u16) {
        self.metrics.logging(session, ctx, status);
        if let Some(m) = &self.access_log {
            m.logging(session, ctx, status);
        }
    }
}

impl RequestCtx {
    /// The matched route.
    pub fn route(&self) -> Option<&Route> {
        Some(self.snapshot.as_ref()?.router.route(self.route?))
    }

    /// The target the request goes to: the chosen canary's, else main.
    pub fn target(&self) -> Option<&Target> {
        Some(self.route()?.target(self.plan.and_then(|p| p.canary)))
    }

    /// The endpoint the latest try went to.
    pub fn last_attempt(&self) -> Option<Attempt<'_>> {
        self.snapshot
            .as_ref()?
            .router
            .attempt(self.attempts.last()?)
    }

    /// Reports how the latest try ended (see [`Attempts::report`]).
    fn report(&mut self, result: TryResult) {
        if let Some(snapshot) = &self.snapshot {
            self.attempts.report(&snapshot.router, result);
        }
    }

    /// Records a failure of the last endpoint (for outlier detection, and
    /// so that a retry goes elsewhere); `timed_out` when it did not answer
    /// in time.
    fn record_failure(&mut self, timed_out: bool) {
        self.report(TryResult::Failed { timed_out });
    }

    /// Keeps later tries away from the latest try's endpoint; whether one
    /// not tried yet is left in its pool.
    fn avoid_last_endpoint(&mut self) -> bool {
        match &self.snapshot {
            Some(snapshot) => self.attempts.avoid_last(&snapshot.router),
            None => false,
        }
    }

    /// Takes a retry from the pool's budget, if one is left, and counts it.
    fn take_retry(&mut self) -> bool {
        let Some(snapshot) = &self.snapshot else {
            return false;
        };
        let allowed = match self.next_upstream {
            None => self.attempts.take_retry(&snapshot.router),
            Some(rule) if rule.timeout.is_some_and(|t| self.started.elapsed() >= t) => false,
            Some(rule) => match rule.max_retries {
                Some(max) => self.attempts.take_retry_up_to(max),
                None => self.attempts.take_retry(&snapshot.router),
            },
        };
        if allowed {
            self.in_flight.0.retries.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }
}

impl<P: EndpointPicker> Gateway<P> {
    /// Runs one step of the module chains, after the built-in modules:
    /// the gateway's chain, then the matched route's (if it has one),
    /// stopping at the first answer. Every step goes through here, so the
    /// order is defined once.
    fn run_chains(
        &self,
        ctx: &mut RequestCtx,
        mut step: impl FnMut(&ModuleChain, &mut RequestCtx) -> Result<Flow>,
    ) -> Result<Flow> {
        if let Flow::Answer(answer) = step(&self.modules, ctx)? {
            return Ok(Flow::Answer(answer));
        }
        // Taken out for the step (modules get the context mutably) and put
        // back: no reference count is touched.
        let Some(chain) = ctx.route_modules.take() else {
            return Ok(Flow::Continue);
        };
        let flow = step(&chain, ctx);
        ctx.route_modules = Some(chain);
        flow
    }

    /// Whether a next try of the request would find an endpoint (the
    /// router's rules, this request's failed endpoints, health), so that
    /// dropping an answer to retry cannot end in the gateway's own error.
    fn has_endpoint_left(&self, session: &Session, ctx: &RequestCtx) -> bool {
        let (Some(snapshot), Some(plan)) = (ctx.snapshot.as_deref(), ctx.plan) else {
            return false;
        };
        snapshot
            .router
            .target(plan)
            .pick(
                &WeightedRoundRobin,
                ctx.attempts.failed(),
                session.req_header(),
                || self.dice.roll(),
            )
            .is_some()
    }

    /// Runs the `ACCESS` step: the gateway's chain, then the route's.
    async fn run_access(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        if let Flow::Answer(answer) = self.modules.access(session, ctx).await? {
            return Ok(Flow::Answer(answer));
        }
        let Some(chain) = ctx.route_modules.take() else {
            return Ok(Flow::Continue);
        };
        let flow = chain.access(session, ctx).await;
        ctx.route_modules = Some(chain);
        flow
    }

    /// Writes a module's answer and ends the request.
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        answer: crate::modules::Answer,
    ) -> Result<bool> {
        ctx.own_status = Some(answer.status);
        responses::send_answer(session, &answer, ctx.grpc).await?;
        Ok(true)
    }
}

#[async_trait]
impl<P: EndpointPicker> ProxyHttp for Gateway<P> {
    type CTX = RequestCtx;

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // Pingora refuses two modules of one type (it panics when the first
        // request builds their contexts): keep the first of each type.
        let mut types = Vec::new();
        let extra = std::mem::take(
            &mut *self
                .http_modules
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for module in extra {
            let type_id = module.init().as_any().type_id();
            if types.contains(&type_id) {
                log::warn!("a second Pingora HTTP module of the same type is ignored");
                continue;
            }
            types.push(type_id);
            modules.add_module(module);
        }
        // Pingora's default: response compression, off, unless the embedder
        // brought a compression module of their own.
        let compression = ResponseCompressionBuilder::enable(0);
        if !types.contains(&compression.init().as_any().type_id()) {
            modules.add_module(compression);
        }
    }

    fn new_ctx(&self) -> RequestCtx {
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        RequestCtx {
            snapshot: None,
            route: None,
            plan: None,
            attempts: Attempts::new(),
            response_started: false,
            started: Instant::now(),
            upstream_started: None,
            upstream_connect: None,
            upstream_response: None,
            request_id: None,
            origin: Origin::default(),
            grpc: false,
            own_status: None,
            client_stalled: false,
            permit: None,
            cluster_flight: None,
            overflowed: false,
            body_bytes: 0,
            max_body_size: self.body_limits.max_size,
            next_upstream: None,
            compress: None,
            balance: None,
            status_retry: false,
            body_too_large: false,
            extensions: http::Extensions::new(),
            route_modules: None,
            in_flight: InFlight(Arc::clone(&self.stats)),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        client_guard::head_read();
        let snapshot = self.snapshot.load_full();
        // The longest wait for each piece of a request body (a stalled
        // body is answered with 408).
        session.set_read_timeout(Some(self.body_limits.timeout));
        // A connection the client keeps alive idles at most this long
        // (Pingora's default is 60 s), and pipelined requests are answered
        // in order instead of being dropped.
        if self.stats.draining.load(Ordering::Relaxed) {
            // Shutting down: this response carries `Connection: close`, so
            // the client's next request goes to another replica.
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            session.set_keepalive((self.keepalive_secs > 0).then_some(self.keepalive_secs));
        }
        if let pingora_core::protocols::http::ServerSession::H1(h1) = session.as_downstream_mut() {
            h1.set_pipelining_enabled(true);
        }
        ctx.origin = edge::judge(session, &snapshot.edge);
        if snapshot.edge.request_id {
            ctx.request_id = Some(request_id::assign(
                session.req_header_mut(),
                ctx.origin.peer_trusted,
            ));
        }
        ctx.grpc = responses::is_grpc(session.req_header());
        ctx.snapshot = Some(snapshot);
        let refusal = match request_checks::content_length(session.req_header()) {
            Err(refusal) => Some(refusal),
            Ok(request_checks::ContentLength::Normalise(n)) => {
                // One value, so no upstream can frame the body differently.
                session
                    .req_header_mut()
                    .insert_header(http::header::CONTENT_LENGTH, n)?;
                None
            }
            Ok(request_checks::ContentLength::Keep) => None,
        };
        let refusal = refusal.or_else(|| request_checks::refusal(session.req_header()));
        if let Some((status, why)) = refusal {
            log::debug!(
                "refused {} {}: {why}",
                session.req_header().method,
                session.req_header().uri
            );
            ctx.own_status = Some(status);
            // What sent it cannot be trusted to frame the next request.
            session.set_keepalive(None);
            Box::pin(responses::send(session, status, ctx.grpc)).await?;
            return Ok(true);
        }
        let flow = self.run_chains(ctx, |chain, ctx| chain.before_match(session, ctx))?;
        if let Flow::Answer(answer) = flow {
            return Box::pin(self.answer(session, ctx, answer)).await;
        }
        let Some(snapshot) = ctx.snapshot.as_deref() else {
            return Err(Error::explain(ErrorType::InternalError, "no snapshot"));
        };
        let req = session.req_header();
        let route = match snapshot.edge.path_normalization.apply(req.uri.path()) {
            Ok(path) => snapshot.router.lookup(request_host(req), &path),
            Err(e) => {
                log::debug!("refused {} {}: {e}", req.method, req.uri);
                ctx.own_status = Some(400);
                session.set_keepalive(None);
                Box::pin(responses::send(session, 400, ctx.grpc)).await?;
                return Ok(true);
            }
        };
        let Some(route) = route else {
            self.stats.not_found.fetch_add(1, Ordering::Relaxed);
            ctx.own_status = Some(404);
            Box::pin(responses::send(session, 404, ctx.grpc)).await?;
            return Ok(true);
        };
        ctx.route = Some(route);
        ctx.route_modules = snapshot
            .router
            .route(route)
            .extensions
            .get::<Arc<ModuleChain>>()
            .cloned();
        let mut flow = self.builtins.after_match(session, ctx)?;
        if let Flow::Continue = flow {
            flow = self.run_chains(ctx, |chain, ctx| chain.after_match(session, ctx))?;
        }
        if let Flow::Continue = flow {
            let route_access = ctx.route_modules.as_ref().is_some_and(|c| c.has_access());
            if self.modules.has_access() || route_access {
                flow = Box::pin(self.run_access(session, ctx)).await?;
            }
        }
        if let Flow::Answer(answer) = flow {
            return Box::pin(self.answer(session, ctx, answer)).await;
        }
        // The body limit is the route's (its modules may have set one):
        // a declared length above it is refused before any byte is read.
        if let Some(limit) = ctx.max_body_size {
            let declared = request_checks::declared_length(session.req_header());
            if declared.is_some_and(|length| length > limit) {
                log::debug!(
                    "refused {} {}: the request body is larger than allowed",
                    session.req_header().method,
                    session.req_header().uri
                );
                ctx.own_status = Some(413);
                session.set_keepalive(None);
                Box::pin(responses::send(session, 413, ctx.grpc)).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (Some(snapshot), Some(route)) = (ctx.snapshot.as_ref(), ctx.route) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no route selected",
            ));
        };
        let router = &snapshot.router;
        // Main or canary is decided once per request, on the first try.
        let plan = *ctx
            .plan
            .get_or_insert_with(|| router.plan(route, session.req_header(), || self.dice.roll()));
        let target = router.target(plan);
        if ctx.balance.is_none()
            && target
                .service_pools()
                .next()
                .is_some_and(|p| p.policy().least_request)
        {
            // The Service balances by least request; the route did not
            // ask for another way.
            ctx.balance = Some(Balance::LeastRequest);
        }
        // A previous try's place (if any) is given back before the next,
        // and a retry sends the body again from its start.
        ctx.permit = None;
        ctx.cluster_flight = None;
        ctx.body_bytes = 0;
        // Endpoints found full on this try, with those earlier tries failed
        // on (built only when one is full).
        let mut avoid: Vec<std::net::SocketAddr> = Vec::new();
        let mut last_full: Option<(std::time::Duration, Arc<fleetgate_pool::EndpointState>)> = None;
        let mut queued_until: Option<Instant> = None;
        let attempt = loop {
            let excluded = if avoid.is_empty() {
                ctx.attempts.failed()
            } else {
                &avoid
            };
            let request = session.req_header();
            let roll = || self.dice.roll();
            let picked = match ctx.balance {
                None => target.pick(&self.picker, excluded, request, roll),
                Some(Balance::Hash(key)) => {
                    target.pick(&Rendezvous { key }, excluded, request, roll)
                }
                Some(Balance::Sticky(wanted)) => {
                    let sticky = Sticky {
                        wanted,
                        fallback: WeightedRoundRobin,
                    };
                    target.pick(&sticky, excluded, request, roll)
                }
                Some(Balance::LeastRequest) => {
                    let least = LeastRequest {
                        roll: self.dice.roll(),
                    };
                    target.pick(&least, excluded, request, roll)
                }
            };
            let attempt = match picked {
                Some(a) => a,
                None if last_full.is_some() => {
                    // Every endpoint left is full: wait for a place, up to
                    // queue_timeout, then look at all of them again.
                    let Some((queue_timeout, state)) = last_full.take() else {
                        continue;
                    };
                    let until = *queued_until.get_or_insert_with(|| Instant::now() + queue_timeout);
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                        ctx.overflowed = true;
                        return Err(Error::explain(
                            ErrorType::HTTPStatus(503),
                            "every endpoint has max_requests_per_endpoint requests in flight",
                        ));
                    }
                    // Waiters are not served in order: each looks again at
                    // least every 20 ms, or when a place on this endpoint
                    // is given back.
                    let _ = Box::pin(tokio::time::timeout(
                        left.min(std::time::Duration::from_millis(20)),
                        state.released(),
                    ))
                    .await;
                    avoid.clear();
                    continue;
                }
                None if !ctx.attempts.failed().is_empty()
                    && ctx.attempts.last_failure_timed_out() =>
                {
                    return Err(Error::explain(
                        ErrorType::HTTPStatus(504),
                        "every endpoint tried failed; the last one did not answer in time",
                    ))
                }
                None if !ctx.attempts.failed().is_empty() => {
                    return Err(Error::explain(
                        ErrorType::HTTPStatus(502),
                        "every endpoint tried failed",
                    ))
                }
                None => return Err(no_endpoint()),
            };
            let pool = attempt.pool();
            let cap = pool.policy().max_requests_per_endpoint;
            if cap == 0 {
                if ctx.balance == Some(Balance::LeastRequest) {
                    // Counted, so that least-request picks see it.
                    ctx.permit = pool.try_acquire(attempt.index(), u32::MAX);
                }
                break attempt;
            }
            if let Some(permit) = pool.try_acquire(attempt.index(), cap) {
                ctx.permit = Some(permit);
                break attempt;
            }
            // This endpoint is full; another may have room.
            if avoid.is_empty() {
                avoid.extend_from_slice(ctx.attempts.failed());
            }
            avoid.push(attempt.endpoint().address);
            last_full = Some((
                pool.policy().queue_timeout,
                Arc::clone(pool.state(attempt.index())),
            ));
        };
        ctx.cluster_flight = Some(attempt.pool().cluster(attempt.index()).enter());
        let mut peer = attempt.peer();
        let sni_from_request = attempt.pool().options().protocol.sni_from_request();
        let websocket_idle = attempt.pool().policy().websocket_idle_timeout;
        ctx.attempts.start(&attempt);
        ctx.upstream_started = Some(Instant::now());
        ctx.upstream_connect = None;
        ctx.upstream_response = None;
        if sni_from_request {
            let mut buf = [0u8; 256];
            let host = fleetgate_ingress::normalize_request_host(
                request_host(session.req_header()),
                &mut buf,
            );
            if host.is_empty() {
                // Without a name there is nothing to verify the upstream
                // against (and Pingora would skip verification).
                return Err(Error::explain(
                    ErrorType::HTTPStatus(502),
                    "a TLS upstream needs a server name: the request has no host and [service.tls] sni is not set",
                ));
            }
            peer.sni = host.to_string();
        }
        // The route's modules may change the peer's options (timeouts);
        // an upgrade's idle limit below still applies.
        self.run_chains(ctx, |chain, ctx| {
            chain.upstream_peer(session, &mut peer, ctx)?;
            Ok(Flow::Continue)
        })?;
        if is_websocket_upgrade(session) {
            // An upgraded connection (WebSocket) may stay silent far longer
            // than a response may take; it gets its own idle limit, on both
            // sides.
            peer.options.read_timeout = Some(websocket_idle);
            peer.options.write_timeout = Some(websocket_idle);
            session.set_read_timeout(Some(websocket_idle));
        }
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let timed_out = matches!(e.etype(), ErrorType::ConnectTimedout);
        ctx.record_failure(timed_out);
        // A route's own rule may not retry this kind of failure.
        let covered =
            ctx.next_upstream
                .is_none_or(|r| if timed_out { r.on_timeout } else { r.on_error });
        let retry = covered && ctx.take_retry();
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
        if std::mem::take(&mut ctx.status_retry) {
            // The try ended on a status the route retries on; the retry
            // was taken when it was seen.
            e.set_retry(true);
            return e;
        }
        if ctx.body_too_large || e.esource() == &ErrorSource::Downstream {
            // The client's fault (a body too large, too slow, or cut off):
            // nothing against the endpoint, and no retry.
            e.set_retry(false);
            return e;
        }
        let timed_out = matches!(
            e.etype(),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout | ErrorType::ConnectTimedout
        );
        // An upstream that waits for a request body the client does not send
        // times out through no fault of its own: a stalled client must not
        // get a healthy endpoint ejected (nor be retried elsewhere).
        if !ctx.response_started
            && timed_out
            && e.esource() == &ErrorSource::Upstream
            && !session.as_downstream_mut().is_body_done()
        {
            ctx.client_stalled = true;
            e.set_retry(false);
            return e;
        }
        // A stale pooled connection (closed by the endpoint while idle:
        // Pingora marks those errors `ReusedOnly`) is not the endpoint's
        // fault. A timeout or a bad response on a reused connection is.
        let stale_reuse = client_reused
            && !ctx.response_started
            && matches!(e.retry, pingora_core::RetryType::ReusedOnly);
        let idempotent = retryable_request(session, ctx);
        let covered = ctx.next_upstream.is_none_or(|r| {
            if timed_out {
                r.on_timeout
            } else if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                r.on_invalid_header
            } else {
                r.on_error
            }
        });
        if ctx.response_started || !idempotent {
            if !ctx.response_started && e.esource() == &ErrorSource::Upstream {
                ctx.record_failure(timed_out);
            }
            e.set_retry(false);
            return e;
        }
        if stale_reuse {
            // Even a route that retries nothing gets a fresh connection
            // (as nginx retries a failed cached connection).
            e.retry.decide_reuse(client_reused);
            return e;
        }
        // An idempotent request that failed before any response byte (reset,
        // timeout): try another endpoint, if the route's rule covers it.
        ctx.record_failure(timed_out);
        if !covered {
            e.set_retry(false);
            return e;
        }
        let retry = ctx.take_retry();
        e.set_retry(retry);
        e
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // An upgraded connection (WebSocket) carries a stream, not a body.
        if session.was_upgraded() {
            return Ok(());
        }
        if let (Some(limit), Some(chunk)) = (ctx.max_body_size, body.as_ref()) {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > limit {
                ctx.body_too_large = true;
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "the request body is larger than client_max_body_size",
                ));
            }
        }
        // Modules see only what is accepted.
        self.run_chains(ctx, |chain, ctx| {
            chain.request_body(session, body.as_ref(), end_of_stream, ctx)?;
            Ok(Flow::Continue)
        })?;
        Ok(())
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora_core::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.upstream_connect = ctx.upstream_started.map(|t| t.elapsed());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.response_started = true;
        ctx.upstream_response = ctx.upstream_started.map(|t| t.elapsed());
        let status = upstream_response.status.as_u16();
        ctx.report(TryResult::Answered(status));
        if ctx
            .next_upstream
            .is_some_and(|r| r.statuses.contains(status))
            && retryable_request(session, ctx)
            && (ctx.attempts.retries() as usize) < STATUS_RETRY_LIMIT
            && ctx.avoid_last_endpoint()
            && self.has_endpoint_left(session, ctx)
            && ctx.take_retry()
        {
            // Nothing went to the client yet: end this try with an error
            // that Pingora retries on the next endpoint.
            ctx.response_started = false;
            ctx.status_retry = true;
            return Err(Error::explain(
                ErrorType::HTTPStatus(status),
                "the route retries on this status (proxy-next-upstream)",
            ));
        }
        self.builtins
            .upstream_response(session, upstream_response, ctx)?;
        self.run_chains(ctx, |chain, ctx| {
            chain.upstream_response(session, upstream_response, ctx)?;
            Ok(Flow::Continue)
        })?;
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // An absolute-form target (`GET http://host/x`, checked to be http
        // or https) goes upstream in origin-form, as RFC 9112 asks of a
        // request to an origin server; Pingora would copy it verbatim.
        if upstream_request.raw_path().first() != Some(&b'/') {
            let origin_form = upstream_request
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
            upstream_request.set_raw_path(origin_form.as_bytes())?;
        }
        self.builtins
            .upstream_request(session, upstream_request, ctx)?;
        self.run_chains(ctx, |chain, ctx| {
            chain.upstream_request(session, upstream_request, ctx)?;
            Ok(Flow::Continue)
        })?;
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.builtins.response(session, upstream_response, ctx)?;
        self.run_chains(ctx, |chain, ctx| {
            chain.response(session, upstream_response, ctx)?;
            Ok(Flow::Continue)
        })?;
        if let Some(snapshot) = ctx.snapshot.as_deref() {
            snapshot
                .edge
                .compression
                .apply(session, upstream_response, ctx.compress);
        }
        responses::close_if_body_unread(session);
        // Pingora turns a response without a length into a chunked one so
        // that the connection can stay; an HTTP/1.0 client cannot read
        // chunks, so it gets the body delimited by the connection's close.
        if session.req_header().version == http::Version::HTTP_10
            && upstream_response
                .headers
                .contains_key(http::header::TRANSFER_ENCODING)
        {
            upstream_response.remove_header(&http::header::TRANSFER_ENCODING);
            session.set_keepalive(None);
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        // The endpoint's place is free once the response is out.
        ctx.permit = None;
        ctx.cluster_flight = None;
        client_guard::request_done(session.as_downstream_mut().is_body_done());
        let status = ctx
            .own_status
            .unwrap_or_else(|| session.response_written().map_or(0, |r| r.status.as_u16()));
        self.builtins.logging(session, ctx, status);
        // Logging cannot fail.
        let _ = self.run_chains(ctx, |chain, ctx| {
            chain.logging(session, ctx, status);
            Ok(Flow::Continue)
        });
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            _ if ctx.client_stalled => 408,
            _ if ctx.body_too_large => 413,
            ErrorType::ReadTimedout if e.esource() == &ErrorSource::Downstream => 408,
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
        if code >= 500 {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        if session.response_written().is_some() {
            // The response (or an upgraded stream) has begun: any byte of
            // ours would be read as part of it. The connection is dropped
            // instead (HTTP/1.1: closed before the body's end; HTTP/2: the
            // stream is reset), so the client sees a truncation, never a
            // complete-looking response.
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "response to {} {} cut short after it started: {e}",
                session.req_header().method,
                session.req_header().uri
            );
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }
        // Pingora closes the client connection after a failed proxy attempt
        // (it does not reuse it whatever this returns): the answer says
        // `Connection: close`, so a client never sends its next request
        // into a connection that is going away.
        session.set_keepalive(None);
        if code > 0 {
            ctx.own_status = Some(code);
            let sent = if ctx.overflowed {
                responses::send_overflow(session, ctx.grpc).await
            } else {
                responses::send(session, code, ctx.grpc).await
            };
            if let Err(write_err) = sent {
                log::debug!("could not send {code} to the client: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}
