//! CORS for a route (`enable-cors` and the `cors-*` annotations), as
//! ingress-nginx answers it: a preflight (`OPTIONS` from an allowed
//! origin) gets 204 from the gateway with the allowed methods, headers and
//! max age; other responses to an allowed origin carry
//! `Access-Control-Allow-Origin` and the rest. A request from an origin
//! not allowed gets no CORS header (the browser then keeps the response
//! from the page), and its `OPTIONS` goes to the upstream like any request.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN,
    VARY,
};
use http::{HeaderName, HeaderValue, Method};
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// One allowed origin: exact, or `scheme://*.suffix[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginPattern {
    Exact(String),
    /// Scheme and `://`, the host suffix after `*.` (with its `.`), and
    /// the port part (`:8443` or empty).
    Wildcard {
        scheme: String,
        suffix: String,
        port: String,
    },
}

impl OriginPattern {
    fn parse(origin: &str) -> Self {
        let lower = origin.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return OriginPattern::Exact(lower);
        };
        let Some(host) = rest.strip_prefix("*.") else {
            return OriginPattern::Exact(lower);
        };
        let (host, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h, format!(":{p}")),
            None => (host, String::new()),
        };
        OriginPattern::Wildcard {
            scheme: format!("{scheme}://"),
            suffix: format!(".{host}"),
            port,
        }
    }

    /// Whether `origin` (lower-case) matches: a wildcard takes exactly
    /// one more label.
    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Exact(o) => o == origin,
            OriginPattern::Wildcard {
                scheme,
                suffix,
                port,
            } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|rest| rest.strip_suffix(port.as_str()))
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .is_some_and(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }),
        }
    }
}

/// The CORS policy of a route.
#[derive(Debug, Clone)]
pub struct Cors {
    /// `None`: any origin (`*`).
    origins: Option<Vec<OriginPattern>>,
    methods: HeaderValue,
    headers: HeaderValue,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

/// What [`Cors::new`] needs, as written in the annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// Allowed origins; `None` for any.
    pub origins: Option<Vec<String>>,
    /// `Access-Control-Allow-Methods`.
    pub methods: String,
    /// `Access-Control-Allow-Headers`.
    pub headers: String,
    /// `Access-Control-Expose-Headers` (empty: not sent).
    pub expose: String,
    /// `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: u32,
}

impl Cors {
    /// The policy `settings` describes; `None` when a value cannot be a
    /// header value.
    pub fn new(settings: &CorsSettings) -> Option<Self> {
        let value = |s: &str| HeaderValue::from_str(s).ok();
        Some(Cors {
            origins: settings
                .origins
                .as_ref()
                .map(|list| list.iter().map(|o| OriginPattern::parse(o)).collect()),
            methods: value(&settings.methods)?,
            headers: value(&settings.headers)?,
            expose: if settings.expose.is_empty() {
                None
            } else {
                Some(value(&settings.expose)?)
            },
            credentials: settings.credentials,
            max_age: HeaderValue::from(settings.max_age),
        })
    }

    /// The `Access-Control-Allow-Origin` value for a request from
    /// `origin`, if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let Some(list) = &self.origins else {
            return Some(HeaderValue::from_static("*"));
        };
        let origin = origin?;
        let lower = origin.to_str().ok()?.to_ascii_lowercase();
        list.iter()
            .any(|p| p.matches(&lower))
            .then(|| origin.clone())
    }

    fn headers_for(&self, allow: HeaderValue, preflight: bool) -> Vec<(HeaderName, HeaderValue)> {
        let specific = allow != "*";
        let mut h = vec![(ACCESS_CONTROL_ALLOW_ORIGIN, allow)];
        if specific {
            h.push((VARY, HeaderValue::from_static("Origin")));
        }
        if self.credentials {
            h.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        h.push((ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone()));
        h.push((ACCESS_CONTROL_ALLOW_HEADERS, self.headers.clone()));
        if let Some(e) = &self.expose {
            h.push((ACCESS_CONTROL_EXPOSE_HEADERS, e.clone()));
        }
        if preflight {
            h.push((ACCESS_CONTROL_MAX_AGE, self.max_age.clone()));
        }
        h
    }
}

impl GatewayModule for Cors {
    fn name(&self) -> &str {
        "cors"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH | Steps::RESPONSE
    }

    fn after_match(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        let req = session.req_header();
        if req.method != Method::OPTIONS {
            return Ok(Flow::Continue);
        }
        let origin = req.headers.get(ORIGIN);
        let Some(allow) = origin.and_then(|_| self.allow_origin(origin)) else {
            return Ok(Flow::Continue);
        };
        let mut answer = Answer::new(204);
        for (name, value) in self.headers_for(allow, true) {
            answer = answer.with_header(name, value);
        }
        Ok(Flow::Answer(answer))
    }

    fn response(
        &self,
        session: &Session,
        response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        let origin = session.req_header().headers.get(ORIGIN);
        if origin.is_none() {
            return Ok(());
        }
        if let Some(allow) = self.allow_origin(origin) {
            for (name, value) in self.headers_for(allow, false) {
                if name == VARY {
                    response.append_header(name, value)?;
                } else {
                    response.insert_header(name, value)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        let exact = OriginPattern::parse("https://App.example.com");
        assert!(exact.matches("https://app.example.com"));
        assert!(!exact.matches("http://app.example.com"));
        let wild = OriginPattern::parse("https://*.example.com:8443");
        assert!(wild.matches("https://a.example.com:8443"));
        assert!(!wild.matches("https://a.example.com"));
        assert!(!wild.matches("https://a.b.example.com:8443"));
        assert!(!wild.matches("https://example.com:8443"));
        assert!(!wild.matches("https://evil-example.com:8443"));
    }
}
