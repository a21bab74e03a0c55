//! The gateway's own responses: short, clear, and always with `Server`.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The `Server` header value on every response.
pub const SERVER: &str = "fleetgate";

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

/// Writes a complete response with the gateway's own body for `status`.
pub async fn send(session: &mut Session, status: u16) -> pingora_core::Result<()> {
    let body = body_for(status);
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header("Server", SERVER)?;
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

/// Redirects to the same host, path and query over HTTPS with a 308 (the
/// method and body are kept by the client).
pub async fn send_https_redirect(session: &mut Session) -> pingora_core::Result<()> {
    let req = session.req_header();
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    // Drop an explicit port: the HTTPS listener has its own.
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{target}");
    let body = "308 Permanent Redirect: use HTTPS\n";
    let mut resp = ResponseHeader::build(308, Some(5))?;
    resp.insert_header("Server", SERVER)?;
    resp.insert_header("Location", location)?;
    resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    resp.insert_header("Content-Length", body.len())?;
    let head_only = req.method == http::Method::HEAD;
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
