//! Which certificate serves which host, for `check` and `routes`.

use fleetgate_proxy::Snapshot;

/// One line per TLS host and for the default certificate: where the
/// certificate comes from and when it expires.
pub fn certificate_lines(snapshot: &Snapshot) -> Vec<String> {
    let store = &snapshot.certificates;
    let mut lines: Vec<String> = store
        .hosts()
        .map(|(host, e)| {
            format!(
                "certificate: {host} <- {} (expires {})",
                e.source,
                e.certificate.not_after()
            )
        })
        .collect();
    if let Some(e) = store.default_certificate() {
        lines.push(format!(
            "certificate: (default, any other name or no SNI) <- {} (expires {})",
            e.source,
            e.certificate.not_after()
        ));
    }
    lines
}
