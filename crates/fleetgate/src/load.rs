//! Loading and compiling a configuration, shared by every subcommand.

use std::sync::Arc;

use fleetgate_config::Config;
use fleetgate_pool::HealthChecks;
use fleetgate_proxy::Snapshot;

/// Loads `path`, printing every error to stderr on failure.
pub fn load_config(path: &std::path::Path) -> Option<Config> {
    match Config::load(path) {
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
