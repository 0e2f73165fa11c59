//! R2 controller-single-replica: at most one controller replica (0 stops it).
//!
//! A `scale` subresource whose owner cannot be read is refused (fail
//! closed): the request might raise a controller above one replica.

use serde_json::json;
use tollgate_sdk::{Cluster, Request, Verdict};

use super::IdentitySettings;
use crate::controllers::admitted;
use crate::{lookup, patch};

pub fn controller_single_replica(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let ctrl = match admitted(req, &s.identity, cluster) {
        Ok(Some(ctrl)) => ctrl,
        Ok(None) => return Verdict::allow(),
        Err(e) => return lookup::failed("the scaled Deployment or ReplicaSet", &e),
    };
    if ctrl.replicas <= 1 {
        return Verdict::allow();
    }
    let op = patch::set(&["spec"], true, "replicas", ctrl.replicas_present, json!(1));
    let target = if req.is_scale() {
        format!("{} (scale)", ctrl.describe())
    } else {
        ctrl.describe()
    };
    Verdict::repair(
        format!(
            "{target} asks for {} replicas: only one instance of the Calico controller may be active at a time. \
             Use --replicas=1 (or 0 to stop it).",
            ctrl.replicas
        ),
        vec![op],
    )
}
