//! `web-demo`: a tiny HTTP/1.1 backend that answers every request with its
//! environment name, like the `web-demo` pods of the zone-disaster-recovery
//! scenario (`ENV_NAME=cluster-demo-1` answers `cluster-demo-1`).
//!
//! ```text
//! ENV_NAME=cluster-demo-1 web-demo --listen 127.0.0.1:18001
//! web-demo --listen 127.0.0.1:18001 --name cluster-demo-1
//! ```
//!
//! Each response also echoes what arrived, so tests can check what the
//! gateway forwarded: `X-Echo-Method`, `X-Echo-Target` (path and query),
//! `X-Echo-Host`, `X-Echo-Forwarded-For`, `X-Echo-Request-Id` (every value,
//! comma-separated), `X-Echo-Traceparent`. It prints `listening on ADDR` once
//! the socket is bound, so scripts can wait for readiness rather than sleep.
//!
//! Failure modes for failover tests: `--blackhole` accepts connections and
//! reads requests but never answers (a zone cut off behind a stateful
//! firewall); `--status N` answers every request with status N. A request
//! for `/slow/MS` is answered after MS milliseconds (at most a minute): a
//! request still in flight while its pod is told to terminate.
//! `--delay-file PATH`: while PATH exists, every response waits the
//! milliseconds it holds (`300`, or `300 50` for 300 ± 50 ms): a zone
//! that turns slow and recovers, under a test's control.
//! `--error-file PATH`: while PATH exists, that percentage of requests
//! (`30`) is answered with 503: an erratic zone.
//!
//! Plain std, a thread per connection, keep-alive, Content-Length and chunked
//! request bodies: enough for tests and local benchmarks, no dependencies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

struct Options {
    listen: String,
    name: String,
    blackhole: bool,
    status: u16,
    delay_file: Option<std::path::PathBuf>,
    error_file: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut listen = None;
    let mut name = std::env::var("ENV_NAME").ok();
    let mut blackhole = false;
    let mut status = 200;
    let mut delay_file = None;
    let mut error_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" | "-l" => listen = args.next(),
            "--name" | "-n" => name = args.next(),
            "--blackhole" => blackhole = true,
            "--delay-file" => delay_file = args.next().map(Into::into),
            "--error-file" => error_file = args.next().map(Into::into),
            "--status" => {
                status = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| (100..=599).contains(s))
                    .ok_or("--status takes an HTTP status code (100-599)")?
            }
            "--help" | "-h" => {
                return Err(
                    "usage: web-demo --listen IP:PORT [--name NAME]  (NAME defaults to $ENV_NAME)"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument \"{other}\"; see --help")),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen IP:PORT is required")?,
        name: name.ok_or("--name or ENV_NAME is required")?,
        blackhole,
        status,
        delay_file,
        error_file,
    })
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("web-demo: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&opts.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("web-demo: cannot listen on {}: {e}", opts.listen);
            std::process::exit(1);
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or(opts.listen.clone());
    println!("web-demo {} listening on {local}", opts.name);
    let _ = io::stdout().flush();
    let name: Arc<str> = opts.name.into();
    let (blackhole, status) = (opts.blackhole, opts.status);
    let files = Arc::new(FaultFiles {
        delay: opts.delay_file,
        error: opts.error_file,
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let name = Arc::clone(&name);
        let files = Arc::clone(&files);
        std::thread::spawn(move || {
            let _ = if blackhole {
                swallow(stream)
            } else {
                serve(stream, &name, status, &files)
            };
        });
    }
}

/// One parsed request head.
struct Head {
    method: String,
    target: String,
    version_10: bool,
    host: String,
    forwarded_for: String,
    real_ip: String,
    forwarded_proto: String,
    request_id: String,
    traceparent: String,
    content_length: usize,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version_10 = parts.next() == Some("HTTP/1.0");
    let mut head = Head {
        method,
        target,
        version_10,
        host: String::new(),
        forwarded_for: String::new(),
        real_ip: String::new(),
        forwarded_proto: String::new(),
        request_id: String::new(),
        traceparent: String::new(),
        content_length: 0,
        chunked: false,
        close: false,
        keep_alive: false,
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "host" => head.host = v.to_string(),
            "x-forwarded-for" => head.forwarded_for = v.to_string(),
            "x-real-ip" => head.real_ip = v.to_string(),
            "x-forwarded-proto" => head.forwarded_proto = v.to_string(),
            "x-request-id" if head.request_id.is_empty() => head.request_id = v.to_string(),
            "x-request-id" => head.request_id = format!("{}, {v}", head.request_id),
            "traceparent" => head.traceparent = v.to_string(),
            "content-length" => head.content_length = v.parse().unwrap_or(0),
            "transfer-encoding" => head.chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = v.to_ascii_lowercase();
                head.close = v.contains("close");
                head.keep_alive = v.contains("keep-alive");
            }
            _ => {}
        }
    }
    Ok(Some(head))
}

