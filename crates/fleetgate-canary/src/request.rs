//! The parts of a request a canary decision reads, looked up without copying.
//!
//! Deciding runs for every request, so these lookups borrow from the request
//! and never allocate: the first value of a header, the first `name=value`
//! pair of any `Cookie` header, the first `name=value` pair of the raw query.

use http::header::COOKIE;
use http::{HeaderMap, HeaderName};

/// The request, as far as canary decisions need it.
///
/// With Pingora, build it from the session's request header, which
/// dereferences to [`http::request::Parts`]:
/// `RequestView::from_parts(session.req_header())`.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw query string, without the `?`, as sent (not percent-decoded).
    pub query: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    /// A view of the headers and query of a request head.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        RequestView {
            headers: &parts.headers,
            query: parts.uri.query(),
        }
    }

    /// The first value of header `name`, as bytes.
    #[inline]
    pub fn header(&self, name: &HeaderName) -> Option<&'a [u8]> {
        self.headers.get(name).map(|v| v.as_bytes())
    }

    /// The value of the first cookie called `name` (case-sensitive) in any
    /// `Cookie` header, with surrounding spaces removed, quotes kept.
    #[inline]
    pub fn cookie(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers
            .get_all(COOKIE)
            .iter()
            .find_map(|line| cookie_in(line.as_bytes(), name))
    }

    /// The value of the first query parameter called `name`, compared and
    /// returned raw (not percent-decoded); a parameter without `=` has the
    /// empty value.
    #[inline]
    pub fn query_param(&self, name: &[u8]) -> Option<&'a [u8]> {
        query_in(self.query?.as_bytes(), name)
    }
}

/// The value of cookie `name` in one `Cookie` header line: the first pair
/// whose name (spaces trimmed) is `name`.
#[inline]
fn cookie_in<'h>(line: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    let mut rest = line;
    loop {
        let end = find_byte(rest, b';').unwrap_or(rest.len());
        let value = rest[..end]
            .trim_ascii_start()
            .strip_prefix(name)
            .and_then(|after| after.trim_ascii_start().strip_prefix(b"="));
        if let Some(value) = value {
            return Some(value.trim_ascii());
        }
        rest = rest.get(end + 1..)?;
    }
}

/// The value of parameter `name` in a raw query: the first `&`-separated
/// pair named exactly `name` (no `=` means the empty value).
#[inline]
fn query_in<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    let mut rest = query;
    loop {
        let end = find_byte(rest, b'&').unwrap_or(rest.len());
        if let Some(after) = rest[..end].strip_prefix(name) {
            if after.is_empty() {
                return Some(after);
            }
            if let Some(value) = after.strip_prefix(b"=") {
                return Some(value);
            }
        }
        rest = rest.get(end + 1..)?;
    }
}

/// The index of the first `needle` in `haystack`, eight bytes at a time:
/// header lines with many cookies are common, and a plain byte loop costs
/// about a nanosecond per byte.
#[inline]
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        // Bytes equal to `needle` become zero; the classic "has a zero
        // byte" test marks them (exactly, up to the first one).
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn header_is_case_insensitive_and_first_value() {
        let h = headers(&[("X-Canary", "one"), ("x-canary", "two")]);
        let view = RequestView {
            headers: &h,
            query: None,
        };
        let name = HeaderName::from_static("x-canary");
        assert_eq!(view.header(&name), Some(&b"one"[..]));
        assert_eq!(view.header(&HeaderName::from_static("other")), None);
    }

    #[test]
    fn cookies_are_scanned_across_headers() {
        let h = headers(&[
            ("cookie", "a=1; b = 2 ;flag"),
            ("cookie", "c=3;a=4;d=\"q\""),
        ]);
        let view = RequestView {
            headers: &h,
            query: None,
        };
        assert_eq!(view.cookie(b"a"), Some(&b"1"[..]));
        assert_eq!(view.cookie(b"b"), Some(&b"2"[..]));
        assert_eq!(view.cookie(b"c"), Some(&b"3"[..]));
        assert_eq!(view.cookie(b"d"), Some(&b"\"q\""[..]));
        assert_eq!(view.cookie(b"flag"), None);
        assert_eq!(view.cookie(b"A"), None);
        assert_eq!(view.cookie(b"e"), None);
    }

    #[test]
    fn query_params_are_raw_and_first_wins() {
        let h = HeaderMap::new();
        let view = RequestView {
            headers: &h,
            query: Some("x=1&env=gray&env=prod&flag&e%6Ev=z&empty="),
        };
        assert_eq!(view.query_param(b"env"), Some(&b"gray"[..]));
        assert_eq!(view.query_param(b"flag"), Some(&b""[..]));
        assert_eq!(view.query_param(b"empty"), Some(&b""[..]));
        assert_eq!(view.query_param(b"e%6Ev"), Some(&b"z"[..]));
        assert_eq!(view.query_param(b"missing"), None);
        let none = RequestView {
            headers: &h,
            query: None,
        };
        assert_eq!(none.query_param(b"env"), None);
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let text = b"abcdefgh;ijklmnop;qrstuvw\xff;;x";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let hay = &text[start..end];
                for needle in [b';', b'a', b'x', 0xff, 0x80, b'z'] {
                    let plain = hay.iter().position(|&b| b == needle);
                    assert_eq!(find_byte(hay, needle), plain, "{hay:?} {needle}");
                }
            }
        }
    }

    #[test]
    fn long_cookie_lines() {
        let mut line = String::new();
        for i in 0..200 {
            line.push_str(&format!("_ga_{i}=GA1.2.{i}; "));
        }
        line.push_str("canary=always");
        let h = headers(&[("cookie", &line)]);
        let view = RequestView {
            headers: &h,
            query: None,
        };
        assert_eq!(view.cookie(b"canary"), Some(&b"always"[..]));
        assert_eq!(view.cookie(b"_ga_7"), Some(&b"GA1.2.7"[..]));
        assert_eq!(view.cookie(b"_ga"), None);
    }

    #[test]
    fn from_parts_reads_the_uri_query() {
        let (parts, ()) = http::Request::builder()
            .uri("/p?env=gray")
            .header("x-a", "b")
            .body(())
            .unwrap()
            .into_parts();
        let view = RequestView::from_parts(&parts);
        assert_eq!(view.query, Some("env=gray"));
        assert_eq!(
            view.header(&HeaderName::from_static("x-a")),
            Some(&b"b"[..])
        );
    }
}
