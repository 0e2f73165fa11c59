//! A certificate and key in files (`--cert/--key`, e.g. a mounted
//! cert-manager Secret), re-read whenever they change.

use std::path::PathBuf;
use std::time::Duration;

use rustls::sign::CertifiedKey;

use super::record_expiry;
use crate::CertMetrics;
use crate::serving::{PairError, ServingCert, certified_key};
use tollgate_file_watch::FileWatch;

/// A PEM certificate chain and its private key in files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use certificate {cert} with key {key}: {reason}")]
pub struct TlsError {
    cert: String,
    key: String,
    reason: String,
}

/// How often a torn read is retried: a mounted Secret's `..data` swap
/// changes both files at once, but a read may straddle two swaps.
const TORN_READ_RETRIES: usize = 3;

impl TlsFiles {
    /// Reads and checks the pair.
    pub async fn load(&self) -> Result<CertifiedKey, TlsError> {
        let mut attempt = 0;
        loop {
            match self.read_once().await {
                Ok(pair) => return Ok(pair),
                // A certificate and key from two different generations of a
                // volume do not match; the next read sees one generation.
                Err(error) if attempt < TORN_READ_RETRIES && error.mismatch => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    tracing::debug!(reason = %error.inner.reason, "certificate and key disagree; reading again");
                }
                Err(error) => return Err(error.inner),
            }
        }
    }

    async fn read_once(&self) -> Result<CertifiedKey, ReadError> {
        let read = |path: PathBuf| async move { tokio::fs::read(&path).await };
        let (cert, key) = tokio::join!(read(self.cert.clone()), read(self.key.clone()));
        let fail = |reason: String, mismatch: bool| ReadError {
            inner: TlsError {
                cert: self.cert.display().to_string(),
                key: self.key.display().to_string(),
                reason,
            },
            mismatch,
        };
        let (cert, key) = match (cert, key) {
            (Ok(cert), Ok(key)) => (cert, key),
            (Err(e), _) | (_, Err(e)) => return Err(fail(e.to_string(), false)),
        };
        certified_key(&cert, &key).map_err(|e| {
            let mismatch = matches!(e, PairError::Key(_));
            fail(e.to_string(), mismatch)
        })
    }

    /// Re-reads the files whenever they change (including kubelet's atomic
    /// `..data` symlink swap of a mounted Secret) and swaps the pair into
    /// `serving`. A pair that does not load (say the key was written before
    /// the certificate) is logged and the previous one keeps serving until
    /// the next change.
    pub fn spawn_reloader(
        self,
        serving: ServingCert,
        metrics: CertMetrics,
    ) -> Result<tokio::task::JoinHandle<()>, tollgate_file_watch::Error> {
        let mut watch = FileWatch::new()?;
        watch.set_files([self.cert.clone(), self.key.clone()])?;
        Ok(tokio::spawn(async move {
            while watch.changed().await.is_some() {
                match self.load().await {
                    Ok(pair) => {
                        serving.swap(pair);
                        record_expiry(&serving, &metrics);
                        metrics.reloaded(true);
                        tracing::info!(cert = %self.cert.display(), "reloaded the serving certificate");
                    }
                    Err(error) => {
                        metrics.reloaded(false);
                        tracing::error!(%error, "certificate reload failed; the previous certificate keeps serving");
                    }
                }
            }
        }))
    }
}

struct ReadError {
    inner: TlsError,
    mismatch: bool,
}
