//! The policy controller as R2, R3, R4 and R12 see it: the object admitted
//! (a Deployment, a ReplicaSet or their `scale` subresource) and the other
//! controllers in the cluster.

use tollgate_sdk::{Cluster, LookupError, Object, Operation, Request};

use crate::identify::{Identity, is_operator_owned};

/// A controller workload, reduced to what the rules report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// `Deployment` or `ReplicaSet`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub replicas: i64,
    pub status_replicas: i64,
    /// The controller image, when the object carries a pod template.
    pub image: Option<String>,
    /// Whether `spec.replicas` is written (absent in a manifest means 1).
    pub replicas_present: bool,
}

impl Controller {
    fn from_object(kind: &'static str, obj: &Object<'_>, id: &Identity) -> Self {
        Self {
            kind,
            namespace: obj.namespace().unwrap_or_default().to_owned(),
            name: obj.name().to_owned(),
            replicas: obj.replicas().unwrap_or(0),
            status_replicas: obj.status_replicas(),
            image: id
                .controller_container(obj)
                .and_then(|c| c.image.as_deref())
                .map(str::to_owned),
            replicas_present: obj.spec.as_ref().is_some_and(|s| s.replicas.is_some()),
        }
    }

    /// Running or about to run pods.
    pub fn is_active(&self) -> bool {
        self.replicas > 0 || self.status_replicas > 0
    }

    /// `Deployment kube-system/calico-policy-controller`.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// The guide's command to stop it.
    pub fn scale_to_zero(&self) -> String {
        let short = if self.kind == "ReplicaSet" {
            "rs"
        } else {
            "deploy"
        };
        format!(
            "kubectl scale {short} -n {} {} --replicas=0",
            self.namespace, self.name
        )
    }

    fn same_as(&self, other: &Controller) -> bool {
        self.kind == other.kind && self.namespace == other.namespace && self.name == other.name
    }
}

fn workload_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" | "deployments" => Some("Deployment"),
        "ReplicaSet" | "replicasets" => Some("ReplicaSet"),
        _ => None,
    }
}

/// A ReplicaSet run by a Deployment is that Deployment's business: the
/// Deployment is what the rules check, and its controller's writes to the
/// ReplicaSet must never be blocked mid-rollout.
fn is_deployment_owned(obj: &Object<'_>) -> bool {
    obj.kind_str() == "ReplicaSet" && obj.owner_of_kind("Deployment").is_some()
}

/// Whether a write of `obj` is someone else's to judge: a ReplicaSet its
/// Deployment manages, or a workload the Tigera operator renders from the
/// Installation (R21 guards those; denying the operator's own writes would
/// stop it reconciling).
fn is_managed(obj: &Object<'_>) -> bool {
    is_deployment_owned(obj) || is_operator_owned(obj)
}

/// The controller a CREATE or UPDATE admits, if it is one. A `scale` request
/// names its owner; when the name is not a controller name the owner is read
/// from the cluster to check its image.
pub fn admitted(
    req: &Request<'_>,
    id: &Identity,
    cluster: &dyn Cluster,
) -> Result<Option<Controller>, LookupError> {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Ok(None);
    }
    let Some(obj) = req.object.as_ref() else {
        return Ok(None);
    };
    if req.is_scale() {
        let Some(kind) = workload_kind(&req.resource.resource) else {
            return Ok(None);
        };
        let name = req.name.as_deref().unwrap_or_else(|| obj.name());
        let namespace = req
            .namespace
            .as_deref()
            .or(obj.namespace())
            .unwrap_or_default();
        let mut scale = Controller::from_object(kind, obj, id);
        scale.name = name.to_owned();
        scale.namespace = namespace.to_owned();
        if id.is_ctrl_name(name) {
            return Ok(Some(scale));
        }
        // Calico's controllers run in its namespaces (where `others` looks
        // for them too); the grants cover those, not every namespace.
        if !id.namespaces().contains(&namespace) {
            return Ok(None);
        }
        let found = cluster.get("apps/v1", kind, Some(namespace), name)?;
        let owners = found.parse()?;
        let is_ctrl = owners
            .first()
            .is_some_and(|o| id.is_ctrl(o) && !is_managed(o));
        if let Some(owner) = owners.first().filter(|_| is_ctrl) {
            scale.image = Controller::from_object(kind, owner, id).image;
        }
        return Ok(is_ctrl.then_some(scale));
    }
    let Some(kind) = workload_kind(obj.kind_str()) else {
        return Ok(None);
    };
    if !id.is_ctrl(obj) || is_managed(obj) {
        return Ok(None);
    }
    Ok(Some(Controller::from_object(kind, obj, id)))
}

/// The controllers in Calico's namespaces (the manifest's and the
/// operator's) other than `except`: Deployments, and ReplicaSets that no
/// Deployment owns (the v1.6 ReplicaSet).
pub fn others(
    cluster: &dyn Cluster,
    id: &Identity,
    except: Option<&Controller>,
) -> Result<Vec<Controller>, LookupError> {
    others_in(cluster, id, &id.namespaces(), except)
}

/// [`others`], in `namespaces` only.
pub fn others_in(
    cluster: &dyn Cluster,
    id: &Identity,
    namespaces: &[&str],
    except: Option<&Controller>,
) -> Result<Vec<Controller>, LookupError> {
    let mut out = Vec::new();
    for namespace in namespaces {
        for kind in ["Deployment", "ReplicaSet"] {
            let found = cluster.list("apps/v1", kind, Some(namespace))?;
            for obj in found.parse()? {
                if !id.is_ctrl(&obj) || is_deployment_owned(&obj) {
                    continue;
                }
                let ctrl = Controller::from_object(kind, &obj, id);
                if except.is_none_or(|e| !e.same_as(&ctrl)) {
                    out.push(ctrl);
                }
            }
        }
    }
    Ok(out)
}
