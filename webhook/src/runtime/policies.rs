//! Where the policy set comes from, and its hot reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tollgate_host::{Config, LoadError, PolicySet, Sandbox, module_files};

use super::ClusterSource;
use crate::builtin::{BUILTINS, DEFAULT_POLICIES};
use crate::file_watch::FileWatch;
use crate::metrics::Metrics;

/// The policy configuration to serve.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// `--policies FILE`, watched for changes.
    File(PathBuf),
    /// The built-in pack with its default configuration.
    Builtin,
}

/// A loaded set and the files it was loaded from.
pub struct Loaded {
    pub set: PolicySet,
    /// The configuration file and every module file it names.
    pub files: Vec<PathBuf>,
}

impl PolicySource {
    /// Parses the configuration and compiles its modules (blocking: may
    /// compile Wasm).
    pub fn load(&self, sandbox: &Sandbox) -> Result<Loaded, LoadError> {
        match self {
            Self::File(path) => {
                let config = Config::from_file(path)?;
                let base = path.parent().unwrap_or(Path::new("."));
                let set = PolicySet::load(&config, sandbox, BUILTINS, base)?;
                let modules = set.module_paths().iter().cloned();
                let files = std::iter::once(path.clone()).chain(modules).collect();
                Ok(Loaded { set, files })
            }
            Self::Builtin => {
                let config = Config::from_yaml(DEFAULT_POLICIES, "built-in default configuration")?;
                let set = PolicySet::load(&config, sandbox, BUILTINS, Path::new("."))?;
                Ok(Loaded {
                    set,
                    files: Vec::new(),
                })
            }
        }
    }

    /// The files a failed load depends on: the configuration and, when it
    /// parses, every module file it names (existing or not).
    fn named_files(&self) -> Vec<PathBuf> {
        let Self::File(path) = self else {
            return Vec::new();
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let modules = Config::from_file(path)
            .map(|config| module_files(&config, base))
            .unwrap_or_default();
        std::iter::once(path.clone()).chain(modules).collect()
    }
}

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
) -> notify::Result<tokio::task::JoinHandle<()>> {
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
