//! Objects as the API server hands them to webhooks: the apiVersion it
//! serves the kind in (removed beta versions converted) and the defaults of
//! that version applied to the fields the rules read, as the captured
//! reviews in `testdata/reviews` show (a DaemonSet created through `apps/v1`
//! without updateStrategy arrives as RollingUpdate maxUnavailable 1 maxSurge
//! 0; a NetworkPolicy's null podSelector as `{}` with policyTypes).
//!
//! Manifests of removed versions (`extensions/v1beta1`, `apps/v1beta*`) are
//! read as the same object submitted through the served version, which is
//! what a current cluster accepts and what the captures were taken with.

use serde_json::{Map, Value, json};
use tollgate_sdk::api::split_api_version;

/// The object as the API server sends it after `kubectl apply`.
pub fn served(doc: &Value) -> Value {
    let mut d = doc.clone();
    let (group, _, kind) = gvk(doc);
    // Only the built-in groups: Calico's own `NetworkPolicy`
    // (`crd.projectcalico.org`, `projectcalico.org`) is another kind.
    match (group, kind) {
        ("apps" | "extensions", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") => {
            default_controller(&mut d, kind)
        }
        ("networking.k8s.io" | "extensions", "NetworkPolicy") => default_network_policy(&mut d),
        _ => {
            if let Some(version) = served_version(&d) {
                d["apiVersion"] = json!(version);
            }
        }
    }
    d
}

/// The served apiVersion of a kind whose manifest names a removed one.
fn served_version(d: &Value) -> Option<&'static str> {
    match d["apiVersion"].as_str()? {
        "rbac.authorization.k8s.io/v1beta1" | "rbac.authorization.k8s.io/v1alpha1" => {
            Some("rbac.authorization.k8s.io/v1")
        }
        "apiextensions.k8s.io/v1beta1" => Some("apiextensions.k8s.io/v1"),
        "policy/v1beta1" if d["kind"] == "PodDisruptionBudget" => Some("policy/v1"),
        _ => None,
    }
}

/// `apps/v1` defaults: a selector from the template labels, one replica,
/// and the rolling-update parameters of the kind.
fn default_controller(d: &mut Value, kind: &str) {
    d["apiVersion"] = json!("apps/v1");
    let labels = d["spec"]["template"]["metadata"]["labels"].clone();
    let spec = object_at(d, "spec");
    if !spec.contains_key("selector") && labels.is_object() {
        spec.insert("selector".into(), json!({"matchLabels": labels}));
    }
    if kind == "DaemonSet" {
        let strategy = spec
            .entry("updateStrategy")
            .or_insert(json!({"type": "RollingUpdate"}));
        if strategy["type"] == "RollingUpdate" {
            let rolling = object_at(strategy, "rollingUpdate");
            rolling.entry("maxUnavailable").or_insert(json!(1));
            rolling.entry("maxSurge").or_insert(json!(0));
        }
        return;
    }
    spec.entry("replicas").or_insert(json!(1));
    if kind == "Deployment" {
        let strategy = spec
            .entry("strategy")
            .or_insert(json!({"type": "RollingUpdate"}));
        if strategy["type"] == "RollingUpdate" && strategy.get("rollingUpdate").is_none() {
            strategy["rollingUpdate"] = json!({"maxUnavailable": "25%", "maxSurge": "25%"});
        }
    }
}

/// `networking.k8s.io/v1` defaults: a null `podSelector` becomes `{}` and
/// `policyTypes` is derived from the rules present (Ingress always).
fn default_network_policy(d: &mut Value) {
    d["apiVersion"] = json!("networking.k8s.io/v1");
    let spec = object_at(d, "spec");
    if spec.get("podSelector").is_none_or(Value::is_null) {
        spec.insert("podSelector".into(), json!({}));
    }
    if !spec.contains_key("policyTypes") {
        let mut types = vec![json!("Ingress")];
        if spec.contains_key("egress") {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

/// `v[key]` as a map, made one if it is missing or not an object.
fn object_at<'v>(v: &'v mut Value, key: &str) -> &'v mut Map<String, Value> {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("an object")
}

/// `(group, version, kind)` of an object; core objects have the empty group.
pub fn gvk(obj: &Value) -> (&str, &str, &str) {
    let (group, version) = split_api_version(obj["apiVersion"].as_str().unwrap_or_default());
    (group, version, obj["kind"].as_str().unwrap_or_default())
}

/// The resource name of a kind (`NetworkPolicy` → `networkpolicies`).
pub use tollgate_sdk::api::plural;

/// Kinds that are not namespaced, of the groups manifests for this pack
/// carry. Offline, that is all Tollgate can know; with a cluster, discovery
/// answers instead.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("policy", "PodSecurityPolicy"),
    ("extensions", "PodSecurityPolicy"),
    ("wgpolicyk8s.io", "ClusterPolicyReport"),
];

/// Whether objects of `group`/`kind` live in a namespace. Calico's CRD data
/// (`crd.projectcalico.org`) is cluster-scoped; its v2.4 TPR data
/// (`projectcalico.org/v1`, stored as ThirdPartyResources) is namespaced.
pub fn namespaced(group: &str, kind: &str) -> bool {
    if group == "crd.projectcalico.org" {
        return false;
    }
    !CLUSTER_SCOPED.contains(&(group, kind))
}

/// `Kind namespace/name` or `Kind name`.
pub fn display_name(obj: &Value) -> String {
    let meta = &obj["metadata"];
    let name = meta["name"]
        .as_str()
        .or_else(|| meta["generateName"].as_str())
        .unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    match meta["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_served_as_apps_v1_with_its_defaults() {
        let ds = json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet",
            "metadata": {"name": "calico-node"},
            "spec": {"template": {"metadata": {"labels": {"k8s-app": "calico-node"}}}}});
        let ds = served(&ds);
        assert_eq!(ds["apiVersion"], "apps/v1");
        assert_eq!(
            ds["spec"]["selector"]["matchLabels"]["k8s-app"],
            "calico-node"
        );
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        let deploy = json!({"apiVersion": "apps/v1beta1", "kind": "Deployment",
            "metadata": {"name": "c"}, "spec": {"strategy": {"type": "Recreate"}}});
        let deploy = served(&deploy);
        assert_eq!(deploy["spec"]["replicas"], 1);
        assert_eq!(deploy["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn removed_versions_of_other_kinds_are_converted() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1beta1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        assert_eq!(served(&role)["apiVersion"], "rbac.authorization.k8s.io/v1");
        let np = json!({"apiVersion": "extensions/v1beta1", "kind": "NetworkPolicy", "metadata": {"name": "d"}, "spec": {"podSelector": null}});
        let np = served(&np);
        assert_eq!(np["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(
            np["spec"],
            json!({"podSelector": {}, "policyTypes": ["Ingress"]})
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(served(&cm), cm);
        let calico = json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": "p"}, "spec": {"selector": "all()"}});
        assert_eq!(
            served(&calico),
            calico,
            "Calico's NetworkPolicy is its own kind"
        );
    }

    #[test]
    fn names_and_scopes() {
        assert!(namespaced("apps", "DaemonSet"));
        assert!(!namespaced("", "Namespace"));
        assert!(!namespaced("crd.projectcalico.org", "IPPool"));
        assert!(namespaced("projectcalico.org", "IpPool"));
    }
}
