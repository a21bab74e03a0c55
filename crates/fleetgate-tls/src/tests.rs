//! Certificates made by rcgen, checked and selected as handshakes would.

use std::sync::Arc;

use crate::certificate::Validity;
use crate::{CertStoreBuilder, CertificateError, Selected, ServerCertificate};

/// A self-signed certificate for `names` and its key, as PEM.
fn pem_pair(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn cert(names: &[&str]) -> Arc<ServerCertificate> {
    let (c, k) = pem_pair(names);
    Arc::new(ServerCertificate::from_pem(c.as_bytes(), k.as_bytes()).expect("valid pair"))
}

#[test]
fn names_and_dates_are_read() {
    let c = cert(&["Foo.Bar.com", "*.example.com"]);
    assert_eq!(c.names(), ["foo.bar.com", "*.example.com"]);
    assert_eq!(c.validity_at(c.not_after_unix() - 1), Validity::Valid);
    assert_eq!(c.validity_at(c.not_after_unix() + 1), Validity::Expired);
    assert_eq!(c.validity_at(0), Validity::NotYetValid);
    assert!(!c.not_after().is_empty());
}

#[test]
fn coverage_follows_one_label_wildcards() {
    let c = cert(&["foo.bar.com", "*.example.com"]);
    assert!(c.covers("foo.bar.com"));
    assert!(c.covers("FOO.bar.com."));
    assert!(c.covers("a.example.com"));
    assert!(c.covers("*.example.com"));
    assert!(!c.covers("example.com"));
    assert!(!c.covers("a.b.example.com"));
    assert!(!c.covers("bar.com"));
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let (c1, _) = pem_pair(&["a.test"]);
    let (_, k2) = pem_pair(&["b.test"]);
    let e = ServerCertificate::from_pem(c1.as_bytes(), k2.as_bytes()).unwrap_err();
    assert_eq!(e, CertificateError::KeyMismatch);
    assert_eq!(
        e.to_string(),
        "the private key does not match the certificate"
    );
}

#[test]
fn garbage_is_reported_by_part() {
    let (c, k) = pem_pair(&["a.test"]);
    let e = ServerCertificate::from_pem(b"hello", k.as_bytes()).unwrap_err();
    assert_eq!(e, CertificateError::NoCertificate);
    let e = ServerCertificate::from_pem(c.as_bytes(), b"not a key").unwrap_err();
    assert_eq!(e, CertificateError::NoKey);
    let broken = c.replace("-----END CERTIFICATE-----", "");
    let e = ServerCertificate::from_pem(broken.as_bytes(), k.as_bytes()).unwrap_err();
    assert!(matches!(e, CertificateError::CertificatePem(_)), "{e:?}");
    assert!(!e.concerns_key());
    let broken_key = k.replace("-----END PRIVATE KEY-----", "");
    let e = ServerCertificate::from_pem(c.as_bytes(), broken_key.as_bytes()).unwrap_err();
    assert!(matches!(e, CertificateError::KeyPem(_)), "{e:?}");
    assert!(e.concerns_key(), "a broken key PEM is reported on the key");
    let bad_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let e = ServerCertificate::from_pem(bad_der.as_bytes(), k.as_bytes()).unwrap_err();
    assert!(matches!(e, CertificateError::Certificate(_)), "{e:?}");
}

#[test]
fn selection_is_exact_then_wildcard_then_default() {
    let foo = cert(&["foo.bar.com"]);
    let wild = cert(&["*.bar.com"]);
    let fallback = cert(&["default.test"]);
    let mut b = CertStoreBuilder::new();
    b.add("foo.bar.com", Arc::clone(&foo), "Secret a/foo")
        .unwrap();
    b.add("*.bar.com", Arc::clone(&wild), "Secret a/wild")
        .unwrap();
    let without_default = CertStoreBuilder::new();
    let empty = without_default.build();
    b.default_certificate(Arc::clone(&fallback), "default");
    let store = b.build();

    let pick = |sni: Option<&str>| {
        store
            .select(sni)
            .map(|(e, how)| (e.source.to_string(), how))
    };
    assert_eq!(
        pick(Some("FOO.bar.com")),
        Some(("Secret a/foo".into(), Selected::Exact))
    );
    assert_eq!(
        pick(Some("x.bar.com")),
        Some(("Secret a/wild".into(), Selected::Wildcard))
    );
    assert_eq!(
        pick(Some("x.y.bar.com")),
        Some(("default".into(), Selected::Default))
    );
    assert_eq!(pick(None), Some(("default".into(), Selected::Default)));
    assert!(empty.select(Some("foo.bar.com")).is_none());
    assert!(empty.select(None).is_none());
    let long = "a".repeat(300);
    assert_eq!(
        pick(Some(&long)),
        Some(("default".into(), Selected::Default))
    );
}

#[test]
fn a_host_keeps_its_first_certificate() {
    let mut b = CertStoreBuilder::new();
    b.add("foo.bar.com", cert(&["foo.bar.com"]), "Secret a/first")
        .unwrap();
    let err = b
        .add("Foo.Bar.com", cert(&["foo.bar.com"]), "Secret a/second")
        .unwrap_err();
    assert_eq!(&*err, "Secret a/first");
    let store = b.build();
    let hosts: Vec<_> = store
        .hosts()
        .map(|(h, e)| (h.to_string(), e.source.to_string()))
        .collect();
    assert_eq!(
        hosts,
        [("foo.bar.com".to_string(), "Secret a/first".to_string())]
    );
}

#[test]
fn the_documented_cipher_suites_are_the_offered_ones() {
    let docs = include_str!("../../../docs/edge-protocols.md");
    let offered = crate::cipher_suite_names();
    assert_eq!(offered.len(), 9, "{offered:?}");
    let mut documented: Vec<&str> = docs
        .split('`')
        .filter(|w| w.starts_with("TLS13_") || w.starts_with("TLS_ECDHE_"))
        .collect();
    documented.dedup();
    assert_eq!(
        documented, offered,
        "docs/edge-protocols.md lists what is offered, in order"
    );
}
