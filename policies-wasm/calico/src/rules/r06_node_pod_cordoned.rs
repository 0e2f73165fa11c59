//! R6 node-pod-cordoned: delete a calico-node pod only on a cordoned node and
//! only while every other calico-node pod is Ready (one node at a time). Warn
//! when the node has not pulled the new image yet: BIRD's graceful restart
//! lasts 90 s.
//!
//! The cluster's own controllers (DaemonSet rolling updates, garbage
//! collection) are exempt. A failed lookup refuses the delete (fail closed).

use serde::Deserialize;
use tollgate_sdk::image::ImageRef;
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Settings, Verdict};

use crate::identify::Identity;
use crate::pods::{CalicoPods, default_pod_labels};
use crate::text::{WARNING_MAX, clip};
use crate::{lookup, text};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PodCordonedSettings {
    pub identity: Identity,
    pub pod_labels: std::collections::BTreeMap<String, String>,
    /// Users whose deletes are not checked: the controllers that delete
    /// calico-node pods on their own schedule.
    pub exempt_users: Vec<String>,
}

impl Default for PodCordonedSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            pod_labels: default_pod_labels(),
            exempt_users: [
                "system:serviceaccount:kube-system:daemon-set-controller",
                "system:serviceaccount:kube-system:generic-garbage-collector",
                "system:serviceaccount:kube-system:pod-garbage-collector",
                "system:kube-controller-manager",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl CalicoPods for PodCordonedSettings {
    fn identity(&self) -> &Identity {
        &self.identity
    }
    fn pod_labels(&self) -> &std::collections::BTreeMap<String, String> {
        &self.pod_labels
    }
}

impl Settings for PodCordonedSettings {
    fn validate(&self) -> Result<(), String> {
        self.check_pod_settings()
    }
}

pub fn node_pod_cordoned(
    req: &Request<'_>,
    s: &PodCordonedSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster)
        .unwrap_or_else(|e| lookup::failed("the Node or the calico-node pods", &e))
}

fn check(
    req: &Request<'_>,
    s: &PodCordonedSettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let pods = s;
    let Some(pod) = req.old_object.as_ref() else {
        return Ok(Verdict::allow());
    };
    if req.operation != Operation::Delete || req.sub_resource.is_some() || !pods.is_calico_pod(pod)
    {
        return Ok(Verdict::allow());
    }
    if s.exempt_users.iter().any(|u| *u == req.user_info.username) {
        return Ok(Verdict::allow());
    }
    let Some(node_name) = pod.node_name() else {
        return Ok(Verdict::allow());
    };
    // Whether it is cordoned and which images it holds; not its
    // conditions, capacity, addresses or the rest.
    let found = cluster.lookup(
        &LookupQuery::get("v1", "Node", None, node_name)
            .with_fields(&["/spec/unschedulable", "/status/images"]),
    )?;
    let nodes = found.parse()?;
    let Some(node) = nodes.first() else {
        return Ok(Verdict::allow());
    };
    let namespace = pod.namespace().unwrap_or(&s.identity.namespace);
    let mut problems = Vec::new();
    if !node.is_unschedulable() {
        problems.push(format!(
            "its node {node_name} is not cordoned: run kubectl cordon {node_name}, delete the pod, \
             and kubectl uncordon {node_name} once the new calico-node pod is Ready"
        ));
    }
    let siblings = cluster.lookup(&pods.pods_query(namespace))?;
    let not_ready: Vec<String> = siblings
        .parse()?
        .iter()
        .filter(|p| p.name() != pod.name() && !p.is_ready())
        .map(|p| format!("{} (node {})", p.name(), p.node_name().unwrap_or("?")))
        .collect();
    if !not_ready.is_empty() {
        problems.push(format!(
            "calico-node pod {} is not Ready, so a node is mid-upgrade: wait until it is Ready, one node at a time",
            text::list(&not_ready, 3)
        ));
    }
    let mut verdict = if problems.is_empty() {
        Verdict::allow()
    } else {
        Verdict::deny(format!(
            "deleting calico-node pod {}/{} now is unsafe: {}.",
            namespace,
            pod.name(),
            problems.join("; and ")
        ))
    };
    if let Some(wanted) = pods.wanted_image(cluster, pod)? {
        let want = ImageRef::parse(&wanted);
        let pulled = node
            .status
            .iter()
            .flat_map(|s| &s.images)
            .flat_map(|i| &i.names)
            .any(|n| ImageRef::parse(n).same_image(&want));
        if !pulled {
            verdict = verdict.with_warning(clip(
                format!(
                    "node {node_name} has not pulled {wanted}: pre-pull it so calico-node restarts within BIRD's 90 s graceful-restart period"
                ),
                WARNING_MAX,
            ));
        }
    }
    Ok(verdict)
}
