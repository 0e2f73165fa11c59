//! The certificate the server presents, swapped in place whenever a new
//! pair arrives (from files, the development CA or the managed Secret).
//!
//! The TLS configuration holds this resolver for the whole process; it
//! keeps the current pair behind an `ArcSwap`, so a swap is one pointer
//! store: handshakes already under way finish with the pair they started
//! with, the next one gets the new pair, and no request ever fails for it.

use std::sync::{Arc, Once};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate and key cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("the certificate is not PEM: {0}")]
    CertPem(rustls::pki_types::pem::Error),
    #[error("the certificate PEM holds no certificate")]
    NoCertificate,
    #[error("the key is not a PEM private key: {0}")]
    KeyPem(rustls::pki_types::pem::Error),
    #[error("the key does not fit the certificate: {0}")]
    Key(rustls::Error),
}

/// rustls needs one process-wide crypto provider; Tollgate uses ring.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only if another provider was installed first, which then serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A serving pair from PEM: the chain in `cert` (leaf first) and the private
/// key in `key`, checked to belong together.
pub fn certified_key(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, PairError> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PairError::CertPem)?;
    if chain.is_empty() {
        return Err(PairError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(PairError::KeyPem)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(PairError::Key)
}

/// The certificate the server presents, swappable while serving.
#[derive(Clone)]
pub struct ServingCert {
    current: Arc<Resolver>,
}

#[derive(Debug)]
struct Resolver(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl ServingCert {
    pub fn new(pair: CertifiedKey) -> Self {
        Self {
            current: Arc::new(Resolver(ArcSwap::from_pointee(pair))),
        }
    }

    /// New handshakes present `pair` from now on.
    pub fn swap(&self, pair: CertifiedKey) {
        self.current.0.store(Arc::new(pair));
    }

    /// The leaf currently presented (DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.0.load().cert[0].clone()
    }

    /// What TLS asks for the pair of each handshake: the pair current then.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let issued = rcgen::generate_simple_self_signed(names).unwrap();
        (issued.cert.pem(), issued.signing_key.serialize_pem())
    }

    #[test]
    fn a_pair_must_belong_together() {
        let (cert, key) = pair(&["localhost"]);
        assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
        let (_, other_key) = pair(&["localhost"]);
        let error = certified_key(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(matches!(error, PairError::Key(_)), "{error}");
        assert!(matches!(
            certified_key(b"", key.as_bytes()).unwrap_err(),
            PairError::NoCertificate
        ));
        assert!(matches!(
            certified_key(cert.as_bytes(), b"not a key").unwrap_err(),
            PairError::KeyPem(_)
        ));
    }

    #[test]
    fn a_swap_changes_the_presented_leaf() {
        let (cert, key) = pair(&["localhost"]);
        let serving = ServingCert::new(certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
        let first = serving.leaf();
        let (cert, key) = pair(&["localhost"]);
        serving.swap(certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
        assert_ne!(serving.leaf(), first);
    }
}
