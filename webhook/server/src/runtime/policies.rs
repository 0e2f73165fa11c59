//! Where the policy set comes from, and its hot reload.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tollgate_file_watch::FileWatch;
use tollgate_host::{LoadError, PolicySet, Sandbox};
use tollgate_preflight::source::{Loaded, PolicySource};

use super::ClusterSource;
use crate::metrics::Metrics;

/// Loads `source` on a blocking thread.
pub async fn load_blocking(
    source: PolicySource,
    sandbox: Arc<Sandbox>,
) -> Result<Loaded, ReloadError> {
    tokio::task::spawn_blocking(move || source.load(&sandbox))
        .await
        .map_err(|_| ReloadError::Aborted)?
        .map_err(ReloadError::Load)
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("policy loading aborted unexpectedly")]
    Aborted,
}

/// Reloads the set whenever the configuration file or one of its modules
/// changes. A new set replaces the old one whole; a set that fails to load
/// is logged and counted, and the previous set keeps serving.
pub fn spawn_reloader(
    path: PathBuf,
    initial_files: Vec<PathBuf>,
    sandbox: Arc<Sandbox>,
    policies: Arc<ArcSwap<PolicySet>>,
    cluster: ClusterSource,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>, tollgate_file_watch::Error> {
    let mut watch = FileWatch::new()?;
    watch.set_files(initial_files.clone())?;
    // The serving set's files: a failed reload watches these plus the ones
    // the broken configuration names (a module not yet written, say).
    let mut serving_files = initial_files;
    let source = PolicySource::File(path.clone());
    Ok(tokio::spawn(async move {
        while watch.changed().await.is_some() {
            match load_blocking(source.clone(), sandbox.clone()).await {
                Ok(loaded) => {
                    let count = loaded.set.policies().len();
                    cluster.policies_changed(&loaded.set);
                    policies.store(Arc::new(loaded.set));
                    metrics.reloaded(Some(count));
                    tracing::info!(config = %path.display(), policies = count, "reloaded policies");
                    serving_files = loaded.files;
                    if let Err(error) = watch.set_files(serving_files.clone()) {
                        tracing::error!(%error, "cannot watch the reloaded policy files");
                    }
                }
                Err(error) => {
                    metrics.reloaded(None);
                    tracing::error!(config = %path.display(), %error, "policy reload failed; the previous policies keep serving");
                    let files = serving_files.iter().cloned().chain(source.named_files());
                    if let Err(error) = watch.set_files(files) {
                        tracing::error!(%error, "cannot watch the files the broken configuration names");
                    }
                }
            }
        }
    }))
}
