//! One server certificate, checked at load.

use std::fmt;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::pem;

/// Why a certificate and key cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// The certificate PEM holds no `CERTIFICATE` section.
    NoCertificate,
    /// The key PEM holds no private key section.
    NoKey,
    /// The certificate's PEM text is malformed.
    CertificatePem(String),
    /// The key's PEM text is malformed.
    KeyPem(String),
    /// The leaf certificate is not valid X.509 DER.
    Certificate(String),
    /// The key cannot be used (unsupported type or corrupt).
    Key(String),
    /// The key is not the one the leaf certificate was issued for.
    KeyMismatch,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateError::NoCertificate => {
                f.write_str("no PEM CERTIFICATE section in the certificate")
            }
            CertificateError::NoKey => f.write_str("no PEM PRIVATE KEY section in the key"),
            CertificateError::CertificatePem(m) => {
                write!(f, "malformed PEM in the certificate: {m}")
            }
            CertificateError::KeyPem(m) => write!(f, "malformed PEM in the private key: {m}"),
            CertificateError::Certificate(m) => {
                write!(f, "the certificate is not valid X.509: {m}")
            }
            CertificateError::Key(m) => write!(f, "the private key cannot be used: {m}"),
            CertificateError::KeyMismatch => {
                f.write_str("the private key does not match the certificate")
            }
        }
    }
}

impl std::error::Error for CertificateError {}

impl CertificateError {
    /// Whether the private key, rather than the certificate, is at fault
    /// (to point an error at the right file or Secret key).
    pub fn concerns_key(&self) -> bool {
        matches!(
            self,
            CertificateError::NoKey
                | CertificateError::KeyPem(_)
                | CertificateError::Key(_)
                | CertificateError::KeyMismatch
        )
    }
}

/// Where a certificate stands in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Within its validity period.
    Valid,
    /// `not_before` is in the future.
    NotYetValid,
    /// `not_after` has passed.
    Expired,
}

/// A certificate chain with its private key, ready for handshakes, and what
/// it says about itself.
#[derive(Clone)]
pub struct ServerCertificate {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
    subject: String,
    not_before: i64,
    not_after: i64,
    not_before_text: String,
    not_after_text: String,
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ServerCertificate")
            .field("names", &self.names)
            .field("not_after", &self.not_after_text)
            .finish()
    }
}

impl PartialEq for ServerCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.key.cert == other.key.cert
    }
}

impl ServerCertificate {
    /// Parses a PEM certificate chain (leaf first) and its PEM private key,
    /// and checks that the key belongs to the leaf.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let chain = pem::certificate_chain(cert_pem)?;
        let key = pem::private_key(key_pem)?;
        let (_, leaf) = X509Certificate::from_der(chain[0].as_ref())
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
        let names = dns_names(&leaf);
        let subject = leaf.subject().to_string();
        let validity = leaf.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        let (not_before_text, not_after_text) = (
            validity.not_before.to_string(),
            validity.not_after.to_string(),
        );
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertificateError::Key(e.to_string()))?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(CertificateError::KeyMismatch)
            }
            // The provider cannot tell for this key type: let the handshake
            // be the judge.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(e) => return Err(CertificateError::Certificate(e.to_string())),
        }
        Ok(ServerCertificate {
            key: Arc::new(certified),
            names,
            subject,
            not_before,
            not_after,
            not_before_text,
            not_after_text,
        })
    }

    /// The chain and key, for rustls.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// DNS names of the leaf (subjectAltName; the common name when it has
    /// none), lower-case.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The leaf's subject, e.g. `CN=foo.bar.com`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `notBefore` as printed by the certificate tools.
    pub fn not_before(&self) -> &str {
        &self.not_before_text
    }

    /// `notAfter` as printed by the certificate tools.
    pub fn not_after(&self) -> &str {
        &self.not_after_text
    }

    /// `notAfter` in seconds since the Unix epoch.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    /// Where the certificate stands at `now` (seconds since the Unix epoch).
    pub fn validity_at(&self, now: i64) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Whether the certificate is valid for `host` (a name, or a
    /// `*.domain` wildcard as written in an Ingress).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|name| {
            if *name == host {
                return true;
            }
            match (name.strip_prefix("*."), host.split_once('.')) {
                (Some(domain), Some((label, rest))) => {
                    !label.is_empty() && label != "*" && rest == domain
                }
                _ => false,
            }
        })
    }
}

/// The leaf's DNS names: subjectAltName entries, else the common name.
fn dns_names(leaf: &X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    names
}
