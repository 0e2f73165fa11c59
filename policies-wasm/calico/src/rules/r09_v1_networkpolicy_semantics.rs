//! R9 v1-networkpolicy-semantics: before Calico starts enforcing v1
//! NetworkPolicy semantics (KDD v2.3.0, etcd v2.4.0, policy controller
//! v0.7.0), every namespace must be prepared: NetworkPolicies in namespaces
//! without DefaultDeny become active, and DefaultDeny namespaces lose their
//! isolation unless they hold a default-deny policy.
//!
//! Namespaces and policies are read from the cluster; a failed lookup
//! refuses the update (fail closed).

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Object, Request, Settings, Verdict};

use super::updated;
use crate::identify::{Identity, datastore_of_update};
use crate::netpol::{self, DEFAULT_DENY_JSON};
use crate::unprepared::{Unprepared, unprepared};
use crate::versions::crosses;
use crate::{lookup, text};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SemanticsSettings {
    pub identity: Identity,
    /// First release with v1 semantics on the Kubernetes datastore.
    pub kdd_boundary: Version,
    /// First release with v1 semantics on etcd.
    pub etcd_boundary: Version,
    /// First calico/kube-policy-controller with v1 semantics.
    pub controller_boundary: Version,
}

impl Default for SemanticsSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            kdd_boundary: netpol::default_kdd_boundary(),
            etcd_boundary: netpol::default_etcd_boundary(),
            controller_boundary: Version::new(0, 7, 0),
        }
    }
}

impl Settings for SemanticsSettings {
    fn validate(&self) -> Result<(), String> {
        self.identity.validate()
    }
}

pub fn v1_networkpolicy_semantics(
    req: &Request<'_>,
    s: &SemanticsSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| lookup::failed("Namespaces and NetworkPolicies", &e))
}

fn check(
    req: &Request<'_>,
    s: &SemanticsSettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some((old, new)) = updated(req) else {
        return Ok(Verdict::allow());
    };
    let Some(crossing) = node_crossing(s, old, new).or_else(|| controller_crossing(s, old, new))
    else {
        return Ok(Verdict::allow());
    };
    let Unprepared {
        to_clean,
        to_isolate,
    } = unprepared(cluster)?;
    if to_clean.is_empty() && to_isolate.is_empty() {
        return Ok(Verdict::allow());
    }
    let mut steps = Vec::new();
    if !to_clean.is_empty() {
        steps.push(format!(
            "namespaces without the DefaultDeny annotation whose NetworkPolicies would become active and may block traffic: {} \
             (delete them: kubectl delete networkpolicy --all -n NAMESPACE)",
            text::list(&to_clean, 8)
        ));
    }
    if !to_isolate.is_empty() {
        steps.push(format!(
            "DefaultDeny namespaces that would lose their isolation: {} (create the guide's default-deny policy in each: \
             echo '{DEFAULT_DENY_JSON}' | kubectl apply -n NAMESPACE -f -)",
            text::list(&to_isolate, 8)
        ));
    }
    Ok(Verdict::deny(format!(
        "namespaces are not prepared for v1 NetworkPolicy semantics, which start here: {crossing}. \
         Prepare them first (guide: \"Upgrading to v1 NetworkPolicy semantics\"): {}.",
        steps.join("; ")
    )))
}

fn node_crossing(s: &SemanticsSettings, old: &Object<'_>, new: &Object<'_>) -> Option<String> {
    let id = &s.identity;
    if !id.is_node_ds(new) {
        return None;
    }
    let to = id.node_release(new)?;
    let from = id.node_release(old);
    let datastore = datastore_of_update(id, Some(old), new);
    let boundary = netpol::v1_boundaries(datastore, &s.kdd_boundary, &s.etcd_boundary)
        .into_iter()
        .find(|b| crosses(from.as_ref(), &to, b))?;
    let from = from.map_or_else(|| "an unversioned release".to_owned(), |v| v.to_string());
    Some(format!(
        "upgrading calico-node ({}) from Calico {from} to {to} crosses {boundary}",
        datastore.label()
    ))
}

fn controller_crossing(
    s: &SemanticsSettings,
    old: &Object<'_>,
    new: &Object<'_>,
) -> Option<String> {
    let id = &s.identity;
    if !id.is_ctrl(new) {
        return None;
    }
    let old_image = id.controller_container(old)?.image_ref()?;
    let new_image = id.controller_container(new)?.image_ref()?;
    if !old_image.is(&id.policy_controller_image) {
        return None;
    }
    let old_version = old_image.version().ok();
    let upgraded = new_image.is(&id.kube_controllers_image)
        || new_image
            .version()
            .is_ok_and(|v| crosses(old_version.as_ref(), &v, &s.controller_boundary));
    let below = old_version
        .as_ref()
        .is_none_or(|v| v.core() < s.controller_boundary.core());
    (upgraded && below).then(|| {
        format!(
            "moving {} {} from {old_image} to {new_image} crosses calico/kube-policy-controller {}",
            new.kind_str(),
            new.qualified_name(),
            s.controller_boundary
        )
    })
}