fn discard_body(reader: &mut BufReader<TcpStream>, head: &Head) -> io::Result<()> {
    if head.chunked {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                // trailers until an empty line
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            io::copy(&mut reader.by_ref().take(size as u64 + 2), &mut io::sink())?;
        }
    }
    io::copy(
        &mut reader.by_ref().take(head.content_length as u64),
        &mut io::sink(),
    )?;
    Ok(())
}

/// Reads whatever arrives and never answers.
fn swallow(mut stream: TcpStream) -> io::Result<()> {
    io::copy(&mut stream, &mut io::sink())?;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// `--delay-file` and `--error-file`.
struct FaultFiles {
    delay: Option<std::path::PathBuf>,
    error: Option<std::path::PathBuf>,
}

/// A number from the clock's nanoseconds, below `n`: cheap spread, good
/// enough for a test backend.
fn spread(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    // Mixed, so that requests arriving at regular intervals still spread.
    nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) % n.max(1)
}

/// Whether this request gets a 503 from `--error-file`'s percentage.
fn erratic(file: Option<&std::path::Path>) -> bool {
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return false;
    };
    let percent = text.trim().parse::<u64>().unwrap_or(0).min(100);
    spread(100) < percent
}

/// The delay `--delay-file` asks for now: `ms` or `ms jitter` (spread
/// uniformly over ms ± jitter), none while the file is missing.
fn delay(file: Option<&std::path::Path>) -> Option<std::time::Duration> {
    let text = std::fs::read_to_string(file?).ok()?;
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    let ms = numbers.next()??;
    let jitter = numbers.next().flatten().unwrap_or(0).min(ms);
    let extra = if jitter == 0 {
        0
    } else {
        spread(2 * jitter + 1)
    };
    Some(std::time::Duration::from_millis(
        (ms - jitter + extra).min(60_000),
    ))
}

fn serve(stream: TcpStream, name: &str, status: u16, files: &FaultFiles) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader)? {
        discard_body(&mut reader, &head)?;
        if let Some(ms) = head
            .target
            .strip_prefix("/slow/")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
        }
        if let Some(wait) = delay(files.delay.as_deref()) {
            std::thread::sleep(wait);
        }
        let status = if erratic(files.error.as_deref()) {
            503
        } else {
            status
        };
        let close = head.close || (head.version_10 && !head.keep_alive);
        let body = if head.method == "HEAD" { "" } else { name };
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Echo-Method: {}\r\nX-Echo-Target: {}\r\nX-Echo-Host: {}\r\nX-Echo-Forwarded-For: {}\r\nX-Echo-Real-IP: {}\r\nX-Echo-Forwarded-Proto: {}\r\nX-Echo-Request-Id: {}\r\nX-Echo-Traceparent: {}\r\n{}\r\n{}",
            reason(status),
            name.len(),
            head.method,
            head.target,
            head.host,
            head.forwarded_for,
            head.real_ip,
            head.forwarded_proto,
            head.request_id,
            head.traceparent,
            if close { "Connection: close\r\n" } else { "" },
            body
        );
        writer.write_all(response.as_bytes())?;
        if close {
            break;
        }
    }
    Ok(())
}
