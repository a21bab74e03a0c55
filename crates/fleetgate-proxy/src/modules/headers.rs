//! Header changes a route asks for (`upstream-vhost`,
//! `x-forwarded-prefix`, MSE/Higress `request-header-control-*` and
//! `response-header-control-*`): applied to every upstream request (each
//! try) and to every proxied response, in the order given.

use http::{HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use super::{GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// One change to a header.
#[derive(Debug, Clone)]
pub enum HeaderChange {
    /// Append a value.
    Add(HeaderName, HeaderValue),
    /// Replace every value.
    Set(HeaderName, HeaderValue),
    /// Remove every value.
    Remove(HeaderName),
}

/// Changes to upstream requests and to responses.
#[derive(Debug, Clone, Default)]
pub struct HeaderRewrite {
    request: Vec<HeaderChange>,
    response: Vec<HeaderChange>,
}

impl HeaderRewrite {
    /// Applies `request` to upstream requests and `response` to responses.
    pub fn new(request: Vec<HeaderChange>, response: Vec<HeaderChange>) -> Self {
        HeaderRewrite { request, response }
    }
}

macro_rules! apply {
    ($changes:expr, $head:expr) => {{
        for change in $changes {
            match change {
                HeaderChange::Add(n, v) => {
                    $head.append_header(n.clone(), v.clone())?;
                }
                HeaderChange::Set(n, v) => $head.insert_header(n.clone(), v.clone())?,
                HeaderChange::Remove(n) => {
                    $head.remove_header(n);
                }
            }
        }
        Ok(())
    }};
}

impl GatewayModule for HeaderRewrite {
    fn name(&self) -> &str {
        "headers"
    }

    fn steps(&self) -> Steps {
        let mut steps = Steps::NONE;
        if !self.request.is_empty() {
            steps = steps | Steps::UPSTREAM_REQUEST;
        }
        if !self.response.is_empty() {
            steps = steps | Steps::RESPONSE;
        }
        steps
    }

    fn upstream_request(
        &self,
        _session: &Session,
        request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        apply!(&self.request, request)
    }

    fn response(
        &self,
        _session: &Session,
        response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        apply!(&self.response, response)
    }
}
