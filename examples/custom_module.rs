//! fleetgate's gateway with modules of your own, added without touching
//! fleetgate's code.
//!
//! Two modules, built on [`fleetgate_proxy::GatewayModule`]:
//! - `ApiKey`, attached to one route only (`/private`): answers 401 unless
//!   the request carries `x-api-key` with the expected key;
//! - `Stamp`, on the whole gateway: adds `x-stamped-by` to every proxied
//!   response.
//!
//! It also hands Pingora's own response compression module to the gateway
//! (`Gateway::with_http_module`): clients that accept gzip get gzip.
//!
//! ```text
//! cargo run -p fleetgate-examples --example custom_module -- 127.0.0.1:6188 127.0.0.1:18001 s3cret
//! curl -H 'Host: api.example.com' http://127.0.0.1:6188/private            # 401
//! curl -H 'Host: api.example.com' -H 'x-api-key: s3cret' http://127.0.0.1:6188/private
//! curl -H 'Host: api.example.com' http://127.0.0.1:6188/public             # 200
//! ```

use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_ingress::{HostPattern, PathType};
use fleetgate_pool::{Endpoint, HealthChecks};
use fleetgate_proxy::modules::route_modules;
use fleetgate_proxy::{
    Answer, Flow, Gateway, GatewayModule, ModuleChain, RequestCtx, Snapshot, Steps,
};
use fleetgate_router::{PoolSpec, Route, RouterBuilder, Target};
use http::HeaderValue;
use pingora_core::modules::http::compression::ResponseCompressionBuilder;
use pingora_core::server::Server;
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Lets a request through only with the right `x-api-key`.
struct ApiKey {
    key: HeaderValue,
}

impl GatewayModule for ApiKey {
    fn name(&self) -> &str {
        "api-key"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        let given = session.req_header().headers.get("x-api-key");
        if given == Some(&self.key) {
            return Ok(Flow::Continue);
        }
        Ok(Flow::Answer(
            Answer::new(401)
                .with_header(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("ApiKey"),
                )
                .with_body("401 Unauthorized: send x-api-key\n"),
        ))
    }
}

/// Marks every proxied response.
struct Stamp;

impl GatewayModule for Stamp {
    fn name(&self) -> &str {
        "stamp"
    }

    fn steps(&self) -> Steps {
        Steps::RESPONSE
    }

    fn response(
        &self,
        _session: &Session,
        response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        response.insert_header("x-stamped-by", "custom_module")
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6188".to_string());
    let backend: std::net::SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18001".to_string())
        .parse()
        .expect("backend IP:PORT");
    let key = args.next().unwrap_or_else(|| "s3cret".to_string());

    let checks = HealthChecks::new();
    let mut builder = RouterBuilder::new(&checks);
    let pool = builder.pool(PoolSpec::new(
        "api/web:80",
        vec![Arc::new(Endpoint::new(backend, "zone-a"))],
    ));
    let host = HostPattern::parse("api.example.com").expect("valid host");
    let target = || Target::whole("api/web", "api/web:80", Arc::clone(&pool));
    let public = Route::new("api/web", target());
    let key = HeaderValue::try_from(key).expect("a header-safe key");
    let private = route_modules(
        Route::new("api/web", target()),
        ModuleChain::new().with(ApiKey { key }),
    );
    for (path, route) in [("/public", public), ("/private", private)] {
        if builder
            .add_path(&host, path, PathType::Prefix, route)
            .is_err()
        {
            unreachable!("distinct paths");
        }
    }
    let snapshot = Snapshot::new(1, builder.build(), Default::default());
    let gateway = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot)))
        .with_module(Stamp)
        .with_http_module(ResponseCompressionBuilder::enable(6));

    let mut server = Server::new(None).expect("pingora server");
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, gateway);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
