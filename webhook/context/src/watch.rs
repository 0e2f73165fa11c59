//! In-cluster context: one watch-backed cache per resource type that any
//! loaded policy may read, holding what the grants cover ([`crate::plan`]).
//!
//! Each type gets a task that resolves it through discovery and then runs
//! one kube-rs watcher per planned selection (list, then watch; after any
//! error a fresh list, see `task`) into an in-memory
//! [`TypeStore`](crate::store::TypeStore). Lookups never touch the network;
//! a cache whose watch has been broken longer than
//! [`WatchOptions::max_staleness`] refuses them. A type whose API the server does not serve is "no
//! objects" and is rediscovered every [`WatchOptions::rediscover_every`], so
//! it is picked up once installed. Objects are stored without
//! `metadata.managedFields` and the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, and served under the apiVersion the policy asked for.

mod cache;
mod task;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use self::cache::TypeCache;
use crate::cache_metrics::ContextMetrics;
use crate::plan::{WatchPlan, whole_types};
use crate::store::ByType;
use crate::{Answer, ClusterContext, LookupError, LookupQuery, ResourceType, TypePlan};

/// Tuning of the watch backend.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often a type the cluster does not serve is looked up again.
    pub rediscover_every: Duration,
    /// The API server's URL, named by every watch error line.
    pub server: Option<Arc<str>>,
    /// How long a cache whose watch broke may still answer from its last
    /// view. Longer than a normal reconnect (a relist within 2 s of the
    /// server answering), short enough that no verdict rests on a view the
    /// cluster has long left.
    pub max_staleness: Duration,
}

/// [`WatchOptions::max_staleness`] by default.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(10);

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            rediscover_every: Duration::from_secs(30),
            server: None,
            max_staleness: DEFAULT_MAX_STALENESS,
        }
    }
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        source: KubeconfigError,
    },
    #[error("in-cluster configuration: {0}")]
    InCluster(#[from] InClusterError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for the cluster of `kubeconfig` (its current context), or, with
/// `None`, for the cluster this pod runs in (service account token).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ConnectError> {
    Ok(Client::try_from(config(kubeconfig).await?)?)
}

/// The client configuration [`connect`] uses (its `cluster_url` names the
/// server in log lines).
pub async fn config(kubeconfig: Option<&Path>) -> Result<kube::Config, ConnectError> {
    Ok(match kubeconfig {
        Some(path) => {
            let error = |source| ConnectError::Kubeconfig {
                path: path.to_owned(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(error)?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(error)?
        }
        None => kube::Config::incluster()?,
    })
}

/// Whether this process runs in a Kubernetes pod (so [`connect`]`(None)`
/// can work).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// Aborts the task when dropped.
#[derive(Debug)]
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watch-backed caches of the resource types the loaded policies may read.
///
/// Dropping it stops every watch.
pub struct WatchContext {
    client: Client,
    runtime: Handle,
    metrics: ContextMetrics,
    options: WatchOptions,
    /// Read on every lookup; written only when the set of types changes.
    caches: RwLock<ByType<Arc<TypeCache>>>,
    tasks: Mutex<BTreeMap<ResourceType, (TypePlan, Task)>>,
    changed: Arc<Notify>,
}

impl std::fmt::Debug for WatchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchContext")
            .field("types", &self.types())
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl WatchContext {
    /// Starts one cache of whole objects per type with default options.
    /// Must be called from within a Tokio runtime; the watches run on it.
    pub fn start(
        client: Client,
        types: impl IntoIterator<Item = ResourceType>,
        metrics: ContextMetrics,
    ) -> Self {
        Self::start_with(client, whole_types(types), metrics, WatchOptions::default())
    }

    /// Starts the caches of `plan` with explicit options.
    pub fn start_with(
        client: Client,
        plan: WatchPlan,
        metrics: ContextMetrics,
        options: WatchOptions,
    ) -> Self {
        let context = Self {
            client,
            runtime: Handle::current(),
            metrics,
            options,
            caches: RwLock::default(),
            tasks: Mutex::default(),
            changed: Arc::default(),
        };
        context.set_plan(plan);
        context
    }

    /// [`WatchContext::set_plan`] with whole objects of each type.
    pub fn set_types(&self, types: impl IntoIterator<Item = ResourceType>) {
        self.set_plan(whole_types(types));
    }

    /// Watches exactly `plan` from now on (after a policy reload): starts
    /// caches for new types and types whose plan changed, stops and drops
    /// those no policy reads any more, and leaves the others (and their
    /// synced state) alone. May be called from any thread.
    pub fn set_plan(&self, plan: WatchPlan) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut caches = self.caches.write().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|ty, (running, _)| {
            let keep = plan.get(ty) == Some(running);
            if !keep {
                caches.remove(ty);
                self.metrics.forget(ty);
            }
            keep
        });
        for (ty, type_plan) in plan {
            if tasks.contains_key(&ty) {
                continue;
            }
            let cache = Arc::new(TypeCache::new(
                ty.clone(),
                type_plan.clone(),
                self.metrics.for_type(&ty),
                self.options.max_staleness,
                self.changed.clone(),
            ));
            caches.insert(&ty, cache.clone());
            let run = task::run(self.client.clone(), cache, self.options.clone());
            tasks.insert(ty, (type_plan, Task(self.runtime.spawn(run))));
        }
        drop(caches);
        // Dropping pending types can make the whole context ready.
        self.changed.notify_waiters();
    }

    /// The watched types.
    pub fn types(&self) -> Vec<ResourceType> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.keys().cloned().collect()
    }

    /// The types whose cache has not synced yet (what `/readyz` waits for).
    pub fn pending(&self) -> Vec<ResourceType> {
        let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
        let mut pending: Vec<_> = caches
            .values()
            .filter(|c| !c.is_ready())
            .map(|c| c.ty.clone())
            .collect();
        pending.sort();
        pending
    }

    /// Resolves once every cache has synced (or found its API absent).
    pub async fn wait_ready(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }
}

impl WatchContext {
    /// The answer to `query`: its `except` first, with no lock held (a
    /// read lock taken twice on one thread can deadlock behind a writer).
    fn answer(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        let left_out = query
            .except
            .as_deref()
            .map(|q| self.answer(q))
            .transpose()?;
        let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
        match caches.get(&query.api_version, &query.kind) {
            Some(cache) => cache.select(query, left_out.as_ref()),
            None => Err(LookupError::Unavailable(format!(
                "no cache for {} {}: no loaded policy lists it in `context`",
                query.api_version, query.kind
            ))),
        }
    }
}

impl ClusterContext for WatchContext {
    fn lookup(&self, query: &LookupQuery) -> Result<Answer, LookupError> {
        let started = Instant::now();
        let answer = self.answer(query);
        self.metrics.observe_lookup(started.elapsed());
        answer
    }

    fn is_ready(&self) -> bool {
        let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
        caches.values().all(|c| c.is_ready())
    }

    fn stale(&self) -> Vec<String> {
        let caches = self.caches.read().unwrap_or_else(PoisonError::into_inner);
        let mut stale: Vec<String> = caches.values().filter_map(|c| c.staleness()).collect();
        stale.sort();
        stale
    }
}
