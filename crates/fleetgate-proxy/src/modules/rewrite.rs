//! The path an upstream gets, rewritten (`rewrite-target`,
//! `rewrite-path`): the rule's rewrite, worked out when the configuration
//! was loaded (see [`fleetgate_ingress::PathRewrite`]), applied to every
//! try's request head. Redirects and the access log keep the path the
//! client sent.

use fleetgate_ingress::PathRewrite;
use http::uri::{PathAndQuery, Uri};
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use super::{GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// Rewrites the upstream path of one route.
#[derive(Debug, Clone)]
pub struct UpstreamPathRewrite {
    rewrite: PathRewrite,
}

impl UpstreamPathRewrite {
    /// Applies `rewrite` to the route's upstream requests.
    pub fn new(rewrite: PathRewrite) -> Self {
        UpstreamPathRewrite { rewrite }
    }
}

impl GatewayModule for UpstreamPathRewrite {
    fn name(&self) -> &str {
        "rewrite"
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
        let Some(snapshot) = ctx.snapshot.as_deref() else {
            return Ok(());
        };
        let sent = &session.req_header().uri;
        // The path the route matched: the router refused the request
        // already if it could not be normalised.
        let Ok(path) = snapshot.edge.path_normalization.apply(sent.path()) else {
            return Ok(());
        };
        let mut rewritten = String::with_capacity(sent.path().len() + 32);
        if !self.rewrite.apply(&path, sent.query(), &mut rewritten) {
            return Ok(());
        }
        let invalid = |_| Error::explain(ErrorType::InternalError, "rewritten path is not a URI");
        let path_and_query = PathAndQuery::try_from(rewritten).map_err(invalid)?;
        // Keep the scheme and authority an HTTP/2 request carries.
        let mut parts = request.uri.clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        let uri = Uri::from_parts(parts)
            .map_err(|_| Error::explain(ErrorType::InternalError, "rewritten URI is invalid"))?;
        request.set_uri(uri);
        Ok(())
    }
}
