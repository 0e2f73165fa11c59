//! The server's TLS: rustls (ring) with TLS 1.2 and 1.3 and ALPN `h2` +
//! `http/1.1`, presenting the swappable certificate of `tollgate_certs`.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tollgate_certs::ServingCert;
use tollgate_certs::serving::provider;

use super::client_auth::ClientAuth;

/// An acceptor presenting `serving` (swappable) that requires a client
/// certificate `client` accepts, or none without `client`.
pub fn acceptor(serving: &ServingCert, client: Option<Arc<ClientAuth>>) -> TlsAcceptor {
    TlsAcceptor::from(config(serving, client))
}

/// TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, the certificate from
/// `serving`, client certificates as `client` says.
fn config(serving: &ServingCert, client: Option<Arc<ClientAuth>>) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3");
    let builder = match client {
        Some(client) => builder.with_client_cert_verifier(client),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(serving.resolver());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
