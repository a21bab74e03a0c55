//! Response compression (gzip, brotli) for clients that accept it: off
//! unless the configuration turns it on, for every route or per Ingress.
//!
//! The work is Pingora's `ResponseCompression` module, which the gateway
//! installs switched off. For each proxied response the gateway decides,
//! from the response head, whether to switch it on: the route wants it,
//! the media type is one of the configured types, the declared length is
//! not below the minimum, the response is not already encoded, and its
//! `Cache-Control` does not say `no-transform`. It also picks the
//! coding itself (brotli before gzip, as configured) from the client's
//! `Accept-Encoding`, honouring `q=0` (Pingora alone would take the first
//! coding listed, whatever its weight), and hands Pingora only that one.

use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
};
use pingora_core::modules::http::compression::ResponseCompression;
use pingora_core::protocols::http::compression::Algorithm;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// The media types compressed unless configured otherwise (ingress-nginx's
/// default `gzip-types`, and `text/html`).
pub const DEFAULT_TYPES: [&str; 18] = [
    "text/html",
    "application/atom+xml",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/rss+xml",
    "application/vnd.ms-fontobject",
    "application/x-font-ttf",
    "application/x-web-app-manifest+json",
    "application/xhtml+xml",
    "application/xml",
    "font/opentype",
    "image/svg+xml",
    "image/x-icon",
    "text/css",
    "text/javascript",
    "text/plain",
    "text/x-component",
];

/// How responses are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// For routes that do not say (an Ingress's `fleetgate.io/compression`).
    pub enabled: bool,
    /// gzip level, 1 to 9; 0: no gzip.
    pub gzip_level: u32,
    /// brotli quality, 1 to 11; 0: no brotli.
    pub brotli_level: u32,
    /// Responses that declare a shorter body are sent as they are.
    pub min_length: u64,
    /// Media types compressed (lower-case, without parameters).
    pub types: Vec<Box<str>>,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        CompressionPolicy {
            enabled: false,
            gzip_level: 5,
            brotli_level: 4,
            min_length: 256,
            types: DEFAULT_TYPES.iter().map(|t| Box::from(*t)).collect(),
        }
    }
}

impl CompressionPolicy {
    /// Switches Pingora's compression on for this response when it should
    /// be (see the module docs). `route` is the matched route's choice.
    pub(crate) fn apply(&self, session: &mut Session, resp: &ResponseHeader, route: Option<bool>) {
        if !route.unwrap_or(self.enabled) || !self.compressible(resp) {
            return;
        }
        // An HTTP/1.0 client cannot read the chunked body a compressed
        // response becomes (nginx's gzip_http_version 1.1 too).
        if session.downstream_session.req_header().version < http::Version::HTTP_11 {
            return;
        }
        let accepted = session
            .downstream_session
            .req_header()
            .headers
            .get(ACCEPT_ENCODING)
            .map(|v| v.as_bytes());
        let Some((algorithm, coding, level)) = self.choose(accepted) else {
            return;
        };
        let Some(module) = session
            .downstream_modules_ctx
            .get_mut::<ResponseCompression>()
        else {
            return;
        };
        // An embedder's own compression settings are left as they are.
        if module.is_enabled() || !module.is_header_phase() {
            return;
        }
        let Ok(mut only) = RequestHeader::build("GET", b"/", Some(1)) else {
            return;
        };
        if only.insert_header(ACCEPT_ENCODING, coding).is_err() {
            return;
        }
        module.adjust_algorithm_level(algorithm, level);
        module.request_filter(&only);
    }

