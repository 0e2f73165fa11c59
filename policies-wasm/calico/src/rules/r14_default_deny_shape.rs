//! R14 default-deny-shape: a NetworkPolicy's podSelector must be written as
//! `{}`, not null or missing (the guide's own example writes `podSelector:`).
//! The API server normalises it before admission, so the repair matters for
//! manifests checked offline. Also warns when the cluster's Calico predates
//! v1 semantics, under which such a policy has no effect yet.
//!
//! The Calico version is advisory: a failed lookup becomes a warning, never
//! a denial of the NetworkPolicy.

use serde::Deserialize;
use serde_json::json;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Request, Settings, Verdict};

use super::written;
use crate::identify::Identity;
use crate::text::{WARNING_MAX, clip};
use crate::{lookup, netpol, patch};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DefaultDenySettings {
    pub identity: Identity,
    pub kdd_boundary: Version,
    pub etcd_boundary: Version,
}

impl Default for DefaultDenySettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            kdd_boundary: netpol::default_kdd_boundary(),
            etcd_boundary: netpol::default_etcd_boundary(),
        }
    }
}

impl Settings for DefaultDenySettings {
    fn validate(&self) -> Result<(), String> {
        self.identity.validate()
    }
}

pub fn default_deny_shape(
    req: &Request<'_>,
    s: &DefaultDenySettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let Some(obj) = written(req) else {
        return Verdict::allow();
    };
    if obj.kind_str() != "NetworkPolicy" {
        return Verdict::allow();
    }
    let spec = obj.spec.as_ref();
    let selector = spec.and_then(|s| s.pod_selector.as_ref());
    let mut verdict = match selector {
        Some(Some(_)) => Verdict::allow(),
        _ => Verdict::repair(
            format!(
                "NetworkPolicy {} has a {} podSelector; write podSelector: {{}} to select every pod, as the guide's default-deny example means.",
                obj.qualified_name(),
                if selector.is_some() {
                    "null"
                } else {
                    "missing"
                }
            ),
            vec![patch::set(
                &["spec"],
                spec.is_some(),
                "podSelector",
                selector.is_some(),
                json!({}),
            )],
        ),
    };
    match old_calico(s, cluster) {
        Ok(Some(warning)) => verdict = verdict.with_warning(warning),
        Ok(None) => {}
        Err(e) => {
            verdict = verdict.with_warning(lookup::failure_text("the calico-node DaemonSet", &e))
        }
    }
    verdict
}

/// The warning when the cluster's calico-node predates v1 semantics.
fn old_calico(
    s: &DefaultDenySettings,
    cluster: &dyn Cluster,
) -> Result<Option<String>, LookupError> {
    let id = &s.identity;
    let found = id.node_daemon_set(cluster)?;
    let parsed = found.parse()?;
    let Some(ds) = parsed.first() else {
        return Ok(None);
    };
    let Some(release) = id.node_release(ds) else {
        return Ok(None);
    };
    let boundaries = netpol::v1_boundaries(id.datastore(ds), &s.kdd_boundary, &s.etcd_boundary);
    let Some(boundary) = boundaries
        .into_iter()
        .rev()
        .find(|b| release.core() < b.core())
    else {
        return Ok(None);
    };
    Ok(Some(clip(
        format!(
            "this cluster runs Calico {release}, older than {boundary}: NetworkPolicies only take effect in DefaultDeny-annotated namespaces until Calico is upgraded"
        ),
        WARNING_MAX,
    )))
}
