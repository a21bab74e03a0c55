//! The admin API: status, Ingresses, Services, routes, metrics, probes.
//!
//! Served by Pingora on its own listener. It binds a loopback address
//! unless `[admin] token` is set (checked at load), and with a token every
//! request must carry `Authorization: Bearer <token>` (see
//! [`crate::admin_auth`] for the checks), except the probes `/healthz` and
//! `/readyz`, which a load balancer calls without credentials. Everything is JSON
//! except `/metrics` (Prometheus text) and the probes.
//!
//! | path | answer |
//! |---|---|
//! | `GET /status` | state, generation, last reload, clusters with endpoints healthy/total |
//! | `GET /clusters` | each cluster's drain: `serving`, `draining` (requests in flight) or `drained` |
//! | `POST /clusters/<id>/drain`, `/undrain` | take a cluster out of rotation, or back |
//! | `GET /ingresses` | every Ingress: served or ignored and why, unbound canaries, status address |
//! | `GET /services` | every pool: endpoints with cluster, labels, health, ejections |
//! | `GET /routes` | the compiled route table with canaries |
//! | `GET /metrics` | Prometheus text |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 when Running or Listening and not shutting down (SIGTERM), else 503 |

use std::collections::BTreeMap;

use crate::admin_auth::{bearer_matches, from_another_site, host_is_local};
use crate::drains;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use fleetgate_config::Disposition;
use fleetgate_pool::EndpointPool;
use fleetgate_router::{Target, TargetPools};
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};
use serde_json::{json, Value};

use crate::state::{ConfigView, GatewayState, Phase};

/// The admin application.
pub struct AdminApp {
    state: Arc<GatewayState>,
}

impl AdminApp {
    /// An admin API over `state`, requiring its current `[admin] token`
    /// when one is set.
    pub fn new(state: Arc<GatewayState>) -> Self {
        AdminApp { state }
    }
}

pub(crate) fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", body.len())
        .header("Server", fleetgate_proxy::responses::SERVER)
        .header("Cache-Control", "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json_response(status: StatusCode, value: &Value) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", body)
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn pool_json(pool: &EndpointPool, config: &ConfigView) -> Value {
    let endpoints: Vec<Value> = pool
        .endpoints()
        .enumerate()
        .map(|(i, e)| {
            let state = pool.state(i);
            json!({
                "address": e.address.to_string(),
                "cluster": e.cluster,
                "zone": e.zone,
                "weight": e.weight,
                "condition": e.condition.as_str(),
                "source": config.clusters.iter().find(|c| c.id == e.cluster).map(|c| c.source.kind()),
                "labels": e.labels,
                "healthy": pool.is_healthy(e.address),
                "ejected": state.is_ejected(),
                "ejections": state.ejections(),
                "consecutive_failures": state.consecutive_failures(),
                "available": pool.is_available(i),
            })
        })
        .collect();
    let (available, total) = pool.availability();
    json!({ "name": pool.name(), "available": available, "total": total, "endpoints": endpoints })
}

fn target_json(t: &Target) -> Value {
    match &t.pools {
        TargetPools::Undeclared => {
            json!({ "service": &*t.service, "pools": [], "note": "service not declared" })
        }
        TargetPools::Whole(pool) => {
            json!({ "service": &*t.service, "pools": [pool.name()] })
        }
        TargetPools::Tiered(tiers) => json!({
            "service": &*t.service,
            "subset": &*tiers.selector,
            "pools": tiers.pools.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "tiers": tiers.names.iter().map(|n| &**n).collect::<Vec<_>>(),
            "tier_loads": tiers.loads().to_string(),
        }),
    }
}

