//! The error a bad subset annotation produces.
//!
//! It names the annotation and its value so that the message can be shown as
//! is in the gateway status and logs: the operator sees which Ingress field to
//! fix without having to know how the parser works.

use std::fmt;

/// A subset annotation that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetError {
    /// The annotation key at fault, e.g. `mse.ingress.kubernetes.io/subset-labels`.
    pub key: String,
    /// The annotation's value, as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl SubsetError {
    pub(crate) fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SubsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` keeps a multi-line `subset-labels` value on one log line.
        write!(
            f,
            "annotation {}={:?}: {}",
            self.key, self.value, self.reason
        )
    }
}

impl std::error::Error for SubsetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_key_and_value() {
        let err = SubsetError::new("k", "a b\nc", "line 2: bad");
        assert_eq!(err.to_string(), "annotation k=\"a b\\nc\": line 2: bad");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.source().is_none());
    }
}
