//! Requests the gateway refuses before routing: what RFC 9112 forbids and
//! what only serves attacks.
//!
//! Pingora's parser already rejects malformed framing. These checks cover
//! what it lets through: an HTTP/1.1 request without `Host` (it would be
//! routed as host-less and forwarded without one), a `Host` that is no
//! host (`a, b`, `a/x`: two hosts, or a path), a request-target that is not
//! a path (`*`, `x`) or holds spaces or control bytes (Pingora would
//! percent-encode them and forward it), a transfer coding other than
//! `chunked` (501), and TRACE, which reflects the request (and any
//! credentials in it) back to the client; nginx refuses it too.

use http::{Method, Version};
use pingora_http::RequestHeader;

/// Why a request is refused: the status and a short reason for the log.
pub type Refusal = (u16, &'static str);

/// The refusal for `req`, if it must be refused.
pub fn refusal(req: &RequestHeader) -> Option<Refusal> {
    if req.method == Method::TRACE || req.method.as_str() == "TRACK" {
        return Some((405, "TRACE and TRACK are not allowed"));
    }
    if !req.uri.path().starts_with('/') || !origin_or_http_absolute(req.raw_path()) {
        return Some((400, "the request-target is not a path or an http(s) URL"));
    }
    // Pingora percent-encodes what it finds in a target; a client that
    // sent a space or a control byte sent something that is not a URI.
    if req.raw_path().iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Some((
            400,
            "the request-target holds a space or a control character",
        ));
    }
    if let Some(refusal) = transfer_coding_refusal(req) {
        return Some(refusal);
    }
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Some((400, "more than one Host header")),
        (Some(h), None) if !valid_host(h.as_bytes()) => {
            Some((400, "the Host header is not a host"))
        }
        (None, _)
            if req.version == Version::HTTP_11
                && fleetgate_router::target_authority(req).is_none() =>
        {
            Some((400, "an HTTP/1.1 request without Host"))
        }
        _ => None,
    }
}

/// Refuses a `Transfer-Encoding` other than `chunked` alone: the gateway
/// would forward the body dechunked but still compressed (`gzip, chunked`)
/// under a header that no longer says so. 501, as nginx answers.
fn transfer_coding_refusal(req: &RequestHeader) -> Option<Refusal> {
    let mut codings = req
        .headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => None,
        (Some(c), None) if c.eq_ignore_ascii_case(b"chunked") => None,
        _ => Some((501, "a transfer coding other than chunked")),
    }
}

/// What to do with the request's `Content-Length`: nothing (absent, or one
/// plain value), replace it by one value (the same length listed more than
/// once: `5, 5` or two equal lines, which an upstream might read
/// differently), or refuse the request (lengths that differ, or one that is
/// not a number below 2^63).
#[derive(Debug, PartialEq, Eq)]
pub enum ContentLength {
    /// Leave it as it is.
    Keep,
    /// Send this single value instead.
    Normalise(u64),
}

/// The body length `req` declares, once [`content_length`] has accepted
/// (and normalised) its `Content-Length`; `None` without one.
pub fn declared_length(req: &RequestHeader) -> Option<u64> {
    let value = req.headers.get(http::header::CONTENT_LENGTH)?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Checks the `Content-Length` header lines of `req` (RFC 9112 §6.3).
pub fn content_length(req: &RequestHeader) -> Result<ContentLength, Refusal> {
    let all = req.headers.get_all(http::header::CONTENT_LENGTH);
    let mut lines = all.iter();
    let (Some(first), second) = (lines.next(), lines.next()) else {
        return Ok(ContentLength::Keep);
    };
    let simple = second.is_none() && !first.as_bytes().contains(&b',');
    let mut length: Option<u64> = None;
    for value in all.iter() {
        for item in value.as_bytes().split(|b| *b == b',') {
            let item = item.trim_ascii();
            let parsed = std::str::from_utf8(item)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|n| *n <= i64::MAX as u64);
            match (parsed, length) {
                (None, _) => return Err((400, "Content-Length is not a length")),
                (Some(n), Some(l)) if n != l => {
                    return Err((400, "Content-Length lists different lengths"))
                }
                (Some(n), _) => length = Some(n),
            }
        }
    }
    match length {
        Some(n) if !simple => Ok(ContentLength::Normalise(n)),
        _ => Ok(ContentLength::Keep),
    }
}

/// Whether `target` is origin-form (`/path`) or absolute-form with an
/// `http` or `https` scheme. Pingora keeps anything else (`x`, `ftp://a/`)
/// verbatim for the wire while routing it as `/`.
fn origin_or_http_absolute(target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return true;
    }
    match pingora_http::authority::raw_target_authority(target) {
        pingora_http::authority::RawTargetAuthority::Absolute { scheme, .. } => {
            scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")
        }
        _ => false,
    }
}

