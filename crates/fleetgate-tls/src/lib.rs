//! Server certificates for fleetgate's TLS listeners.
//!
//! Certificates arrive as PEM (from a `kubernetes.io/tls` Secret or a file
//! named in the TOML). [`ServerCertificate::from_pem`] checks them once, at
//! load: the PEM parses, the key matches the leaf certificate, and the
//! names and validity dates are read so that `check` can warn about an
//! expired certificate or a host it does not cover.
//!
//! A [`CertStore`] maps hosts to certificates, in the order a handshake
//! looks them up: the exact SNI name, then a one-label wildcard
//! (`*.example.com` covers `a.example.com`, not `a.b.example.com` nor
//! `example.com`), then the default certificate. With no match and no
//! default the handshake is refused: a client never gets a certificate
//! bound to another host (callers bind a host only to a certificate that
//! covers it, see [`ServerCertificate::covers`]).
//!
//! [`SniResolver`] is the rustls `ResolvesServerCert` over a store that a
//! reload swaps atomically: handshakes already done keep their
//! certificate, new ones see the new store. Nothing here depends on
//! Pingora, so the crate serves any rustls server.

#![warn(missing_docs)]

mod certificate;
mod pem;
pub use pem::ca_certificates;
mod resolver;
mod store;

pub use certificate::{CertificateError, ServerCertificate, Validity};
pub use resolver::SniResolver;
pub use store::{CertStore, CertStoreBuilder, Entry, Selected};

/// Names of the cipher suites a TLS listener offers (those of ring, the
/// provider Pingora's rustls backend installs), in preference order:
/// AEAD ciphers with forward secrecy only (TLS 1.3 suites, then ECDHE with
/// AES-GCM or ChaCha20-Poly1305 for TLS 1.2).
pub fn cipher_suite_names() -> Vec<String> {
    rustls::crypto::ring::default_provider()
        .cipher_suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}

#[cfg(test)]
mod tests;
