//! Hot reload: SIGHUP, or a change of any loaded file with `--watch`.
//!
//! A reload loads and validates the TOML and every manifest, compiles a new
//! snapshot (reusing unchanged pools, so health state and upstream
//! connections survive), and swaps it in atomically. An invalid
//! configuration is rejected with the errors `check` would print, and the
//! previous one keeps serving. Reloads are serialised.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fleetgate_config::Config;

use crate::notify;
use crate::state::{ConfigView, GatewayState};

/// Reloads from `path`, from a thread that must survive whatever the
/// reload does: a panic (a bug) is reported as a rejected reload and the
/// previous configuration keeps serving, so later reloads still happen.
pub fn reload_guarded(state: &GatewayState, path: &Path) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reload(state, path)));
    if let Err(payload) = outcome {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        log::error!(
            "reload panicked ({message}); generation {} keeps serving",
            state.generation()
        );
        state.record_reload(
            false,
            state.generation(),
            format!("the reload panicked: {message}"),
            Duration::ZERO,
        );
        notify::notify("READY=1");
    }
}

/// Reloads from `path`. Returns the new generation, or the errors.
pub fn reload(state: &GatewayState, path: &Path) -> Result<u64, String> {
    let _serial = state
        .reload_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = Config::read_text(path).map_err(|e| e.to_string());
    serialised_reload(state, path, text, "reload", true)
}

/// Rebuilds from the TOML text the serving configuration was loaded from,
/// because the hub cluster's objects changed.
pub fn reload_from_hub(state: &GatewayState, path: &Path) -> Result<u64, String> {
    let _serial = state
        .reload_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = state
        .hub
        .text()
        .ok_or_else(|| "the serving configuration does not read a hub cluster".to_string());
    serialised_reload(state, path, text, "hub change", false)
}

/// A reload (`why`) under the reload lock; `configure`: the TOML may
/// name other sources than the serving one. A hub change is not a reload
/// for systemd or for `/status`'s last reload (which would hide a failed
/// SIGHUP behind it): it is logged and recorded as the hub's last build.
fn serialised_reload(
    state: &GatewayState,
    path: &Path,
    text: Result<String, String>,
    why: &str,
    configure: bool,
) -> Result<u64, String> {
    if configure {
        notify::reloading();
    }
    let started = Instant::now();
    let result = text.and_then(|text| load_and_swap(state, path, &text, configure));
    let took = started.elapsed();
    match &result {
        Ok((generation, summary)) => {
            log::info!("{why}: generation {generation} serving ({summary}) in {took:?}");
            if configure {
                state.record_reload(true, *generation, summary.clone(), took);
            } else {
                state.advance_generation(*generation);
                state.hub.record_build(true, *generation, summary.clone());
            }
            state.refresh_phase();
        }
        Err(errors) => {
            log::error!(
                "{why} rejected, generation {} keeps serving: {}",
                state.generation(),
                errors.trim_end()
            );
            if configure {
                state.record_reload(false, state.generation(), errors.clone(), took);
            } else {
                state
                    .hub
                    .record_build(false, state.generation(), errors.clone());
            }
        }
    }
    if configure {
        notify::notify("READY=1");
    }
    result.map(|(g, _)| g)
}

