//! Objects as the API server hands them to webhooks and as a running cluster
//! stores them, so rules are judged on what they really receive rather than
//! on manifests as written.

use serde_json::{Value, json};

/// The object as the API server sends it after `kubectl apply` (one
/// implementation, the production one `tollgate check` uses).
pub use tollgate_preflight::served::served;

/// The object as the cluster stores it once running (what a snapshot, a
/// watch or a lookup serves): served, with a uid, and for controllers a
/// status with every replica up and Ready.
pub fn stored(doc: &Value) -> Value {
    let mut d = served(doc);
    let name = d["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    d["metadata"]["uid"] = json!(format!("uid-{name}"));
    if matches!(d["kind"].as_str(), Some("Deployment" | "ReplicaSet")) {
        let replicas = d["spec"]["replicas"].clone();
        d["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
    }
    d
}

/// A controller being scaled: `spec.replicas` asked for, `status` replicas
/// still running (all of them Ready, as in [`stored`]).
pub fn with_replicas(mut obj: Value, spec: i64, status: i64) -> Value {
    obj["spec"]["replicas"] = json!(spec);
    obj["status"]["replicas"] = json!(status);
    obj["status"]["readyReplicas"] = json!(status);
    obj
}

/// Sets the image of the pod-template container `container`.
pub fn with_image(mut obj: Value, container: &str, image: &str) -> Value {
    let containers = obj["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("a pod template");
    let c = containers
        .iter_mut()
        .find(|c| c["name"] == container)
        .unwrap_or_else(|| panic!("no container {container}"));
    c["image"] = json!(image);
    obj
}

/// A namespace, annotated with the pre-v1 `DefaultDeny` isolation when
/// `default_deny` (what the v1 NetworkPolicy semantics change breaks).
pub fn namespace(name: &str, default_deny: bool) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if default_deny {
        ns["metadata"]["annotations"] = json!({
            "net.beta.kubernetes.io/network-policy": r#"{"ingress":{"isolation":"DefaultDeny"}}"#
        });
    }
    ns
}

/// A `networking.k8s.io/v1` NetworkPolicy with `spec` as given.
pub fn network_policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// The guide's default-deny policy as the API server stores it.
pub fn default_deny_policy(ns: &str) -> Value {
    network_policy(
        ns,
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

/// A Ready Node; `images` are the names in `status.images`.
pub fn node(name: &str, cordoned: bool, images: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {"unschedulable": cordoned},
           "status": {"conditions": [{"type": "Ready", "status": "True"}],
                      "images": [{"names": images}]}})
}

/// A calico-node pod of the DaemonSet `kube-system/calico-node`.
pub fn calico_pod(name: &str, node: &str, image: &str, ready: bool) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "calico-node"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "calico-node",
                                             "uid": "uid-calico-node", "controller": true}]},
           "spec": {"nodeName": node, "containers": [{"name": "calico-node", "image": image}]},
           "status": {"conditions": [{"type": "Ready", "status": ready}]}})
}

/// An object of the Calico v2.4 TPR data (`projectcalico.org/v1`, in
/// kube-system) or of the v2.5 CRD data (`crd.projectcalico.org/v1`,
/// cluster-scoped).
pub fn calico_data(api_version: &str, kind: &str, name: &str) -> Value {
    let mut v = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
    if api_version == "projectcalico.org/v1" {
        v["metadata"]["namespace"] = json!("kube-system");
    }
    v
}
