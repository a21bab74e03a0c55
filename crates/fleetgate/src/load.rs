//! Loading and compiling a configuration, shared by every subcommand.

use std::sync::Arc;

use fleetgate_config::Config;
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::Snapshot;

/// Loads `path` (with the Ingresses of its hub cluster, if it reads one),
/// printing every error to stderr on failure. For `check` and `routes`:
/// a hub that does not answer in time is an error, and every hub object
/// left out is printed.
pub fn load_config(path: &std::path::Path) -> Option<Config> {
    let hub = crate::hub::Hub::default();
    let (config, build, _) = load_with_hub(&hub, path)?;
    let Some(build) = build else {
        return Some(config);
    };
    if !build.synced() {
        eprintln!(
            "fleetgate: hub cluster: no complete answer within {:?}{}",
            crate::hub::initial_wait(&config),
            build.error().map(|e| format!(": {e}")).unwrap_or_default()
        );
        return None;
    }
    for (key, rejected) in build.rejected() {
        eprintln!(
            "fleetgate: hub cluster: {key} is left out: {}",
            rejected.errors.join("; ")
        );
    }
    Some(config)
}

/// Loads `path` with `hub`, printing every error to stderr on failure;
/// returns the TOML text read too.
pub fn load_with_hub(
    hub: &crate::hub::Hub,
    path: &std::path::Path,
) -> Option<(Config, Option<crate::hub::HubBuild>, String)> {
    let loaded = Config::read_text(path).and_then(|text| {
        let (config, build) = hub.build(path, &text, Some(std::time::Duration::ZERO))?;
        Ok((config, build, text))
    });
    match loaded {
        Ok(c) => Some(c),
        Err(errors) => {
            eprint!("fleetgate: {errors}");
            None
        }
    }
}

/// Loads `path` and compiles it, printing every error to stderr on failure.
pub fn load_and_compile(
    path: &std::path::Path,
    checks: &Arc<HealthChecks>,
) -> Option<(Config, Snapshot)> {
    let config = load_config(path)?;
    match fleetgate::compile::compile(&config, 1, checks, None) {
        Ok(snapshot) => Some((config, snapshot)),
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
