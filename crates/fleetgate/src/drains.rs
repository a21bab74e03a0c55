//! Planned drains: taking a cluster out of rotation on purpose, through the
//! admin API (`POST /clusters/<id>/drain`, `/undrain`) or `fleetgate drain`.
//!
//! The drain itself is a flag on the cluster's shared state
//! ([`fleetgate_pool::Clusters`]), read by every pick, so it holds across
//! reloads and for endpoints that appear later. This module adds what an
//! operator needs around it: a check that the cluster exists, the listing
//! (`serving`, `draining` with the requests still in flight, `drained`),
//! and the optional `[admin] drain_file`, so that a drain also outlives a
//! restart. The file is written before the drain is applied: a drain that
//! could not be kept is refused rather than half-applied.

use std::io::Write;
use std::path::Path;

use fleetgate_pool::{Clusters, DrainPhase};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::GatewayState;

/// What the drain file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainFile {
    /// Ids of the drained clusters.
    drained: Vec<String>,
}

/// Why a drain request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainError {
    /// No cluster of the configuration has this id.
    UnknownCluster(String),
    /// The drain file could not be written; nothing changed.
    NotKept(String),
}

impl std::fmt::Display for DrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainError::UnknownCluster(m) | DrainError::NotKept(m) => f.write_str(m),
        }
    }
}

/// Drains cluster `id` (`drained = true`) or lets it serve again, keeping
/// the drain file (if any) in step first; returns the cluster's listing.
pub fn set_drained(state: &GatewayState, id: &str, drained: bool) -> Result<Value, DrainError> {
    let config = state.config.load();
    let clusters = state.checks.clusters();
    // A drained cluster the configuration no longer names can still be
    // undrained (else it would come back drained when re-added).
    let undrain_leftover = !drained && clusters.drained().iter().any(|c| c == id);
    if !undrain_leftover && !config.clusters.iter().any(|c| c.id == id) {
        let known: Vec<&str> = config.clusters.iter().map(|c| c.id.as_str()).collect();
        return Err(DrainError::UnknownCluster(format!(
            "no cluster \"{id}\" in the configuration; clusters: {}",
            known.join(", ")
        )));
    }
    // One change at a time, so that the file and the flags agree.
    let _serial = state.drain_lock.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = &config.drain_file {
        let mut wanted = clusters.drained();
        wanted.retain(|c| c != id);
        if drained {
            wanted.push(id.to_string());
            wanted.sort();
        }
        write_file(path, &wanted).map_err(|e| {
            DrainError::NotKept(format!(
                "cannot write the drain file {}: {e}; cluster {id} left as it was",
                path.display()
            ))
        })?;
    }
    clusters.set_drained(id, drained);
    Ok(cluster_json(clusters, id))
}

/// One cluster's drain state: `phase`, `drained`, requests in flight, and
/// for how long it has been drained.
pub fn cluster_json(clusters: &Clusters, id: &str) -> Value {
    let state = clusters.state(id);
    json!({
        "id": id,
        "phase": state.phase().as_str(),
        "drained": state.is_drained(),
        "in_flight": state.in_flight(),
        "drained_seconds": state.drained_for_ms().map(|ms| ms as f64 / 1000.0),
    })
}

/// Every configured cluster's drain state, plus drained clusters the
/// configuration no longer names (a drain outlives such a reload).
pub fn clusters_json(state: &GatewayState) -> Value {
    let config = state.config.load();
    let clusters = state.checks.clusters();
    let mut list: Vec<Value> = config
        .clusters
        .iter()
        .map(|c| {
            let mut v = cluster_json(clusters, &c.id);
            v["zone"] = json!(c.zone);
            v
        })
        .collect();
    for id in clusters.drained() {
        if !config.clusters.iter().any(|c| c.id == id) {
            let mut v = cluster_json(clusters, &id);
            v["note"] = json!("not in the configuration");
            list.push(v);
        }
    }
    json!({ "clusters": list })
}

/// Whether a phase counts as drained for `fleetgate drain --wait`.
pub fn is_done(phase: &str) -> bool {
    phase == DrainPhase::Drained.as_str()
}

/// Applies the drains kept in `path` (at start). A missing file means no
/// drain; an unreadable or malformed one is reported and applies nothing.
pub fn restore(clusters: &Clusters, path: &Path) -> Result<Vec<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "cannot read the drain file {}: {e}",
                path.display()
            ))
        }
    };
    let file: DrainFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the drain file {} is not valid (expected {{\"drained\": [\"cluster-id\", ...]}}): {e}",
            path.display()
        )
    })?;
    for id in &file.drained {
        clusters.set_drained(id, true);
    }
    Ok(file.drained)
}

/// Writes the drain file: a new temporary file beside it, synced, then
/// renamed over it, so a crash leaves the old or the new list, never half.
fn write_file(path: &Path, drained: &[String]) -> std::io::Result<()> {
    let file = DrainFile {
        drained: drained.to_vec(),
    };
    crate::replace_file::replace_file(path, 0o666, |out| {
        serde_json::to_writer_pretty(&mut *out, &file).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    })?;
    // The rename itself is durable once the directory is synced; the drain
    // holds either way.
    let _ = crate::replace_file::sync_dir(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_pool::HealthEpoch;

    #[test]
    fn the_file_round_trips_and_bad_files_apply_nothing() {
        let dir = std::env::temp_dir().join(format!("fleetgate-drains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drains.json");
        let clusters = Clusters::new(HealthEpoch::new());
        assert_eq!(
            restore(&clusters, &path),
            Ok(Vec::new()),
            "no file: no drain"
        );
        write_file(&path, &["zone-a".to_string()]).unwrap();
        assert_eq!(restore(&clusters, &path), Ok(vec!["zone-a".to_string()]));
        assert!(clusters.state("zone-a").is_drained());

        std::fs::write(&path, "{\"drained\": \"zone-b\"}").unwrap();
        let other = Clusters::new(HealthEpoch::new());
        let err = restore(&other, &path).unwrap_err();
        assert!(err.contains("is not valid"), "{err}");
        assert!(other.drained().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
