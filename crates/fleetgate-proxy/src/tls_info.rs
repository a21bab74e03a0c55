//! What the access log tells about a client's TLS connection: its version
//! (from Pingora's connection digest) and the server name the client asked
//! for (SNI). Pingora's rustls digest does not keep the server name, so
//! [`RecordServerName`], a post-handshake callback of the TLS listener,
//! stores it in the digest's extension, once per connection.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_proxy::Session;

/// The server name a client sent in its TLS handshake.
#[derive(Debug, Clone)]
pub struct ServerName(pub Arc<str>);

/// A TLS listener callback that keeps the client's server name (install
/// with `TlsSettings::with_callbacks`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordServerName;

#[async_trait]
impl TlsAccept for RecordServerName {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let name = tls.server_name()?;
        Some(Arc::new(ServerName(name.into())))
    }
}

/// The TLS version of the session's client connection (`TLSv1.3`), if it
/// is one.
pub fn version(session: &Session) -> Option<Cow<'static, str>> {
    Some(version_of(session.digest()?.ssl_digest.as_ref()?))
}

/// The server name the client asked for, if [`RecordServerName`] saw one.
pub fn server_name(session: &Session) -> Option<Arc<str>> {
    server_name_of(session.digest()?.ssl_digest.as_ref()?)
}

/// A connection's TLS version as logs and OpenSSL write it.
pub fn version_of(digest: &SslDigest) -> Cow<'static, str> {
    // rustls names versions `TLSv1_3`.
    match digest.version.as_ref() {
        "TLSv1_3" => Cow::Borrowed("TLSv1.3"),
        "TLSv1_2" => Cow::Borrowed("TLSv1.2"),
        _ => digest.version.clone(),
    }
}

/// The server name [`RecordServerName`] kept for a connection.
pub fn server_name_of(digest: &SslDigest) -> Option<Arc<str>> {
    digest
        .extension
        .get::<ServerName>()
        .map(|n| Arc::clone(&n.0))
}
