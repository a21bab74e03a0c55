//! Hosts to certificates, looked up the way a handshake needs: exact name,
//! then one-label wildcard, then the default.

use std::sync::Arc;

use ahash::AHashMap;

use crate::certificate::ServerCertificate;

/// A certificate and where it came from (e.g. `Secret ns/name`), for
/// listings and errors.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The certificate.
    pub certificate: Arc<ServerCertificate>,
    /// Where it was configured.
    pub source: Arc<str>,
}

/// How a certificate was chosen for a server name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// The name is listed for it.
    Exact,
    /// A `*.domain` entry covers the name.
    Wildcard,
    /// No entry matched (or the client sent no name): the default.
    Default,
}

/// The certificates of the TLS listeners. Immutable; a reload builds a new
/// one.
#[derive(Debug, Default)]
pub struct CertStore {
    exact: AHashMap<String, usize>,
    /// Keyed by the domain after `*.`.
    wildcard: AHashMap<String, usize>,
    default: Option<usize>,
    entries: Vec<Entry>,
    /// `(host as configured, entry)` in configuration order, for listings.
    hosts: Vec<(String, usize)>,
}

impl CertStore {
    /// The certificate for a handshake that asked for `server_name` (SNI),
    /// and how it was chosen. `None`: refuse the handshake.
    pub fn select(&self, server_name: Option<&str>) -> Option<(&Entry, Selected)> {
        let mut buf = [0u8; 253];
        // A name too long for DNS matches no entry.
        if let Some(name) = server_name.and_then(|n| lower(n, &mut buf)) {
            if let Some(&i) = self.exact.get(name) {
                return Some((&self.entries[i], Selected::Exact));
            }
            if let Some((_, domain)) = name.split_once('.') {
                if let Some(&i) = self.wildcard.get(domain) {
                    return Some((&self.entries[i], Selected::Wildcard));
                }
            }
        }
        self.default.map(|i| (&self.entries[i], Selected::Default))
    }

    /// Every configured host with its certificate, in configuration order.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.hosts
            .iter()
            .map(|(h, i)| (h.as_str(), &self.entries[*i]))
    }

    /// Every binding, for listings: each configured host with its
    /// certificate, then the default certificate (with no host).
    pub fn bindings(&self) -> impl Iterator<Item = (Option<&str>, &Entry)> {
        self.hosts()
            .map(|(h, e)| (Some(h), e))
            .chain(self.default_certificate().map(|e| (None, e)))
    }

    /// The default certificate, if any.
    pub fn default_certificate(&self) -> Option<&Entry> {
        self.default.map(|i| &self.entries[i])
    }

    /// Whether the store has no certificate at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `name` lower-cased into `buf`, without a trailing dot; `None` when it is
/// too long to be a DNS name.
fn lower<'b>(name: &str, buf: &'b mut [u8; 253]) -> Option<&'b str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Builds a [`CertStore`].
#[derive(Debug, Default)]
pub struct CertStoreBuilder {
    store: CertStore,
}

impl CertStoreBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, certificate: Arc<ServerCertificate>, source: &str) -> usize {
        if let Some(i) = self
            .store
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.certificate, &certificate) && *e.source == *source)
        {
            return i;
        }
        self.store.entries.push(Entry {
            certificate,
            source: source.into(),
        });
        self.store.entries.len() - 1
    }

    /// Serves `certificate` for `host` (a name or `*.domain`). A host that
    /// already has a certificate keeps it: the error names where that one
    /// came from.
    pub fn add(
        &mut self,
        host: &str,
        certificate: Arc<ServerCertificate>,
        source: &str,
    ) -> Result<(), Arc<str>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let (map_key, wildcard) = match key.strip_prefix("*.") {
            Some(domain) => (domain.to_string(), true),
            None => (key.clone(), false),
        };
        let map = if wildcard {
            &self.store.wildcard
        } else {
            &self.store.exact
        };
        if let Some(&i) = map.get(&map_key) {
            return Err(Arc::clone(&self.store.entries[i].source));
        }
        let i = self.push(certificate, source);
        let map = if wildcard {
            &mut self.store.wildcard
        } else {
            &mut self.store.exact
        };
        map.insert(map_key, i);
        self.store.hosts.push((key, i));
        Ok(())
    }

    /// Serves `certificate` to handshakes no host entry matches, and to
    /// those without SNI.
    pub fn default_certificate(&mut self, certificate: Arc<ServerCertificate>, source: &str) {
        let i = self.push(certificate, source);
        self.store.default = Some(i);
    }

    /// The store.
    pub fn build(self) -> CertStore {
        self.store
    }
}
