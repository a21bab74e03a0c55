//! The hub's objects on disk (`[manifests] cache`).
//!
//! A gateway that restarts while its hub cluster is unreachable (the hub's
//! zone is the one that burned) would otherwise serve no hub Ingress until
//! the hub is back. With a cache, every configuration that serves writes
//! the objects it was built from; a start that gets no answer from the hub
//! in time reads them back and serves them until the hub answers, when its
//! lists replace them.
//!
//! The file holds Secrets (certificates and their keys): it is written
//! with mode 0600 to a new temporary file of its own (never one that was
//! there, never through a link), synced, renamed over the old one and the
//! directory synced, so a crash never leaves half a file.

use std::path::Path;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use serde::{Deserialize, Serialize};

use fleetgate_discovery::objects::ApiObject;

/// What the file holds.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    /// The format's version.
    version: u32,
    /// When it was written (RFC 3339).
    written_at: String,
    objects: Vec<Cached>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "object")]
enum Cached {
    Ingress(Box<Ingress>),
    Service(Box<Service>),
    Secret(Box<Secret>),
}

const FORMAT: u32 = 1;

/// Writes `objects` to `path` (see the module docs).
pub fn write<'a>(path: &Path, objects: impl Iterator<Item = &'a ApiObject>) -> std::io::Result<()> {
    let file = CacheFile {
        version: FORMAT,
        written_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        objects: objects
            .map(|o| match o {
                ApiObject::Ingress(i) => Cached::Ingress(i.clone()),
                ApiObject::Service(s) => Cached::Service(s.clone()),
                ApiObject::Secret(s) => Cached::Secret(s.clone()),
            })
            .collect(),
    };
    crate::replace_file::replace_file(path, 0o600, |out| {
        serde_json::to_writer(out, &file).map_err(std::io::Error::other)
    })?;
    // The rename itself survives a crash once the directory is synced.
    crate::replace_file::sync_dir(path)
}

/// The objects in the cache at `path`, and when they were written.
pub fn read(path: &Path) -> Result<(Vec<ApiObject>, String), String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: CacheFile =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.version != FORMAT {
        return Err(format!(
            "{}: format {} is not {FORMAT}",
            path.display(),
            file.version
        ));
    }
    let objects = file
        .objects
        .into_iter()
        .map(|c| match c {
            Cached::Ingress(i) => ApiObject::ingress(*i),
            Cached::Service(s) => ApiObject::service(*s),
            Cached::Secret(s) => ApiObject::secret(*s),
        })
        .collect();
    Ok((objects, file.written_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn objects_come_back_as_written_and_only_the_owner_reads_them() {
        let dir = std::env::temp_dir().join(format!("fleetgate-hub-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.json");
        let mut ingress = Ingress::default();
        ingress.metadata.name = Some("web".into());
        ingress.metadata.namespace = Some("shop".into());
        let mut secret = Secret::default();
        secret.metadata.name = Some("tls".into());
        secret.type_ = Some("kubernetes.io/tls".into());
        let objects = vec![ApiObject::ingress(ingress), ApiObject::secret(secret)];
        write(&path, objects.iter()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (back, written_at) = read(&path).unwrap();
        assert_eq!(back, objects);
        assert!(written_at.starts_with("20"), "{written_at}");
        std::fs::write(
            &path,
            "{\"version\": 9, \"written_at\": \"x\", \"objects\": []}",
        )
        .unwrap();
        assert!(read(&path).unwrap_err().contains("format 9"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
