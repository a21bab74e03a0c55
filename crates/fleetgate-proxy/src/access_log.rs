//! The access log: one line per request, written off the request path.
//!
//! Requests hand a small record to a bounded channel and move on; a writer
//! thread formats and writes the lines, flushing whenever the channel runs
//! dry. When the writer falls behind, records are dropped and counted rather
//! than making requests wait.
//!
//! Two formats (see [`AccessRecord`] for the fields):
//!
//! - `text`: one line of space-separated `key=value`, values without
//!   spaces (whitespace becomes `_`), `-` when unknown. New keys are only
//!   ever added at the end, so parsers of older lines keep working.
//! - `json`: one JSON object per line, with the same names; unknown values
//!   are `null`.
//!
//! Rotation: after the file is moved away, [`AccessLog::reopen`] (the
//! binary calls it on SIGUSR1 and SIGHUP) makes the writer open the path
//! again before it writes its next line, so no line goes to the moved file
//! after the call and none is lost. [`AccessLog::retarget`] and
//! [`AccessLog::set_format`] change the destination and format of a
//! running log (a configuration reload).

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use serde::Serialize;

/// Records that may wait for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Who wrote the response a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseSource {
    /// An endpoint answered and the gateway passed the answer on.
    Upstream,
    /// The gateway answered itself: a refusal (400, 404, 413, 429, ...),
    /// a module's answer (a redirect, 401), or an error (502, 503, 504).
    Gateway,
}

impl ResponseSource {
    fn as_str(self) -> &'static str {
        match self {
            ResponseSource::Upstream => "upstream",
            ResponseSource::Gateway => "gateway",
        }
    }
}

