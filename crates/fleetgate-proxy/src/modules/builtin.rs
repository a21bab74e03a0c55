//! fleetgate's own edge behaviour, as modules: the HTTPS redirect, the
//! forwarding headers and the `Server` header. The gateway puts them first
//! in its chain, configured by its builder methods.

use bytes::Bytes;
use http::HeaderValue;
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::forwarded;
use crate::gateway::RequestCtx;
use crate::options::ForwardedHeaders;
use crate::responses;

/// Redirects plain-HTTP requests on routes that ask for HTTPS
/// (`ssl-redirect`, `force-ssl-redirect`) with a 308 to the same host and
/// target over HTTPS, when there is somewhere to go: this gateway's TLS
/// listener with a certificate for the host, or, for a trusted proxy in
/// front that reported plain HTTP, the proxy's own HTTPS port.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpsRedirect {
    /// The port of the gateway's TLS listener, if one runs.
    pub https_port: Option<u16>,
}

impl GatewayModule for HttpsRedirect {
    fn name(&self) -> &str {
        "https-redirect"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        if !ctx.route().is_some_and(|r| r.https_redirect) {
            return Ok(Flow::Continue);
        }
        let mut buf = [0u8; 256];
        let host = fleetgate_ingress::normalize_request_host(
            fleetgate_router::request_host(session.req_header()),
            &mut buf,
        );
        let local_https = self.https_port.is_some()
            && ctx
                .snapshot
                .as_ref()
                .is_some_and(|s| s.certificates.select(Some(host)).is_some());
        if !ctx.origin.should_upgrade(local_https) {
            return Ok(Flow::Continue);
        }
        // Behind a proxy, the client reaches HTTPS on the proxy's port.
        let port = if ctx.origin.reported_by_proxy {
            None
        } else {
            self.https_port
        };
        let target = session
            .req_header()
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str());
        let location = match port {
            Some(port) if port != 443 => format!("https://{host}:{port}{target}"),
            _ => format!("https://{host}{target}"),
        };
        let location = HeaderValue::try_from(location).map_err(|_| {
            pingora_core::Error::explain(pingora_core::ErrorType::InternalError, "bad Location")
        })?;
        Ok(Flow::Answer(
            Answer::new(308)
                .with_header(http::header::LOCATION, location)
                .with_body(Bytes::from_static(b"308 Permanent Redirect: use HTTPS\n")),
        ))
    }
}

/// Adds `X-Forwarded-For`, `X-Real-IP` and `X-Forwarded-Proto` to every
/// upstream request; in [`ForwardedHeaders::Overwrite`], first drops the
/// values a client that is not a trusted proxy wrote itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardedHeadersModule {
    /// How (never [`ForwardedHeaders::Off`]: then the module is left out).
    pub mode: ForwardedHeaders,
}

impl GatewayModule for ForwardedHeadersModule {
    fn name(&self) -> &str {
        "forwarded-headers"
    }

    fn steps(&self) -> Steps {
        Steps::UPSTREAM_REQUEST
    }

    fn upstream_request(
        &self,
        session: &Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match self.mode {
            ForwardedHeaders::Off => return Ok(()),
            ForwardedHeaders::Append => {}
            ForwardedHeaders::Overwrite => {
                if !ctx.origin.peer_trusted {
                    forwarded::drop_client_values(request);
                }
            }
        }
        forwarded::add_headers(session, request, ctx.origin.scheme)
    }
}

/// Sets `Server: fleetgate` on proxied responses (the gateway's own
/// answers carry it already), so clients see one server, whichever
/// endpoint answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerHeader;

impl GatewayModule for ServerHeader {
    fn name(&self) -> &str {
        "server-header"
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
        responses::set_server(response)
    }
}
