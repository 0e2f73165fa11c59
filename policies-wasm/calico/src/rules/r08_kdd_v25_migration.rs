//! R8 kdd-v2.5-migration: with the Kubernetes datastore, calico-node v2.5+
//! reads CRDs instead of TPRs; upgrading before the data was copied leaves
//! calico-node unable to start (`corpus/upgrade-v2.5/README.md`).
//!
//! Proof of migration: the Job `calico-upgrade-v2.5` succeeded, or every TPR
//! object has a same-named CRD object. CRDs merely existing prove nothing
//! (the v2.5 manifest creates them). A failed lookup refuses the update.

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Request, Settings, Verdict};

use super::updated;
use crate::identify::{Datastore, Identity, datastore_of_update};
use crate::versions::crosses;
use crate::{lookup, text};

/// Old namespaced TPR kind (`projectcalico.org/v1`) → new cluster-scoped CRD
/// kind (`crd.projectcalico.org/v1`), as the migration job maps them.
pub const TPR_TO_CRD: [(&str, &str); 4] = [
    ("GlobalConfig", "GlobalFelixConfig"),
    ("IpPool", "IPPool"),
    ("GlobalBgpConfig", "GlobalBGPConfig"),
    ("GlobalBgpPeer", "BGPPeer"),
];
pub const TPR_API: &str = "projectcalico.org/v1";
pub const CRD_API: &str = "crd.projectcalico.org/v1";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KddMigrationSettings {
    pub identity: Identity,
    /// The first release that reads CRDs.
    pub boundary: Version,
    /// Where the TPR data lives.
    pub tpr_namespace: String,
    pub job_name: String,
    /// Where the migration Job may have run (its manifest has no namespace).
    pub job_namespaces: Vec<String>,
}

impl Default for KddMigrationSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            boundary: Version::new(2, 5, 0),
            tpr_namespace: "kube-system".into(),
            job_name: "calico-upgrade-v2.5".into(),
            job_namespaces: vec!["default".into(), "kube-system".into()],
        }
    }
}

impl Settings for KddMigrationSettings {
    fn validate(&self) -> Result<(), String> {
        if self.tpr_namespace.is_empty() || self.job_name.is_empty() {
            return Err("tprNamespace and jobName must not be empty".into());
        }
        self.identity.validate()
    }
}

pub fn kdd_v25_migration(
    req: &Request<'_>,
    s: &KddMigrationSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster)
        .unwrap_or_else(|e| lookup::failed("the Calico TPR/CRD data or the migration Job", &e))
}

fn check(
    req: &Request<'_>,
    s: &KddMigrationSettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some((old, new)) = updated(req) else {
        return Ok(Verdict::allow());
    };
    let id = &s.identity;
    if !id.is_node_ds(new) || datastore_of_update(id, Some(old), new) != Datastore::Kdd {
        return Ok(Verdict::allow());
    }
    let Some(to) = id.node_release(new) else {
        return Ok(Verdict::allow());
    };
    let from = id.node_release(old);
    if !crosses(from.as_ref(), &to, &s.boundary) || migration_job_succeeded(s, cluster)? {
        return Ok(Verdict::allow());
    }
    let missing = unmigrated(s, cluster)?;
    if missing.is_empty() {
        return Ok(Verdict::allow());
    }
    let from = from.map_or_else(|| "an unversioned release".to_owned(), |v| v.to_string());
    Ok(Verdict::deny(format!(
        "Kubernetes datastore: upgrading calico-node from Calico {from} to {to} crosses {boundary}, which reads its data from CRDs, \
         but these TPR objects in {ns} have no CRD copy: {missing}. calico-node would not come up and connectivity would be lost. \
         Migrate first (upgrade/v2.5/README.md): back up with calicoctl_v1.4 get ippools -o yaml > ippool.yaml, \
         calicoctl_v1.4 get bgppeers -o yaml > bgppeer.yaml, kubectl get globalconfig --all-namespaces -o yaml > tpr-felixconfig.yaml, \
         kubectl get globalbgpconfig --all-namespaces -o yaml > tpr-bgpconfig.yaml; run the migration job: \
         kubectl apply -f https://raw.githubusercontent.com/projectcalico/calico/master/upgrade/v2.5/manifests/upgrade-job.yaml \
         and check kubectl describe job/{job}; verify with kubectl get globalfelixconfigs.crd.projectcalico.org -o wide \
         (and calicoctl_v1.5 get ippools/bgppeers); with RBAC apply \
         https://docs.projectcalico.org/v2.5/getting-started/kubernetes/installation/hosted/rbac-kdd.yaml; then retry.",
        boundary = s.boundary,
        ns = s.tpr_namespace,
        missing = text::list(&missing, 5),
        job = s.job_name,
    )))
}

fn migration_job_succeeded(
    s: &KddMigrationSettings,
    cluster: &dyn Cluster,
) -> Result<bool, LookupError> {
    for ns in &s.job_namespaces {
        let found = cluster.get("batch/v1", "Job", Some(ns), &s.job_name)?;
        let succeeded = found.parse()?.iter().any(|job| {
            job.status.as_ref().and_then(|st| st.succeeded).unwrap_or(0) > 0
                || job.condition("Complete") == Some("True")
        });
        if succeeded {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `IpPool 192-168-0-0-16` for every TPR object without a same-named CRD object.
fn unmigrated(s: &KddMigrationSettings, cluster: &dyn Cluster) -> Result<Vec<String>, LookupError> {
    let mut missing = Vec::new();
    for (tpr_kind, crd_kind) in TPR_TO_CRD {
        let tprs = cluster.list(TPR_API, tpr_kind, Some(&s.tpr_namespace))?;
        let tprs = tprs.parse()?;
        if tprs.is_empty() {
            continue;
        }
        let crds = cluster.list(CRD_API, crd_kind, None)?;
        let crds = crds.parse()?;
        for tpr in &tprs {
            if !crds.iter().any(|c| c.name() == tpr.name()) {
                missing.push(format!("{tpr_kind} {}", tpr.name()));
            }
        }
    }
    Ok(missing)
}
