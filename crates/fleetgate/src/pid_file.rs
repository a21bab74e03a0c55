//! The pid file, `<runtime_dir>/fleetgate-<name>.pid`, written once the
//! gateway serves (so after a binary upgrade it names the new process) and
//! removed at exit only if it still names this process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static PATH: OnceLock<PathBuf> = OnceLock::new();

/// Writes this process's id to `path` (atomically), and remembers the
/// path for [`remove`].
pub fn write(path: &Path) {
    let _ = PATH.set(path.to_path_buf());
    let text = format!("{}\n", std::process::id());
    if let Err(e) = crate::replace_file::replace_file(path, 0o644, |f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
    }) {
        log::warn!("cannot write the pid file {}: {e}", path.display());
    }
}

/// Removes the pid file if it still names this process.
pub fn remove() {
    let Some(path) = PATH.get() else { return };
    let ours =
        std::fs::read_to_string(path).is_ok_and(|t| t.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}
