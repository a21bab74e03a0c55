//! Keeping clients on one endpoint (`upstream-hash-by`, `affinity:
//! cookie`): the modules read the request once, after the route matched,
//! and tell the gateway how to pick ([`Balance`]); the pickers themselves
//! are the router's ([`fleetgate_router::Rendezvous`],
//! [`fleetgate_router::Sticky`]), so subsets, spill-over, failover and
//! retries apply as to any route.

use http::HeaderValue;
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use fleetgate_router::{cookie, endpoint_id, HashKey};

use super::{Flow, GatewayModule, Steps};
use crate::edge;
use crate::gateway::RequestCtx;

/// How the matched route picks endpoints, when not by the gateway's
/// picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Consistent hashing on this key hash.
    Hash(u64),
    /// The endpoint the affinity cookie names (if any), else round robin.
    Sticky(Option<u64>),
    /// Least request in flight, of two drawn at random.
    LeastRequest,
}

/// `load-balance: ewma`: least request by the power of two choices
/// ([`fleetgate_router::LeastRequest`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastRequestBalance;

impl GatewayModule for LeastRequestBalance {
    fn name(&self) -> &str {
        "least-request"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        ctx.balance = Some(Balance::LeastRequest);
        Ok(Flow::Continue)
    }
}

/// `upstream-hash-by`: consistent hashing on a request key.
#[derive(Debug, Clone)]
pub struct HashBy {
    key: HashKey,
}

impl HashBy {
    /// Hashes on `key`.
    pub fn new(key: HashKey) -> Self {
        HashBy { key }
    }
}

impl GatewayModule for HashBy {
    fn name(&self) -> &str {
        "upstream-hash-by"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let edge_policy = ctx.snapshot.as_deref().map(|s| &s.edge);
        let client = edge::client_address(session, ctx.origin.peer_trusted, edge_policy);
        ctx.balance = Some(Balance::Hash(self.key.hash(session.req_header(), client)));
        Ok(Flow::Continue)
    }
}

/// `affinity: cookie`: the cookie names the endpoint that served the
/// client; a client without it, or whose endpoint cannot take the try,
/// is picked for as usual and gets a new cookie.
#[derive(Debug, Clone)]
pub struct CookieAffinity {
    name: String,
    /// `; Path=...; HttpOnly` and the rest, written once.
    attributes: String,
}

/// The attributes of an affinity cookie.
#[derive(Debug, Clone, Default)]
pub struct CookieSettings {
    /// Its name (`INGRESSCOOKIE` in ingress-nginx).
    pub name: String,
    /// `Path`.
    pub path: String,
    /// `Max-Age` in seconds; `None`: a session cookie.
    pub max_age: Option<u64>,
    /// `SameSite` (`None`, `Lax`, `Strict`).
    pub same_site: Option<String>,
    /// `Secure`.
    pub secure: bool,
    /// `Domain`.
    pub domain: Option<String>,
}

impl CookieAffinity {
    /// A cookie with `settings` (checked by the configuration loader:
    /// cookie-safe text).
    pub fn new(settings: &CookieSettings) -> Self {
        let mut attributes = format!("; Path={}", settings.path);
        if let Some(age) = settings.max_age {
            attributes.push_str(&format!("; Max-Age={age}"));
        }
        if let Some(domain) = &settings.domain {
            attributes.push_str(&format!("; Domain={domain}"));
        }
        if let Some(same_site) = &settings.same_site {
            attributes.push_str(&format!("; SameSite={same_site}"));
        }
        // Browsers drop a SameSite=None cookie that is not Secure.
        if settings.secure || settings.same_site.as_deref() == Some("None") {
            attributes.push_str("; Secure");
        }
        attributes.push_str("; HttpOnly");
        CookieAffinity {
            name: settings.name.clone(),
            attributes,
        }
    }
}

impl GatewayModule for CookieAffinity {
    fn name(&self) -> &str {
        "affinity"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH | Steps::RESPONSE
    }

    fn after_match(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let wanted = cookie(session.req_header(), &self.name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| u64::from_str_radix(v, 16).ok());
        ctx.balance = Some(Balance::Sticky(wanted));
        Ok(Flow::Continue)
    }

    fn response(
        &self,
        _session: &Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(served) = ctx
            .last_attempt()
            .map(|a| endpoint_id(&a.endpoint().address))
        else {
            return Ok(());
        };
        if ctx.balance == Some(Balance::Sticky(Some(served))) {
            return Ok(());
        }
        let text = format!("{}={served:016x}{}", self.name, self.attributes);
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.append_header(http::header::SET_COOKIE, v)?;
        }
        Ok(())
    }
}
