//! Work that runs on a thread of its own, with a small tokio runtime:
//! the live sources (DNS, Kubernetes watches). Their waits and retries
//! never take a turn on the request path's runtimes, and stopping them is
//! dropping their handle.

use std::future::Future;
use std::time::{Duration, Instant};

/// A running thread; dropping it stops the work and joins the thread.
pub struct BackgroundTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl BackgroundTask {
    /// Whether the work has ended on its own.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// Runs `work` on a new thread named `name` until it ends or the handle
/// is dropped (which drops `work`, and with it every task it spawned in
/// a `JoinSet`).
pub fn spawn<F>(name: &str, work: F) -> std::io::Result<BackgroundTask>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let label = name.to_string();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    log::error!("{label}: cannot start a runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                tokio::select! {
                    () = work => {}
                    _ = stopped => {}
                }
            });
        })?;
    Ok(BackgroundTask {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Spaces builds that live sources cause: the next one starts no sooner
/// than `min`, or three times the last one's duration if that is longer,
/// after the previous one started. Changes that arrive meanwhile go into
/// that next build, so a storm costs at most about a third of one core.
pub struct Pacer {
    min: Duration,
    spacing: Duration,
    last_start: Option<Instant>,
}

impl Pacer {
    /// A pacer whose shortest spacing is `min`.
    pub fn new(min: Duration) -> Pacer {
        Pacer {
            min,
            spacing: min,
            last_start: None,
        }
    }

    /// Sleeps until the next build may start; returns its start.
    pub fn start(&mut self) -> Instant {
        if let Some(last) = self.last_start {
            let next = last + self.spacing;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        let started = Instant::now();
        self.last_start = Some(started);
        started
    }

    /// Records that the build started at `started` is done; returns how
    /// long it took.
    pub fn done(&mut self, started: Instant) -> Duration {
        let took = started.elapsed();
        self.spacing = self.min.max(took * 3);
        took
    }
}
