//! HTTP basic authentication for a route (`auth-type: basic`): requests
//! without valid credentials get 401 with `WWW-Authenticate: Basic`, and
//! never reach an endpoint. The credentials stay with the request to the
//! upstream, as ingress-nginx forwards them.
//!
//! A check runs on the worker thread: bcrypt at the cost `htpasswd -B`
//! uses by default (5) takes a few milliseconds; higher costs slow every
//! request of the route accordingly.

use std::sync::Arc;

use bytes::Bytes;
use fleetgate_auth::{parse_basic, Credentials};
use http::HeaderValue;
use pingora_core::Result;
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;

/// Lets through requests whose `Authorization: Basic` names a user of
/// `credentials` with the right password.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    credentials: Arc<Credentials>,
    challenge: HeaderValue,
}

impl BasicAuth {
    /// A check against `credentials`, naming `realm` in the challenge (a
    /// realm that cannot be a header value, or holds a quote, is replaced
    /// by a neutral one: the check itself never depends on it).
    pub fn new(credentials: Arc<Credentials>, realm: &str) -> Self {
        let challenge = Some(realm)
            .filter(|r| !r.contains('"'))
            .and_then(|r| HeaderValue::from_str(&format!("Basic realm=\"{r}\"")).ok())
            .unwrap_or_else(|| HeaderValue::from_static("Basic realm=\"Authentication Required\""));
        BasicAuth {
            credentials,
            challenge,
        }
    }

    /// Whether an `Authorization` value carries valid credentials.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        parse_basic(authorization)
            .is_some_and(|(user, password)| self.credentials.check(&user, &password))
    }
}

impl GatewayModule for BasicAuth {
    fn name(&self) -> &str {
        "basic-auth"
    }

    fn steps(&self) -> Steps {
        Steps::AFTER_MATCH
    }

    fn after_match(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<Flow> {
        // Exactly one Authorization header: with two, the gateway and an
        // upstream might each read a different one.
        let mut values = session
            .req_header()
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter();
        let admitted = match (values.next(), values.next()) {
            (Some(v), None) => self.admits(v.as_bytes()),
            _ => false,
        };
        if admitted {
            return Ok(Flow::Continue);
        }
        Ok(Flow::Answer(
            Answer::new(401)
                .with_header(http::header::WWW_AUTHENTICATE, self.challenge.clone())
                .with_body(Bytes::from_static(
                    b"401 Unauthorized: this route needs a user name and password\n",
                )),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_challenge() {
        // alice / password (SHA1).
        let creds = Credentials::parse("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=").unwrap();
        let auth = BasicAuth::new(Arc::new(creds), "Shop \"admin\"");
        assert!(auth.admits(b"Basic YWxpY2U6cGFzc3dvcmQ="));
        assert!(!auth.admits(b"Basic YWxpY2U6cGFzc3dvcmQx"));
        assert!(!auth.admits(b"Bearer YWxpY2U6cGFzc3dvcmQ="));
        assert_eq!(auth.challenge, "Basic realm=\"Authentication Required\"");
    }
}
