//! R3 controller-one-active: a controller may only have replicas while no
//! other controller has any (spec or status), e.g. calico-kube-controllers
//! while the old calico-policy-controller still runs.
//!
//! The other controllers are read from the cluster; if that fails the
//! request is refused (fail closed).

use tollgate_sdk::{Cluster, LookupError, Request, Verdict};

use super::IdentitySettings;
use crate::controllers::{admitted, others};
use crate::lookup;

pub fn controller_one_active(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| lookup::failed("the other Calico controllers", &e))
}

fn check(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some(ctrl) = admitted(req, &s.identity, cluster)? else {
        return Ok(Verdict::allow());
    };
    if ctrl.replicas == 0 {
        return Ok(Verdict::allow());
    }
    let active: Vec<_> = others(cluster, &s.identity, Some(&ctrl))?
        .into_iter()
        .filter(|c| c.is_active())
        .collect();
    let Some(first) = active.first() else {
        return Ok(Verdict::allow());
    };
    let named: Vec<String> = active
        .iter()
        .map(|c| {
            format!(
                "{} (spec {}, status {})",
                c.describe(),
                c.replicas,
                c.status_replicas
            )
        })
        .collect();
    Ok(Verdict::deny(format!(
        "{} would run while {} still {} replicas: only one Calico controller may be active at a time. \
         Stop the old one first: {}",
        ctrl.describe(),
        crate::text::list(&named, 3),
        if active.len() == 1 { "has" } else { "have" },
        first.scale_to_zero()
    )))
}
