//! Modules: steps of the request path that can be added, removed and
//! configured per route without touching the gateway.
//!
//! A [`GatewayModule`] acts at one or more [`Steps`]:
//!
//! | step | when | the module sees | it can |
//! |---|---|---|---|
//! | `BEFORE_MATCH` | the head passed the gateway's checks; the path is not yet normalised | the request head | rewrite it; answer |
//! | `AFTER_MATCH` | a route matched | the request, [`RequestCtx::route`] | answer (deny, redirect) |
//! | `ACCESS` | after `AFTER_MATCH`, asynchronous | the request, the route | wait on I/O (an authentication service), then answer or go on |
//! | `REQUEST_BODY` | a piece of the request body goes upstream | the piece, whether it is the last | read it (e.g. to copy it) |
//! | `UPSTREAM_PEER` | an endpoint was chosen for a try | the peer (address, timeouts, TLS options) | change its options |
//! | `UPSTREAM_REQUEST` | a try is about to be sent | the upstream request head | add, change, remove headers |
//! | `UPSTREAM_RESPONSE` | an endpoint answered | the endpoint's response head | read or change it |
//! | `RESPONSE` | a proxied response is about to go to the client | the response head | add, change, remove headers |
//! | `LOGGING` | the request is over | the status sent | observe |
//!
//! Hooks are synchronous except `ACCESS`: a module decides, the gateway
//! does the I/O. A module that must ask another service before it can
//! decide (external authentication, [`ForwardAuth`]) acts at `ACCESS`,
//! whose hook returns a future; routes without such a module never build
//! one. To answer a request, a module returns [`Flow::Answer`] and the gateway
//! writes it (as a gRPC status for gRPC clients, for errors), logs it and
//! counts it.
//!
//! A [`ModuleChain`] runs its modules in the order they were added, each
//! only at the steps it declared. The gateway runs its own chain (the
//! built-in modules, then the embedder's), then the matched route's chain,
//! if the route carries one (see [`route_modules`]). fleetgate's own edge
//! behaviour is written as built-in modules: [`HttpsRedirect`],
//! [`ForwardedHeadersModule`] and [`ServerHeader`]; metrics and the
//! access log observe requests the same way ([`MetricsObserver`],
//! [`AccessLogObserver`]). Per-route policies from Ingress annotations are
//! modules on the route's chain ([`SourceRangeFilter`], [`RateLimit`],
//! [`Cors`], [`BasicAuth`], [`ForwardAuth`], [`Redirect`], [`AppRoot`],
//! [`HeaderRewrite`], [`UpstreamPathRewrite`], [`RouteTimeouts`],
//! [`BodySizeLimit`]).

mod affinity;
mod basic_auth;
mod builtin;
mod chain;
mod cors;
mod forward_auth;
mod headers;
mod mirror;
mod observers;
mod rate_limit;
mod redirects;
mod rewrite;
mod source_ranges;
mod upstream;

pub use affinity::{Balance, CookieAffinity, CookieSettings, HashBy, LeastRequestBalance};
pub use basic_auth::BasicAuth;
pub use builtin::{ForwardedHeadersModule, HttpsRedirect, ServerHeader};
pub use chain::{route_modules, ModuleChain};
pub use cors::{Cors, CorsSettings};
pub use forward_auth::{ForwardAuth, ForwardAuthSettings};
pub use headers::{HeaderChange, HeaderRewrite};
pub use mirror::{Mirror, MirrorCounts, MirrorTarget};
pub use observers::{AccessLogObserver, MetricsObserver};
pub use rate_limit::{RateLimit, RateLimitSettings};
pub use redirects::{AppRoot, Redirect};
pub use rewrite::UpstreamPathRewrite;
pub use source_ranges::SourceRangeFilter;
pub use upstream::{BodySizeLimit, CompressionChoice, NextUpstream, RouteTimeouts, StatusSet};

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use crate::gateway::RequestCtx;

/// The steps of the request path a module acts at (a set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Steps(u16);

