//! The serving certificate: rustls (ring) with TLS 1.2 and 1.3 and ALPN
//! `h2` + `http/1.1`, re-read whenever the files change.

use std::path::PathBuf;
use std::sync::{Arc, Once};

use axum_server::tls_rustls::RustlsConfig;

use crate::metrics::Metrics;
use crate::watch::FileWatch;

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use certificate {cert} with key {key}: {source}")]
pub struct TlsError {
    cert: String,
    key: String,
    source: std::io::Error,
}

/// rustls needs one process-wide crypto provider; Tollgate uses ring.
fn install_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only if another provider was installed first, which then serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl TlsFiles {
    /// Loads the files. axum-server's config negotiates TLS 1.2 and 1.3 and
    /// offers ALPN `h2` and `http/1.1`.
    pub async fn load(&self) -> Result<RustlsConfig, TlsError> {
        install_provider();
        RustlsConfig::from_pem_file(&self.cert, &self.key)
            .await
            .map_err(|source| self.error(source))
    }

    async fn reload(&self, config: &RustlsConfig) -> Result<(), TlsError> {
        config
            .reload_from_pem_file(&self.cert, &self.key)
            .await
            .map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> TlsError {
        TlsError {
            cert: self.cert.display().to_string(),
            key: self.key.display().to_string(),
            source,
        }
    }

    /// Re-reads the files whenever they change; new connections use the new
    /// certificate. A pair that does not load (say the key was written
    /// before the certificate) is logged and the previous one keeps serving
    /// until the next change.
    pub fn spawn_reloader(
        self,
        config: RustlsConfig,
        metrics: Arc<Metrics>,
    ) -> notify::Result<tokio::task::JoinHandle<()>> {
        let mut watch = FileWatch::new()?;
        watch.set_files([self.cert.clone(), self.key.clone()])?;
        Ok(tokio::spawn(async move {
            while watch.changed().await.is_some() {
                match self.reload(&config).await {
                    Ok(()) => {
                        metrics.certificate_reloaded(true);
                        tracing::info!(cert = %self.cert.display(), "reloaded the serving certificate");
                    }
                    Err(error) => {
                        metrics.certificate_reloaded(false);
                        tracing::error!(%error, "certificate reload failed; the previous certificate keeps serving");
                    }
                }
            }
        }))
    }
}
