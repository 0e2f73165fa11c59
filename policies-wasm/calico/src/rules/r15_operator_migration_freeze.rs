//! R15 operator-migration-freeze: while the operator migrates a manifest
//! install to `calico-system` (MIGRATING), only the operator may change what
//! it is migrating. `operations/operator-migration.mdx` (v3.28–v3.32):
//!
//! > Do not edit or delete any resources in the `kube-system` Namespace
//! > during the following procedure as it may interfere with the upgrade.
//!
//! "Any resources" is read as the three workloads the operator's migration
//! (`pkg/controller/migration` of tigera/operator) takes over and deletes,
//! plus the Node label it moves nodes with; a Tollgate that saw every
//! kube-system write would block the cluster, not the migration.
//! MIGRATING is read from the cluster; a failed read denies (fail closed).

use tollgate_sdk::{Cluster, Operation, Request, Verdict};

use super::updated;
use crate::lookup;
use crate::operator::OperatorSettings;

/// The label the operator sets on each Node as it migrates it.
pub const MIGRATION_LABEL: &str = "projectcalico.org/operator-node-migration";

pub fn operator_migration_freeze(
    req: &Request<'_>,
    s: &OperatorSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let Some(what) = frozen(req, s) else {
        return Verdict::allow();
    };
    match s.operator.migrating(&s.identity, cluster) {
        Err(e) => lookup::failed(
            "Installation default and the kube-system Calico workloads",
            &e,
        ),
        Ok(live) if live.is_empty() => Verdict::allow(),
        Ok(live) => Verdict::deny(format!(
            "{what} is frozen: the Tigera operator is migrating Calico from {} to {} \
             ({} still present). Do not edit or delete them until the migration ends; \
             watch it with: kubectl describe tigerastatus calico",
            s.identity.namespace,
            s.operator.workload_namespace,
            live.join(", "),
        )),
    }
}

/// What `req` changes that the migration owns, if anything (and the
/// requester is not the operator).
fn frozen(req: &Request<'_>, s: &OperatorSettings) -> Option<String> {
    if s.operator.made(req) || req.sub_resource.is_some() {
        return None;
    }
    if !matches!(req.operation, Operation::Update | Operation::Delete) {
        return None;
    }
    let obj = req.subject()?;
    if s.operator.is_migrated(&s.identity, obj) {
        return Some(format!("{} {}", obj.kind_str(), obj.qualified_name()));
    }
    let (old, new) = updated(req)?;
    (new.kind_str() == "Node" && old.label(MIGRATION_LABEL) != new.label(MIGRATION_LABEL))
        .then(|| format!("the label {MIGRATION_LABEL} of Node {}", new.name()))
}