/// Whether `host` is a host with an optional port: a DNS name or IPv4
/// address (letters, digits, `-`, `.`, `_`), or an IPv6 literal in
/// brackets, then `:digits`. Empty is allowed (RFC 9112: a request whose
/// target has no authority may send an empty Host).
fn valid_host(host: &[u8]) -> bool {
    let (name, port) = match host.first() {
        Some(b'[') => match host.iter().position(|b| *b == b']') {
            Some(end) => {
                let literal = &host[1..end];
                if !literal
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
                {
                    return false;
                }
                (&host[..=end], &host[end + 1..])
            }
            None => return false,
        },
        _ => match host.iter().position(|b| *b == b':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, &host[host.len()..]),
        },
    };
    let name_ok = name.starts_with(b"[")
        || name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let port_ok = port.is_empty()
        || (port.len() > 1 && port.len() <= 6 && port[1..].iter().all(u8::is_ascii_digit));
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, version: Version, hosts: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build(method, target.as_bytes(), None).unwrap();
        req.set_version(version);
        for h in hosts {
            req.append_header("Host", *h).unwrap();
        }
        req
    }

    #[test]
    fn good_requests_pass() {
        for host in [
            "example.com",
            "EXAMPLE.com:8080",
            "10.0.0.1:80",
            "[::1]:8443",
            "a_b.test",
            "",
        ] {
            let req = request("GET", "/x?y=1", Version::HTTP_11, &[host]);
            assert_eq!(refusal(&req), None, "{host:?}");
        }
        // HTTP/1.0 may omit Host; so may an absolute-form target.
        assert_eq!(refusal(&request("GET", "/", Version::HTTP_10, &[])), None);
        let absolute = request("GET", "http://example.com/x", Version::HTTP_11, &[]);
        assert_eq!(refusal(&absolute), None);
        let absolute = request("GET", "HTTPS://example.com/x", Version::HTTP_11, &[]);
        assert_eq!(refusal(&absolute), None);
    }

    #[test]
    fn targets_that_are_neither_path_nor_http_url_are_refused() {
        for target in ["x", "admin", "x/../admin", "..", "ftp://a/admin", "*"] {
            let req = request("GET", target, Version::HTTP_11, &["a"]);
            assert_eq!(refusal(&req).map(|r| r.0), Some(400), "{target}");
        }
    }

    #[test]
    fn hosts_that_are_no_host_are_refused() {
        for host in [
            "a, b",
            "a/x",
            "a b",
            "a@b",
            "a:",
            "a:80x",
            "a:1234567",
            "[::1",
            "[zz]",
        ] {
            let req = request("GET", "/", Version::HTTP_11, &[host]);
            assert_eq!(refusal(&req).map(|r| r.0), Some(400), "{host:?}");
        }
        let twice = request("GET", "/", Version::HTTP_11, &["a", "a"]);
        assert_eq!(refusal(&twice), Some((400, "more than one Host header")));
        let none = request("GET", "/", Version::HTTP_11, &[]);
        assert_eq!(
            refusal(&none),
            Some((400, "an HTTP/1.1 request without Host"))
        );
    }

    #[test]
    fn content_lengths_are_single_and_sane() {
        let with = |lines: &[&str]| {
            let mut req = request("POST", "/", Version::HTTP_11, &["a"]);
            for l in lines {
                req.append_header("Content-Length", *l).unwrap();
            }
            content_length(&req).map_err(|r| r.0)
        };
        assert_eq!(with(&[]), Ok(ContentLength::Keep));
        assert_eq!(with(&["42"]), Ok(ContentLength::Keep));
        assert_eq!(with(&["42, 42"]), Ok(ContentLength::Normalise(42)));
        assert_eq!(with(&["42", "42"]), Ok(ContentLength::Normalise(42)));
        assert_eq!(with(&["42, 43"]), Err(400));
        assert_eq!(with(&["42", "7"]), Err(400));
        assert_eq!(with(&["9223372036854775808"]), Err(400));
        assert_eq!(with(&["9223372036854775807"]), Ok(ContentLength::Keep));
        assert_eq!(with(&["-1"]), Err(400));
        assert_eq!(with(&["42,"]), Err(400));
    }

    #[test]
    fn trace_and_non_path_targets_are_refused() {
        let trace = request("TRACE", "/", Version::HTTP_11, &["a"]);
        assert_eq!(refusal(&trace).map(|r| r.0), Some(405));
        let star = request("OPTIONS", "*", Version::HTTP_11, &["a"]);
        assert_eq!(refusal(&star).map(|r| r.0), Some(400));
    }
}