    /// Whether the response head allows compression.
    fn compressible(&self, resp: &ResponseHeader) -> bool {
        let status = resp.status.as_u16();
        if status < 200 || status == 204 || status == 304 || status == 206 {
            return false;
        }
        let h = &resp.headers;
        // A byte range's offsets are the uncompressed body's.
        if h.contains_key(CONTENT_ENCODING) || h.contains_key(http::header::CONTENT_RANGE) {
            return false;
        }
        let no_transform = h.get_all(CACHE_CONTROL).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
        });
        if no_transform {
            return false;
        }
        let short = h
            .get(CONTENT_LENGTH)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n < self.min_length);
        if short {
            return false;
        }
        let Some(media) = h
            .get(CONTENT_TYPE)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
        else {
            return false;
        };
        self.types.iter().any(|t| t.eq_ignore_ascii_case(media))
    }

    /// The coding to use for a client's `Accept-Encoding`: brotli, then
    /// gzip, each if configured and accepted with a weight above 0.
    fn choose(&self, accepted: Option<&[u8]>) -> Option<(Algorithm, &'static str, u32)> {
        let accepted = accepted?;
        if self.brotli_level > 0 && accepts(accepted, b"br") {
            return Some((Algorithm::Brotli, "br", self.brotli_level));
        }
        if self.gzip_level > 0 && accepts(accepted, b"gzip") {
            return Some((Algorithm::Gzip, "gzip", self.gzip_level));
        }
        None
    }
}

/// Whether an `Accept-Encoding` value accepts `coding` (named, or by `*`)
/// with a weight above 0.
fn accepts(header: &[u8], coding: &[u8]) -> bool {
    let mut named = None;
    let mut star = None;
    for item in header.split(|b| *b == b',') {
        let mut parts = item.split(|b| *b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        let weight_zero = parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|b| matches!(b, b'0' | b'.'))
        });
        if name.eq_ignore_ascii_case(coding) {
            named = Some(!weight_zero);
        } else if name == b"*" {
            star = Some(!weight_zero);
        }
    }
    named.or(star).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_weights() {
        assert!(accepts(b"gzip, deflate, br", b"br"));
        assert!(accepts(b"GZIP", b"gzip"));
        assert!(!accepts(b"gzip;q=0, br", b"gzip"));
        assert!(!accepts(b"br; q=0.0", b"br"));
        assert!(accepts(b"br;q=0.5", b"br"));
        assert!(accepts(b"*", b"gzip"));
        assert!(!accepts(b"*;q=0, br", b"gzip"));
        assert!(!accepts(b"identity", b"gzip"));
        assert!(!accepts(b"", b"gzip"));
    }

    #[test]
    fn brotli_before_gzip_unless_refused_or_off() {
        let p = CompressionPolicy::default();
        assert_eq!(p.choose(Some(b"gzip, br")).map(|c| c.1), Some("br"));
        assert_eq!(p.choose(Some(b"gzip, br;q=0")).map(|c| c.1), Some("gzip"));
        assert_eq!(p.choose(None), None);
        let gzip_only = CompressionPolicy {
            brotli_level: 0,
            ..CompressionPolicy::default()
        };
        assert_eq!(
            gzip_only.choose(Some(b"br, gzip")).map(|c| c.1),
            Some("gzip")
        );
    }

    fn response(headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn what_is_compressed() {
        let p = CompressionPolicy::default();
        assert!(p.compressible(&response(&[("content-type", "text/html; charset=utf-8")])));
        assert!(p.compressible(&response(&[
            ("content-type", "application/json"),
            ("content-length", "256"),
        ])));
        for headers in [
            vec![("content-type", "image/png")],
            vec![("content-type", "text/html"), ("content-length", "255")],
            vec![("content-type", "text/html"), ("content-encoding", "gzip")],
            vec![
                ("content-type", "text/html"),
                ("cache-control", "public, no-transform"),
            ],
            vec![],
        ] {
            assert!(!p.compressible(&response(&headers)), "{headers:?}");
        }
        let mut no_content = response(&[("content-type", "text/html")]);
        no_content.set_status(204).unwrap();
        assert!(!p.compressible(&no_content));
        let mut partial = response(&[
            ("content-type", "text/html"),
            ("content-range", "bytes 0-999/5000"),
        ]);
        partial.set_status(206).unwrap();
        assert!(!p.compressible(&partial));
    }
}
