//! Embedding fleetgate's whole router in a plain Pingora proxy, built in
//! code: no TOML, no YAML, no `fleetgate-proxy`.
//!
//! The proxy below uses all four stages of [`fleetgate_router::Router`]:
//! **match** (`lookup`: host and path), **plan** (`plan`: main or a
//! canary, here the header canary `x-canary: always`), **pick**
//! (`next_peer`, for the first try and every retry: never an endpoint that
//! already failed, out of a cluster that looks down) and **report**
//! (`Attempts::report`: refused connections and response statuses go to
//! outlier detection; a full proxy also reports resets and timeouts from
//! `error_while_proxy`, as `fleetgate-proxy` does). Run it with
//!
//! ```text
//! cargo run -p fleetgate-examples --example embed -- 127.0.0.1:6188 127.0.0.1:18001 127.0.0.1:18011 127.0.0.1:18021
//! curl -H 'Host: shop.example.com' http://127.0.0.1:6188/cart
//! curl -H 'Host: shop.example.com' -H 'x-canary: always' http://127.0.0.1:6188/cart
//! ```
//!
//! Arguments: where to listen, then backend addresses. The last backend is
//! the canary; the others serve the main Service, alternately in cluster
//! `zone-a` and `zone-b`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use fleetgate_canary::{parse_canary, Dice};
use fleetgate_ingress::{HostPattern, PathType};
use fleetgate_pool::{Endpoint, HealthChecks};
use fleetgate_router::{
    request_host, Attempts, Plan, PoolSpec, Route, Router, RouterBuilder, Target, TryResult,
};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};

/// A proxy around one router.
struct EmbeddedRouter {
    router: Router,
    dice: Dice,
}

/// What a request carries between callbacks.
#[derive(Default)]
struct Ctx {
    plan: Option<Plan>,
    attempts: Attempts,
}

#[async_trait]
impl ProxyHttp for EmbeddedRouter {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        // Stage 1, match: the Host header (or the URI's authority) and path.
        let Some(route) = self.router.lookup(request_host(req), req.uri.path()) else {
            session.respond_error(404).await?;
            return Ok(true);
        };
        // Stage 2, plan: main or canary, decided once for every try.
        ctx.plan = Some(self.router.plan(route, req, || self.dice.roll()));
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let plan = ctx
            .plan
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no plan"))?;
        // Stage 3, pick: an endpoint for this try.
        let attempt = self
            .router
            .next_peer(plan, &ctx.attempts, session.req_header(), || {
                self.dice.roll()
            })
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(503), "no endpoint left"))?;
        let peer = attempt.peer();
        ctx.attempts.start(&attempt);
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Stage 4, report: a refused connection counts against the
        // endpoint, and the next try goes elsewhere within the budget.
        ctx.attempts
            .report(&self.router, TryResult::Failed { timed_out: false });
        if ctx.attempts.take_retry(&self.router) {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.attempts
            .report(&self.router, TryResult::Answered(response.status.as_u16()));
        Ok(())
    }
}

/// The router: `shop.example.com/` to the main backends, with a header
/// canary to the last one.
fn build_router(checks: &Arc<HealthChecks>, backends: &[std::net::SocketAddr]) -> Router {
    let (canary, main) = backends.split_last().expect("at least two backends");
    let main_endpoints = main
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let zone = if i % 2 == 0 { "zone-a" } else { "zone-b" };
            Arc::new(Endpoint::new(*addr, zone))
        })
        .collect();
    let mut builder = RouterBuilder::new(checks);
    let main_pool = builder.pool(PoolSpec::new("shop/web:80", main_endpoints));
    let canary_pool = builder.pool(PoolSpec::new(
        "shop/web-canary:80",
        vec![Arc::new(Endpoint::new(*canary, "zone-a"))],
    ));
    let host = HostPattern::parse("shop.example.com").expect("valid host");
    let route = Route::new(
        "shop/web",
        Target::whole("shop/web", "shop/web:80", main_pool),
    );
    let Ok(id) = builder.add_path(&host, "/", PathType::Prefix, route) else {
        unreachable!("the first route cannot be a duplicate");
    };
    let annotations = BTreeMap::from([
        (
            "nginx.ingress.kubernetes.io/canary".to_string(),
            "true".to_string(),
        ),
        (
            "nginx.ingress.kubernetes.io/canary-by-header".to_string(),
            "x-canary".to_string(),
        ),
    ]);
    let canary_annotations = parse_canary(&annotations)
        .expect("valid annotations")
        .expect("a canary");
    let canary_target = Target::whole("shop/web-canary", "shop/web-canary:80", canary_pool);
    builder
        .add_canary(id, "shop/web-canary", &canary_annotations, canary_target)
        .expect("the first canary of a route binds");
    builder.build()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6188".to_string());
    let backends: Vec<std::net::SocketAddr> = args
        .map(|a| a.parse().unwrap_or_else(|e| panic!("backend {a}: {e}")))
        .collect();
    assert!(
        backends.len() >= 2,
        "usage: embed LISTEN MAIN_BACKEND... CANARY_BACKEND"
    );
    let checks = HealthChecks::new();
    let proxy = EmbeddedRouter {
        router: build_router(&checks, &backends),
        dice: Dice::new(1),
    };

    let mut server = Server::new(None).expect("pingora server");
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, proxy);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
