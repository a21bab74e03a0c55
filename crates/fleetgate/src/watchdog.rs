//! systemd's watchdog and status line.
//!
//! With `WatchdogSec=` in the unit, systemd passes `WATCHDOG_USEC` and
//! restarts the service when no `WATCHDOG=1` arrives within it. The pings
//! come from a task on one of Pingora's runtimes, at half the interval, so
//! a process whose runtimes stop (a deadlock, a livelock) stops pinging
//! and is restarted; a thread of its own would keep pinging through that.
//!
//! The same task keeps systemd's one-line status (`systemctl status`)
//! current: `STATUS=` with the gateway's state, generation, routes and
//! available endpoints, sent when it changes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use crate::notify::notify;
use crate::state::GatewayState;

/// How often the status line is looked at without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Pings systemd's watchdog and updates the status line.
pub struct Watchdog {
    state: Arc<GatewayState>,
    /// Half of `WATCHDOG_USEC`, when systemd asked for pings.
    ping_every: Option<Duration>,
}

impl Watchdog {
    /// A watchdog over `state`, pinging if the environment asks for it.
    pub fn from_env(state: Arc<GatewayState>) -> Self {
        let ping_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&usec| usec > 0)
            .map(|usec| Duration::from_micros(usec) / 2);
        if let Some(every) = ping_every {
            log::info!("systemd watchdog: pinging every {every:?}");
        }
        Watchdog { state, ping_every }
    }
}

/// The status line systemd shows.
pub fn status_line(state: &GatewayState) -> String {
    let snapshot = state.snapshot.load();
    let (mut up, mut total) = (0u64, 0u64);
    for pool in snapshot.router.pools() {
        let (u, t) = pool.availability();
        up += u64::from(u);
        total += u64::from(t);
    }
    format!(
        "{}: generation {}, {} route(s), {up}/{total} endpoint(s) available",
        state.phase().name(),
        state.generation(),
        snapshot.router.table().routes().len(),
    )
}

#[async_trait]
impl BackgroundService for Watchdog {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = self
            .ping_every
            .map_or(STATUS_EVERY, |p| p.min(STATUS_EVERY));
        let mut last_status = String::new();
        loop {
            let status = status_line(&self.state);
            let changed = status != last_status;
            match (self.ping_every.is_some(), changed) {
                (true, true) => notify(&format!("WATCHDOG=1\nSTATUS={status}")),
                (true, false) => notify("WATCHDOG=1"),
                (false, true) => notify(&format!("STATUS={status}")),
                (false, false) => {}
            }
            last_status = status;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
