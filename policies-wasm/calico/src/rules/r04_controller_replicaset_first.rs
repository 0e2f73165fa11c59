//! R4 controller-replicaset-first: before the first controller Deployment is
//! created, the pre-2.0 ReplicaSet must be scaled to 0 (guide, "Upgrading
//! from pre-2.0"). Otherwise the Deployment adopts it or runs beside it.
//!
//! A failed lookup of the ReplicaSet refuses the request (fail closed).

use serde::Deserialize;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Settings, Verdict};

use crate::identify::Identity;
use crate::lookup;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ReplicaSetFirstSettings {
    pub identity: Identity,
    /// The old ReplicaSet's namespace and name.
    pub replica_set_namespace: String,
    pub replica_set_name: String,
}

impl Default for ReplicaSetFirstSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            replica_set_namespace: "kube-system".into(),
            replica_set_name: "calico-policy-controller".into(),
        }
    }
}

impl Settings for ReplicaSetFirstSettings {
    fn validate(&self) -> Result<(), String> {
        if self.replica_set_namespace.is_empty() || self.replica_set_name.is_empty() {
            return Err("replicaSetNamespace and replicaSetName must not be empty".into());
        }
        self.identity.validate()
    }
}

pub fn controller_replicaset_first(
    req: &Request<'_>,
    s: &ReplicaSetFirstSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| lookup::failed("apps/v1 ReplicaSet", &e))
}

fn check(
    req: &Request<'_>,
    s: &ReplicaSetFirstSettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some(obj) = req.object.as_ref() else {
        return Ok(Verdict::allow());
    };
    if req.operation != Operation::Create
        || req.is_scale()
        || obj.kind_str() != "Deployment"
        || !s.identity.is_ctrl(obj)
    {
        return Ok(Verdict::allow());
    }
    let (ns, name) = (
        s.replica_set_namespace.as_str(),
        s.replica_set_name.as_str(),
    );
    let found = cluster.get("apps/v1", "ReplicaSet", Some(ns), name)?;
    let parsed = found.parse()?;
    let Some(rs) = parsed.first() else {
        return Ok(Verdict::allow());
    };
    let (spec, status) = (rs.replicas().unwrap_or(0), rs.status_replicas());
    if rs.owner_of_kind("Deployment").is_some() || (spec == 0 && status == 0) {
        return Ok(Verdict::allow());
    }
    Ok(Verdict::deny(format!(
        "the pre-2.0 ReplicaSet {ns}/{name} still runs the policy controller (spec {spec}, status {status} replicas); \
         creating Deployment {} now would run two controllers. Scale the ReplicaSet to 0 first: \
         kubectl scale rs -n {ns} {name} --replicas=0",
        obj.qualified_name()
    )))
}
