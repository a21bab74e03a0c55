//! External authentication (`auth-url`): before a request goes upstream,
//! the gateway sends its head (without the body) to an authentication
//! service and does what the answer says (see
//! [`fleetgate_auth::forward`]): 2xx lets it through, with the headers
//! the route lists copied from the answer to the upstream request (and
//! the client's own copies of them removed, so a client cannot pose as
//! someone the service vouched for); 401 goes back to the client with the
//! service's `WWW-Authenticate`, or becomes a 302 to the sign-in page;
//! 403 goes back; any other status, or no answer in time, is a 500.
//!
//! The service gets the client's headers (not those that frame or route
//! the message) plus what ingress-nginx sends: `X-Original-URL`,
//! `X-Original-Method`, `X-Sent-From`, `X-Real-IP`, `X-Forwarded-For`,
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Auth-Request-Redirect`.
//! Connections to it are pooled (Pingora's connector). A host name in the
//! URL is resolved through the system resolver and kept for a while
//! ([`crate::resolver`]).

use std::time::Duration;

use bytes::Bytes;
use fleetgate_auth::forward::{RequestVars, UrlTemplate, Verdict};
use http::{HeaderName, HeaderValue, Method, Uri};
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use super::{Answer, Flow, GatewayModule, Steps};
use crate::gateway::RequestCtx;
use crate::resolver::Resolver;

/// How long the service has to accept a connection.
pub const AUTH_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the service has between two reads or writes of a check.
pub const AUTH_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a check may take in all (resolving, connecting, answering).
pub const AUTH_DEADLINE: Duration = Duration::from_secs(15);
/// How long an idle connection to the service is kept.
const AUTH_IDLE: Duration = Duration::from_secs(60);
/// The most of an answer's body that is read (and thrown away) to keep
/// the connection for the next check; a longer body closes it.
const MAX_DRAINED_BODY: usize = 64 * 1024;

/// Request headers never passed to the service: they frame or route the
/// client's message, which is not the one the service gets.
const NOT_PASSED: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "http2-settings",
];

/// What a route's external authentication asks for, as text (from the
/// Ingress annotations).
#[derive(Debug, Clone, Default)]
pub struct ForwardAuthSettings {
    /// The service's URL, with nginx variables (`$host`, ...).
    pub url: String,
    /// The method of the check.
    pub method: String,
    /// The sign-in URL a 401 sends browsers to, if any (with variables).
    pub signin: Option<String>,
    /// Headers of a 2xx answer copied to the upstream request.
    pub response_headers: Vec<String>,
    /// `X-Auth-Request-Redirect`: `$request_uri`, or a fixed value.
    pub request_redirect: String,
}

/// Headers a check let through, for the upstream request (kept in the
/// request's context between the two steps).
#[derive(Debug, Clone, Default)]
struct Granted {
    headers: Vec<(HeaderName, Option<HeaderValue>)>,
    cookies: Vec<HeaderValue>,
}

/// The external authentication of a route.
pub struct ForwardAuth {
    url: UrlTemplate,
    method: Method,
    signin: Option<UrlTemplate>,
    copy: Vec<HeaderName>,
    request_redirect: Option<HeaderValue>,
    connector: Connector,
    /// Resolved host names.
    resolver: Resolver,
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth")
            .field("url", &self.url)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl ForwardAuth {
    /// Builds the module; `Err` says which setting cannot be used (the
    /// configuration loader checks them first).
    pub fn new(settings: &ForwardAuthSettings) -> std::result::Result<Self, String> {
        let url = UrlTemplate::parse(&settings.url)?;
        let method = Method::from_bytes(settings.method.as_bytes())
            .map_err(|_| format!("{:?} is not a method", settings.method))?;
        let signin = settings
            .signin
            .as_deref()
            .map(UrlTemplate::parse)
            .transpose()?;
        let copy = settings
            .response_headers
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| format!("{n:?} is not a header name"))
            })
            .collect::<std::result::Result<_, _>>()?;
        let request_redirect = if settings.request_redirect == "$request_uri" {
            None
        } else {
            Some(
                HeaderValue::from_str(&settings.request_redirect)
                    .map_err(|_| format!("{:?} cannot be a header", settings.request_redirect))?,
            )
        };
        Ok(ForwardAuth {
            url,
            method,
            signin,
            copy,
            request_redirect,
            connector: Connector::new(None),
            resolver: Resolver::new(),
        })
    }

    /// Asks the service about the request (see the module docs), within
    /// [`AUTH_DEADLINE`] in all.
    async fn ask(&self, session: &Session, vars: &RequestVars<'_>, url: &str) -> Result<Checked> {
        let uri: Uri = url
            .parse()
            .map_err(|_| Error::explain(ErrorType::InternalError, "auth-url is not a URL"))?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = self.resolver.resolve(host, port).await?;
        let mut peer = HttpPeer::new(addr, tls, host.to_string());
        peer.options.connection_timeout = Some(AUTH_CONNECT_TIMEOUT);
        peer.options.total_connection_timeout = Some(AUTH_CONNECT_TIMEOUT);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = uri.authority().map_or(host, |a| a.as_str());
        let check = self.check_head(session, vars, path, authority)?;
        // A pooled connection the service closed while idle fails at once:
        // the check goes again on another (as Pingora's proxy does).
        let mut tries = 0;
        loop {
            tries += 1;
            let (mut http, reused) = self.connector.get_http_session(&peer).await?;
            http.set_read_timeout(Some(AUTH_IO_TIMEOUT));
            http.set_write_timeout(Some(AUTH_IO_TIMEOUT));
            match self.exchange(&mut http, check.clone()).await {
                Ok(checked) => {
                    if checked.reusable && http.response_done() {
                        self.connector
                            .release_http_session(http, &peer, Some(AUTH_IDLE))
                            .await;
                    } else {
                        http.shutdown().await;
                    }
                    return Ok(checked);
                }
                Err(e)
                    if reused
                        && tries < 3
                        && !matches!(
                            e.etype(),
                            ErrorType::ReadTimedout | ErrorType::WriteTimedout
                        ) =>
                {
                    log::debug!(
                        "a pooled connection to the auth service failed ({e}); trying a new one"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The head of the check for this request.
    fn check_head(
        &self,
        session: &Session,
        vars: &RequestVars<'_>,
        path: &str,
        authority: &str,
    ) -> Result<Box<RequestHeader>> {
        let client = session.req_header();
        let mut check = RequestHeader::build(self.method.clone(), path.as_bytes(), None)?;
        for (name, value) in &client.headers {
            if !NOT_PASSED.contains(&name.as_str()) {
                check.append_header(name.clone(), value.clone())?;
            }
        }
        check.insert_header(http::header::HOST, authority)?;
        let original = format!("{}://{}{}", vars.scheme, vars.http_host, vars.request_uri);
        check.insert_header("X-Original-URL", original.as_str())?;
        check.insert_header("X-Original-Method", client.method.as_str())?;
        check.insert_header("X-Sent-From", "fleetgate")?;
        check.insert_header("X-Real-IP", vars.remote_addr)?;
        // Every earlier hop's list, in order, then the client.
        let mut forwarded_for = String::new();
        for prior in client.headers.get_all("x-forwarded-for") {
            forwarded_for.push_str(&String::from_utf8_lossy(prior.as_bytes()));
            forwarded_for.push_str(", ");
        }
        forwarded_for.push_str(vars.remote_addr);
        check.insert_header("X-Forwarded-For", forwarded_for.as_str())?;
        check.insert_header("X-Forwarded-Proto", vars.scheme)?;
        check.insert_header("X-Forwarded-Host", vars.http_host)?;
        match &self.request_redirect {
            Some(v) => check.insert_header("X-Auth-Request-Redirect", v.clone())?,
            None => check.insert_header("X-Auth-Request-Redirect", vars.request_uri)?,
        }
        Ok(Box::new(check))
    }

    /// Sends the check on `http` and reads the answer.
    async fn exchange(
        &self,
        http: &mut pingora_core::protocols::http::client::HttpSession,
        check: Box<RequestHeader>,
    ) -> Result<Checked> {
        http.write_request_header(check).await?;
        http.finish_request_body().await?;
        http.read_response_header().await?;
        let head = http
            .response_header()
            .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "no response head"))?;
        let status = head.status.as_u16();
        let allowed = Verdict::of(status) == Verdict::Allow;
        let checked = Checked {
            status,
            challenge: head.headers.get(http::header::WWW_AUTHENTICATE).cloned(),
            granted: if allowed {
                self.copy
                    .iter()
                    .map(|name| (name.clone(), head.headers.get(name).cloned()))
                    .collect()
            } else {
                Vec::new()
            },
            cookies: head
                .headers
                .get_all(http::header::SET_COOKIE)
                .iter()
                .cloned()
                .collect(),
            reusable: true,
        };
        // Drain a short body so the connection can serve the next check.
        let mut drained = 0usize;
        while let Some(chunk) = http.read_response_body().await? {
            drained += chunk.len();
            if drained > MAX_DRAINED_BODY {
                return Ok(Checked {
                    reusable: false,
                    ..checked
                });
            }
        }
        Ok(checked)
    }
}

/// What the service answered.
#[derive(Debug, Clone)]
struct Checked {
    status: u16,
    challenge: Option<HeaderValue>,
    granted: Vec<(HeaderName, Option<HeaderValue>)>,
    cookies: Vec<HeaderValue>,
    reusable: bool,
}

impl GatewayModule for ForwardAuth {
    fn name(&self) -> &str {
        "forward-auth"
    }

    fn steps(&self) -> Steps {
        // The service's cookies go to the client with the response.
        let mut steps = Steps::ACCESS | Steps::RESPONSE;
        if !self.copy.is_empty() {
            steps = steps | Steps::UPSTREAM_REQUEST;
        }
        steps
    }

    fn access<'a>(
        &'a self,
        session: &'a mut Session,
        ctx: &'a mut RequestCtx,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Flow>> + Send + 'a>> {
        Box::pin(async move {
            let req = session.req_header();
            let http_host = fleetgate_router::request_host(req).to_string();
            let mut host_buf = [0u8; 256];
            let host =
                fleetgate_ingress::normalize_request_host(&http_host, &mut host_buf).to_string();
            let request_uri = req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string());
            let edge_policy = ctx.snapshot.as_deref().map(|s| &s.edge);
            let remote_addr =
                crate::edge::client_address(session, ctx.origin.peer_trusted, edge_policy)
                    .map(|ip| ip.to_string())
                    .unwrap_or_default();
            let vars = RequestVars {
                host: &host,
                http_host: &http_host,
                scheme: ctx.origin.scheme.as_str(),
                request_uri: &request_uri,
                remote_addr: &remote_addr,
            };
            let mut url = String::new();
            self.url.expand(&vars, &mut url);
            let asked = tokio::time::timeout(AUTH_DEADLINE, self.ask(session, &vars, &url)).await;
            let checked = match asked {
                Ok(Ok(checked)) => checked,
                Ok(Err(e)) => {
                    log::warn!("external authentication at {url} failed: {e}");
                    return Ok(Flow::Answer(Answer::new(500)));
                }
                Err(_) => {
                    log::warn!("external authentication at {url} took more than {AUTH_DEADLINE:?}");
                    return Ok(Flow::Answer(Answer::new(500)));
                }
            };
            let status = checked.status;
            Ok(match Verdict::of(status) {
                Verdict::Allow => {
                    if !checked.granted.is_empty() || !checked.cookies.is_empty() {
                        ctx.extensions.insert(Granted {
                            headers: checked.granted,
                            cookies: checked.cookies,
                        });
                    }
                    Flow::Continue
                }
                Verdict::Unauthenticated => match &self.signin {
                    Some(signin) => {
                        let mut location = String::new();
                        signin.expand(&vars, &mut location);
                        match HeaderValue::from_str(&location) {
                            Ok(v) => {
                                let mut answer = Answer::new(302)
                                    .with_header(http::header::LOCATION, v)
                                    .with_body(Bytes::from(format!("302 sign in at {location}\n")));
                                for c in checked.cookies {
                                    answer = answer.with_header(http::header::SET_COOKIE, c);
                                }
                                Flow::Answer(answer)
                            }
                            Err(_) => Flow::Answer(Answer::new(500)),
                        }
                    }
                    None => {
                        let mut answer = Answer::new(401);
                        if let Some(c) = checked.challenge {
                            answer = answer.with_header(http::header::WWW_AUTHENTICATE, c);
                        }
                        Flow::Answer(answer)
                    }
                },
                Verdict::Forbidden => Flow::Answer(Answer::new(403)),
                Verdict::Failed => {
                    log::warn!(
                        "external authentication at {url} answered {status}; the request gets 500"
                    );
                    Flow::Answer(Answer::new(500))
                }
            })
        })
    }

    fn upstream_request(
        &self,
        _session: &Session,
        request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The client's own copies go, whether the service sent one or not,
        // and so do spellings with `_` for `-`, which many application
        // servers read as the same header.
        let smuggled: Vec<HeaderName> = request
            .headers
            .keys()
            .filter(|name| {
                let n = name.as_str();
                n.contains('_')
                    && self.copy.iter().any(|c| {
                        let c = c.as_str();
                        c.len() == n.len()
                            && c.bytes()
                                .zip(n.bytes())
                                .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
                    })
            })
            .cloned()
            .collect();
        for name in smuggled.iter().chain(&self.copy) {
            request.remove_header(name);
        }
        if let Some(granted) = ctx.extensions.get::<Granted>() {
            for (name, value) in &granted.headers {
                if let Some(v) = value {
                    request.insert_header(name.clone(), v.clone())?;
                }
            }
        }
        Ok(())
    }

    fn response(
        &self,
        _session: &Session,
        response: &mut pingora_http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(granted) = ctx.extensions.get::<Granted>() {
            for c in &granted.cookies {
                response.append_header(http::header::SET_COOKIE, c.clone())?;
            }
        }
        Ok(())
    }
}
