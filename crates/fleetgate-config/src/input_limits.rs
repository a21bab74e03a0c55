//! Bounds on configuration input, checked before any parser sees it.
//!
//! Parsers are not linear in every input: libyaml's scanner is quadratic in
//! the nesting of flow collections (`[[[[...`), so 80 KB of brackets pinned
//! a thread for seconds and 2 MB would for tens of minutes. No real
//! manifest nests more than a handful of levels or is larger than a few
//! megabytes, so both are bounded, and a file past a bound is an error
//! that says which bound and where, not a reload that hangs.

use std::path::Path;

use crate::error::{ConfigError, Location};

/// The largest configuration or manifest file read, in bytes.
pub const MAX_FILE_SIZE: u64 = 64 << 20;

/// The deepest nesting of YAML flow collections (`[` and `{`) accepted.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Reads `path` as text unless it is larger than [`MAX_FILE_SIZE`].
pub(crate) fn read_bounded(path: &Path, what: &str) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError::new(message).at(Location::file(path));
    let size = std::fs::metadata(path)
        .map_err(|e| error(format!("cannot read {what}: {e}")))?
        .len();
    if size > MAX_FILE_SIZE {
        return Err(error(format!(
            "{what} is {} MiB; at most {} MiB is read",
            size >> 20,
            MAX_FILE_SIZE >> 20
        )));
    }
    std::fs::read_to_string(path).map_err(|e| error(format!("cannot read {what}: {e}")))
}

/// The 1-based line where the nesting of flow collections in `yaml` first
/// goes deeper than `limit`, if it does. Brackets inside quoted scalars and
/// comments do not count; an unbalanced bracket inside a plain scalar does,
/// which only matters for a text with dozens of them.
pub(crate) fn flow_too_deep(yaml: &str, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut previous = b'\n';
    for &b in yaml.as_bytes() {
        match (quote, b) {
            (_, b'\n') => {
                line += 1;
                comment = false;
                // A quoted scalar may span lines; a comment may not.
            }
            _ if comment => {}
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'#') if previous.is_ascii_whitespace() => comment = true,
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = b;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_counts_brackets_outside_quotes_and_comments() {
        assert_eq!(flow_too_deep("a: [[1], {b: [2]}]\n", 3), None);
        assert_eq!(flow_too_deep("a: [[1], {b: [2]}]\n", 2), Some(1));
        assert_eq!(flow_too_deep("a: 1\nb: [[[1]]]\n", 2), Some(2));
        assert_eq!(flow_too_deep("a: \"[[[[\"\nb: '{{{{'\n", 2), None);
        assert_eq!(flow_too_deep("a: 1 # [[[[[\n", 2), None);
        assert_eq!(flow_too_deep(&"[".repeat(100_000), MAX_FLOW_DEPTH), Some(1));
    }
}
