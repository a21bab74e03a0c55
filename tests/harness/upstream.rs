//! Upstreams written in the test itself, for what a `web-demo` cannot
//! show: the exact bytes the gateway forwarded.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// An upstream on a free loopback port that sends the bytes of each request
/// it gets (the head and the body its `Content-Length` announces) to the
/// returned channel, then writes `response` and closes.
pub fn recording_upstream(response: &'static [u8]) -> (SocketAddr, Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let body = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + body {
                        break;
                    }
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&got).to_string());
            let _ = stream.write_all(response);
        }
    });
    (addr, rx)
}
