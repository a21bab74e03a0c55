//! Graceful shutdown bounded by `grace_period`, and no longer than needed.
//!
//! On SIGTERM Pingora stops accepting and then waits its grace period in
//! full before stopping the runtimes. Operators expect a gateway to leave as
//! soon as its in-flight requests are done, and never later than the
//! configured bound; this watcher does exactly that. Pingora's own grace
//! period is set to the same bound as a backstop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetgate_proxy::GatewayStats;

/// How long to let the listeners close before trusting the in-flight count.
const SETTLE: Duration = Duration::from_millis(100);
/// How often to look at the in-flight count.
const POLL: Duration = Duration::from_millis(20);

/// Starts the watcher thread. Returns an error if the signal handler cannot
/// be installed.
pub fn watch_sigterm(stats: Arc<GatewayStats>, grace: Duration) -> std::io::Result<()> {
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term))?;
    std::thread::Builder::new()
        .name("fleetgate-shutdown".into())
        .spawn(move || {
            while !term.load(Ordering::Relaxed) {
                std::thread::sleep(POLL);
            }
            let started = Instant::now();
            crate::notify::notify("STOPPING=1");
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