fn load_and_swap(
    state: &GatewayState,
    path: &Path,
    text: &str,
    configure: bool,
) -> Result<(u64, String), String> {
    let generation = state.generation() + 1;
    let previous = state.snapshot.load_full();
    let mut built_from = None;
    let built = state.hub.build(
        path,
        text,
        configure.then_some(Duration::ZERO),
        |config: &Config| {
            // Live sources first (a new DNS name gets its first answer
            // before the configuration that routes to it serves).
            let unsynced = state
                .discovery
                .configure(Some(config), crate::discovery::initial_wait(config));
            for cluster in unsynced {
                log::warn!("reload: cluster {cluster}: no complete answer from its endpoint source yet; its endpoints follow when it answers");
            }
            let discovered = state.discovery.snapshot_for(config);
            let compiled = fleetgate::compile::compile_with(
                config,
                generation,
                &state.checks,
                Some(&previous),
                discovered.as_ref(),
            );
            built_from = discovered;
            compiled
        },
    );
    let (config, snapshot, hub_build) = match built {
        Ok(b) => b,
        Err(e) => {
            // Back to the serving configuration's live sources.
            state
                .discovery
                .configure(state.discovery.kept().as_deref(), Duration::ZERO);
            return Err(e.to_string());
        }
    };
    {
        let changed = start_only_changes(&state.started_with, &config);
        if !changed.is_empty() {
            state
                .discovery
                .configure(state.discovery.kept().as_deref(), Duration::ZERO);
            return Err(format!(
                "{} changed: these take effect only at a restart (or a binary upgrade); nothing was applied",
                changed.join(", ")
            ));
        }
    }
    // The last step that can fail: a new access log file is opened here.
    let applied = match state.live.apply(&config) {
        Ok(applied) => applied,
        Err(e) => {
            state
                .discovery
                .configure(state.discovery.kept().as_deref(), Duration::ZERO);
            return Err(e);
        }
    };
    for name in applied {
        log::info!("reload: {name} applied");
    }
    let summary = format!(
        "{} Ingress(es) served, {} ignored, {} route(s), {} pool(s)",
        snapshot.report.served.len(),
        snapshot.report.ignored.len(),
        snapshot.router.table().routes().len(),
        snapshot.router.pools().len()
    );
    let certificates = Arc::clone(&snapshot.certificates);
    state.hub.commit(&config, &snapshot.report, text, hub_build);
    state.snapshot.store(Arc::new(snapshot));
    let forgotten = state.snapshot.load().forget_removed_series(&state.metrics);
    if forgotten > 0 {
        log::info!("{forgotten} metric series of removed Ingresses and Services dropped");
    }
    state.discovery.set_built_from(built_from);
    // Freed on the applier's thread once no request holds it.
    state.discovery.retire(previous);
    // New handshakes get the new certificates; open connections keep theirs.
    state.certificates.replace(certificates);
    state.config.store(Arc::new(ConfigView::from(&config)));
    state.discovery.keep(Arc::new(config));
    crate::memory::release_free_memory();
    Ok((generation, summary))
}

/// The settings read once, at start, that differ between the serving
/// configuration and `new`. A reload that changes one is refused whole:
/// applying the rest would leave `/status` describing listeners, a token
/// or a log file that are not the ones in use.
fn start_only_changes(serving: &crate::state::StartSettings, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&serving.gateway, &new.gateway);
    let checks: [(&'static str, bool); 14] = [
        ("[gateway] listen", a.listen != b.listen),
        ("[gateway] listen_tls", a.listen_tls != b.listen_tls),
        ("[gateway] h2c", a.h2c != b.h2c),
        ("[gateway] name", a.name != b.name),
        ("[gateway] threads", a.threads != b.threads),
        ("[gateway] runtime_dir", a.runtime_dir != b.runtime_dir),
        ("[gateway] grace_period", a.grace_period != b.grace_period),
        (
            "[gateway] shutdown_delay",
            a.shutdown_delay != b.shutdown_delay,
        ),
        (
            "[gateway] keepalive_timeout",
            a.keepalive_timeout != b.keepalive_timeout,
        ),
        (
            "[gateway] keepalive_requests",
            a.keepalive_requests != b.keepalive_requests,
        ),
        (
            "[gateway] client limits",
            a.client_limits != b.client_limits,
        ),
        (
            "[gateway] forwarded_headers",
            a.forwarded_headers != b.forwarded_headers,
        ),
        ("[gateway] canary_seed", a.canary_seed != b.canary_seed),
        ("[admin] listen", serving.admin.listen != new.admin.listen),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

/// Reloads on every SIGHUP, in a thread of its own.
pub fn on_sighup(state: Arc<GatewayState>, path: PathBuf) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("fleetgate-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                log::info!("SIGHUP: reloading {}", path.display());
                reload_guarded(&state, &path);
            }
        })?;
    Ok(())
}

/// How often `--watch` looks at the files.
const WATCH_INTERVAL: Duration = Duration::from_millis(300);

/// Modification time and size of every file a configuration depends on,
/// plus the directories that hold its manifests and EndpointSlice files
/// (files added or removed).
fn fingerprint(
    config_path: &Path,
    config: &ConfigView,
) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
    let mut paths: Vec<PathBuf> = vec![config_path.to_path_buf()];
    let files = config.manifest_files.iter().chain(&config.endpoint_files);
    paths.extend(files.clone().cloned());
    let dirs: Vec<PathBuf> = files
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    paths.extend(dirs);
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let stamp = meta.and_then(|m| Some((m.modified().ok()?, m.len())));
            (p, stamp)
        })
        .collect()
}

/// Reloads when the configuration or any manifest changes.
pub fn watch(state: Arc<GatewayState>, path: PathBuf) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fleetgate-watch".into())
        .spawn(move || {
            let mut seen = fingerprint(&path, &state.config.load());
            loop {
                std::thread::sleep(WATCH_INTERVAL);
                let now = fingerprint(&path, &state.config.load());
                if now != seen {
                    log::info!("--watch: configuration files changed; reloading");
                    reload_guarded(&state, &path);
                    seen = fingerprint(&path, &state.config.load());
                }
            }
        })?;
    Ok(())
}
