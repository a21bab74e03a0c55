//! Bounds on configuration input, checked before any parser sees it.
//!
//! Parsers are not linear in every input: libyaml's scanner is quadratic in
//! the nesting of flow collections (`[[[[...`), so 80 KB of brackets pinned
//! a thread for seconds and 2 MB would for tens of minutes. No real
//! manifest nests more than a handful of levels or is larger than a few
//! megabytes, so both are bounded, and a file past a bound is an error
//! that says which bound and where, not a reload that hangs. Nesting is
//! measured by the event walk that also finds duplicate keys (stopping at
//! the limit), with a bracket count as the fallback where that walk meets
//! a syntax error.

use std::path::Path;

use crate::error::{ConfigError, Location};

/// The largest configuration or manifest file read, in bytes.
pub const MAX_FILE_SIZE: u64 = 64 << 20;

/// The deepest nesting of YAML mappings and sequences accepted.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Reads `path` as text unless it is larger than [`MAX_FILE_SIZE`]: by
/// its size when the file system knows it, and by reading no more than
/// that in any case (a pipe, a file that grows while it is read).
pub(crate) fn read_bounded(path: &Path, what: &str) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError::new(message).at(Location::file(path));
    let too_large = |size: u64| {
        error(format!(
            "{what} is {} MiB or more; at most {} MiB is read",
            size >> 20,
            MAX_FILE_SIZE >> 20
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| error(format!("cannot read {what}: {e}")))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_SIZE {
        return Err(too_large(size));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_SIZE + 1), &mut text)
        .map_err(|e| error(format!("cannot read {what}: {e}")))?;
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// The 1-based line where brackets (`[`, `{`) in `yaml` first nest deeper
/// than `limit`, counting every bracket, quoted or not: an upper bound of
/// the flow nesting a YAML parser would see, for texts the event walk could
/// not finish. Closing brackets only close what was opened.
pub(crate) fn flow_too_deep(yaml: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for &b in yaml.as_bytes() {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_depth_is_an_upper_bound() {
        assert_eq!(flow_too_deep("a: [[1], {b: [2]}]\n", 3), None);
        assert_eq!(flow_too_deep("a: [[1], {b: [2]}]\n", 2), Some(1));
        assert_eq!(flow_too_deep("a: 1\nb: [[[1]]]\n", 2), Some(2));
        // Quotes do not hide brackets: this bound never undercounts.
        assert_eq!(flow_too_deep("a: it's [[[\n", 2), Some(1));
        assert_eq!(
            flow_too_deep(&"[".repeat(100_000), MAX_NESTING_DEPTH),
            Some(1)
        );
    }
}
