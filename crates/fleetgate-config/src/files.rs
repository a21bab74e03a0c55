//! Expanding `[manifests] files` and `[[cluster]] endpoint_slices`: paths and globs relative to the TOML file.
//! A pattern that matches nothing is an error (it is almost always a typo).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Location};

/// `path` as written in the TOML file `config`: absolute, or relative to
/// the file's directory.
pub(crate) fn relative_to(config: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or_else(|| Path::new(".")).join(p)
    }
}

/// The files `patterns` (the TOML key `field`) match, each once, in order.
pub(crate) fn expand_files(
    config: &Path,
    patterns: &[String],
    field: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    let base = config.parent().unwrap_or_else(|| Path::new("."));
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let full_str = full.to_string_lossy().to_string();
        let is_glob = pattern.contains(['*', '?', '[']);
        let mut matched: Vec<PathBuf> = Vec::new();
        if is_glob {
            match glob::glob(&full_str) {
                Ok(paths) => {
                    for p in paths {
                        match p {
                            Ok(p) if p.is_file() => matched.push(p),
                            Ok(_) => {}
                            Err(e) => errors.push(
                                ConfigError::new(format!("cannot read: {e}"))
                                    .at(Location::file(config))
                                    .field(field.to_string()),
                            ),
                        }
                    }
                }
                Err(e) => errors.push(
                    ConfigError::new(format!("invalid pattern \"{pattern}\": {e}"))
                        .at(Location::file(config))
                        .field(field.to_string()),
                ),
            }
        } else if full.is_file() {
            matched.push(full.clone());
        }
        if matched.is_empty() {
            errors.push(
                ConfigError::new(format!(
                    "\"{pattern}\" matches no file (looked for {full_str})"
                ))
                .at(Location::file(config))
                .field(field.to_string()),
            );
        }
        matched.sort();
        for m in matched {
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
    }
    out
}
