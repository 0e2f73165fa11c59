//! R16 operator-migration-same-release: creating `Installation default`
//! next to a manifest install starts the migration, which
//! `operations/operator-migration.mdx` (v3.28–v3.32) limits:
//!
//! > Migration to $[prodname] $[version] operator-managed installation is
//! > supported only from $[prodname] $[version] manifest-based installation
//!
//! `$[version]` is the docs' minor (`v3.32`), so the rule compares release
//! lines: patches may differ. When either release cannot be read (an
//! operator tag outside the table, a calico/node tag that is not a version,
//! no operator Deployment) the rule cannot tell and only warns. A failed
//! lookup denies (fail closed).

use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Verdict};

use crate::lookup;
use crate::operator::{OperatorSettings, operator_for};
use crate::text::{WARNING_MAX, clip};

pub fn operator_migration_same_release(
    req: &Request<'_>,
    s: &OperatorSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let Some(obj) = req.object.as_ref() else {
        return Verdict::allow();
    };
    if req.operation != Operation::Create || !s.operator.is_installation(obj) {
        return Verdict::allow();
    }
    check(s, cluster).unwrap_or_else(|e| {
        lookup::failed("the calico-node DaemonSet and the operator Deployment", &e)
    })
}

fn check(s: &OperatorSettings, cluster: &dyn Cluster) -> Result<Verdict, LookupError> {
    let found = s.identity.node_daemon_set(cluster)?;
    let parsed = found.parse()?;
    let Some(ds) = parsed.first() else {
        return Ok(Verdict::allow());
    };
    let ds_name = ds.qualified_name();
    let Some(node) = s.identity.node_release(ds) else {
        return Ok(unverifiable(&format!(
            "the Calico release of DaemonSet {ds_name}"
        )));
    };
    let operator = format!("{}/{}", s.operator.namespace, s.operator.deployment);
    let Some(deployed) = s.operator.read_deployment(cluster)? else {
        return Ok(unverifiable(&format!(
            "the operator: no Deployment {operator}"
        )));
    };
    let Some(shipped) = deployed.release else {
        let image = deployed.image.as_deref().unwrap_or("no operator image");
        return Ok(unverifiable(&format!("which Calico release {image} ships")));
    };
    if node.series() == shipped.series() {
        return Ok(Verdict::allow());
    }
    Ok(Verdict::deny(mismatch(
        &ds_name, &node, &operator, &shipped,
    )))
}

fn mismatch(ds: &str, node: &Version, operator: &str, shipped: &Version) -> String {
    let (a, b) = (shipped.major, shipped.minor);
    let mut text = format!(
        "Installation default would migrate DaemonSet {ds} (Calico {node}) with operator {operator}, \
         which ships {shipped}: migration to an operator install of v{a}.{b} is supported only from a \
         v{a}.{b} manifest install. Upgrade the manifest install first: kubectl apply --server-side \
         --force-conflicts -f https://raw.githubusercontent.com/projectcalico/calico/{shipped}/manifests/calico.yaml \
         (or the calico-*.yaml you installed from)"
    );
    if let Some(matching) = operator_for(node).filter(|_| node > shipped) {
        text.push_str(&format!(
            ", or run tigera/operator {matching}, which ships {node}"
        ));
    }
    text
}

/// Allowed, saying what could not be read.
fn unverifiable(what: &str) -> Verdict {
    Verdict::warn(clip(
        format!(
            "cannot verify that the migration Installation default starts is supported: \
             cannot read {what}; migrate only from a manifest install of the operator's release line"
        ),
        WARNING_MAX,
    ))
}
