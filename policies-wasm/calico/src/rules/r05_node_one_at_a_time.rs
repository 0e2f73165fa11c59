//! R5 node-one-at-a-time: a rolling update of calico-node may take down one
//! node at a time (the guide upgrades "each node one at a time"). OnDelete is
//! fine: the operator then deletes pods by hand, which R6 guards.
//!
//! `maxSurge` other than 0 is repaired too: surging starts a second
//! calico-node on a node before the first stops, and both bind the host.

use serde_json::json;
use tollgate_sdk::{Cluster, IntOrString, PatchOp, Request, Verdict};

use super::{IdentitySettings, written};
use crate::identify::is_operator_owned;

const MAX_UNAVAILABLE: &str = "/spec/updateStrategy/rollingUpdate/maxUnavailable";
const MAX_SURGE: &str = "/spec/updateStrategy/rollingUpdate/maxSurge";

pub fn node_one_at_a_time(req: &Request<'_>, s: &IdentitySettings, _: &dyn Cluster) -> Verdict {
    let Some(obj) = written(req) else {
        return Verdict::allow();
    };
    // The operator's calico-node rolls out as its Installation says: R21.
    if !s.identity.is_node_ds(obj)
        || is_operator_owned(obj)
        || obj.daemonset_update_strategy() != "RollingUpdate"
    {
        return Verdict::allow();
    }
    let unavailable = obj.daemonset_max_unavailable().filter(|m| !m.is_int(1));
    let surge = obj.daemonset_max_surge().filter(|m| !is_zero(m));
    let mut ops = Vec::new();
    let mut wrong = Vec::new();
    if let Some(m) = unavailable {
        ops.push(PatchOp::replace(MAX_UNAVAILABLE, json!(1)));
        wrong.push(format!("maxUnavailable {m}"));
    }
    if let Some(m) = surge {
        ops.push(PatchOp::replace(MAX_SURGE, json!(0)));
        wrong.push(format!("maxSurge {m}"));
    }
    if ops.is_empty() {
        return Verdict::allow();
    }
    Verdict::repair(
        format!(
            "DaemonSet {} rolls out with {}: calico-node must be upgraded one node at a time. \
             Set spec.updateStrategy.rollingUpdate to maxUnavailable: 1, maxSurge: 0 (or use OnDelete and cordon each node).",
            obj.qualified_name(),
            wrong.join(" and ")
        ),
        ops,
    )
}

/// Whether a `maxSurge` is zero (R21 checks the Installation's the same way).
pub(crate) fn is_zero(m: &IntOrString<'_>) -> bool {
    match m {
        IntOrString::Int(n) => *n == 0,
        IntOrString::Str(s) => s == "0%" || s == "0",
    }
}
