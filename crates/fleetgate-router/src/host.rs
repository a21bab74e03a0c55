//! The host a request is for: its Host header, else the authority of its
//! target (HTTP/2's `:authority`, or an HTTP/1.1 absolute-form request
//! line, which Pingora keeps verbatim as the raw path).

use pingora_http::RequestHeader;

/// The request's host: the Host header, else the target's authority (see
/// [`target_authority`]); empty when it has neither.
pub fn request_host(req: &RequestHeader) -> &str {
    if let Some(h) = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    {
        return h;
    }
    target_authority(req).unwrap_or("")
}

/// The authority of the request target, if it has one: from the parsed URI
/// (HTTP/2), else from an absolute-form raw target (HTTP/1.1, where the
/// parsed URI keeps only the path).
pub fn target_authority(req: &RequestHeader) -> Option<&str> {
    if let Some(a) = req.uri.authority() {
        return Some(a.as_str());
    }
    pingora_http::authority::raw_target_authority(req.raw_path())
        .authority()
        .and_then(|a| std::str::from_utf8(a).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_first_then_the_target_authority() {
        let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
        assert_eq!(request_host(&req), "");
        req.insert_header("host", "a.example").unwrap();
        assert_eq!(request_host(&req), "a.example");

        let absolute = RequestHeader::build("GET", b"http://b.example:8080/x", None).unwrap();
        assert_eq!(request_host(&absolute), "b.example:8080");
    }
}
