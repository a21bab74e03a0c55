//! Responses written before a request reaches the gateway's callbacks:
//! the connection guard's refusals (431 for a head too large, 408 for one
//! too slow, 400 for a malformed request line) and Pingora's own (400 for
//! a head it cannot parse, 405 for `CONNECT`). Pingora calls no hook for
//! these, so they would go unlogged and uncounted; [`ConnectionLog`] gives
//! each one an access log line and a count in
//! `fleetgate_gateway_responses_total`, like every other response the
//! gateway writes.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::access_log::{AccessLog, AccessRecord, ResponseSource};
use crate::metrics::Metrics;

/// Where a [`crate::GuardedApp`] reports the responses it or Pingora
/// wrote on a connection before the gateway saw a request.
#[derive(Debug, Clone)]
pub struct ConnectionLog {
    metrics: Metrics,
    log: Option<AccessLog>,
}

/// What is known of a request answered before the gateway saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EarlyResponse<'a> {
    /// The status written.
    pub status: u16,
    /// The client.
    pub peer: Option<SocketAddr>,
    /// The request line as far as it came (at most its first bytes).
    pub line: &'a [u8],
    /// The client connection's TLS digest, if TLS.
    pub tls: Option<&'a pingora_core::protocols::tls::SslDigest>,
}

impl ConnectionLog {
    /// Counts into `metrics` and writes lines to `log`, if given.
    pub fn new(metrics: Metrics, log: Option<AccessLog>) -> Self {
        ConnectionLog { metrics, log }
    }

    /// Counts and logs one response.
    pub(crate) fn record(&self, response: EarlyResponse<'_>) {
        self.metrics.count_gateway_response(response.status);
        let Some(log) = self.log.as_ref().filter(|l| l.is_on()) else {
            return;
        };
        let line = String::from_utf8_lossy(response.line);
        let mut parts = line.split(' ').filter(|p| !p.is_empty());
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let protocol = parts
            .next()
            .map_or(Cow::Borrowed(""), |v| Cow::Owned(v.to_string()));
        log.log(AccessRecord {
            time: SystemTime::now(),
            client: response.peer.map_or_else(String::new, |a| a.to_string()),
            host: String::new(),
            method,
            path,
            protocol,
            status: response.status,
            bytes: 0,
            bytes_in: 0,
            duration: Duration::ZERO,
            upstream_connect: None,
            upstream_response: None,
            ingress: None,
            service: None,
            cluster: None,
            endpoint: None,
            target: None,
            retries: 0,
            source: ResponseSource::Gateway,
            request_id: None,
            user_agent: None,
            referer: None,
            tls_version: response.tls.map(crate::tls_info::version_of),
            sni: response.tls.and_then(crate::tls_info::server_name_of),
        });
    }
}

/// The status of an HTTP/1 response that `bytes` start with
/// (`HTTP/1.x NNN`), if they do.
pub(crate) fn response_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let digits = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..600).contains(&code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_of_a_response_head() {
        assert_eq!(response_status(b"HTTP/1.1 400 Bad Request\r\n"), Some(400));
        assert_eq!(response_status(b"HTTP/1.0 405 "), Some(405));
        assert_eq!(response_status(b"HTTP/1.1 40"), None);
        assert_eq!(response_status(b"HTTP/1.1 999 x"), None);
        assert_eq!(response_status(b"0\r\n\r\n"), None);
        assert_eq!(response_status(b"HTTP/2 200"), None);
    }
}
