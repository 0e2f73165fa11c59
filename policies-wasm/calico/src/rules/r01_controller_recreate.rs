//! R1 controller-recreate: the controller Deployment must use the Recreate
//! strategy, so that an upgrade never runs two controllers at once.

use serde_json::json;
use tollgate_sdk::{Cluster, Request, Verdict};

use super::{IdentitySettings, written};
use crate::identify::is_operator_owned;
use crate::patch;

pub fn controller_recreate(req: &Request<'_>, s: &IdentitySettings, _: &dyn Cluster) -> Verdict {
    let Some(obj) = written(req) else {
        return Verdict::allow();
    };
    // The operator renders its own controller Deployment: R21.
    if obj.kind_str() != "Deployment" || !s.identity.is_ctrl(obj) || is_operator_owned(obj) {
        return Verdict::allow();
    }
    let strategy = obj.deployment_strategy();
    if strategy == "Recreate" {
        return Verdict::allow();
    }
    let spec = obj.spec.as_ref();
    let op = patch::set(
        &["spec"],
        spec.is_some(),
        "strategy",
        spec.is_some_and(|s| s.strategy.is_some()),
        json!({"type": "Recreate"}),
    );
    Verdict::repair(
        format!(
            "Deployment {} uses strategy {strategy}, which runs the old and new controller at once during an upgrade. \
             Set spec.strategy to {{type: Recreate}} (guide: \"The Deployment must use .spec.strategy.type==Recreate\").",
            obj.qualified_name()
        ),
        vec![op],
    )
}
