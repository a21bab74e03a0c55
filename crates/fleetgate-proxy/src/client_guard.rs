//! Limits on client connections that Pingora does not enforce itself.
//!
//! Pingora reads an HTTP/1 request head into a buffer of up to 1 MiB and
//! resets its read timer with every byte, so a client that dribbles a huge
//! head holds a megabyte for as long as it likes; a thousand such clients
//! hold a gigabyte. [`GuardedApp`] wraps Pingora's HTTP application and
//! gives every client connection:
//!
//! - a place among at most `max_connections` open at once: a connection
//!   beyond the cap is closed at once, before anything is read;
//! - a [`HeadGuard`] around its stream that counts the bytes of each request
//!   head and the time since the head's first byte. A head larger than
//!   `max_header_size` is answered with 431 and one that takes longer than
//!   `header_timeout` with 408, and a request line with a space or control
//!   byte in its target (which Pingora would percent-encode and forward)
//!   with 400; the connection closes.
//!
//! The guard knows where a head ends by the blank line that ends it, or,
//! when Pingora already holds a pipelined head, by [`head_read`], which the
//! gateway calls once it has the parsed head; [`request_done`] tells it
//! that the next bytes start a new head. HTTP/2 connections (ALPN `h2`)
//! are left alone: their header lists are bounded by the HTTP/2 settings
//! the gateway sends, and their streams are not heads to count.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora_core::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::connection_log::{response_status, ConnectionLog, EarlyResponse};
use crate::responses::raw_closing_response;

/// The limits a [`GuardedApp`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest time from a head's first byte to its end.
    pub header_timeout: Duration,
    /// Largest request head in bytes.
    pub max_header_size: usize,
    /// Most client connections open at once.
    pub max_connections: usize,
}

/// Live counts of a [`GuardedApp`], for metrics and status.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    /// Client connections open now.
    pub open: AtomicUsize,
    /// The most open at once since someone last took it (see
    /// [`ConnectionCounts::take_peak`]).
    peak: AtomicUsize,
    /// Client connections accepted since the start.
    pub accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused: AtomicU64,
    /// Request heads answered with 431.
    pub heads_too_large: AtomicU64,
    /// Request heads answered with 408.
    pub heads_too_slow: AtomicU64,
    /// Request lines answered with 400: a space or control byte in the
    /// target, or a control byte anywhere in the line.
    pub heads_malformed: AtomicU64,
}

impl ConnectionCounts {
    /// The most connections open at once since the last call, which
    /// starts a new period at the current count.
    pub fn take_peak(&self) -> usize {
        self.peak
            .swap(self.open.load(Ordering::Relaxed), Ordering::Relaxed)
    }
}

/// Pingora's HTTP application `A` behind the connection limits.
pub struct GuardedApp<A> {
    app: Arc<A>,
    limits: ConnectionLimits,
    counts: Arc<ConnectionCounts>,
    log: Option<Arc<ConnectionLog>>,
}

impl<A> GuardedApp<A> {
    /// Puts `app` behind `limits`, counting into `counts`.
    pub fn new(app: A, limits: ConnectionLimits, counts: Arc<ConnectionCounts>) -> Self {
        GuardedApp {
            app: Arc::new(app),
            limits,
            counts,
            log: None,
        }
    }

    /// Logs and counts the responses written on a connection before the
    /// gateway saw its request (see [`crate::connection_log`]).
    pub fn with_log(mut self, log: ConnectionLog) -> Self {
        self.log = Some(Arc::new(log));
        self
    }
}

