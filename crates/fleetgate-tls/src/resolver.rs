//! The rustls certificate resolver over a swappable [`CertStore`].

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::store::CertStore;

/// Picks the certificate for each handshake from the current store. Clones
/// share the store, so a reload that calls [`SniResolver::replace`] on one
/// changes what every listener serves.
#[derive(Debug, Clone, Default)]
pub struct SniResolver {
    store: Arc<ArcSwap<CertStore>>,
}

impl SniResolver {
    /// A resolver serving `store`.
    pub fn new(store: Arc<CertStore>) -> Self {
        SniResolver {
            store: Arc::new(ArcSwap::new(store)),
        }
    }

    /// Serves `store` to new handshakes from now on.
    pub fn replace(&self, store: Arc<CertStore>) {
        self.store.store(store);
    }

    /// The store in use.
    pub fn current(&self) -> Arc<CertStore> {
        self.store.load_full()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let store = self.store.load();
        store
            .select(hello.server_name())
            .map(|(entry, _)| Arc::clone(entry.certificate.certified_key()))
    }
}
