//! Where policy lookups are served from: a snapshot directory offline, the
//! watch caches of a cluster, or nothing.

use std::sync::Arc;

use anyhow::Context;
use tollgate_context::snapshot::SnapshotContext;
use tollgate_context::watch::{self, WatchContext};
use tollgate_context::{ClusterContext, EmptyContext, WatchPlan};
use tollgate_host::PolicySet;

use super::ServeArgs;
use crate::metrics::Metrics;

/// The serving context, and the watch caches behind it when there are any
/// (a reload changes which resource types they watch).
#[derive(Clone)]
pub struct ClusterSource {
    pub context: Arc<dyn ClusterContext>,
    watches: Option<Arc<WatchContext>>,
}

impl ClusterSource {
    /// `--cluster-snapshot DIR`, else `--kubeconfig PATH` or the in-cluster
    /// configuration when running in a pod, else an empty cluster.
    pub async fn from_args(
        args: &ServeArgs,
        policies: &PolicySet,
        metrics: &mut Metrics,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = &args.cluster_snapshot {
            let snapshot = SnapshotContext::load(dir)
                .with_context(|| format!("cannot load the cluster snapshot {}", dir.display()))?;
            tracing::info!(
                dir = %dir.display(),
                objects = snapshot.object_count(),
                files = snapshot.file_count(),
                "serving lookups from a cluster snapshot"
            );
            return Ok(Self::fixed(Arc::new(snapshot)));
        }
        if args.kubeconfig.is_none() && !watch::in_cluster() {
            return Ok(Self::fixed(Arc::new(EmptyContext)));
        }
        let config = watch::config(args.kubeconfig.as_deref())
            .await
            .context("cannot connect to the cluster")?;
        // Named by every watch error line.
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).context("cannot connect to the cluster")?;
        let watches = Arc::new(WatchContext::start_with(
            client,
            watch_plan(policies),
            metrics.register_context(),
            watch::WatchOptions {
                server: Some(server.into()),
                max_staleness: args.max_context_staleness,
                ..watch::WatchOptions::default()
            },
        ));
        tracing::info!(
            types = watches.types().len(),
            "watching cluster objects for policy lookups"
        );
        Ok(Self {
            context: watches.clone(),
            watches: Some(watches),
        })
    }

    fn fixed(context: Arc<dyn ClusterContext>) -> Self {
        Self {
            context,
            watches: None,
        }
    }

    /// Follows a reloaded policy set: watches start for newly granted types
    /// and stop for types no policy reads any more.
    pub fn policies_changed(&self, policies: &PolicySet) {
        if let Some(watches) = &self.watches {
            watches.set_plan(watch_plan(policies));
        }
    }
}

/// What the caches watch and keep for the loaded policies' grants.
pub fn watch_plan(policies: &PolicySet) -> WatchPlan {
    tollgate_context::watch_plan(policies.policies().iter().map(|p| &*p.allow))
}
