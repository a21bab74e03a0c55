//! Giving memory back after loading a configuration or a burst of clients.
//!
//! Loading parses every manifest into generic YAML values and the official
//! Kubernetes types before compiling; all of that is freed at once when
//! loading ends, but glibc keeps freed heap pages mapped. Trimming once
//! after each load returns them, so the resident size reflects what the
//! gateway holds (tens of MiB less for 10,000 Ingresses).
//!
//! Client connections are the same: each holds buffers for its request
//! head and body, and after a burst of thousands of connections (or an
//! attack holding them open) the freed buffers would stay resident. A
//! background thread trims when the number of open connections has fallen
//! well below its recent peak.

use std::sync::Arc;
use std::time::Duration;

use fleetgate_proxy::ConnectionCounts;

/// How often the connection count is looked at.
const TRIM_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// A peak below this is not worth a trim.
const TRIM_MIN_PEAK: usize = 256;

/// Returns freed heap memory to the system.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only releases free pages of the allocator's own
    // arenas; it reads and writes no memory of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts the thread that trims after connection bursts: when the peak of
/// open connections over the last interval was at least
/// [`TRIM_MIN_PEAK`] and twice what is open now.
pub fn trim_after_bursts(counts: Arc<ConnectionCounts>) {
    let spawned = std::thread::Builder::new()
        .name("fleetgate-trim".into())
        .spawn(move || loop {
            std::thread::sleep(TRIM_CHECK_INTERVAL);
            let peak = counts.take_peak();
            let open = counts.open.load(std::sync::atomic::Ordering::Relaxed);
            if peak >= TRIM_MIN_PEAK && open * 2 <= peak {
                log::debug!("{peak} client connections a moment ago, {open} now: trimming");
                release_free_memory();
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the memory trimmer ({e}); memory freed after bursts of clients stays resident");
    }
}