/// A connection's place among the open ones, given back when dropped.
struct Place(Arc<ConnectionCounts>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A> GuardedApp<A> {
    fn take_place(&self) -> Option<Place> {
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        let open = self.counts.open.fetch_add(1, Ordering::Relaxed);
        let place = Place(Arc::clone(&self.counts));
        self.counts.peak.fetch_max(open + 1, Ordering::Relaxed);
        if open >= self.limits.max_connections {
            drop(place);
            let refused = self.counts.refused.fetch_add(1, Ordering::Relaxed);
            if (refused + 1).is_power_of_two() {
                log::warn!(
                    "{} client connections open (max_connections): closing new ones; {} closed so far",
                    self.limits.max_connections,
                    refused + 1
                );
            }
            return None;
        }
        Some(place)
    }
}

tokio::task_local! {
    /// The head state of the connection whose request this task serves.
    static HEAD: Arc<HeadState>;
}

/// Tells the connection guard that the current request's head has been
/// read and parsed, so that what follows (a body) is not counted as head,
/// and that the gateway answers this request (its response is logged by
/// the gateway, not by the guard). Called by the gateway first thing for
/// every request; does nothing on HTTP/2 or outside a [`GuardedApp`].
pub fn head_read() {
    let _ = HEAD.try_with(|h| {
        h.armed.store(false, Ordering::Relaxed);
        h.seen.store(true, Ordering::Relaxed);
    });
}

/// Tells the connection guard that the current request is over, so that
/// the next bytes on the connection are the next request's head. When the
/// request body was not read to its end, Pingora may still read (drain) it
/// before the next head; those bytes are not a head, so the next head then
/// goes uncounted rather than miscounted.
pub fn request_done(body_done: bool) {
    let _ = HEAD.try_with(|h| {
        h.seen.store(false, Ordering::Relaxed);
        if body_done {
            h.armed.store(true, Ordering::Relaxed);
        }
    });
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Closed at once, unread, when max_connections are open.
        let _place = self.take_place()?;
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.app.process_new(stream, shutdown).await;
        }
        let head = Arc::new(HeadState {
            armed: AtomicBool::new(true),
            seen: AtomicBool::new(false),
        });
        let mut guard = HeadGuard::new(
            stream,
            Arc::clone(&head),
            self.limits,
            Arc::clone(&self.counts),
        );
        guard.log = self.log.clone();
        let stream: Stream = Box::new(guard);
        // Pingora serves every HTTP/1 request of the connection in this one
        // call, in this task: the gateway reaches the head state through
        // the task-local to disarm and re-arm it per request.
        HEAD.scope(head, self.app.process_new(stream, shutdown))
            .await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}

/// Shared between a [`HeadGuard`] and the loop serving its connection.
#[derive(Debug, Default)]
struct HeadState {
    /// Whether reads still belong to a request head.
    armed: AtomicBool,
    /// Whether the gateway saw the current request (it logs the response
    /// then); a response written while not is Pingora's own refusal.
    seen: AtomicBool,
}

/// A request line read byte by byte: `method SP target SP version`, with
/// nothing but those two spaces and no control byte. Pingora would
/// percent-encode a space or control byte in the target and forward the
/// request; a client that sent one did not send a URI.
#[derive(Debug)]
struct RequestLine {
    /// Bytes of it seen (leading empty lines, which RFC 9112 lets a server
    /// skip, not counted).
    seen: usize,
    spaces: u8,
    ended: bool,
    /// Its first bytes, for the log line of a refusal.
    start: [u8; LINE_KEPT],
}

/// Bytes of a request line kept for the log.
const LINE_KEPT: usize = 128;

impl Default for RequestLine {
    fn default() -> Self {
        RequestLine {
            seen: 0,
            spaces: 0,
            ended: false,
            start: [0; LINE_KEPT],
        }
    }
}

impl RequestLine {
    /// Takes the next byte of the head; `false` if the line is malformed.
    fn read(&mut self, b: u8) -> bool {
        if self.ended {
            return true;
        }
        match b {
            b'\r' => true,
            b'\n' if self.seen == 0 => true,
            b'\n' => {
                self.ended = true;
                self.spaces == 2
            }
            b' ' => {
                self.keep(b);
                self.spaces += 1;
                self.spaces <= 2
            }
            0..=0x1f | 0x7f => false,
            _ => {
                self.keep(b);
                true
            }
        }
    }

    fn keep(&mut self, b: u8) {
        if let Some(slot) = self.start.get_mut(self.seen) {
            *slot = b;
        }
        self.seen += 1;
    }

