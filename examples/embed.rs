//! Embedding fleetgate's routing stages in your own Pingora proxy.
//!
//! This proxy does not use `fleetgate-proxy` at all: it builds a route table
//! with `fleetgate-ingress` and endpoint pools with `fleetgate-pool`, and
//! composes them in its own `ProxyHttp`. Run it with
//!
//! ```text
//! cargo run -p fleetgate-examples --example embed -- 127.0.0.1:6188 127.0.0.1:18001 127.0.0.1:18011
//! curl -H 'Host: shop.example.com' http://127.0.0.1:6188/cart
//! ```
//!
//! The first argument is where to listen; the others are backend addresses,
//! alternately in cluster `zone-a` and `zone-b`.

use std::sync::Arc;

use async_trait::async_trait;
use fleetgate_ingress::{HostPattern, PathType, RouteTable, RouteTableBuilder};
use fleetgate_pool::{Endpoint, EndpointPool, PoolOptions};
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_proxy::{ProxyHttp, Session};

/// A proxy with one route table and the pools its targets index.
struct EmbeddedRouter {
    table: RouteTable<usize>,
    pools: Vec<EndpointPool>,
}

#[async_trait]
impl ProxyHttp for EmbeddedRouter {
    /// The index of the matched pool.
    type CTX = Option<usize>;

    fn new_ctx(&self) -> Self::CTX {
        None
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let req = session.req_header();
        let host = req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        // Stage 1: Ingress matching.
        *ctx = self.table.lookup(host, req.uri.path()).map(|m| *m.target);
        if ctx.is_none() {
            session.respond_error(404).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let pool = ctx
            .and_then(|i| self.pools.get(i))
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route"))?;
        // Stage 2 and 3: pick an endpoint, get its peer.
        let picked = pool
            .select()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(503), "no healthy endpoint"))?;
        Ok(pool.peer(picked))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6188".to_string());
    let backends: Vec<String> = args.collect();

    let endpoints = backends
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.parse() {
            Ok(addr) => Some(Arc::new(Endpoint::new(
                addr,
                if i % 2 == 0 { "zone-a" } else { "zone-b" },
            ))),
            Err(e) => {
                eprintln!("skipping backend {a}: {e}");
                None
            }
        })
        .collect();
    let pools = vec![EndpointPool::new("shop", endpoints, PoolOptions::default())];

    let mut builder = RouteTableBuilder::new();
    let host = HostPattern::parse("shop.example.com").expect("valid host");
    if builder.add_path(&host, "/", PathType::Prefix, 0).is_err() {
        unreachable!("first route cannot be a duplicate");
    }
    let router = EmbeddedRouter {
        table: builder.build(),
        pools,
    };

    let mut server = Server::new(None).expect("pingora server");
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, router);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
