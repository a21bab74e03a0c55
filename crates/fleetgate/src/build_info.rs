//! What this binary is: its version, the commit it was built from (see
//! `build.rs`) and what it was built with, for `--version`, the startup
//! line and the `fleetgate_build_info` metric, so an operator can tell
//! which build runs on a machine.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit built from (`unknown` outside a git checkout; `-dirty`
/// when the checkout had changes).
pub const COMMIT: &str = env!("FLEETGATE_COMMIT");

/// What the binary was built with.
pub const FEATURES: &str = "tls=rustls, http2, grpc, websocket, discovery=files+dns+kubernetes";

/// `--version`'s text.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FLEETGATE_COMMIT"),
    ")\nbuilt with: tls=rustls, http2, grpc, websocket, discovery=files+dns+kubernetes"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_version_commit_and_features() {
        assert!(LONG_VERSION.starts_with(VERSION));
        assert!(LONG_VERSION.contains(COMMIT));
        assert!(LONG_VERSION.ends_with(FEATURES));
    }
}