/// One request, as logged. The field names are the log's keys.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRecord {
    /// When the request arrived (RFC 3339, milliseconds, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// Client address (`ip:port`).
    #[serde(serialize_with = "empty_as_null")]
    pub client: String,
    /// Host header (or the authority of HTTP/2); empty when unknown (a
    /// request refused before it was parsed).
    #[serde(serialize_with = "empty_as_null")]
    pub host: String,
    /// Method; empty when unknown.
    #[serde(serialize_with = "empty_as_null")]
    pub method: String,
    /// Path and query; empty when unknown.
    #[serde(serialize_with = "empty_as_null")]
    pub path: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`; empty when unknown.
    #[serde(serialize_with = "empty_as_null")]
    pub protocol: Cow<'static, str>,
    /// Status sent to the client (0 when the connection died first).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// Request body bytes received.
    pub bytes_in: usize,
    /// Time from arrival to the end of the response.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// Time the last try took to get a connection to its endpoint (near
    /// zero for a reused one).
    #[serde(rename = "upstream_connect_ms", serialize_with = "opt_millis")]
    pub upstream_connect: Option<Duration>,
    /// Time from choosing the last try's endpoint to its response header.
    #[serde(rename = "upstream_response_ms", serialize_with = "opt_millis")]
    pub upstream_response: Option<Duration>,
    /// `namespace/name` of the Ingress that routed it.
    pub ingress: Option<Arc<str>>,
    /// The Service port it went to.
    pub service: Option<Arc<str>>,
    /// The cluster of the endpoint that answered last.
    pub cluster: Option<String>,
    /// That endpoint.
    pub endpoint: Option<std::net::SocketAddr>,
    /// Which of the route's targets it went to: `main`, or
    /// `canary:<ingress>`; `None` when it went to no Service.
    pub target: Option<Cow<'static, str>>,
    /// Retries used.
    pub retries: u32,
    /// Who wrote the response.
    pub source: ResponseSource,
    /// The request id sent upstream (`X-Request-Id`). Header values are
    /// kept as they are (a reference count, no copy) and turned into text
    /// by the writer thread.
    #[serde(serialize_with = "header_text")]
    pub request_id: Option<HeaderValue>,
    /// `User-Agent`.
    #[serde(serialize_with = "header_text")]
    pub user_agent: Option<HeaderValue>,
    /// `Referer`.
    #[serde(serialize_with = "header_text")]
    pub referer: Option<HeaderValue>,
    /// The TLS version of the client connection (`TLSv1.3`), if TLS.
    pub tls_version: Option<Cow<'static, str>>,
    /// The server name the client asked for in its TLS handshake.
    pub sni: Option<Arc<str>>,
}

fn header_text<S: serde::Serializer>(v: &Option<HeaderValue>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&String::from_utf8_lossy(v.as_bytes())),
        None => s.serialize_none(),
    }
}

/// Writes a header value as [`Clean`] text, or `-`.
struct HeaderDash<'a>(&'a Option<HeaderValue>);

impl std::fmt::Display for HeaderDash<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => Clean(&String::from_utf8_lossy(v.as_bytes())).fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn empty_as_null<S: serde::Serializer, T: AsRef<str>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    match v.as_ref() {
        "" => s.serialize_none(),
        text => s.serialize_str(text),
    }
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Milliseconds with two decimals, as a JSON number.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(ms(*d)),
        None => s.serialize_none(),
    }
}

/// Writes `v`, or `-` for `None`.
struct OrDash<'a, T>(&'a Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => Clean(&v.to_string()).fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Writes a value with whitespace and control characters replaced by `_`
/// (they would break the line format), or `-` when empty.
struct Clean<'a>(&'a str);

impl std::fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for c in self.0.chars() {
            f.write_char(if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            })?;
        }
        Ok(())
    }
}

/// Writes milliseconds with two decimals, or `-`.
struct Millis(Option<Duration>);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) => write!(f, "{:.2}", d.as_secs_f64() * 1000.0),
            None => f.write_str("-"),
        }
    }
}

impl AccessRecord {
    /// The text line, without the newline.
    pub fn format(&self) -> String {
        let mut line = String::with_capacity(320);
        self.write_text(&mut line)
            .expect("writing to a String cannot fail");
        line
    }

    fn write_text(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        write!(
            out,
            "{} client={} host={} method={} path={} status={} bytes={} duration_ms={} ingress={} service={} cluster={} endpoint={} target={}",
            humantime::format_rfc3339_millis(self.time),
            Clean(&self.client),
            Clean(&self.host),
            Clean(&self.method),
            Clean(&self.path),
            self.status,
            self.bytes,
            Millis(Some(self.duration)),
            OrDash(&self.ingress),
            OrDash(&self.service),
            OrDash(&self.cluster),
            OrDash(&self.endpoint),
            OrDash(&self.target),
        )?;
        write!(
            out,
            " retries={} protocol={} bytes_in={} upstream_connect_ms={} upstream_response_ms={} source={} request_id={} tls_version={} sni={} user_agent={} referer={}",
            self.retries,
            Clean(&self.protocol),
            self.bytes_in,
            Millis(self.upstream_connect),
            Millis(self.upstream_response),
            self.source.as_str(),
            HeaderDash(&self.request_id),
            OrDash(&self.tls_version),
            OrDash(&self.sni),
            HeaderDash(&self.user_agent),
            HeaderDash(&self.referer),
        )
    }

    /// The JSON object, on one line, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Space-separated `key=value`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Nowhere: records are not even built.
    Off,
    /// Standard output.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

/// The sending side, cheap to clone into the proxy.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
}

/// What goes to the writer thread.
// Records travel by value, as before there was a flush message: boxing
// them would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Message {
    /// A line to write.
    Record(AccessRecord),
    /// Write and flush everything before this, then answer.
    Flush(SyncSender<()>),
}

/// What the senders and the writer share.
#[derive(Debug)]
struct Shared {
    dropped: AtomicU64,
    on: AtomicBool,
    /// The change the writer makes before its next line.
    change: Mutex<Change>,
    /// Whether `change` holds something (checked before the lock).
    changed: AtomicBool,
}

/// A change of the writer's output or format, asked for by a signal or a
/// reload.
#[derive(Debug, Default)]
struct Change {
    /// The file path being written (for reopening), `None` for stdout.
    path: Option<PathBuf>,
    /// Reopen `path` before the next line.
    reopen: bool,
    /// Switch to this output before the next line (already opened).
    switch_to: Option<Output>,
    /// Write JSON (`true`) or text from the next line on.
    json: Option<bool>,
}

/// An opened output: what the writer writes to.
struct Output(Box<dyn Write + Send>);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

/// Opens `destination`; `off` is a sink, so that a log switched off
/// closes its file.
fn open(destination: &Destination) -> std::io::Result<Output> {
    Ok(match destination {
        Destination::Off => Output(Box::new(std::io::sink())),
        Destination::Stdout => Output(Box::new(std::io::stdout())),
        Destination::File(p) => Output(Box::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
    })
}

fn file_path(destination: &Destination) -> Option<PathBuf> {
    match destination {
        Destination::File(p) => Some(p.clone()),
        _ => None,
    }
}

impl AccessLog {
    /// Starts a writer thread writing `format` lines to `destination`.
    /// Fails when the file cannot be opened.
    pub fn start(destination: &Destination, format: LogFormat) -> std::io::Result<AccessLog> {
        let out = open(destination)?;
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            on: AtomicBool::new(*destination != Destination::Off),
            change: Mutex::new(Change {
                path: file_path(destination),
                ..Change::default()
            }),
            changed: AtomicBool::new(false),
        });
        let writer = Arc::clone(&shared);
        let json = format == LogFormat::Json;
        std::thread::Builder::new()
            .name("fleetgate-access-log".into())
            .spawn(move || write_loop(rx, BufWriter::new(out.0), json, &writer))?;
        Ok(AccessLog { tx, shared })
    }

    /// Whether records are wanted (the destination is not `off`); callers
    /// skip building a record otherwise.
    pub fn is_on(&self) -> bool {
        self.shared.on.load(Ordering::Relaxed)
    }

    /// Makes the writer open the log's path again before its next line
    /// (after logrotate or `mv` moved the file). Does nothing for stdout.
    pub fn reopen(&self) {
        let mut change = self.lock();
        if change.path.is_some() {
            change.reopen = true;
            self.shared.changed.store(true, Ordering::Release);
        }
    }

    /// Sends later lines to `destination`, in `format`; both change at
    /// the same line. The file is opened here, so an error leaves the log
    /// as it was; lines already queued go to the new destination.
    pub fn retarget(&self, destination: &Destination, format: LogFormat) -> std::io::Result<()> {
        let out = open(destination)?;
        let mut change = self.lock();
        change.path = file_path(destination);
        change.reopen = false;
        change.switch_to = Some(out);
        change.json = Some(format == LogFormat::Json);
        self.shared
            .on
            .store(*destination != Destination::Off, Ordering::Relaxed);
        self.shared.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes later lines in `format`.
    pub fn set_format(&self, format: LogFormat) {
        let mut change = self.lock();
        change.json = Some(format == LogFormat::Json);
        self.shared.changed.store(true, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Change> {
        self.shared
            .change
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every record queued before the call is written and
    /// flushed, at most `limit`; whether it was (before the process exits).
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let (done_tx, done_rx) = sync_channel(1);
        let mut message = Message::Flush(done_tx);
        loop {
            match self.tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        done_rx.recv_timeout(left).is_ok()
    }

    /// Queues a record; never blocks.
    pub fn log(&self, record: AccessRecord) {
        if self.tx.try_send(Message::Record(record)).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer fell behind or its output
    /// failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// The output to switch to and the format to write, if a reopen, a
    /// switch or a format was asked for. A failed reopen keeps the old
    /// file in use and is logged.
    fn take_change(&self) -> (Option<Output>, Option<bool>) {
        if !self.changed.swap(false, Ordering::Acquire) {
            return (None, None);
        }
        let mut change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let json = change.json.take();
        if let Some(out) = change.switch_to.take() {
            change.reopen = false;
            return (Some(out), json);
        }
        if !std::mem::take(&mut change.reopen) {
            return (None, json);
        }
        let Some(path) = change.path.as_ref() else {
            return (None, json);
        };
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => {
                log::info!("access log reopened: {}", path.display());
                (Some(Output(Box::new(f))), json)
            }
            Err(e) => {
                log::error!(
                    "access log: cannot reopen {}: {e}; still writing to the file open before",
                    path.display()
                );
                (None, json)
            }
        }
    }
}

/// The writer thread: writes lines in batches, flushing when the queue
/// runs dry, and applies changes before the next line (also in the middle
/// of a batch, so a queue that never runs dry does not hold them back).
fn write_loop(
    rx: Receiver<Message>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    mut json: bool,
    shared: &Shared,
) {
    let mut line = String::with_capacity(512);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            if shared.changed.load(Ordering::Acquire) {
                let (new, format) = shared.take_change();
                if let Some(new) = new {
                    if out.flush().is_err() {
                        log::error!("access log: the old output failed on its last flush");
                    }
                    out = BufWriter::new(new.0);
                }
                json = format.unwrap_or(json);
            }
            match message {
                Message::Record(record) => {
                    line.clear();
                    if json {
                        line.push_str(&record.to_json());
                    } else {
                        let _ = record.write_text(&mut line);
                    }
                    line.push('\n');
                    if out.write_all(line.as_bytes()).is_err() {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Message::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.try_send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        AccessRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
            client: "127.0.0.1:5000".into(),
            host: "example.com".into(),
            method: "GET".into(),
            path: "/a b?x=1".into(),
            protocol: Cow::Borrowed("HTTP/1.1"),
            status: 200,
            bytes: 14,
            bytes_in: 3,
            duration: Duration::from_micros(1234),
            upstream_connect: Some(Duration::from_micros(120)),
            upstream_response: None,
            ingress: Some("ns/ing".into()),
            service: Some("ns/svc:80".into()),
            cluster: Some("c1".into()),
            endpoint: Some("127.0.0.1:18001".parse().unwrap()),
            target: Some(Cow::Borrowed("main")),
            retries: 1,
            source: ResponseSource::Upstream,
            request_id: Some(HeaderValue::from_static("0af7651916cd43dd8448eb211c80319c")),
            user_agent: Some(HeaderValue::from_static("curl/8.0 (x)")),
            referer: None,
            tls_version: None,
            sni: None,
        }
    }

    #[test]
    fn text_line_is_one_line_of_key_values_with_new_keys_at_the_end() {
        assert_eq!(
            record().format(),
            "1970-01-01T00:00:01.500Z client=127.0.0.1:5000 host=example.com method=GET path=/a_b?x=1 status=200 bytes=14 duration_ms=1.23 ingress=ns/ing service=ns/svc:80 cluster=c1 endpoint=127.0.0.1:18001 target=main retries=1 protocol=HTTP/1.1 bytes_in=3 upstream_connect_ms=0.12 upstream_response_ms=- source=upstream request_id=0af7651916cd43dd8448eb211c80319c tls_version=- sni=- user_agent=curl/8.0_(x) referer=-"
        );
    }

    #[test]
    fn flush_returns_once_every_queued_line_is_written() {
        let dir = std::env::temp_dir().join(format!("fleetgate-flush-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let log = AccessLog::start(&Destination::File(path.clone()), LogFormat::Json).unwrap();
        for _ in 0..2000 {
            log.log(record());
        }
        assert!(log.flush(Duration::from_secs(10)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count() as u64 + log.dropped(),
            2000,
            "every line written or counted as dropped"
        );
        // Switched off, then back to text in another file, at one line.
        let other = dir.join("other.log");
        log.retarget(&Destination::Off, LogFormat::Json).unwrap();
        assert!(!log.is_on());
        log.retarget(&Destination::File(other.clone()), LogFormat::Text)
            .unwrap();
        log.log(record());
        assert!(log.flush(Duration::from_secs(10)));
        let text = std::fs::read_to_string(&other).unwrap();
        assert!(
            text.starts_with("1970-01-01T00:00:01.500Z client="),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn json_line_has_stable_names_and_nulls() {
        let mut r = record();
        r.target = Some(Cow::Owned("canary:ns/canary".into()));
        r.user_agent = Some(HeaderValue::from_static("a \"quoted\"\tagent"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:01.500Z");
        assert_eq!(v["path"], "/a b?x=1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 1.23);
        assert_eq!(v["upstream_connect_ms"], 0.12);
        assert!(v["upstream_response_ms"].is_null());
        assert_eq!(v["target"], "canary:ns/canary");
        assert_eq!(v["source"], "upstream");
        assert_eq!(v["endpoint"], "127.0.0.1:18001");
        assert_eq!(v["user_agent"], "a \"quoted\"\tagent");
        assert!(v["referer"].is_null());
        assert!(!r.to_json().contains('\n'));
    }
}
