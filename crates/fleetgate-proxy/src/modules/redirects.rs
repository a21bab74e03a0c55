//! Redirects a route answers itself (the `permanent-redirect`,
//! `temporal-redirect` and `app-root` annotations): the request never
//! reaches an endpoint.

use bytes::Bytes;
use http::HeaderValue;
use pingora_core::{Error, ErrorType, Result};
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// Answers every request with `code` and a fixed `Location`.
#[derive(Debug, Clone)]
pub struct Redirect {
    code: u16,
    location: HeaderValue,
    body: Bytes,
}

impl Redirect {
    /// A redirect with status `code` (3xx) to `location` (sent as given);
    /// `None` when `location` cannot be a header value.
    pub fn new(code: u16, location: &str) -> Option<Self> {
        Some(Redirect {
            code,
            location: HeaderValue::from_str(location).ok()?,
            body: Bytes::from(format!("{code} redirect to {location}\n")),
        })
    }
}

impl GatewayModule for Redirect {
    fn name(&self) -> &str {
        "redirect"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, _session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        Ok(Flow::Answer(
            Answer::new(self.code)
                .with_header(http::header::LOCATION, self.location.clone())
                .with_body(self.body.clone()),
        ))
    }
}

/// Redirects requests for `/` (with or without a query) to the
/// application's root path with a 302, on the same scheme and host.
#[derive(Debug, Clone)]
pub struct AppRoot {
    path: String,
}

impl AppRoot {
    /// Redirects `/` to `path` (starting with `/`).
    pub fn new(path: &str) -> Self {
        AppRoot {
            path: path.to_string(),
        }
    }
}

impl GatewayModule for AppRoot {
    fn name(&self) -> &str {
        "app-root"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let req = session.req_header();
        if req.uri.path() != "/" {
            return Ok(Flow::Continue);
        }
        let host = fleetgate_router::request_host(req);
        let location = if host.is_empty() {
            self.path.clone()
        } else {
            format!("{}://{host}{}", ctx.origin.scheme.as_str(), self.path)
        };
        let location = HeaderValue::try_from(location)
            .map_err(|_| Error::explain(ErrorType::InternalError, "bad Location"))?;
        Ok(Flow::Answer(
            Answer::new(302)
                .with_header(http::header::LOCATION, location)
                .with_body(Bytes::from_static(
                    b"302 Found: the application is elsewhere\n",
                )),
        ))
    }
}
