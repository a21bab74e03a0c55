//! Ingress rule hosts and request Host headers.
//!
//! Rule hosts are validated once, at load, into a [`HostPattern`]; request
//! hosts are normalised per request (lower case, no port, no trailing dot)
//! without allocating, so the route table can hash them directly.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest DNS name we accept (RFC 1123).
const MAX_HOST_LEN: usize = 253;
/// Longest DNS label we accept (RFC 1123).
const MAX_LABEL_LEN: usize = 63;

/// The host part of an Ingress rule, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// A precise host such as `foo.bar.com`.
    Exact(String),
    /// `*.foo.com`, stored as the suffix `foo.com`: matches exactly one extra
    /// label in front of it.
    Wildcard(String),
    /// A rule without host: matches any host that no other rule names.
    Any,
}

/// Why a rule host was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHost {
    /// The host as written.
    pub host: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for InvalidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid host \"{}\": {}", self.host, self.reason)
    }
}

impl std::error::Error for InvalidHost {}

impl HostPattern {
    /// Validates an Ingress rule host. An empty string means "no host"
    /// ([`HostPattern::Any`]).
    pub fn parse(host: &str) -> Result<HostPattern, InvalidHost> {
        let invalid = |reason| InvalidHost {
            host: host.to_string(),
            reason,
        };
        if host.is_empty() {
            return Ok(HostPattern::Any);
        }
        if host == "*" {
            return Err(invalid(
                "a bare \"*\" is not allowed; omit the host to match every host",
            ));
        }
        if host.contains(':') && host.parse::<Ipv6Addr>().is_ok() {
            return Err(invalid("IP addresses are not allowed as Ingress hosts"));
        }
        if host.parse::<Ipv4Addr>().is_ok() {
            return Err(invalid("IP addresses are not allowed as Ingress hosts"));
        }
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        validate_dns_name(name).map_err(invalid)?;
        Ok(if wildcard {
            HostPattern::Wildcard(name.to_string())
        } else {
            HostPattern::Exact(name.to_string())
        })
    }

    /// Whether `request_host` (already normalised with
    /// [`normalize_request_host`]) is covered by this pattern.
    pub fn matches(&self, request_host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == request_host,
            HostPattern::Wildcard(suffix) => wildcard_suffix(request_host) == Some(suffix),
            HostPattern::Any => true,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

/// The part of `host` a wildcard rule is keyed by: everything after the first
/// label, provided that label is not empty.
pub(crate) fn wildcard_suffix(host: &str) -> Option<&str> {
    let dot = host.find('.')?;
    if dot == 0 || dot + 1 >= host.len() {
        return None;
    }
    Some(&host[dot + 1..])
}

fn validate_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty DNS name");
    }
    if name.len() > MAX_HOST_LEN {
        return Err("longer than 253 characters");
    }
    if name.contains('*') {
        return Err("a wildcard may only be one leading \"*.\" label");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty DNS label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("a DNS label is longer than 63 characters");
        }
        let bytes = label.as_bytes();
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err("must be a lower-case DNS name (a-z, 0-9, '-' and '.')");
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err("a DNS label must start and end with a letter or digit");
        }
    }
    Ok(())
}

/// Normalises a request's Host header (or `:authority`) for matching: strips
/// a `:port`, a trailing dot, and lower-cases. Returns `host` itself when it
/// is already normal; otherwise writes into `buf` and returns that. Hosts
/// longer than `buf` are returned un-lowered (they cannot match a valid rule
/// host anyway, as rule hosts are at most 253 bytes).
pub fn normalize_request_host<'a>(host: &'a str, buf: &'a mut [u8; 256]) -> &'a str {
    let host = strip_request_host(host);
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return host;
    }
    let len = host.len();
    if len > buf.len() {
        return host;
    }
    for (dst, src) in buf.iter_mut().zip(host.bytes()) {
        *dst = src.to_ascii_lowercase();
    }
    // ASCII lower-casing keeps UTF-8 valid; fall back to the raw host rather
    // than panic should that ever not hold.
    match std::str::from_utf8(&buf[..len]) {
        Ok(lowered) => lowered,
        Err(_) => host,
    }
}

/// A request's host without its `:port` and trailing dot (not lower-cased).
#[inline]
pub(crate) fn strip_request_host(host: &str) -> &str {
    let host = strip_port(host);
    host.strip_suffix('.').unwrap_or(host)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: "[::1]:8080"
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(colon) if host[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(h: &str) -> String {
        let mut buf = [0u8; 256];
        normalize_request_host(h, &mut buf).to_string()
    }

    #[test]
    fn parses_exact_wildcard_and_any() {
        assert_eq!(
            HostPattern::parse("foo.bar.com").unwrap(),
            HostPattern::Exact("foo.bar.com".into())
        );
        assert_eq!(
            HostPattern::parse("*.foo.com").unwrap(),
            HostPattern::Wildcard("foo.com".into())
        );
        assert_eq!(HostPattern::parse("").unwrap(), HostPattern::Any);
    }

    #[test]
    fn rejects_invalid_hosts() {
        for bad in [
            "*",
            "1.2.3.4",
            "::1",
            "Foo.com",
            "foo..com",
            "*.*.foo.com",
            "foo.*.com",
            "-foo.com",
            "foo-.com",
            "foo_bar.com",
            "foo.com:80",
            ".foo.com",
            "*.",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be invalid");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(HostPattern::parse(&long_label).is_err());
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        let w = HostPattern::parse("*.foo.com").unwrap();
        assert!(w.matches("bar.foo.com"));
        assert!(!w.matches("baz.bar.foo.com"));
        assert!(!w.matches("foo.com"));
        assert!(!w.matches(".foo.com"));
    }

    #[test]
    fn request_hosts_are_normalised() {
        assert_eq!(norm("Example.COM:8080"), "example.com");
        assert_eq!(norm("example.com."), "example.com");
        assert_eq!(norm("example.com"), "example.com");
        assert_eq!(norm("[::1]:8080"), "[::1]");
        assert_eq!(norm("EXAMPLE.com.:443"), "example.com");
    }
}