impl Steps {
    /// No step.
    pub const NONE: Steps = Steps(0);
    /// Before the route is matched.
    pub const BEFORE_MATCH: Steps = Steps(1);
    /// After a route matched.
    pub const AFTER_MATCH: Steps = Steps(1 << 1);
    /// After `AFTER_MATCH`, asynchronously (see [`GatewayModule::access`]).
    pub const ACCESS: Steps = Steps(1 << 7);
    /// Each piece of the request body, as it goes upstream.
    pub const REQUEST_BODY: Steps = Steps(1 << 8);
    /// Before a try's request goes upstream.
    pub const UPSTREAM_REQUEST: Steps = Steps(1 << 2);
    /// When an endpoint was chosen for a try.
    pub const UPSTREAM_PEER: Steps = Steps(1 << 6);
    /// When an endpoint's response head arrives.
    pub const UPSTREAM_RESPONSE: Steps = Steps(1 << 3);
    /// Before a proxied response head goes to the client.
    pub const RESPONSE: Steps = Steps(1 << 4);
    /// After the request.
    pub const LOGGING: Steps = Steps(1 << 5);

    /// Every step in `self` and in `other`.
    pub const fn with(self, other: Steps) -> Steps {
        Steps(self.0 | other.0)
    }

    /// Whether every step of `other` is in `self`.
    pub const fn contains(self, other: Steps) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Steps {
    type Output = Steps;

    fn bitor(self, other: Steps) -> Steps {
        self.with(other)
    }
}

/// What the request path does after a module's step.
#[derive(Debug)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Answer the client with this, and stop.
    Answer(Answer),
}

/// A response the gateway writes on a module's behalf.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Headers besides `Server`, `Content-Type`, `Content-Length` and
    /// `Cache-Control`, which the gateway sets.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A plain-text body; `None` for the gateway's own text for the status.
    pub body: Option<Bytes>,
}

impl Answer {
    /// An answer with `status` and the gateway's text for it.
    pub fn new(status: u16) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the plain-text body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// A step of the request path, pluggable (see the module docs). Every hook
/// has a default that does nothing; [`GatewayModule::steps`] says which
/// ones the chain calls.
pub trait GatewayModule: Send + Sync + 'static {
    /// A short name, for logs and listings.
    fn name(&self) -> &str;

    /// The steps this module acts at.
    fn steps(&self) -> Steps;

    /// Before the route is matched: may rewrite the head (the path is
    /// normalised and matched after) or answer.
    fn before_match(&self, _session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        Ok(Flow::Continue)
    }

    /// After a route matched ([`RequestCtx::route`]): may answer.
    fn after_match(&self, _session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        Ok(Flow::Continue)
    }

    /// After every module's `after_match` let the request go on, for a
    /// decision that waits on I/O (asking an authentication service). The
    /// future runs on the request's task; only modules that declare
    /// [`Steps::ACCESS`] are called.
    fn access<'a>(
        &'a self,
        _session: &'a mut Session,
        _ctx: &'a mut RequestCtx,
    ) -> Pin<Box<dyn Future<Output = Result<Flow>> + Send + 'a>> {
        Box::pin(std::future::ready(Ok(Flow::Continue)))
    }

    /// When an endpoint was chosen for a try (every try): may change the
    /// peer's options (timeouts, TLS settings); the address is the
    /// router's.
    fn upstream_peer(
        &self,
        _session: &Session,
        _peer: &mut HttpPeer,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// A piece of the request body (`None` at the end without a piece);
    /// `end`: the last one. A retry sends the body again, so a module that
    /// keeps the pieces must take them once.
    fn request_body(
        &self,
        _session: &Session,
        _body: Option<&Bytes>,
        _end: bool,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// Before a try's request head goes upstream (every try).
    fn upstream_request(
        &self,
        _session: &Session,
        _request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// When an endpoint's response head arrives.
    fn upstream_response(
        &self,
        _session: &Session,
        _response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// Before a proxied response head goes to the client.
    fn response(
        &self,
        _session: &Session,
        _response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        Ok(())
    }

    /// After the request, with the status the client got (0: none).
    fn logging(&self, _session: &Session, _ctx: &RequestCtx, _status: u16) {}
}
