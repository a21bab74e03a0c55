//! Loading and compiling a configuration, shared by every subcommand.

use std::sync::Arc;

use fleetgate_config::Config;
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::Snapshot;

/// Loads `path` (with the Ingresses of its hub cluster, if it reads one)
/// and compiles it, printing every error to stderr on failure. For
/// `check` and `routes`: a hub that does not answer in time is an error,
/// and every hub object left out is printed.
pub fn load_and_compile(
    path: &std::path::Path,
    checks: &Arc<HealthChecks>,
) -> Option<(Config, Snapshot)> {
    let hub = crate::hub::Hub::without_cache();
    let (config, snapshot, build, _) = load_with_hub(&hub, path, |config| {
        fleetgate::compile::compile(config, 1, checks, None)
    })?;
    let Some(build) = build else {
        return Some((config, snapshot));
    };
    if !build.synced() {
        eprintln!(
            "fleetgate: hub cluster: no complete answer within {:?}{}",
            crate::hub::hub_wait(&config.manifest_source),
            build.error().map(|e| format!(": {e}")).unwrap_or_default()
        );
        return None;
    }
    if let Some(error) = build.error() {
        eprintln!("fleetgate: hub cluster: {error}");
    }
    for (key, rejected) in build.rejected() {
        eprintln!(
            "fleetgate: hub cluster: {key} is left out: {}",
            rejected.errors.join("; ")
        );
    }
    Some((config, snapshot))
}

/// Loads `path` with `hub` and compiles it with `compile`, printing every
/// error to stderr on failure; returns the TOML text read too.
pub fn load_with_hub<T>(
    hub: &crate::hub::Hub,
    path: &std::path::Path,
    compile: impl FnMut(&Config) -> Result<T, fleetgate_config::ConfigErrors>,
) -> Option<(Config, T, Option<crate::hub::HubBuild>, String)> {
    let loaded = Config::read_text(path).and_then(|text| {
        let (config, compiled, build) =
            hub.build(path, &text, Some(std::time::Duration::ZERO), compile)?;
        Ok((config, compiled, build, text))
    });
    match loaded {
        Ok(c) => Some(c),
        Err(errors) => {
            eprint!("fleetgate: {errors}");
            None
        }
    }
}

/// Endpoint totals of a compiled configuration: (endpoints, clusters with
/// at least one endpoint), over the Service ports' pools, each address
/// once.
pub fn endpoint_counts(config: &Config, snapshot: &Snapshot) -> (usize, usize) {
    let keys: std::collections::HashSet<String> = config.services.iter().map(|s| s.key()).collect();
    let mut addresses = std::collections::HashSet::new();
    let mut clusters = std::collections::HashSet::new();
    for pool in snapshot
        .router
        .pools()
        .iter()
        .filter(|p| keys.contains(p.name()))
    {
        for e in pool.endpoints() {
            addresses.insert(e.address);
            clusters.insert(e.cluster.clone());
        }
    }
    (addresses.len(), clusters.len())
}
