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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fleetgate_proxy::GatewayStats;
use pingora_core::server::{ExecutionPhase, ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

/// How long to let the listeners close before trusting the in-flight count.
const SETTLE: Duration = Duration::from_millis(100);
/// How often to look at the in-flight count.
const POLL: Duration = Duration::from_millis(20);
/// The longest wait for the access log's queued lines at exit.
const LOG_FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Pingora's signals, with the drain before a graceful terminate and the
/// checks before an upgrade (see [`crate::upgrade`]): SIGQUIT hands the
/// sockets to a new process if one waits, SIGUSR2 starts one and hands
/// over once it waits, SIGINT stops at once, SIGTERM drains for `delay`
/// and then terminates gracefully.
pub struct SignalWatch {
    /// How long to stay in the rotation's way out before closing.
    pub delay: Duration,
    /// Where draining is announced to the request path.
    pub stats: Arc<GatewayStats>,
    /// Starts new processes and checks that one waits.
    pub upgrader: Arc<crate::upgrade::Upgrader>,
}

impl SignalWatch {
    /// From here on the new process takes the traffic: responses close
    /// their connections, so clients move to it without a reset. The
    /// readiness probe stays 200: the admin listener is shared with the
    /// new process, and a balancer must not take the node out.
    fn hand_over(&self, message: String) -> ShutdownSignal {
        self.upgrader.record(true, message);
        self.stats.draining.store(true, Ordering::Relaxed);
        ShutdownSignal::GracefulUpgrade
    }
}

#[async_trait]
impl ShutdownSignalWatch for SignalWatch {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut usr2)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined2()),
        ) else {
            log::error!("cannot watch SIGQUIT, SIGTERM, SIGINT and SIGUSR2; stopping");
            return ShutdownSignal::FastShutdown;
        };
        let socket = self.upgrader.socket.clone();
        loop {
            tokio::select! {
                _ = quit.recv() => {
                    if crate::upgrade::new_process_waiting(&socket) {
                        return self.hand_over(format!(
                            "SIGQUIT: handing the listening sockets to the process waiting on {}",
                            socket.display()
                        ));
                    }
                    self.upgrader.record(false, format!(
                        "SIGQUIT: no new process waits on {} (start `fleetgate run --upgrade` first, or send SIGUSR2); still serving",
                        socket.display()
                    ));
                }
                _ = usr2.recv() => {
                    log::info!("SIGUSR2: starting the new binary to hand over to");
                    // SIGTERM and SIGINT still work while the new process
                    // starts; the new process is stopped then (dropping
                    // the start kills it).
                    let started = tokio::select! {
                        started = self.upgrader.start_new_process() => started,
                        _ = int.recv() => return ShutdownSignal::FastShutdown,
                        _ = term.recv() => {
                            self.upgrader.record(false, "SIGUSR2: SIGTERM came before the new process was ready; stopped it".into());
                            return self.terminate(&mut term, &mut int).await;
                        }
                    };
                    match started {
                        Ok(pid) => {
                            return self.hand_over(format!(
                                "SIGUSR2: handing the listening sockets to pid {pid}"
                            ));
                        }
                        Err(e) => self.upgrader.record(false, format!("SIGUSR2: {e}; still serving")),
                    }
                }
                _ = int.recv() => return ShutdownSignal::FastShutdown,
                _ = term.recv() => return self.terminate(&mut term, &mut int).await,
            }
        }
    }
}

impl SignalWatch {
    /// SIGTERM: drain for `delay` (cut short by a second SIGTERM, or
    /// SIGINT), then terminate gracefully.
    async fn terminate(
        &self,
        term: &mut tokio::signal::unix::Signal,
        int: &mut tokio::signal::unix::Signal,
    ) -> ShutdownSignal {
        self.stats.draining.store(true, Ordering::Relaxed);
        self.stats.shutting_down.store(true, Ordering::Relaxed);
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
        ShutdownSignal::GracefulTerminate
    }
}

/// What every way out does last: writes the access log's queued lines
/// (for at most two seconds) and removes the pid file if it names this
/// process. Safe to run twice.
pub fn last_steps(access_log: &fleetgate_proxy::AccessLog) {
    if !access_log.flush(LOG_FLUSH_LIMIT) {
        log::warn!("access log: lines still queued at exit were lost");
    }
    crate::pid_file::remove();
}

/// Starts the watcher thread: once Pingora starts its shutdown (after a
/// SIGTERM's drain, or after a hand-over, when this process has stopped
/// accepting from the sockets it shares with the new one), it exits the
/// process as soon as no request is in flight and no client connection
/// is open (Pingora closes idle keep-alive connections then), or after
/// `grace`, with the access log's queued lines written first.
pub fn watch_exit(
    stats: Arc<GatewayStats>,
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    grace: Duration,
    access_log: fleetgate_proxy::AccessLog,
) -> std::io::Result<()> {
    use tokio::sync::broadcast::error::RecvError;
    std::thread::Builder::new()
        .name("fleetgate-shutdown".into())
        .spawn(move || {
            loop {
                match phases.blocking_recv() {
                    Ok(
                        ExecutionPhase::ShutdownStarted
                        | ExecutionPhase::ShutdownGracePeriod
                        | ExecutionPhase::ShutdownRuntimes
                        | ExecutionPhase::Terminated,
                    )
                    | Err(RecvError::Closed) => break,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                }
            }
            let started = Instant::now();
            log::info!("draining in-flight requests and connections (at most {grace:?})");
            loop {
                let elapsed = started.elapsed();
                let busy = stats.in_flight.load(Ordering::Relaxed);
                let open = stats.connections.open.load(Ordering::Relaxed);
                if elapsed >= SETTLE && busy == 0 && open == 0 {
                    log::info!("drained in {elapsed:?}; exiting");
                    break;
                }
                if elapsed >= grace {
                    log::warn!(
                        "grace period {grace:?} over with {busy} request(s) in flight and {open} connection(s) open; exiting"
                    );
                    break;
                }
                std::thread::sleep(POLL);
            }
            log::info!("served {}", stats.summary());
            last_steps(&access_log);
            std::process::exit(0);
        })?;
    Ok(())
}
