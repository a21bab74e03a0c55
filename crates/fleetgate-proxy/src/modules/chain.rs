//! An ordered list of modules, split by step when built so that a step
//! calls only the modules that act at it.

use std::sync::Arc;

use fleetgate_router::Route;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use super::{Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// Modules in order (see the module docs). Cheap to clone: modules are
/// shared.
#[derive(Clone, Default)]
pub struct ModuleChain {
    all: Vec<Arc<dyn GatewayModule>>,
    before_match: Vec<Arc<dyn GatewayModule>>,
    after_match: Vec<Arc<dyn GatewayModule>>,
    access: Vec<Arc<dyn GatewayModule>>,
    request_body: Vec<Arc<dyn GatewayModule>>,
    upstream_peer: Vec<Arc<dyn GatewayModule>>,
    upstream_request: Vec<Arc<dyn GatewayModule>>,
    upstream_response: Vec<Arc<dyn GatewayModule>>,
    response: Vec<Arc<dyn GatewayModule>>,
    logging: Vec<Arc<dyn GatewayModule>>,
}

impl std::fmt::Debug for ModuleChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ModuleChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `module`.
    pub fn with(mut self, module: impl GatewayModule) -> Self {
        self.push(Arc::new(module));
        self
    }

    /// Appends a shared module.
    pub fn push(&mut self, module: Arc<dyn GatewayModule>) {
        let steps = module.steps();
        for (step, list) in [
            (Steps::BEFORE_MATCH, &mut self.before_match),
            (Steps::AFTER_MATCH, &mut self.after_match),
            (Steps::ACCESS, &mut self.access),
            (Steps::REQUEST_BODY, &mut self.request_body),
            (Steps::UPSTREAM_PEER, &mut self.upstream_peer),
            (Steps::UPSTREAM_REQUEST, &mut self.upstream_request),
            (Steps::UPSTREAM_RESPONSE, &mut self.upstream_response),
            (Steps::RESPONSE, &mut self.response),
            (Steps::LOGGING, &mut self.logging),
        ] {
            if steps.contains(step) {
                list.push(Arc::clone(&module));
            }
        }
        self.all.push(module);
    }

    /// The modules' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.all.iter().map(|m| m.name())
    }

    /// Whether it has no module.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub(crate) fn before_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        for m in &self.before_match {
            if let Flow::Answer(a) = m.before_match(session, ctx)? {
                return Ok(Flow::Answer(a));
            }
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        for m in &self.after_match {
            if let Flow::Answer(a) = m.after_match(session, ctx)? {
                return Ok(Flow::Answer(a));
            }
        }
        Ok(Flow::Continue)
    }

    /// Whether a module acts at `ACCESS`.
    pub(crate) fn has_access(&self) -> bool {
        !self.access.is_empty()
    }

    pub(crate) async fn access(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        for m in &self.access {
            if let Flow::Answer(a) = m.access(session, ctx).await? {
                return Ok(Flow::Answer(a));
            }
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn request_body(
        &self,
        session: &Session,
        body: Option<&bytes::Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for m in &self.request_body {
            m.request_body(session, body, end, ctx)?;
        }
        Ok(())
    }

    pub(crate) fn upstream_peer(
        &self,
        session: &Session,
        peer: &mut HttpPeer,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for m in &self.upstream_peer {
            m.upstream_peer(session, peer, ctx)?;
        }
        Ok(())
    }

    pub(crate) fn upstream_request(
        &self,
        session: &Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for m in &self.upstream_request {
            m.upstream_request(session, request, ctx)?;
        }
        Ok(())
    }

    pub(crate) fn upstream_response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for m in &self.upstream_response {
            m.upstream_response(session, response, ctx)?;
        }
        Ok(())
    }

    pub(crate) fn response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for m in &self.response {
            m.response(session, response, ctx)?;
        }
        Ok(())
    }

    pub(crate) fn logging(&self, session: &Session, ctx: &RequestCtx, status: u16) {
        for m in &self.logging {
            m.logging(session, ctx, status);
        }
    }
}

/// Attaches `chain` to `route`: its modules run for requests on that route
/// only, after the gateway's own (from `AFTER_MATCH` on: before the match
/// nothing knows the route).
pub fn route_modules(route: Route, chain: ModuleChain) -> Route {
    route.with_extension(Arc::new(chain))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str, Steps);

    impl GatewayModule for Named {
        fn name(&self) -> &str {
            self.0
        }

        fn steps(&self) -> Steps {
            self.1
        }
    }

    #[test]
    fn a_step_lists_only_the_modules_that_declared_it_in_order() {
        let chain = ModuleChain::new()
            .with(Named("a", Steps::AFTER_MATCH | Steps::LOGGING))
            .with(Named("b", Steps::RESPONSE))
            .with(Named("c", Steps::AFTER_MATCH));
        let names = |list: &[Arc<dyn GatewayModule>]| -> Vec<String> {
            list.iter().map(|m| m.name().to_string()).collect()
        };
        assert_eq!(chain.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(names(&chain.after_match), ["a", "c"]);
        assert_eq!(names(&chain.response), ["b"]);
        assert_eq!(names(&chain.logging), ["a"]);
        assert!(chain.before_match.is_empty() && chain.upstream_request.is_empty());
        assert!(!Steps::AFTER_MATCH.contains(Steps::LOGGING));
        assert!((Steps::AFTER_MATCH | Steps::LOGGING).contains(Steps::LOGGING));
    }
}
