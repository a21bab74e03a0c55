//! Request path normalisation before matching.
//!
//! Ingress paths are matched on the path as written. Without normalisation
//! `/x/../admin`, `/%61dmin` and `//admin` all miss an `Exact /admin` rule
//! that an upstream would then serve as `/admin`, and `/api/../admin` goes
//! to the `/api` Service; a rule meant to fence off a path does not. nginx
//! (and so ingress-nginx) normalises before matching; so does this, when
//! asked, following RFC 3986: percent-encoded unreserved characters are
//! decoded (`%61` is `a`, `%2E` is `.`; `%2F` stays, it is not a `/`; a
//! `%` that starts no escape becomes `%25`),
//! then `.` and `..` segments are removed (section 5.2.4), and optionally
//! runs of `/` are merged. A `..` that would climb above the root is an
//! error: such a request is refused, not quietly clamped.
//!
//! Paths that need none of it (no `%`, no `.` segment, no `//`) are
//! returned as they are, without allocating.

use std::borrow::Cow;

/// How request paths are normalised before they are matched against
/// Ingress paths. The upstream always gets the path as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathNormalization {
    /// Matched as written (`"none"`).
    None,
    /// RFC 3986: unreserved percent-escapes decoded, `.` and `..` segments
    /// removed (`..` above the root is refused with 400), and runs of `/`
    /// merged when `merge_slashes` (`"rfc3986"`, the default).
    Rfc3986 {
        /// Whether `//` counts as `/` (default true, as nginx).
        merge_slashes: bool,
    },
}

impl Default for PathNormalization {
    fn default() -> Self {
        PathNormalization::Rfc3986 {
            merge_slashes: true,
        }
    }
}

impl PathNormalization {
    /// The path to match `path` with (borrowed when nothing changes).
    #[inline]
    pub fn apply<'a>(&self, path: &'a str) -> Result<Cow<'a, str>, PathError> {
        match *self {
            PathNormalization::None => Ok(Cow::Borrowed(path)),
            PathNormalization::Rfc3986 { merge_slashes } => normalize_path(path, merge_slashes),
        }
    }
}

/// What normalising a path can fail on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A `..` segment climbs above the root.
    AboveRoot,
    /// The path does not start with `/`.
    NotAbsolute,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathError::AboveRoot => "a \"..\" segment climbs above the root",
            PathError::NotAbsolute => "the path does not start with /",
        })
    }
}

impl std::error::Error for PathError {}

/// Normalises `path` (the path only, no query) as the module documentation
/// says, merging runs of `/` when `merge_slashes`.
pub fn normalize_path(path: &str, merge_slashes: bool) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if !needs_work(path.as_bytes(), merge_slashes) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    // Segments after the leading "/"; a trailing "/" leaves an empty last
    // segment, which keeps it.
    let body = &decoded[1..];
    let count = body.split('/').count();
    for (i, segment) in body.split('/').enumerate() {
        let last = i + 1 == count;
        match segment {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                if last {
                    segments.push("");
                }
            }
            "" if merge_slashes && !last => {}
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Whether `path` has anything normalisation would change.
fn needs_work(path: &[u8], merge_slashes: bool) -> bool {
    path.contains(&b'%')
        || path.windows(2).any(|w| {
            (w[0] == b'/' && w[1] == b'.') || (merge_slashes && w[0] == b'/' && w[1] == b'/')
        })
}

/// Decodes `%XX` where it stands for an unreserved character; every other
/// escape is kept, its hex digits in upper case, and a `%` that starts no
/// escape becomes `%25`, so that decoding cannot make a new escape out of
/// its neighbours (`%%61e` would otherwise turn into `%ae`) and a second
/// normalisation changes nothing.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = h << 4 | l;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
                continue;
            }
        }
        if b == b'%' {
            out.push_str("%25");
            i += 1;
            continue;
        }
        // The path is ASCII in a valid request target; a multi-byte
        // character is copied whole.
        let ch_len = utf8_len(b);
        out.push_str(&path[i..(i + ch_len).min(path.len())]);
        i += ch_len;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> Result<String, PathError> {
        normalize_path(path, true).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for p in ["/", "/admin", "/a/b.c/", "/a.b"] {
            assert!(
                matches!(normalize_path(p, true), Ok(Cow::Borrowed(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn dot_segments_and_escapes_are_resolved() {
        assert_eq!(n("/x/../admin").unwrap(), "/admin");
        assert_eq!(n("/api/../admin").unwrap(), "/admin");
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
        assert_eq!(n("//admin").unwrap(), "/admin");
        assert_eq!(n("/a/./b/").unwrap(), "/a/b/");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/.").unwrap(), "/a/");
        assert_eq!(n("/%2e%2E/").unwrap_err(), PathError::AboveRoot);
        assert_eq!(n("/a/%2e%2e/b").unwrap(), "/b");
        assert_eq!(
            n("/a%2fb").unwrap(),
            "/a%2Fb",
            "an encoded slash is not a slash"
        );
        assert_eq!(n("/a%").unwrap(), "/a%25");
        assert_eq!(n("/a%zz").unwrap(), "/a%25zz");
        assert_eq!(
            n("/x%%61e").unwrap(),
            "/x%25ae",
            "no new escape from decoding"
        );
        assert_eq!(n("/x%25ae").unwrap(), "/x%25ae");
        assert_eq!(n("/..").unwrap_err(), PathError::AboveRoot);
        assert_eq!(n("/a/../..").unwrap_err(), PathError::AboveRoot);
        assert_eq!(n("/.").unwrap(), "/");
        assert_eq!(n("admin").unwrap_err(), PathError::NotAbsolute);
    }

    #[test]
    fn slashes_are_kept_unless_merging() {
        assert_eq!(normalize_path("//a//b", false).unwrap(), "//a//b");
        assert_eq!(normalize_path("//a//b", true).unwrap(), "/a/b");
        assert_eq!(normalize_path("/a//../b", false).unwrap(), "/a/b");
    }
}