    /// The first bytes of the line seen so far.
    fn kept(&self) -> &[u8] {
        &self.start[..self.seen.min(LINE_KEPT)]
    }
}

/// What a [`HeadGuard`] does with the next read.
#[derive(Debug)]
enum Phase {
    /// Passing bytes through; counting them while the head state is armed.
    Open,
    /// Writing a refusal, `written` bytes of it so far.
    Refusing {
        response: &'static [u8],
        written: usize,
    },
    /// The refusal is out; every read fails.
    Refused,
}

/// A client stream that counts request-head bytes and time (see the
/// module documentation).
pub struct HeadGuard {
    inner: Stream,
    head: Arc<HeadState>,
    limits: ConnectionLimits,
    counts: Arc<ConnectionCounts>,
    /// Bytes of the current head so far.
    head_bytes: usize,
    /// How far a blank line has been matched: 1 after `\n`, 2 after `\n\r`.
    blank_line: u8,
    /// When the current head must be complete, once `timing`; one timer
    /// per connection, reset for each head.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether the deadline runs (from the current head's first byte).
    timing: bool,
    /// Whether the current head has begun (past any leading empty lines).
    started: bool,
    /// The current head's request line, as far as it has come.
    request_line: RequestLine,
    /// The previous head's request line, kept until the next head starts
    /// (Pingora may refuse a head after the guard saw all of it).
    last_line: RequestLine,
    /// Where refusals are logged and counted.
    log: Option<Arc<ConnectionLog>>,
    /// The client opened with the HTTP/2 preface (a peek saw it).
    h2_preface: bool,
    /// The connection speaks HTTP/2 with prior knowledge (h2c): after a
    /// preface, the server wrote something other than an HTTP/1 response
    /// head (its SETTINGS frame), so its writes are frames, never a
    /// response head to note. Without h2c the preface gets an HTTP/1 400,
    /// which is noted.
    h2: bool,
    /// Bytes read from the client to answer a peek, handed out by the
    /// next reads (from `peeked_from` on).
    peeked: Vec<u8>,
    peeked_from: usize,
    /// Whether the guard knows where heads start: true until bytes went by
    /// that it did not see as a head (a body, or the start of a pipelined
    /// head read with the previous request). Heads are still counted after
    /// that, but their request lines are no longer checked, since the
    /// guard might see one from its middle.
    in_step: bool,
    phase: Phase,
}

static TOO_LARGE: LazyLock<Vec<u8>> =
    LazyLock::new(|| raw_closing_response(431, "Request Header Fields Too Large"));
static MALFORMED: LazyLock<Vec<u8>> = LazyLock::new(|| raw_closing_response(400, "Bad Request"));
static TOO_SLOW: LazyLock<Vec<u8>> = LazyLock::new(|| raw_closing_response(408, "Request Timeout"));

impl HeadGuard {
    fn new(
        inner: Stream,
        head: Arc<HeadState>,
        limits: ConnectionLimits,
        counts: Arc<ConnectionCounts>,
    ) -> Self {
        // The first head's time runs from the connection's start: a client
        // that connects and sends nothing is a slow head too. Later heads'
        // time runs from their first byte (keepalive_timeout bounds the
        // wait before it).
        let first_deadline = Instant::now() + limits.header_timeout;
        HeadGuard {
            inner,
            head,
            limits,
            counts,
            head_bytes: 0,
            blank_line: 0,
            deadline: Some(Box::pin(tokio::time::sleep_until(first_deadline))),
            timing: true,
            peeked: Vec::new(),
            peeked_from: 0,
            started: false,
            request_line: RequestLine::default(),
            last_line: RequestLine::default(),
            log: None,
            h2_preface: false,
            h2: false,
            in_step: true,
            phase: Phase::Open,
        }
    }

