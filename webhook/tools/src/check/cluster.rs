//! The cluster `check` and `audit` judge against: the stored objects (the
//! `oldObject` of an UPDATE, what an audit walks) and the context the
//! policies' lookups read. Both come from one source, so a review and the
//! lookups it triggers see the same cluster: a snapshot directory (the
//! `kubectl get -o yaml` output `serve --cluster-snapshot` reads), a live
//! cluster through a kubeconfig ([`super::live`]), or nothing (every object
//! is a CREATE into an empty cluster).

use std::path::PathBuf;
use std::sync::Arc;

use tollgate_context::{ClusterContext, EmptyContext, SnapshotContext};
use tollgate_host::PolicySet;
use tollgate_preflight::{Manifest, Objects};

use super::Unusable;
use super::live::Live;

/// `--cluster-snapshot DIR | --kubeconfig PATH`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// The cluster as saved objects (a directory of `kubectl get -o yaml`
    /// output): existing objects are UPDATEs against them, and policy
    /// lookups read them.
    #[arg(long, conflicts_with = "kubeconfig")]
    pub cluster_snapshot: Option<PathBuf>,

    /// A live cluster (its current context): existing objects are read from
    /// it, and policy lookups read its watch caches, as `serve` does.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Which stored objects a command needs from a live cluster (a snapshot
/// always gives all of its own).
pub enum Wanted<'a> {
    /// The stored versions of these manifests' objects (`check`).
    Stored(&'a [Manifest]),
    /// Every object of these kinds, `(group, kind)` (`audit`: the kinds
    /// the policies match).
    Kinds(&'a [(String, String)]),
}

/// The cluster a run judges against.
pub struct Cluster {
    pub objects: Objects,
    pub context: Arc<dyn ClusterContext>,
    /// Where the objects came from, for the summary line.
    pub source: String,
    /// Keeps a live cluster's watch caches running until the run ends.
    _live: Option<Live>,
}

impl Cluster {
    /// Opens the cluster `args` names for `policies`.
    pub fn open(
        args: &ClusterArgs,
        policies: &PolicySet,
        wanted: Wanted<'_>,
    ) -> Result<Self, Unusable> {
        if let Some(dir) = &args.cluster_snapshot {
            let shown = dir.display();
            // The stored objects and the lookups read the same files; both
            // loaders name file and position in their errors.
            let objects = Objects::load(dir)
                .map_err(|e| Unusable(format!("cluster snapshot {shown}: {e}")))?;
            let context = SnapshotContext::load(dir).map_err(|e| Unusable(e.to_string()))?;
            return Ok(Self {
                objects,
                context: Arc::new(context),
                source: format!("snapshot {shown}"),
                _live: None,
            });
        }
        if let Some(path) = &args.kubeconfig {
            let live = Live::connect(path, policies)?;
            let objects = match wanted {
                Wanted::Stored(manifests) => live.stored(manifests)?,
                Wanted::Kinds(kinds) => live.matched(kinds)?,
            };
            return Ok(Self {
                objects,
                context: live.context(),
                source: format!("cluster of {}", path.display()),
                _live: Some(live),
            });
        }
        Ok(Self {
            objects: Objects::default(),
            context: Arc::new(EmptyContext),
            source: "no cluster (every object is a CREATE)".to_owned(),
            _live: None,
        })
    }
}