impl AdminApp {
    /// `GET /clusters`, `GET /clusters/<id>`, `POST /clusters/<id>/drain`
    /// and `/undrain`; `rest` is the path after `/clusters`.
    fn clusters(&self, req: &pingora_http::RequestHeader, rest: &str) -> Response<Vec<u8>> {
        let read = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let mut parts = rest.trim_start_matches('/').splitn(2, '/');
        let id = parts.next().unwrap_or_default();
        let action = parts.next();
        match (id, action) {
            ("", None) if read => json_response(StatusCode::OK, &drains::clusters_json(&self.state)),
            (id, None) if read => {
                let known = self.state.config.load().clusters.iter().any(|c| c.id == id)
                    || self.state.checks.clusters().drained().iter().any(|c| c == id);
                if known {
                    json_response(StatusCode::OK, &drains::cluster_json(self.state.checks.clusters(), id))
                } else {
                    text(StatusCode::NOT_FOUND, &format!("404 Not Found: no cluster \"{id}\"\n"))
                }
            }
            (id, Some(action @ ("drain" | "undrain"))) if !id.is_empty() => {
                if req.method != http::Method::POST {
                    return text(
                        StatusCode::METHOD_NOT_ALLOWED,
                        &format!("405 Method Not Allowed: use POST /clusters/{id}/{action}\n"),
                    );
                }
                if from_another_site(req) {
                    return text(
                        StatusCode::FORBIDDEN,
                        "403 Forbidden: a web page of another site may not change the gateway (Origin or Sec-Fetch-Site says so)\n",
                    );
                }
                match drains::set_drained(&self.state, id, action == "drain") {
                    Ok(v) => json_response(StatusCode::OK, &v),
                    Err(e @ drains::DrainError::UnknownCluster(_)) => {
                        text(StatusCode::NOT_FOUND, &format!("404 Not Found: {e}\n"))
                    }
                    Err(e @ drains::DrainError::NotKept(_)) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("500 Internal Server Error: {e}\n"),
                    ),
                }
            }
            _ if read => text(
                StatusCode::NOT_FOUND,
                "404 Not Found: try /clusters, /clusters/<id>, POST /clusters/<id>/drain or /undrain\n",
            ),
            _ => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: POST only to /clusters/<id>/drain or /undrain\n",
            ),
        }
    }

    fn status(&self) -> Value {
        let config = self.state.config.load();
        let snapshot = self.state.snapshot.load();
        let phase = self.state.phase();
        let message = match &phase {
            Phase::Failed(m) => Some(m.clone()),
            _ => None,
        };
        // Endpoint health per cluster, counting each address once.
        let mut per_cluster: BTreeMap<&str, BTreeMap<std::net::SocketAddr, bool>> = BTreeMap::new();
        for pool in snapshot
            .router
            .pools()
            .iter()
            .filter(|p| config.service_keys.contains(p.name()))
        {
            for (i, e) in pool.endpoints().enumerate() {
                let up = pool.is_available(i);
                let entry = per_cluster.entry(e.cluster.as_str()).or_default();
                let v = entry.entry(e.address).or_insert(true);
                *v = *v && up;
            }
        }
        let live = self.state.discovery.status();
        let clusters: Vec<Value> = config
            .clusters
            .iter()
            .map(|c| {
                let eps = per_cluster.get(c.id.as_str());
                let total = eps.map_or(0, |m| m.len());
                let healthy = eps.map_or(0, |m| m.values().filter(|u| **u).count());
                let mut entry = json!({
                    "id": c.id, "name": c.name, "zone": c.zone,
                    "connected": true,
                    "source": c.source.kind(),
                    "endpoint_source": c.source.describe(),
                    "endpoints": { "healthy": healthy, "total": total },
                    "drain": drains::cluster_json(self.state.checks.clusters(), &c.id),
                });
                if let Some(s) = live.get(&c.id) {
                    entry["connected"] = json!(s.connected);
                    entry["synced"] = json!(s.synced);
                    entry["error"] = json!(s.error);
                    entry["updates"] = json!(s.updates);
                    entry["data_age_seconds"] = json!(s
                        .updated
                        .and_then(|t| t.elapsed().ok())
                        .map(|d| d.as_secs_f64()));
                }
                entry
            })
            .collect();
        let (ok, failed) = self.state.reload_counts();
        let stats = &self.state.stats;
        json!({
            "gateway": config.name,
            "state": phase.name(),
            "draining": stats.draining.load(Ordering::Relaxed),
            "message": message,
            "generation": self.state.generation(),
            "config": config.source.display().to_string(),
            "listeners": config.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "listeners_tls": config.listen_tls.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "certificates": certificates(&snapshot),
            "warnings": snapshot.report.warnings,
            "advertise": config.advertise,
            "last_reload": self.state.last_reload(),
            "last_upgrade": self.state.upgrader.last(),
            "recent_reloads": self.state.recent_reloads(),
            "reloads": { "ok": ok, "failed": failed },
            "endpoint_updates": self.state.discovery.applies(),
            "endpoint_patches": self.state.discovery.patches(),
            "ingresses": { "served": snapshot.report.served.len(), "ignored": snapshot.report.ignored.len() },
            "clusters": clusters,
            "hub": self.hub_status(),
            "requests": {
                "total": stats.requests.load(Ordering::Relaxed),
                "in_flight": stats.in_flight.load(Ordering::Relaxed),
                "retries": stats.retries.load(Ordering::Relaxed),
            },
        })
    }

    /// The hub cluster's watches, what was left out, and status write-back;
    /// `null` when Ingresses come from files.
    fn hub_status(&self) -> Value {
        let Some(store) = self.state.hub.store() else {
            return Value::Null;
        };
        let source = store.status();
        let writes = store.writes();
        let rejected: Vec<Value> = self
            .state
            .hub
            .rejected()
            .iter()
            .map(|(key, r)| {
                json!({
                    "object": key.to_string(),
                    "errors": r.errors,
                    "serving": if r.previous_serves { "previous version" } else { "not served" },
                })
            })
            .collect();
        use fleetgate_discovery::objects::ApiKind;
        json!({
            "connected": source.connected,
            "synced": source.synced,
            "error": source.error,
            "updates": source.updates,
            "data_age_seconds": source.updated.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs_f64()),
            "objects": {
                "ingresses": store.count(ApiKind::Ingress, None),
                "services": store.count(ApiKind::Service, None),
                "secrets": store.count(ApiKind::Secret, None),
            },
            "rejected": rejected,
            "last_build": self.state.hub.last_build(),
            "cache": self.state.hub.cache_state(),
            "status_writes": { "written": writes.written, "failed": writes.failed, "error": writes.error },
        })
    }

    fn ingresses(&self) -> Value {
        let config = self.state.config.load();
        let snapshot = self.state.snapshot.load();
        let lb: Vec<Value> = config
            .advertise
            .iter()
            .map(|a| json!({ "ip": a }))
            .collect();
        let list: Vec<Value> = config
            .ingresses
            .iter()
            .map(|i| {
                let key = i.key();
                let unbound: Vec<&String> = snapshot
                    .report
                    .unbound
                    .iter()
                    .filter(|(n, _)| *n == key)
                    .map(|(_, what)| what)
                    .collect();
                let (served, reason) = match &i.disposition {
                    Disposition::Served if !unbound.is_empty() && unbound.len() == i.paths => {
                        (false, Some("unbound canary: no main route with the same host, path and pathType".to_string()))
                    }
                    Disposition::Served => (true, None),
                    Disposition::Ignored(r) => (false, Some(r.clone())),
                };
                json!({
                    "namespace": i.namespace,
                    "name": i.name,
                    "class": i.class,
                    "served": served,
                    "reason": reason,
                    "canary": i.canary,
                    "subset": i.subset,
                    "unbound_rules": unbound,
                    "source_ranges": i.source_ranges.as_ref().map(|(allow, deny)| json!({
                        "allow": allow,
                        "deny": deny,
                    })),
                    "warnings": i.warnings,
                    "source": i.origin,
                    "status": { "loadBalancer": { "ingress": if served { lb.clone() } else { Vec::new() } } },
                })
            })
            .collect();
        json!({ "generation": self.state.generation(), "ingresses": list })
    }

    fn services(&self) -> Value {
        let snapshot = self.state.snapshot.load();
        let config = self.state.config.load();
        let pools: Vec<Value> = snapshot
            .router
            .pools()
            .iter()
            .map(|p| pool_json(p, &config))
            .collect();
        json!({ "generation": snapshot.generation, "pools": pools, "health_flips": self.state.checks.flips() })
    }

    /// The route table; with `down`, each target also says where its
    /// traffic would go if those clusters or zones were down.
    fn routes(&self, down: &fleetgate_router::Down) -> Value {
        let if_down = |t: &Target, canary: bool| -> Value {
            if down.is_empty() {
                return Value::Null;
            }
            match fleetgate_router::outlook(t, down) {
                fleetgate_router::Outlook::Nowhere => json!({
                    "shares": {},
                    "note": if canary { "no canary endpoint left: its requests go to main" } else { "no endpoint left: 503" },
                }),
                fleetgate_router::Outlook::Shares { shares, panic } => json!({
                    "shares": shares.iter().map(|(c, p)| (c.to_string(), json!((p * 10.0).round() / 10.0))).collect::<serde_json::Map<_, _>>(),
                    "panic": panic,
                }),
            }
        };
        let snapshot = self.state.snapshot.load();
        let routes: Vec<Value> = snapshot
            .router
            .table()
            .routes()
            .iter()
            .map(|r| {
                let route = snapshot.router.route(r.target);
                let canaries: Vec<Value> = route
                    .canaries
                    .as_ref()
                    .map(|c| {
                        c.describe()
                            .into_iter()
                            .enumerate()
                            .map(|(i, (ingress, condition))| {
                                json!({ "ingress": ingress, "condition": condition, "target": target_json(c.target(i)), "if_down": if_down(c.target(i), true) })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "host": r.host.to_string(),
                    "path": r.path,
                    "path_type": r.path_type.as_str(),
                    "regex": r.regex,
                    "ingress": &*route.ingress,
                    "target": target_json(&route.main),
                    "if_down": if_down(&route.main, false),
                    "canaries": canaries,
                })
            })
            .collect();
        json!({ "generation": snapshot.generation, "routes": routes })
    }

    fn metrics(&self) -> Response<Vec<u8>> {
        let mut families = self.state.metrics.registry.gather();
        families.extend(crate::metrics::gauges(&self.state));
        let mut buf = Vec::new();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not encode metrics\n",
            );
        }
        respond(StatusCode::OK, "text/plain; version=0.0.4", buf)
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        // The admin listener has the client guard too: the next head on
        // this connection is counted from its start (see run.rs).
        fleetgate_proxy::client_guard::request_done(session.is_body_done());
        let req = session.req_header();
        // Liveness and readiness say nothing a balancer's probe should not
        // know, and a probe cannot carry a token: they answer without one.
        let probe = matches!(req.uri.path(), "/healthz" | "/readyz")
            && (req.method == http::Method::GET || req.method == http::Method::HEAD);
        // The status page's files hold no data (the page asks for the
        // token, then fetches /status and /traffic with it).
        let page = crate::status_page::is_page_file(req.uri.path())
            && (req.method == http::Method::GET || req.method == http::Method::HEAD);
        match self.state.live.token().as_deref() {
            Some(_) if probe || page => {}
            Some(token) if !bearer_matches(req, token) => {
                return text(
                    StatusCode::UNAUTHORIZED,
                    "401 Unauthorized: send Authorization: Bearer <token>\n",
                );
            }
            None if !host_is_local(req) => {
                return text(
                    StatusCode::FORBIDDEN,
                    "403 Forbidden: without [admin] token the admin API answers only to Host 127.0.0.1, [::1] or localhost\n",
                );
            }
            _ => {}
        }
        if let Some(rest) = req.uri.path().strip_prefix("/clusters") {
            if rest.is_empty() || rest.starts_with('/') {
                return self.clusters(req, rest);
            }
        }
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: only /clusters/<id>/drain and /undrain take POST; the rest is read-only\n",
            );
        }
        match req.uri.path() {
            "/status" => json_response(StatusCode::OK, &self.status()),
            "/ingresses" => json_response(StatusCode::OK, &self.ingresses()),
            "/services" => json_response(StatusCode::OK, &self.services()),
            "/routes" => {
                let names: Vec<String> = req
                    .uri
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("down="))
                    .flat_map(|v| v.split(','))
                    .map(str::to_string)
                    .collect();
                match crate::routes::parse_down(&self.state.config.load().clusters, &names) {
                    Ok(down) => json_response(StatusCode::OK, &self.routes(&down)),
                    Err(e) => text(StatusCode::BAD_REQUEST, &format!("400 Bad Request: {e}\n")),
                }
            }
            "/metrics" => self.metrics(),
            "/traffic" => json_response(StatusCode::OK, &crate::status_page::traffic(&self.state)),
            path if crate::status_page::is_page_file(path) => crate::status_page::file(path),
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" if self.state.stats.shutting_down.load(Ordering::Relaxed) => {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready: draining (shutting down)\n")
            }
            "/readyz" => match self.state.phase() {
                Phase::Running | Phase::Listening => text(StatusCode::OK, "ready\n"),
                other => text(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {}\n", other.name())),
            },
            _ => text(
                StatusCode::NOT_FOUND,
                "404 Not Found: try / (the status page) /status /clusters /ingresses /services /routes /traffic /metrics /healthz /readyz\n",
            ),
        }
    }
}

/// The TLS hosts and the default certificate, with where each certificate
/// comes from and when it expires.
fn certificates(snapshot: &fleetgate_proxy::Snapshot) -> Value {
    snapshot
        .certificates
        .bindings()
        .map(|(host, e)| {
            json!({
                "host": host.unwrap_or("(default)"),
                "source": &*e.source,
                "names": e.certificate.names(),
                "not_after": e.certificate.not_after(),
                "not_after_unix": e.certificate.not_after_unix(),
            })
        })
        .collect()
}
