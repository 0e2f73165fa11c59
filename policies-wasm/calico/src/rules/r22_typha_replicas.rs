//! R22 typha-replicas: the `calico-typha` Deployment of a manifest install
//! (`calico-typha.yaml`) and its `scale` subresource. From the install
//! guide (`testdata/modern/docs/version-3.32/getting-started/kubernetes/self-managed-onprem/onpremises.mdx`):
//!
//! > If you set `typha_service_name` and set the Typha deployment replica
//! > count to 0, Felix will not start.
//!
//! > We recommend at least one replica for every 200 nodes, and no more than
//! > 20 replicas. […] The number of replicas should always be less than the
//! > number of nodes, otherwise rolling upgrades will stall.
//!
//! Only the first is a must (SPEC §5: R22 denies only the replica count with
//! which Felix cannot start); the others are recommendations and warn. The
//! operator's Typha (`calico-system`) is autoscaled by the operator and is
//! not this rule's business.
//!
//! Lookups: the `calico-config` ConfigMap decides the deny, so a failed read
//! fails closed; the Node count only feeds a warning, so a failed read
//! becomes a warning.

use serde::Deserialize;
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Settings, Verdict};

use crate::identify::Identity;
use crate::lookup;
use crate::text::{WARNING_MAX, clip, replicas};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TyphaSettings {
    /// Its `namespace` is the manifest install's, where Typha and the
    /// ConfigMap live.
    pub identity: Identity,
    pub deployment: String,
    pub config_map: String,
    /// The guide's "no more than 20 replicas".
    pub max_replicas: i64,
}

impl Default for TyphaSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            deployment: "calico-typha".into(),
            config_map: "calico-config".into(),
            max_replicas: 20,
        }
    }
}

impl Settings for TyphaSettings {
    fn validate(&self) -> Result<(), String> {
        if self.deployment.is_empty() || self.config_map.is_empty() {
            return Err("deployment and configMap must not be empty".into());
        }
        if self.max_replicas < 1 {
            return Err("maxReplicas must be at least 1".into());
        }
        self.identity.validate()
    }
}

pub fn typha_replicas(req: &Request<'_>, s: &TyphaSettings, cluster: &dyn Cluster) -> Verdict {
    let Some(wanted) = admitted_replicas(req, s) else {
        return Verdict::allow();
    };
    let target = format!("Deployment {}/{}", s.identity.namespace, s.deployment);
    if wanted == 0 {
        return match typha_service(cluster, s) {
            Ok(Some(service)) => Verdict::deny(format!(
                "{target} scaled to 0 replicas while ConfigMap {}/{} sets typha_service_name: {service}: Felix will not start. \
                 Keep at least 1 replica (3 in production), or set typha_service_name to \"none\" first.",
                s.identity.namespace, s.config_map
            )),
            Ok(None) => Verdict::allow(),
            Err(e) => lookup::failed(
                &format!("ConfigMap {}/{}", s.identity.namespace, s.config_map),
                &e,
            ),
        };
    }
    let mut advice = Vec::new();
    if wanted > s.max_replicas {
        advice.push(format!(
            "{target} asks for {}: the guide recommends no more than {}.",
            replicas(wanted),
            s.max_replicas
        ));
    }
    // Only how many: their names.
    let names = LookupQuery::list("v1", "Node").distinct(&["/metadata/name"]);
    match cluster.lookup(&names).and_then(|n| n.parse_as::<serde::de::IgnoredAny>()) {
        Ok(nodes) if !nodes.is_empty() && wanted >= nodes.len() as i64 => advice.push(format!(
            "{target} asks for {} on {} nodes: keep replicas below the node count, otherwise rolling upgrades will stall.",
            replicas(wanted),
            nodes.len()
        )),
        Ok(_) => {}
        Err(e) => advice.push(lookup::failure_text("the Nodes", &e)),
    }
    advice.into_iter().fold(Verdict::allow(), |v, w| {
        v.with_warning(clip(w, WARNING_MAX))
    })
}

/// The replicas a CREATE/UPDATE of the Typha Deployment, or a write of its
/// `scale` subresource, asks for (absent in a manifest means 1; absent in a
/// Scale means 0).
fn admitted_replicas(req: &Request<'_>, s: &TyphaSettings) -> Option<i64> {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return None;
    }
    let obj = req.object.as_ref()?;
    let name = if req.is_scale() {
        (req.resource.resource == "deployments").then_some(())?;
        req.name.as_deref().unwrap_or_else(|| obj.name())
    } else {
        (obj.kind_str() == "Deployment").then_some(())?;
        obj.name()
    };
    let namespace = req.namespace.as_deref().or(obj.namespace());
    (name == s.deployment && namespace == Some(s.identity.namespace.as_str()))
        .then(|| obj.replicas().unwrap_or(1))
}

/// `typha_service_name` of the ConfigMap, unless absent or `none`.
fn typha_service(cluster: &dyn Cluster, s: &TyphaSettings) -> Result<Option<String>, LookupError> {
    let found = cluster.get(
        "v1",
        "ConfigMap",
        Some(&s.identity.namespace),
        &s.config_map,
    )?;
    let maps = found.parse()?;
    let service = maps
        .first()
        .and_then(|m| m.data.as_ref())
        .and_then(|d| d.get("typha_service_name"))
        .map(|v| v.trim().to_owned());
    Ok(service.filter(|v| !v.is_empty() && v != "none"))
}
