//! Client certificates (`--client-ca`, `--client-name`): only a client
//! holding a certificate from the configured CA (the API server's, see
//! `deploy/README.md`) completes a handshake on `--listen`. Denials carry
//! facts read from the cluster; without this anyone who can reach the port
//! could ask for them.
//!
//! rustls' WebPKI verifier checks the chain (and the clientAuth usage); on
//! top of it the certificate must name one of `--client-name` as its CN or
//! a DNS SAN, when any are given. The verifier sits behind an `ArcSwap`, so
//! a changed CA file takes effect for the next handshake, as a changed
//! serving certificate does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};

use crate::metrics::ClientRefused;
use tollgate_file_watch::FileWatch;

/// Why a client CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCaError {
    #[error("cannot read the client CA {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the client CA {0} is not PEM: {1}")]
    Pem(String, rustls::pki_types::pem::Error),
    #[error("the client CA {0} holds no certificate")]
    Empty(String),
    #[error("the client CA {0} cannot verify certificates: {1}")]
    Verifier(String, String),
}

/// The names a client certificate may carry; empty: any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientNames(Vec<String>);

impl ClientNames {
    pub fn new(names: &[String]) -> Self {
        Self(names.iter().map(|n| n.to_ascii_lowercase()).collect())
    }

    /// Whether `cert` names an allowed name as its common name or a DNS
    /// SAN (DNS names compare case-insensitively). An unparsable
    /// certificate names nothing.
    pub fn allow(&self, cert: &CertificateDer<'_>) -> bool {
        self.0.is_empty()
            || names_of(cert)
                .iter()
                .any(|name| self.0.contains(&name.to_ascii_lowercase()))
    }
}

/// The common names and DNS SANs of `cert`.
fn names_of(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        names.extend(san.value.general_names.iter().filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        }));
    }
    names
}

/// The client certificate check of `--listen`: the CA's chain, then the names.
#[derive(Debug)]
pub struct ClientAuth {
    ca: PathBuf,
    names: ClientNames,
    chain: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl ClientAuth {
    /// Reads the CA file; fails when it cannot verify anything.
    pub fn load(ca: &Path, names: &[String]) -> Result<Arc<Self>, ClientCaError> {
        let chain = chain_verifier(ca, &std::fs::read(ca).map_err(|e| read_error(ca, e))?)?;
        Ok(Arc::new(Self {
            ca: ca.to_path_buf(),
            names: ClientNames::new(names),
            chain: ArcSwap::from_pointee(chain),
        }))
    }

    /// Reads the CA file again and verifies with it from the next handshake.
    pub async fn reload(&self) -> Result<(), ClientCaError> {
        let pem = tokio::fs::read(&self.ca)
            .await
            .map_err(|e| read_error(&self.ca, e))?;
        self.chain.store(Arc::new(chain_verifier(&self.ca, &pem)?));
        Ok(())
    }

    /// Re-reads the CA file whenever it changes (a mounted Secret's or
    /// ConfigMap's `..data` swap included). A file that does not load is
    /// logged and the previous CA keeps verifying.
    pub fn spawn_reloader(
        self: Arc<Self>,
    ) -> Result<tokio::task::JoinHandle<()>, tollgate_file_watch::Error> {
        let mut watch = FileWatch::new()?;
        watch.set_files([self.ca.clone()])?;
        Ok(tokio::spawn(async move {
            while watch.changed().await.is_some() {
                match self.reload().await {
                    Ok(()) => {
                        tracing::info!(ca = %self.ca.display(), "reloaded the client CA")
                    }
                    Err(error) => tracing::error!(
                        %error,
                        "client CA reload failed; the previous CA keeps verifying"
                    ),
                }
            }
        }))
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.chain.load().as_ref().clone()
    }
}

fn read_error(ca: &Path, error: std::io::Error) -> ClientCaError {
    ClientCaError::Read(ca.display().to_string(), error)
}

/// rustls' WebPKI verifier trusting the certificates in `pem`.
fn chain_verifier(ca: &Path, pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, ClientCaError> {
    let shown = || ca.display().to_string();
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientCaError::Pem(shown(), e))?;
    if certs.is_empty() {
        return Err(ClientCaError::Empty(shown()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| ClientCaError::Verifier(shown(), e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        tollgate_certs::serving::provider(),
    )
    .build()
    .map_err(|e| ClientCaError::Verifier(shown(), e.to_string()))
}

impl ClientCertVerifier for ClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: clients (the API server's Go TLS, rustls) send their one
    /// configured certificate when the list is empty, and a fixed slice
    /// cannot follow a CA reload.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now)?;
        if !self.names.allow(end_entity) {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// Why a failed handshake was a refused client certificate, if it was one.
pub fn refusal(error: &std::io::Error) -> Option<ClientRefused> {
    match error.get_ref()?.downcast_ref::<Error>()? {
        Error::NoCertificatesPresented => Some(ClientRefused::NoCertificate),
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            Some(ClientRefused::UnknownCa)
        }
        Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
            Some(ClientRefused::NameNotAllowed)
        }
        Error::InvalidCertificate(_) => Some(ClientRefused::Invalid),
        _ => None,
    }
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
