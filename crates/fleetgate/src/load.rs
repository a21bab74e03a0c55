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

/// Endpoint totals: (endpoints, clusters with at least one endpoint).
pub fn endpoint_counts(config: &Config) -> (usize, usize) {
    let endpoints: usize = config.services.iter().map(|s| s.endpoints.len()).sum();
    let clusters = config
        .clusters
        .iter()
        .filter(|c| {
            config
                .services
                .iter()
                .any(|s| s.endpoints.iter().any(|e| e.cluster == c.id))
        })
        .count();
    (endpoints, clusters)
}
