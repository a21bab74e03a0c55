//! PEM decoding: a certificate chain and a private key, with errors that say
//! which part is wrong.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::certificate::CertificateError;

/// The certificates in `pem`, leaf first.
pub(crate) fn certificate_chain(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        match item {
            Ok(c) => chain.push(c),
            Err(e) => return Err(CertificateError::CertificatePem(describe(&e))),
        }
    }
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate);
    }
    Ok(chain)
}

/// The first private key in `pem` (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub(crate) fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, CertificateError> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(k) => Ok(k),
        Err(pem::Error::NoItemsFound) => Err(CertificateError::NoKey),
        Err(e) => Err(CertificateError::KeyPem(describe(&e))),
    }
}

fn describe(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line".into(),
        pem::Error::Base64Decode(m) => format!("invalid base64 ({m})"),
        other => format!("{other:?}"),
    }
}

/// The CA certificates of a PEM bundle, for verifying upstreams; every
/// certificate must parse as X.509.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let certs = certificate_chain(pem)?;
    for c in &certs {
        use x509_parser::prelude::FromDer;
        x509_parser::certificate::X509Certificate::from_der(c.as_ref())
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
    }
    Ok(certs)
}