    /// Counts `bytes`, just read, against the head. Returns the refusal to
    /// send when the head went over its size.
    fn count(&mut self, bytes: &[u8]) -> Option<&'static [u8]> {
        if bytes.is_empty() {
            return None;
        }
        if !self.timing {
            let at = Instant::now() + self.limits.header_timeout;
            match &mut self.deadline {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.timing = true;
        }
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_step && !self.request_line.read(b) {
                self.counts.heads_malformed.fetch_add(1, Ordering::Relaxed);
                return Some(&MALFORMED);
            }
            // Empty lines before the request line (which a server may
            // skip) are not the end of a head.
            if !self.started {
                if b == b'\r' || b == b'\n' {
                    continue;
                }
                self.started = true;
                // A new head: the previous one's line no longer names
                // what a refusal answers.
                if self.last_line.seen > 0 {
                    self.last_line = RequestLine::default();
                }
            }
            self.blank_line = match (b, self.blank_line) {
                (b'\n', 1 | 2) => 3,
                (b'\n', _) => 1,
                (b'\r', 1) => 2,
                _ => 0,
            };
            if self.blank_line == 3 {
                end = Some(i);
                break;
            }
        }
        self.head_bytes += end.map_or(bytes.len(), |i| i + 1);
        if self.head_bytes > self.limits.max_header_size {
            self.counts.heads_too_large.fetch_add(1, Ordering::Relaxed);
            return Some(&TOO_LARGE);
        }
        if let Some(i) = end {
            if i + 1 < bytes.len() {
                // A body or a pipelined head came along in the same read.
                self.in_step = false;
            }
            self.head.armed.store(false, Ordering::Relaxed);
            self.reset();
        }
        None
    }

    fn reset(&mut self) {
        self.head_bytes = 0;
        self.blank_line = 0;
        self.timing = false;
        self.started = false;
        if self.request_line.seen > 0 {
            self.last_line = std::mem::take(&mut self.request_line);
        }
    }

    /// Logs and counts a response written before the gateway saw the
    /// request: the guard's refusal, or Pingora's.
    fn record(&self, status: u16) {
        let Some(log) = &self.log else { return };
        let line: &[u8] = if self.request_line.seen > 0 {
            self.request_line.kept()
        } else {
            self.last_line.kept()
        };
        let tls = self.inner.get_ssl_digest();
        log.record(EarlyResponse {
            status,
            peer: self
                .inner
                .get_socket_digest()
                .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied()),
            line,
            tls: tls.as_deref(),
        });
    }

    /// Writes the refusal, then fails the read that wanted a head.
    fn poll_refuse(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Phase::Refusing { response, written } = &mut self.phase {
            if *written == response.len() {
                ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                self.phase = Phase::Refused;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &response[*written..]))?;
            if n == 0 {
                self.phase = Phase::Refused;
                break;
            }
            *written += n;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request head refused by the client limits",
        )))
    }
}

impl AsyncRead for HeadGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !matches!(this.phase, Phase::Open) {
            return this.poll_refuse(cx);
        }
        let before = buf.filled().len();
        let read = if this.peeked_from < this.peeked.len() {
            let n = buf.remaining().min(this.peeked.len() - this.peeked_from);
            buf.put_slice(&this.peeked[this.peeked_from..this.peeked_from + n]);
            this.peeked_from += n;
            if this.peeked_from == this.peeked.len() {
                this.peeked = Vec::new();
                this.peeked_from = 0;
            }
            Poll::Ready(Ok(()))
        } else {
            Pin::new(&mut this.inner).poll_read(cx, buf)
        };
        if !this.head.armed.load(Ordering::Relaxed) {
            if this.timing || this.head_bytes > 0 {
                this.reset();
            }
            if buf.filled().len() > before {
                // Bytes that are not a head (or not seen as one from its
                // start).
                this.in_step = false;
            }
            return read;
        }
        match read {
            Poll::Ready(Ok(())) => {
                let refusal = this.count(&buf.filled()[before..]);
                match refusal {
                    None => Poll::Ready(Ok(())),
                    Some(response) => {
                        this.record(status_of(response));
                        buf.set_filled(before);
                        this.phase = Phase::Refusing {
                            response,
                            written: 0,
                        };
                        this.poll_refuse(cx)
                    }
                }
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = this.timing
                    && this
                        .deadline
                        .as_mut()
                        .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.counts.heads_too_slow.fetch_add(1, Ordering::Relaxed);
                this.record(408);
                this.phase = Phase::Refusing {
                    response: &TOO_SLOW,
                    written: 0,
                };
                this.poll_refuse(cx)
            }
        }
    }
}

