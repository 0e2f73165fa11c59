//! R21 operator-owned: in an operator install, Calico's workloads belong to
//! `Installation default`. `operations/operator-migration.mdx` (v3.28–v3.32):
//!
//! > $[prodname] resources will no longer be hand-editable, as the
//! > $[prodname] operator will reconcile undesired changes to maintain an
//! > expected state.
//!
//! So an UPDATE of a DaemonSet or Deployment in `calico-system` that the
//! Installation owns, by anyone but the operator, is a violation (a warning
//! in the default `warn` mode): change the Installation instead.
//!
//! And R5 carried to operator installs (this product's choice, SPEC §5, not
//! a sentence of today's docs): the Installation's
//! `spec.nodeUpdateStrategy` must roll calico-node one node at a time, so a
//! RollingUpdate with `maxUnavailable` other than 1, or `maxSurge` other
//! than 0, is repaired on `/mutate` (and warned about on `/validate`).

use serde::Deserialize;
use serde_json::json;
use tollgate_sdk::{Cluster, Operation, PatchOp, Request, Strategy, Verdict};

use super::r05_node_one_at_a_time::is_zero;
use super::written;
use crate::operator::OperatorSettings;
use crate::text::{WARNING_MAX, clip};

const ROLLING_UPDATE: &str = "/spec/nodeUpdateStrategy/rollingUpdate";

pub fn operator_owned(req: &Request<'_>, s: &OperatorSettings, _: &dyn Cluster) -> Verdict {
    let Some(obj) = written(req) else {
        return Verdict::allow();
    };
    if s.operator.is_installation(obj) {
        return req.raw_object().map_or_else(Verdict::allow, |raw| {
            serde_json::from_str::<Installation<'_>>(raw.get())
                .map_or_else(|_| Verdict::allow(), |i| node_update_strategy(&i))
        });
    }
    // Status writes are the controllers' own, not a hand edit.
    let workload =
        matches!(obj.kind_str(), "DaemonSet" | "Deployment") && req.sub_resource.is_none();
    if req.operation != Operation::Update
        || !workload
        || !s.operator.owns(obj)
        || s.operator.made(req)
    {
        return Verdict::allow();
    }
    Verdict::deny(clip(
        format!(
            "{} {} belongs to Installation {}: the Tigera operator reverts this change. \
             Change the Installation instead (kubectl edit installation {})",
            obj.kind_str(),
            obj.qualified_name(),
            s.operator.installation,
            s.operator.installation,
        ),
        WARNING_MAX,
    ))
}

/// The part of an Installation R21 reads.
#[derive(Deserialize)]
struct Installation<'a> {
    #[serde(borrow, default)]
    spec: Option<InstallationSpec<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallationSpec<'a> {
    #[serde(borrow, default)]
    node_update_strategy: Option<Strategy<'a>>,
}

fn node_update_strategy(installation: &Installation<'_>) -> Verdict {
    let Some(strategy) = installation
        .spec
        .as_ref()
        .and_then(|s| s.node_update_strategy.as_ref())
    else {
        return Verdict::allow();
    };
    let rolling = strategy
        .kind
        .as_deref()
        .is_none_or(|k| k == "RollingUpdate");
    let Some(update) = strategy.rolling_update.as_ref().filter(|_| rolling) else {
        return Verdict::allow();
    };
    let mut ops = Vec::new();
    let mut wrong = Vec::new();
    if let Some(m) = update.max_unavailable.as_ref().filter(|m| !m.is_int(1)) {
        ops.push(PatchOp::replace(
            format!("{ROLLING_UPDATE}/maxUnavailable"),
            json!(1),
        ));
        wrong.push(format!("maxUnavailable {m}"));
    }
    if let Some(m) = update.max_surge.as_ref().filter(|m| !is_zero(m)) {
        ops.push(PatchOp::replace(
            format!("{ROLLING_UPDATE}/maxSurge"),
            json!(0),
        ));
        wrong.push(format!("maxSurge {m}"));
    }
    if ops.is_empty() {
        return Verdict::allow();
    }
    Verdict::repair(
        format!(
            "Installation rolls calico-node out with {}: upgrade one node at a time. Set \
             spec.nodeUpdateStrategy.rollingUpdate to maxUnavailable: 1, maxSurge: 0",
            wrong.join(" and ")
        ),
        ops,
    )
}
