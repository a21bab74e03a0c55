//! Graceful shutdown: out of the balancer's rotation first, then the
//! listeners close, then in-flight requests finish, bounded by
//! `grace_period`, and no longer than needed.
//!
//! A gateway replica behind a load balancer must not close its listeners
//! while the balancer still sends it connections. So on SIGTERM it first
//! *drains*: `/readyz` answers 503 and every response carries
//! `Connection: close`, for `[gateway] shutdown_delay` (0 by default; set
//! it to what the balancer's health checks need to notice). Only then is
//! Pingora told to terminate ([`SignalWatch`] stands in for Pingora's own
//! signal handling), which stops accepting. Pingora would then wait its
//! grace period in full before stopping the runtimes; operators expect a
//! gateway to leave as soon as its in-flight requests are done, and never
//! later than the configured bound, which the watcher thread does.
//! Pingora's own grace period is set to the same bound as a backstop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fleetgate_proxy::GatewayStats;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

/// How long to let the listeners close before trusting the in-flight count.
const SETTLE: Duration = Duration::from_millis(100);
/// How often to look at the in-flight count.
const POLL: Duration = Duration::from_millis(20);

/// Pingora's signals, with the drain before a graceful terminate: SIGQUIT
/// hands the sockets to a new process (upgrade), SIGINT stops at once,
/// SIGTERM drains for `delay` and then terminates gracefully.
pub struct SignalWatch {
    /// How long to stay in the rotation's way out before closing.
    pub delay: Duration,
    /// Where draining is announced to the request path.
    pub stats: Arc<GatewayStats>,
    /// Set when Pingora is told to terminate (the listeners close): the
    /// moment the watcher starts counting in-flight requests down.
    pub closing: Arc<AtomicBool>,
}

#[async_trait]
impl ShutdownSignalWatch for SignalWatch {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log::error!("cannot watch SIGQUIT, SIGTERM and SIGINT; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = int.recv() => ShutdownSignal::FastShutdown,
            _ = term.recv() => {
                self.stats.draining.store(true, Ordering::Relaxed);
                crate::notify::notify("STOPPING=1");
                if !self.delay.is_zero() {
                    log::info!(
                        "SIGTERM: /readyz answers 503 and responses close their connections; listeners close in {:?}",
                        self.delay
                    );
                    // A second SIGTERM, or SIGINT, cuts the wait short.
                    tokio::select! {
                        _ = tokio::time::sleep(self.delay) => {}
                        _ = term.recv() => {}
                        _ = int.recv() => return ShutdownSignal::FastShutdown,
                    }
                }
                self.closing.store(true, Ordering::Relaxed);
                ShutdownSignal::GracefulTerminate
            }
        }
    }
}

/// Starts the watcher thread: once the listeners close (`closing`), it
/// exits the process as soon as no request is in flight, or after `grace`.
pub fn watch_sigterm(
    stats: Arc<GatewayStats>,
    closing: Arc<AtomicBool>,
    grace: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fleetgate-shutdown".into())
        .spawn(move || {
            while !closing.load(Ordering::Relaxed) {
                std::thread::sleep(POLL);
            }
            let started = Instant::now();
            log::info!("SIGTERM: draining in-flight requests (at most {grace:?})");
            loop {
                let elapsed = started.elapsed();
                let busy = stats.in_flight.load(Ordering::Relaxed);
                if elapsed >= SETTLE && busy == 0 {
                    log::info!("drained in {elapsed:?}; exiting");
                    break;
                }
                if elapsed >= grace {
                    log::warn!(
                        "grace period {grace:?} over with {busy} request(s) in flight; exiting"
                    );
                    break;
                }
                std::thread::sleep(POLL);
            }
            log::info!("served {}", stats.summary());
            std::process::exit(0);
        })?;
    Ok(())
}