impl HeadGuard {
    /// Logs a response Pingora writes before the gateway saw a request
    /// (a head it could not parse, `CONNECT`): a response head while the
    /// gateway has not marked the request as its own.
    fn note_own_response(&mut self, buf: &[u8]) {
        if self.h2 || self.log.is_none() {
            return;
        }
        if self.head.seen.load(Ordering::Relaxed) {
            // The gateway answers the head the guard saw last: its line
            // must not name a later refusal (of a head read along with it,
            // which the guard never sees on its own).
            if self.last_line.seen > 0 {
                self.last_line = RequestLine::default();
            }
            return;
        }
        let status = response_status(buf);
        if self.h2_preface && status.is_none() && !buf.is_empty() {
            self.h2 = true;
            return;
        }
        if let Some(status) = status {
            // Once per response, whatever the number of writes.
            self.head.seen.store(true, Ordering::Relaxed);
            self.record(status);
        }
    }
}

/// The status of one of the guard's own refusals.
fn status_of(response: &[u8]) -> u16 {
    response_status(response).unwrap_or(400)
}

impl AsyncWrite for HeadGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.note_own_response(buf);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.note_own_response(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl std::fmt::Debug for HeadGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadGuard")
            .field("inner", &self.inner)
            .field("head_bytes", &self.head_bytes)
            .finish()
    }
}

#[async_trait]
impl Shutdown for HeadGuard {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeadGuard {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadGuard {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora_core::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadGuard {
    fn get_timing_digest(&self) -> Vec<Option<pingora_core::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadGuard {
    fn get_proxy_digest(&self) -> Option<Arc<pingora_core::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora_core::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for HeadGuard {
    fn get_socket_digest(&self) -> Option<Arc<pingora_core::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora_core::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

/// What Pingora peeks for on a plain listener with h2c on.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Pingora peeks at the first bytes of a plain connection (with h2c on) to
/// tell HTTP/2 from HTTP/1, and its own peek waits until the whole preface
/// length has arrived: a complete HTTP/1 request shorter than that
/// (`GET / HTTP/1.0` and two line ends) would wait for ever, and so would
/// a client that sends a few bytes and stops. This peek reads until the
/// bytes can be told apart (the buffer is full, or they already differ
/// from the preface), keeps them for the reads that follow, and is bound
/// by the head deadline.
#[async_trait]
impl Peek for HeadGuard {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let have = &self.peeked[self.peeked_from..];
            let known = have.len().min(H2_PREFACE.len());
            if have.len() >= buf.len() || have[..known] != H2_PREFACE[..known] {
                self.h2_preface = have.starts_with(H2_PREFACE);
                let n = have.len().min(buf.len());
                buf[..n].copy_from_slice(&have[..n]);
                return Ok(true);
            }
            let mut chunk = [0u8; 1024];
            let read = match self.deadline.as_ref().filter(|_| self.timing) {
                Some(sleep) => {
                    match tokio::time::timeout_at(sleep.deadline(), self.inner.read(&mut chunk))
                        .await
                    {
                        Ok(read) => read,
                        Err(_) => {
                            self.counts.heads_too_slow.fetch_add(1, Ordering::Relaxed);
                            self.record(408);
                            let _ = self.inner.write_all(&TOO_SLOW).await;
                            let _ = self.inner.flush().await;
                            self.phase = Phase::Refused;
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "no request head before client_header_timeout",
                            ));
                        }
                    }
                }
                None => self.inner.read(&mut chunk).await,
            };
            match read? {
                0 => {
                    // The client is done: nothing more will tell them apart.
                    let have = &self.peeked[self.peeked_from..];
                    buf[..have.len()].copy_from_slice(have);
                    return Ok(true);
                }
                n => self.peeked.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
