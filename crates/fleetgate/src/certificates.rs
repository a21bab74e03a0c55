//! Which certificate serves which host, for `check` and `routes`.

use fleetgate_proxy::Snapshot;

/// One line per TLS host and for the default certificate: where the
/// certificate comes from and when it expires.
pub fn certificate_lines(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .certificates
        .bindings()
        .map(|(host, e)| {
            format!(
                "certificate: {} <- {} (expires {})",
                host.unwrap_or("(default, any other name or no SNI)"),
                e.source,
                e.certificate.not_after()
            )
        })
        .collect()
}
