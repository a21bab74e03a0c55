//! fleetgate's gateway with an endpoint picker of your own: session
//! affinity by rendezvous hashing on the `x-user` header, in place of
//! weighted round robin.
//!
//! The router still decides which endpoints a try may use (healthy, not
//! one that already failed this request, out of a failing cluster); the
//! picker only chooses among them. So a user sticks to one backend while
//! it lives, and moves to another, without a failed request, when it dies.
//!
//! ```text
//! cargo run -p fleetgate-examples --example custom_picker -- 127.0.0.1:6188 127.0.0.1:18001 127.0.0.1:18011 127.0.0.1:18021
//! curl -H 'Host: app.example.com' -H 'x-user: alice' http://127.0.0.1:6188/
//! ```

use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;
use fleetgate_ingress::{HostPattern, PathType};
use fleetgate_pool::{Endpoint, EndpointPool, HealthChecks};
use fleetgate_proxy::{Gateway, Snapshot};
use fleetgate_router::{Eligible, EndpointPicker, PoolSpec, Route, RouterBuilder, Target};
use pingora_core::server::Server;

/// Rendezvous (highest random weight) hashing: each eligible endpoint
/// scores hash(user, address); the highest wins. Removing an endpoint
/// moves only its own users. The hash has fixed keys, so replicas built
/// with the same toolchain send a user to the same place (a production
/// picker would pin its hash function and precompute each endpoint's
/// part).
struct UserAffinity;

impl UserAffinity {
    fn score(&self, user: &[u8], endpoint: &Endpoint) -> u64 {
        let mut h = DefaultHasher::new();
        h.write(user);
        h.write(endpoint.address.to_string().as_bytes());
        h.finish()
    }
}

impl EndpointPicker for UserAffinity {
    fn pick(
        &self,
        pool: &EndpointPool,
        eligible: &Eligible<'_>,
        request: &http::request::Parts,
    ) -> Option<usize> {
        let user = request
            .headers
            .get("x-user")
            .map_or(&b""[..], |v| v.as_bytes());
        (0..pool.endpoints().len())
            .filter(|&i| eligible.allows(pool, i))
            .max_by_key(|&i| self.score(user, pool.endpoint(i)))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6188".to_string());
    let endpoints = args
        .enumerate()
        .map(|(i, a)| {
            let addr = a.parse().unwrap_or_else(|e| panic!("backend {a}: {e}"));
            let zone = if i % 2 == 0 { "zone-a" } else { "zone-b" };
            Arc::new(Endpoint::new(addr, zone))
        })
        .collect();

    let checks = HealthChecks::new();
    let mut builder = RouterBuilder::new(&checks);
    let pool = builder.pool(PoolSpec::new("app/web:80", endpoints));
    let host = HostPattern::parse("app.example.com").expect("valid host");
    let route = Route::new("app/web", Target::whole("app/web", "app/web:80", pool));
    if builder
        .add_path(&host, "/", PathType::Prefix, route)
        .is_err()
    {
        unreachable!("the first route cannot be a duplicate");
    }
    let snapshot = Snapshot::new(1, builder.build(), Default::default());
    let gateway = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot))).with_picker(UserAffinity);

    let mut server = Server::new(None).expect("pingora server");
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, gateway);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
