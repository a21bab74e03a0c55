//! Who may use the admin API.
//!
//! With `[admin] token` set, every request carries `Authorization: Bearer
//! <token>` (the scheme in any case, as RFC 9110 says); the token is
//! compared in constant time, so response timing tells nothing about how
//! much of a guess was right. Without a token the API listens on loopback
//! only, and then a web page the operator visits could still reach it
//! through DNS rebinding (a name that first resolves to the page's server,
//! then to 127.0.0.1): such requests carry the page's host name in `Host`,
//! so a token-less API answers only requests whose `Host` (or absolute-form
//! target) is an IP address or `localhost`; a name can be rebound, an
//! address literal cannot.

use pingora_http::RequestHeader;
use subtle::ConstantTimeEq;

/// Whether `req` carries `token` as its bearer token.
pub fn bearer_matches(req: &RequestHeader, token: &str) -> bool {
    let Some(value) = req.headers.get(http::header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, credentials)) = value
        .iter()
        .position(|&b| b == b' ')
        .map(|i| (&value[..i], &value[i + 1..]))
    else {
        return false;
    };
    let credentials = credentials.trim_ascii();
    scheme.eq_ignore_ascii_case(b"bearer") && bool::from(credentials.ct_eq(token.as_bytes()))
}

/// Whether `req` comes from a web page of another site (a browser says so
/// in `Origin` or `Sec-Fetch-Site`): such a page could make a logged-in
/// operator's browser post to the admin API, so requests that change
/// anything are refused then. Command-line clients send neither header.
pub fn from_another_site(req: &RequestHeader) -> bool {
    let fetch_site = req
        .headers
        .get("sec-fetch-site")
        .is_some_and(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"));
    let foreign_origin = req.headers.get(http::header::ORIGIN).is_some_and(|origin| {
        let origin = origin.to_str().unwrap_or_default();
        let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        !authority_is_loopback(host.trim_end_matches('/'))
    });
    fetch_site || foreign_origin
}

/// Whether `authority` (`host[:port]`) is `localhost` or a loopback
/// address.
fn authority_is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `req`'s `Host` names the loopback API by address or as
/// `localhost` (or is absent, as HTTP/1.0 allows), not by a name a DNS
/// rebinding page controls.
pub fn host_is_local(req: &RequestHeader) -> bool {
    let host = match req.headers.get(http::header::HOST) {
        Some(host) => host.as_bytes(),
        // An absolute-form target names its host itself.
        None => match pingora_http::authority::raw_target_authority(req.raw_path()).authority() {
            Some(authority) => authority,
            None => return true,
        },
    };
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/status", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn pages_of_other_sites_are_told_apart_from_command_line_clients() {
        assert!(!from_another_site(&req(&[])), "curl sends neither header");
        for local in [
            "http://127.0.0.1:9901",
            "http://localhost:9901",
            "http://[::1]:9901",
        ] {
            assert!(!from_another_site(&req(&[("Origin", local)])), "{local}");
        }
        assert!(!from_another_site(&req(&[(
            "Sec-Fetch-Site",
            "same-origin"
        )])));
        assert!(from_another_site(&req(&[(
            "Origin",
            "https://evil.example"
        )])));
        assert!(from_another_site(&req(&[("Origin", "http://192.0.2.1")])));
        assert!(from_another_site(&req(&[("Origin", "null")])));
        assert!(from_another_site(&req(&[("Sec-Fetch-Site", "cross-site")])));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let token = "0123456789abcdef";
        for ok in [
            "Bearer 0123456789abcdef",
            "bearer 0123456789abcdef",
            "BEARER  0123456789abcdef",
        ] {
            assert!(
                bearer_matches(&req(&[("Authorization", ok)]), token),
                "{ok}"
            );
        }
        for bad in [
            "Bearer 0123456789abcde",
            "Bearer 0123456789abcdefg",
            "Basic 0123456789abcdef",
            "Bearer",
            "0123456789abcdef",
        ] {
            assert!(
                !bearer_matches(&req(&[("Authorization", bad)]), token),
                "{bad}"
            );
        }
        assert!(!bearer_matches(&req(&[]), token));
    }

    #[test]
    fn only_addresses_and_localhost_are_local_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9901",
            "localhost",
            "LOCALHOST:9901",
            "[::1]:9901",
            "[::1]",
        ] {
            assert!(host_is_local(&req(&[("Host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9901",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "[evil]:1",
        ] {
            assert!(!host_is_local(&req(&[("Host", bad)])), "{bad}");
        }
        assert!(host_is_local(&req(&[])), "HTTP/1.0 without Host");
        let absolute = RequestHeader::build("GET", b"http://evil.example/status", None).unwrap();
        assert!(
            !host_is_local(&absolute),
            "an absolute-form target names its host"
        );
        let absolute = RequestHeader::build("GET", b"http://127.0.0.1:9901/status", None).unwrap();
        assert!(host_is_local(&absolute));
    }
}
