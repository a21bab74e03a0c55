//! The access log: one line per request, written off the request path.
//!
//! Requests hand a small record to a bounded channel and move on; a writer
//! thread formats and writes the lines, flushing whenever the channel runs
//! dry. When the writer falls behind, records are dropped and counted rather
//! than making requests wait.
//!
//! Format (one line, space-separated `key=value`, values without spaces;
//! `-` when unknown):
//!
//! ```text
//! 2026-11-27T15:14:05.123Z client=127.0.0.1:40112 host=example.com method=GET
//!   path=/svc1?a=b status=200 bytes=14 duration_ms=0.84
//!   ingress=gateway-demo/web-demo service=gateway-demo/service1:80
//!   cluster=c7fb82a1 endpoint=127.0.0.1:18001 target=main retries=0
//! ```
//!
//! `target` is `main` or `canary:<ingress>`; `status` is what the client got
//! (0 when the connection died first).
//!
//! Rotation: after the file is moved away, [`AccessLog::reopen`] (the
//! binary calls it on SIGUSR1 and SIGHUP) makes the writer open the path
//! again before it writes its next line, so no line goes to the moved file
//! after the call and none is lost.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Records that may wait for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// One request, as logged.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// When the request arrived.
    pub time: SystemTime,
    /// Client address.
    pub client: String,
    /// Host header.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status sent to the client.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// Time from arrival to the end of the response.
    pub duration: Duration,
    /// `namespace/name` of the Ingress that routed it.
    pub ingress: Option<Arc<str>>,
    /// The Service port it went to.
    pub service: Option<Arc<str>>,
    /// The cluster of the endpoint that answered last.
    pub cluster: Option<String>,
    /// That endpoint.
    pub endpoint: Option<std::net::SocketAddr>,
    /// `None` for main, else the canary Ingress.
    pub canary: Option<String>,
    /// Retries used.
    pub retries: u32,
}

fn or_dash<T: std::fmt::Display>(v: &Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "-".to_string(),
    }
}

/// Replaces characters that would break the line format.
fn clean(s: &str) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl AccessRecord {
    /// The log line, without the newline.
    pub fn format(&self) -> String {
        format!(
            "{} client={} host={} method={} path={} status={} bytes={} duration_ms={:.2} ingress={} service={} cluster={} endpoint={} target={} retries={}",
            humantime::format_rfc3339_millis(self.time),
            clean(&self.client),
            clean(&self.host),
            clean(&self.method),
            clean(&self.path),
            self.status,
            self.bytes,
            self.duration.as_secs_f64() * 1000.0,
            or_dash(&self.ingress),
            or_dash(&self.service),
            or_dash(&self.cluster),
            or_dash(&self.endpoint),
            match &self.canary {
                None => "main".to_string(),
                Some(c) => format!("canary:{c}"),
            },
            self.retries,
        )
    }
}

/// The sending side, cheap to clone into the proxy.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<AccessRecord>,
    dropped: Arc<AtomicU64>,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Starts a writer thread appending to `path`, or to stdout for `None`.
    pub fn start(path: Option<&Path>) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
            None => Box::new(std::io::stdout()),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let file = Reopen {
            path: path.map(Path::to_path_buf),
            asked: Arc::clone(&reopen),
        };
        std::thread::Builder::new()
            .name("fleetgate-access-log".into())
            .spawn(move || write_loop(rx, BufWriter::new(out), &file))?;
        Ok(AccessLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            reopen,
        })
    }

    /// Makes the writer open the log's path again before its next line
    /// (after logrotate or `mv` moved the file). Does nothing for stdout.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Queues a record; never blocks.
    pub fn log(&self, record: AccessRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Where the writer reopens its file, and the flag that asks it to.
struct Reopen {
    path: Option<PathBuf>,
    asked: Arc<AtomicBool>,
}

impl Reopen {
    /// The new file if a reopen was asked for and it opened; on failure
    /// the old file stays in use and the error is logged.
    fn take(&self) -> Option<Box<dyn Write + Send>> {
        let path = self.path.as_ref()?;
        if !self.asked.swap(false, Ordering::Relaxed) {
            return None;
        }
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => {
                log::info!("access log reopened: {}", path.display());
                Some(Box::new(f))
            }
            Err(e) => {
                log::error!(
                    "access log: cannot reopen {}: {e}; still writing to the file open before",
                    path.display()
                );
                None
            }
        }
    }
}

fn write_loop(
    rx: Receiver<AccessRecord>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    file: &Reopen,
) {
    while let Ok(first) = rx.recv() {
        if let Some(new) = file.take() {
            if out.flush().is_err() {
                return;
            }
            out = BufWriter::new(new);
        }
        let mut next = Some(first);
        while let Some(record) = next {
            if writeln!(out, "{}", record.format()).is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_one_line_of_key_values() {
        let r = AccessRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
            client: "127.0.0.1:5000".into(),
            host: "example.com".into(),
            method: "GET".into(),
            path: "/a b?x=1".into(),
            status: 200,
            bytes: 14,
            duration: Duration::from_micros(1234),
            ingress: Some("ns/ing".into()),
            service: Some("ns/svc:80".into()),
            cluster: Some("c1".into()),
            endpoint: Some("127.0.0.1:18001".parse().unwrap()),
            canary: None,
            retries: 1,
        };
        assert_eq!(
            r.format(),
            "1970-01-01T00:00:01.500Z client=127.0.0.1:5000 host=example.com method=GET path=/a_b?x=1 status=200 bytes=14 duration_ms=1.23 ingress=ns/ing service=ns/svc:80 cluster=c1 endpoint=127.0.0.1:18001 target=main retries=1"
        );
    }
}
