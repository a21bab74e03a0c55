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
        401 => "401 Unauthorized: the request is not authenticated\n",
        403 => "403 Forbidden: the request is not allowed\n",
        405 => "405 Method Not Allowed\n",
        408 => "408 Request Timeout: the request did not arrive in time\n",
        501 => "501 Not Implemented: only the chunked transfer coding is supported\n",
        413 => "413 Content Too Large: the request body is larger than allowed\n",
        429 => "429 Too Many Requests\n",
        431 => "431 Request Header Fields Too Large: the request head is larger than allowed\n",
        502 => "502 Bad Gateway: the upstream endpoint failed\n",
        503 => "503 Service Unavailable: no healthy endpoint for this route\n",
        504 => "504 Gateway Timeout: the upstream endpoint did not answer in time\n",
        _ => "the gateway could not complete this request\n",
    }
}

/// Ends the client connection after this response when the request body
/// has not been read to its end. Pingora would read (drain) the rest before
/// the next request, with no bound on how long that takes and with the
/// next head outside the head limits (see `client_guard`); a connection
/// that sent a body nobody wanted is not worth keeping. Called before the
/// response head is written, so it says `Connection: close`.
pub fn close_if_body_unread(session: &mut Session) {
    if !session.as_downstream_mut().is_body_done() {
        session.set_keepalive(None);
    }
}

/// Writes a complete plain-text response.
async fn write_text(
    session: &mut Session,
    status: u16,
    body: &'static str,
) -> pingora_core::Result<()> {
    write_response(session, status, Bytes::from_static(body.as_bytes()), &[]).await
}

/// Writes a complete plain-text response with extra `headers`.
async fn write_response(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(http::HeaderName, HeaderValue)],
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(5))?;
    set_server(&mut resp)?;
    for (name, value) in headers {
        resp.insert_header(name.clone(), value.clone())?;
    }
    // 204 and 304 have no body, and no length or type to go with one
    // (RFC 9110, 8.6 and 15.3.5).
    let bodiless = status == 204 || status == 304;
    if !bodiless {
        resp.insert_header("Content-Type", "text/plain; charset=utf-8")?;
        resp.insert_header("Content-Length", body.len())?;
    }
    resp.insert_header("Cache-Control", "no-store")?;
    close_if_body_unread(session);
    let head_only = session.req_header().method == http::Method::HEAD || bodiless;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes a complete response with the gateway's own body for `status`;
/// for a gRPC request, the gRPC status that stands for it.
pub async fn send(session: &mut Session, status: u16, grpc: bool) -> pingora_core::Result<()> {
    if grpc {
        return write_grpc_status(session, status).await;
    }
    write_text(session, status, body_for(status)).await
}

/// A complete HTTP/1.1 response with the gateway's own body for `status`
/// that closes the connection, as bytes, for answers written before
/// Pingora has a request (see [`crate::client_guard`]).
pub fn raw_closing_response(status: u16, reason: &str) -> Vec<u8> {
    let body = body_for(status);
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: {SERVER}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The body of the 503 for a request that found every endpoint at its
/// `max_requests_per_endpoint` for `queue_timeout`.
pub const OVERFLOW_BODY: &str =
    "503 Service Unavailable: every endpoint of this route is at its request limit\n";

/// Writes the 503 of an overflow (see [`OVERFLOW_BODY`]); a gRPC call gets
/// UNAVAILABLE.
pub async fn send_overflow(session: &mut Session, grpc: bool) -> pingora_core::Result<()> {
    if grpc {
        return write_grpc_status(session, 503).await;
    }
    write_text(session, 503, OVERFLOW_BODY).await
}

/// Whether `req` is a gRPC call (`content-type: application/grpc`, with or
/// without a `+proto`-style suffix).
pub fn is_grpc(req: &pingora_http::RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.len() >= 16
                && v[..16].eq_ignore_ascii_case(b"application/grpc")
                && matches!(v.get(16), None | Some(b'+') | Some(b';'))
        })
}

/// The gRPC status for an HTTP status the gateway would send, as gRPC's
/// HTTP-to-gRPC mapping has it: no route is UNIMPLEMENTED (12), an
/// upstream that is down, failing or slow is UNAVAILABLE (14), a request
/// that cannot be parsed is INTERNAL (13).
pub fn grpc_status_for(status: u16) -> (u8, &'static str) {
    match status {
        404 => (12, "no route for this service and method"),
        502 => (14, "the upstream endpoint failed"),
        503 => (14, "no healthy endpoint for this route"),
        504 => (14, "the upstream endpoint did not answer in time"),
        400 => (13, "the request could not be parsed"),
        401 => (16, "the request is not authenticated"),
        403 => (7, "the request is not allowed"),
        429 => (8, "too many requests"),
        413 => (8, "the request is larger than allowed"),
        _ => (2, "the gateway could not complete this call"),
    }
}

/// Answers a gRPC call with its status, so gRPC clients report it (an HTML
/// error page would be a protocol error to them): HTTP 200, no message,
/// `grpc-status` and `grpc-message` as trailers on HTTP/2. HTTP/1.1 has no
/// trailers here, so there they travel in the head (a Trailers-Only
/// response).
async fn write_grpc_status(session: &mut Session, status: u16) -> pingora_core::Result<()> {
    let (code, message) = grpc_status_for(status);
    let code = HeaderValue::from(u16::from(code));
    let message = HeaderValue::from_static(message);
    let mut resp = ResponseHeader::build(200, Some(4))?;
    set_server(&mut resp)?;
    resp.insert_header("Content-Type", "application/grpc")?;
    close_if_body_unread(session);
    if !session.is_http2() {
        resp.insert_header("grpc-status", code)?;
        resp.insert_header("grpc-message", message)?;
        return session.write_response_header(Box::new(resp), true).await;
    }
    session.write_response_header(Box::new(resp), false).await?;
    let mut trailers = http::HeaderMap::with_capacity(2);
    trailers.insert("grpc-status", code);
    trailers.insert("grpc-message", message);
    session
        .as_downstream_mut()
        .write_response_trailers(trailers)
        .await
}

/// Writes a module's answer: a gRPC status for a gRPC client's error, else
/// the answer's headers and plain-text body (the gateway's text for the
/// status when it has none).
pub async fn send_answer(
    session: &mut Session,
    answer: &crate::modules::Answer,
    grpc: bool,
) -> pingora_core::Result<()> {
    if grpc && answer.status >= 400 {
        return write_grpc_status(session, answer.status).await;
    }
    let body = answer
        .body
        .clone()
        .unwrap_or_else(|| Bytes::from_static(body_for(answer.status).as_bytes()));
    write_response(session, answer.status, body, &answer.headers).await
}
