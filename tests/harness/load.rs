//! A steady concurrent load, recording every request's outcome.
//!
//! Failover tests run it while they kill or restart backends, then check
//! that no request failed and who answered when.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::HttpClient;

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, since the load started.
    pub at: Duration,
    /// How long it took.
    pub took: Duration,
    /// The body of a 200, else a description of the failure.
    pub result: Result<String, String>,
}

/// A running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
}

impl Load {
    /// Starts `threads` clients, each sending `GET path` with `Host: host`
    /// every `interval` on a kept-alive connection.
    pub fn start(
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        threads: usize,
        interval: Duration,
    ) -> Load {
        Load::start_as(addr, host, path, headers, threads, interval, false)
    }

    /// Like [`Load::start`] with [`HttpClient::strict`] clients: a
    /// request reset on a reused connection counts as failed.
    pub fn start_strict(
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        threads: usize,
        interval: Duration,
    ) -> Load {
        Load::start_as(addr, host, path, headers, threads, interval, true)
    }

    fn start_as(
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        threads: usize,
        interval: Duration,
        strict: bool,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let workers = (0..threads)
            .map(|_| {
                let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
                let (host, path, headers) = (host.to_string(), path.to_string(), headers.clone());
                std::thread::spawn(move || {
                    let mut client = HttpClient::new(addr);
                    if strict {
                        client = client.strict();
                    }
                    let hdrs: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let result = match client.request("GET", &host, &path, &hdrs, "") {
                            Ok(r) if r.status == 200 => Ok(r.body),
                            Ok(r) => Err(format!("status {}: {}", r.status, r.body.trim())),
                            Err(e) => Err(format!("io: {e}")),
                        };
                        let sample = Sample {
                            at: sent - started,
                            took: sent.elapsed(),
                            result,
                        };
                        samples
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(sample);
                        next += interval;
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else {
                            next = now;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            workers,
            samples,
            started,
        }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops and returns every sample, in send order.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
        let mut samples =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        samples.sort_by_key(|s| s.at);
        samples
    }
}

/// Asserts that the load was at least `at_least` requests and that none
/// of them failed, naming the first failures if some did.
pub fn assert_none_failed(samples: &[Sample], at_least: usize) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.result.is_err()).collect();
    assert!(
        samples.len() >= at_least,
        "load too light: {} requests, {at_least} expected",
        samples.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        samples.len(),
        &failed[..failed.len().min(5)]
    );
}
