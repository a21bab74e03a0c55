//! The gateway's own responses: short, clear, and always with `Server`.

use bytes::Bytes;
use http::HeaderValue;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The `Server` header value on every response.
pub const SERVER: &str = "fleetgate";

/// Sets `Server: fleetgate` (a static value: nothing is copied).
pub fn set_server(resp: &mut ResponseHeader) -> pingora_core::Result<()> {
    resp.insert_header(http::header::SERVER, HeaderValue::from_static(SERVER))
}

/// The body the gateway sends for a status it generates itself.
pub fn body_for(status: u16) -> &'static str {
    match status {
        400 => "400 Bad Request: the request could not be parsed\n",
        404 => "404 Not Found: no route matches this host and path\n",
        502 => "502 Bad Gateway: the upstream endpoint failed\n",
        503 => "503 Service Unavailable: no healthy endpoint for this route\n",
        504 => "504 Gateway Timeout: the upstream endpoint did not answer in time\n",
        _ => "the gateway could not complete this request\n",
    }
}

/// Writes a complete plain-text response, with `Location` when given.
async fn write_text(
    session: &mut Session,
    status: u16,
    body: &'static str,
    location: Option<String>,
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(5))?;
    set_server(&mut resp)?;
    if let Some(location) = location {
        resp.insert_header("Location", location)?;
    }
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", body.len())?;
    resp.insert_header("Cache-Control", "no-store")?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
            .await?;
    }
    Ok(())
}

/// Writes a complete response with the gateway's own body for `status`.
pub async fn send(session: &mut Session, status: u16) -> pingora_core::Result<()> {
    write_text(session, status, body_for(status), None).await
}

/// Redirects to the same host (without its port: the HTTPS listener has its
/// own), path and query over HTTPS with a 308, which keeps the method and
/// body.
pub async fn send_https_redirect(session: &mut Session) -> pingora_core::Result<()> {
    let req = session.req_header();
    let mut buf = [0u8; 256];
    let host =
        fleetgate_ingress::normalize_request_host(crate::gateway::request_host(req), &mut buf);
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{target}");
    write_text(
        session,
        308,
        "308 Permanent Redirect: use HTTPS\n",
        Some(location),
    )
    .await
}
