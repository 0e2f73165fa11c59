//! The AdmissionReview the API server would send for `kubectl apply` of an
//! object: CREATE when it does not exist, UPDATE with `oldObject` when it
//! does; the object served ([`crate::served`]), its namespace defaulted, on
//! UPDATE its identity (uid, resourceVersion, creationTimestamp, generation)
//! and status taken from the stored object as the API server does before
//! admission; kind, resource and the request's user as in the captures of
//! `testdata/reviews`.

use serde_json::{Value, json};
pub use tollgate_sdk::Operation;

use crate::crd::Crds;
use crate::served::{gvk, namespaced, served};

mod builder;

pub use builder::{RequestBuilder, user_info};

/// `request` in an `admission.k8s.io/v1` AdmissionReview.
pub fn review(request: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// The review `kubectl apply` of `manifest` makes the API server send, given
/// the stored object of the same name (`existing`, as read from a snapshot
/// or the cluster) if there is one.
pub fn apply(manifest: &Value, existing: Option<&Value>) -> Value {
    apply_with(manifest, existing, &Crds::default())
}

/// [`apply`] where `crds` define custom resources: their scope, resource
/// name and schema defaults ([`crate::crd`]).
pub fn apply_with(manifest: &Value, existing: Option<&Value>, crds: &Crds) -> Value {
    let mut object = arriving(manifest, crds);
    let (group, _, kind) = gvk(&object);
    let plural = crds.plural(group, kind).map(str::to_owned);
    let (operation, old, options) = match existing {
        None => (Operation::Create, None, "CreateOptions"),
        Some(existing) => {
            let mut old = served(existing);
            crds.fill_defaults(&mut old);
            object = prepare_update(object, &old);
            (Operation::Update, Some(old), "UpdateOptions")
        }
    };
    let mut request = RequestBuilder::new(operation, old.as_ref(), Some(&object))
        .with_options(json!({"apiVersion": "meta.k8s.io/v1", "kind": options,
               "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}));
    if let Some(plural) = plural {
        let (group, version, _) = gvk(&object);
        request = request.with_resource(group, version, &plural);
    }
    request.review()
}

/// `manifest` as the API server receives it: served, defaulted by its
/// CRD, in the `default` namespace if its kind is namespaced and it names
/// none. Where it will be stored, so what finds the object it replaces.
pub fn arriving(manifest: &Value, crds: &Crds) -> Value {
    let mut object = served(manifest);
    crds.fill_defaults(&mut object);
    let (group, _, kind) = gvk(&object);
    let scoped = crds
        .namespaced(group, kind)
        .unwrap_or_else(|| namespaced(group, kind));
    if scoped && object["metadata"]["namespace"].as_str().is_none() {
        object["metadata"]["namespace"] = json!("default");
    }
    object
}

/// The review of re-applying a stored object unchanged: how `audit` asks
/// whether what runs today would be admitted.
pub fn reapply(stored: &Value) -> Value {
    apply(stored, Some(stored))
}

/// An UPDATE's object before admission: the identity the client cannot set
/// and the status a main-resource update cannot change come from the
/// stored object.
fn prepare_update(mut object: Value, old: &Value) -> Value {
    for field in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
        if let Some(value) = old["metadata"].get(field) {
            object["metadata"][field] = value.clone();
        }
    }
    match old.get("status") {
        Some(status) => object["status"] = status.clone(),
        None => {
            if let Some(map) = object.as_object_mut() {
                map.remove("status");
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::tests::published;

    fn daemonset() -> Value {
        json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet",
               "metadata": {"name": "calico-node", "namespace": "kube-system"},
               "spec": {"template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                                     "spec": {"containers": [{"name": "calico-node", "image": "calico/node:v2.5.1"}]}}}})
    }

    #[test]
    fn a_new_object_is_a_create_of_the_served_object() {
        let review = apply(&daemonset(), None);
        let r = &review["request"];
        assert_eq!(r["operation"], "CREATE");
        assert_eq!(
            r["kind"],
            json!({"group": "apps", "version": "v1", "kind": "DaemonSet"})
        );
        assert_eq!(r["resource"]["resource"], "daemonsets");
        assert_eq!(r["object"]["apiVersion"], "apps/v1");
        assert_eq!(r["oldObject"], Value::Null);
        assert_eq!(r["options"]["kind"], "CreateOptions");
        assert_eq!(
            r["uid"],
            "tollgate-create-apps-daemonset-kube-system-calico-node"
        );
        assert_eq!(r["userInfo"]["username"], "admin");
    }

    #[test]
    fn an_existing_object_is_an_update_with_identity_and_status_from_it() {
        let mut stored = served(&daemonset());
        stored["metadata"]["uid"] = json!("u-1");
        stored["metadata"]["resourceVersion"] = json!("42");
        stored["status"] = json!({"numberReady": 3});
        let mut new = daemonset();
        new["status"] = json!({"numberReady": 0});
        let review = apply(&new, Some(&stored));
        let r = &review["request"];
        assert_eq!(r["operation"], "UPDATE");
        assert_eq!(r["oldObject"], stored);
        assert_eq!(r["object"]["metadata"]["uid"], "u-1");
        assert_eq!(r["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(r["object"]["status"], json!({"numberReady": 3}));
        assert_eq!(r["options"]["kind"], "UpdateOptions");
        assert_eq!(reapply(&stored)["request"]["object"], stored);
    }

    #[test]
    fn the_namespace_defaults_only_for_namespaced_kinds() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(apply(&cm, None)["request"]["namespace"], "default");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}});
        let r = apply(&ns, None);
        assert_eq!(r["request"]["namespace"], Value::Null);
        assert_eq!(
            r["request"]["resource"],
            json!({"group": "", "version": "v1", "resource": "namespaces"})
        );
    }

    // How the CRDs of a published release shape the review.
    fn installation() -> Value {
        published("v3.32.1", "custom-resources.yaml")
            .into_iter()
            .find(|o| o["kind"] == "Installation")
            .unwrap()
    }

    #[test]
    fn a_crd_gives_its_resources_scope_and_resource_name() {
        let crds = Crds::new(&published("v3.32.1", "operator-crds.yaml"));
        assert_eq!(
            crds.namespaced("operator.tigera.io", "Installation"),
            Some(false)
        );
        assert_eq!(
            crds.plural("operator.tigera.io", "Installation"),
            Some("installations")
        );
        assert_eq!(crds.namespaced("operator.tigera.io", "Nothing"), None);
        let r = &apply_with(&installation(), None, &crds)["request"];
        assert_eq!(
            r["namespace"],
            Value::Null,
            "cluster-scoped: no default namespace"
        );
        assert_eq!(r["object"]["metadata"].get("namespace"), None);
        assert_eq!(r["resource"]["resource"], "installations");
        // Without the CRD it is guessed namespaced, as before.
        let r = &apply(&installation(), None)["request"];
        assert_eq!(r["namespace"], "default");
    }

    #[test]
    fn a_namespaced_calico_kind_arrives_in_default_only_when_its_crd_says_so() {
        let crds = Crds::new(&published("v3.31.0", "calico.yaml"));
        let policy = json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": "allow-dns"}});
        let arrived = arriving(&policy, &crds);
        assert_eq!(arrived["metadata"]["namespace"], "default");
        let guessed = arriving(&policy, &Crds::default());
        assert_eq!(guessed["metadata"].get("namespace"), None);
    }
}
