//! calico-node pods and the image their DaemonSet wants them to run (R6, R7).

use std::collections::BTreeMap;

use serde::Deserialize;
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, Object, Settings};

use crate::identify::Identity;

/// The labels that make a Pod a calico-node pod in the published manifests.
pub fn default_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("k8s-app".into(), "calico-node".into())])
}

/// What the pod rules share; implemented by their settings.
pub trait CalicoPods {
    fn identity(&self) -> &Identity;
    fn pod_labels(&self) -> &BTreeMap<String, String>;

    fn check_pod_settings(&self) -> Result<(), String> {
        if self.pod_labels().is_empty() {
            return Err("podLabels must name at least one label".into());
        }
        self.identity().validate()
    }

    fn is_calico_pod(&self, pod: &Object<'_>) -> bool {
        pod.kind_str() == "Pod"
            && self
                .pod_labels()
                .iter()
                .all(|(k, v)| pod.label(k) == Some(v.as_str()))
    }

    /// The query for every calico-node pod in `namespace`.
    fn pods_query(&self, namespace: &str) -> LookupQuery {
        self.pod_labels().iter().fold(
            LookupQuery::list("v1", "Pod").in_namespace(namespace),
            |q, (k, v)| q.with_label(k, v),
        )
    }

    /// The calico/node image the pod's DaemonSet (its owner, else the
    /// configured one) wants; `None` when there is no such DaemonSet.
    fn wanted_image(
        &self,
        cluster: &dyn Cluster,
        pod: &Object<'_>,
    ) -> Result<Option<String>, LookupError> {
        let id = self.identity();
        let namespace = pod.namespace().unwrap_or(&id.namespace);
        let name = pod
            .owner_of_kind("DaemonSet")
            .map_or(id.node_daemon_set.as_str(), |o| o.name.as_ref());
        let found = cluster.get("apps/v1", "DaemonSet", Some(namespace), name)?;
        let parsed = found.parse()?;
        Ok(parsed
            .first()
            .and_then(|ds| id.node_image_of(ds))
            .map(|i| i.raw.to_owned()))
    }
}

/// Settings of R7 node-uncordon-ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PodSettings {
    pub identity: Identity,
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for PodSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            pod_labels: default_pod_labels(),
        }
    }
}

impl CalicoPods for PodSettings {
    fn identity(&self) -> &Identity {
        &self.identity
    }
    fn pod_labels(&self) -> &BTreeMap<String, String> {
        &self.pod_labels
    }
}

impl Settings for PodSettings {
    fn validate(&self) -> Result<(), String> {
        self.check_pod_settings()
    }
}
