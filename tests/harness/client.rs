//! A small HTTP/1.1 client with keep-alive, over real sockets.
//!
//! The tests need exact control (the Host header, counting every failed
//! request, reusing one connection) more than a feature-rich client.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client bound to one server address, reusing its connection.
pub struct HttpClient {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    timeout: Duration,
    /// Whether a request that fails on a reused connection is an error
    /// (not sent again on a new one).
    strict: bool,
}

impl HttpClient {
    /// A client for `addr` with a 10 s timeout.
    pub fn new(addr: SocketAddr) -> Self {
        HttpClient {
            addr,
            conn: None,
            timeout: Duration::from_secs(10),
            strict: false,
        }
    }

    /// A client that reports a request failing on a reused keep-alive
    /// connection (a reset, a close) instead of sending it again on a new
    /// one, as browsers do for idempotent requests. It still honours
    /// `Connection: close`.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// Sends `n` `GET path` requests and counts the answers: the body of each
    /// 200, or `status N` for anything else. Panics on a connection error.
    pub fn tally(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        n: usize,
    ) -> std::collections::HashMap<String, usize> {
        let mut out = std::collections::HashMap::new();
        for _ in 0..n {
            let r = self
                .request("GET", host, path, headers, "")
                .unwrap_or_else(|e| panic!("GET {host}{path}: {e}"));
            let key = if r.status == 200 {
                r.body
            } else {
                format!("status {}", r.status)
            };
            *out.entry(key).or_default() += 1;
        }
        out
    }

    /// `GET path` with `Host: host`.
    pub fn get(&mut self, host: &str, path: &str) -> io::Result<Response> {
        self.request("GET", host, path, &[], "")
    }

    /// Any request. Reconnects once if a kept-alive connection was closed.
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<Response> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(body);
        let reused = self.conn.is_some();
        match self.exchange(&head, method == "HEAD") {
            Ok(r) => Ok(r),
            Err(_) if reused && !self.strict => {
                self.conn = None;
                self.exchange(&head, method == "HEAD")
            }
            Err(e) => Err(e),
        }
    }

    fn exchange(&mut self, request: &str, head_only: bool) -> io::Result<Response> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            s.set_nodelay(true)?;
            self.conn = Some(BufReader::new(s));
        }
        let result = (|| {
            let conn = self.conn.as_mut().expect("connected");
            conn.get_mut().write_all(request.as_bytes())?;
            read_response(conn, head_only)
        })();
        match &result {
            Ok((_, keep)) if *keep => {}
            _ => self.conn = None,
        }
        result.map(|(r, _)| r)
    }
}

fn read_response(conn: &mut BufReader<TcpStream>, head_only: bool) -> io::Result<(Response, bool)> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let keep = !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut body = Vec::new();
    if !head_only {
        if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                conn.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            return Ok((response(status, headers, body), false));
        }
    }
    Ok((response(status, headers, body), keep))
}

fn response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends raw `request` bytes on a new connection and reads until the peer
/// closes it (or 10 s pass): what a client that speaks HTTP by hand sees.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).to_string()
}
