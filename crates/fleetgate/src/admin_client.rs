//! A minimal HTTP/1.1 client for the commands that talk to a running
//! gateway's admin API (`fleetgate drain`, `undrain`).
//!
//! The admin API is local, plain HTTP and answers with a Content-Length,
//! so one request per connection over a standard TCP stream is all it
//! takes; no HTTP library is needed for that.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use fleetgate_config::Admin;

/// Where and how to reach the admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    address: SocketAddr,
    token: Option<String>,
}

impl AdminClient {
    /// A client of the admin API `admin` describes. A wildcard listen
    /// address is reached on loopback.
    pub fn new(admin: &Admin) -> Self {
        let mut address = admin.listen;
        if address.ip().is_unspecified() {
            address.set_ip(match address.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        AdminClient {
            address,
            token: admin.token.clone(),
        }
    }

    /// Sends `method path` and returns the status and body, or what went
    /// wrong, in words.
    pub fn request(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let timeout = Duration::from_secs(10);
        let mut stream = TcpStream::connect_timeout(&self.address, timeout).map_err(|e| {
            format!(
                "cannot reach the admin API at {}: {e} (is fleetgate running with this configuration?)",
                self.address
            )
        })?;
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
        let host = match self.address.ip() {
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.address.port()),
            IpAddr::V4(ip) => format!("{ip}:{}", self.address.port()),
        };
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(head.as_bytes())
            .map_err(|e| format!("admin API at {}: {e}", self.address))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| format!("admin API at {}: {e}", self.address))?;
        parse_response(&raw).ok_or_else(|| {
            format!(
                "admin API at {}: not an HTTP response ({} bytes)",
                self.address,
                raw.len()
            )
        })
    }
}

/// Status and body of a complete response read to the connection's end.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((
        status,
        String::from_utf8_lossy(&raw[end + 4..]).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_and_garbage_is_refused() {
        let ok = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n");
        assert_eq!(ok, Some((404, "no\n".to_string())));
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_response(b"HTTP/1.1 abc\r\n\r\n"), None);
    }
}
