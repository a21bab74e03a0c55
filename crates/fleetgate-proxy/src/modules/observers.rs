//! Metrics and the access log, as observers of the request path: built-in
//! modules at the `UPSTREAM_RESPONSE` and `LOGGING` steps that read what
//! routing decided (route, target, endpoint, retries) from the request's
//! context. Routing itself carries no metric or log state.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use super::{GatewayModule, Steps};
use crate::access_log::{AccessLog, AccessRecord, ResponseSource};
use crate::gateway::RequestCtx;
use crate::metrics::{Metrics, TargetCounters};

/// Counts requests per target, cluster and status class, upstream latency
/// per cluster, and retries per Service.
pub struct MetricsObserver {
    metrics: Metrics,
    /// Counters of requests that matched no route.
    unrouted: TargetCounters,
}

impl MetricsObserver {
    /// An observer recording into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        MetricsObserver {
            metrics,
            unrouted: TargetCounters::new("-".into(), "-".into(), false, Vec::new()),
        }
    }
}

impl GatewayModule for MetricsObserver {
    fn name(&self) -> &str {
        "metrics"
    }

    fn steps(&self) -> Steps {
        Steps::UPSTREAM_RESPONSE | Steps::LOGGING
    }

    fn upstream_response(
        &self,
        _session: &Session,
        _response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(attempt), Some(t), Some(snapshot), Some(target)) = (
            ctx.last_attempt(),
            ctx.upstream_started,
            ctx.snapshot.as_ref(),
            ctx.target(),
        ) {
            if let Some(counters) = snapshot.counters(target) {
                counters.observe_latency(
                    &self.metrics,
                    &attempt.endpoint().cluster,
                    t.elapsed().as_secs_f64(),
                );
            }
        }
        Ok(())
    }

    fn logging(&self, _session: &Session, ctx: &RequestCtx, status: u16) {
        let target = ctx.target();
        let endpoint = ctx.last_attempt().map(|a| a.endpoint());
        let counters = ctx
            .snapshot
            .as_ref()
            .zip(target)
            .and_then(|(s, t)| s.counters(t));
        counters.unwrap_or(&self.unrouted).count(
            &self.metrics,
            endpoint.map(|e| e.cluster.as_str()),
            status,
        );
        self.metrics
            .request_duration
            .observe(ctx.started.elapsed().as_secs_f64());
        if let Some(code) = ctx.own_status {
            self.metrics.count_gateway_response(code);
        }
        let retries = ctx.attempts.retries();
        if retries > 0 {
            let service = target.map_or("-", |t| &*t.service);
            self.metrics
                .retries
                .with_label_values(&[service])
                .inc_by(u64::from(retries));
        }
    }
}

/// Writes one access log line per request.
pub struct AccessLogObserver {
    log: AccessLog,
}

impl AccessLogObserver {
    /// An observer writing to `log`.
    pub fn new(log: AccessLog) -> Self {
        AccessLogObserver { log }
    }
}

impl GatewayModule for AccessLogObserver {
    fn name(&self) -> &str {
        "access-log"
    }

    fn steps(&self) -> Steps {
        Steps::LOGGING
    }

    fn logging(&self, session: &Session, ctx: &RequestCtx, status: u16) {
        if !self.log.is_on() {
            return;
        }
        let req = session.req_header();
        let route = ctx.route();
        let target = ctx.target();
        let endpoint = ctx.last_attempt().map(|a| a.endpoint());
        let canary = route.and_then(|r| r.canary_ingress(ctx.plan.and_then(|p| p.canary)));
        self.log.log(AccessRecord {
            time: SystemTime::now()
                .checked_sub(ctx.started.elapsed())
                .unwrap_or_else(SystemTime::now),
            client: session
                .client_addr()
                .map_or_else(String::new, |a| a.to_string()),
            host: fleetgate_router::request_host(req).to_string(),
            method: req.method.as_str().to_string(),
            path: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string()),
            status,
            bytes: session.body_bytes_sent(),
            duration: ctx.started.elapsed(),
            ingress: route.map(|r| Arc::clone(&r.ingress)),
            service: target.map(|t| Arc::clone(&t.service)),
            cluster: endpoint.map(|e| e.cluster.clone()),
            endpoint: endpoint.map(|e| e.address),
            target: target.map(|_| match canary {
                None => Cow::Borrowed("main"),
                Some(c) => Cow::Owned(format!("canary:{c}")),
            }),
            retries: ctx.attempts.retries(),
            protocol: Cow::Borrowed(protocol(req.version)),
            bytes_in: session.body_bytes_read(),
            upstream_connect: ctx.upstream_connect,
            upstream_response: ctx.upstream_response,
            source: if ctx.own_status.is_some() {
                ResponseSource::Gateway
            } else {
                ResponseSource::Upstream
            },
            // The id sent upstream: the gateway's, or (with request ids
            // off) whatever the client sent.
            request_id: ctx
                .request_id
                .clone()
                .or_else(|| req.headers.get(crate::request_id::X_REQUEST_ID).cloned()),
            user_agent: req.headers.get(http::header::USER_AGENT).cloned(),
            referer: req.headers.get(http::header::REFERER).cloned(),
            tls_version: crate::tls_info::version(session),
            sni: crate::tls_info::server_name(session),
        });
    }
}

/// The protocol name of an HTTP version, as the log writes it.
pub fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
