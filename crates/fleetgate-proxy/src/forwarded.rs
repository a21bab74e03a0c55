//! The `X-Forwarded-*` headers the gateway adds to upstream requests.
//!
//! Upstreams behind an edge gateway see the gateway's address, so they learn
//! the client's from `X-Forwarded-For` (appended to, as every hop does),
//! `X-Real-IP` and `X-Forwarded-Proto`, the headers ingress-nginx sets.
//! `X-Forwarded-Proto` is the scheme the client really used. This
//! runs on every proxied request: the address is formatted on the stack and
//! copied once, shared by `X-Real-IP` and (without earlier hops)
//! `X-Forwarded-For`; the names and the constant value are static.

use std::io::Write as _;

use http::header::{HeaderName, HeaderValue};
use pingora_core::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;

use crate::edge::Scheme;

/// `x-forwarded-for`, for lookups.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Longest textual IP address (an IPv4-mapped IPv6 address) plus slack.
const IP_TEXT_MAX: usize = 48;

/// Adds the client's address and the scheme to `req`. `X-Forwarded-Proto`
/// is always the scheme the gateway judged (see the `edge` module): a
/// client cannot pass its own.
pub(crate) fn add_headers(
    session: &Session,
    req: &mut RequestHeader,
    scheme: Scheme,
) -> Result<()> {
    if let Some(addr) = session.client_addr().and_then(|a| a.as_inet()) {
        let mut text = [0u8; IP_TEXT_MAX];
        let mut rest = &mut text[..];
        write!(rest, "{}", addr.ip()).map_err(|_| invalid("client address"))?;
        let len = IP_TEXT_MAX - rest.len();
        let ip = &text[..len];
        // One allocation for the address, shared by both headers (a
        // `HeaderValue` over `Bytes` clones by reference count).
        let real_ip = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(ip))
            .map_err(|_| invalid("X-Real-IP"))?;
        // Every earlier hop's list, in order (a proxy may have added its
        // own line rather than appended to the client's), then this one.
        let prior = req.headers.get_all(X_FORWARDED_FOR);
        let forwarded_for = if prior.iter().next().is_none() {
            Ok(real_ip.clone())
        } else {
            let len: usize = prior.iter().map(|v| v.len() + 2).sum();
            let mut v = Vec::with_capacity(len + ip.len());
            for value in prior.iter() {
                v.extend_from_slice(value.as_bytes());
                v.extend_from_slice(b", ");
            }
            v.extend_from_slice(ip);
            HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
        }
        .map_err(|_| invalid("X-Forwarded-For"))?;
        req.insert_header("X-Forwarded-For", forwarded_for)?;
        req.insert_header("X-Real-IP", real_ip)?;
    }
    req.insert_header(
        "X-Forwarded-Proto",
        HeaderValue::from_static(scheme.as_str()),
    )?;
    Ok(())
}

/// Removes the forwarding headers a client may have written itself
/// (`[gateway] forwarded_headers = "overwrite"`, for peers that are not
/// trusted proxies), so that upstreams see only the gateway's values.
pub(crate) fn drop_client_values(req: &mut RequestHeader) {
    for name in [
        X_FORWARDED_FOR,
        HeaderName::from_static("x-forwarded-host"),
        HeaderName::from_static("x-forwarded-port"),
        http::header::FORWARDED,
        HeaderName::from_static("x-real-ip"),
    ] {
        req.remove_header(&name);
    }
}

fn invalid(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("cannot build {what}"))
}
