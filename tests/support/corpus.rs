//! The shared corpus (`../shared` beside the repository): published Calico manifests turned
//! into the objects and AdmissionReviews a real API server produces, and the
//! AdmissionReviews one really sent.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::review_of;

/// `shared/` beside the repository (or `$TOLLGATE_SHARED`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("TOLLGATE_SHARED").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")),
        PathBuf::from,
    )
}

/// `corpus/manifests/<rel>`.
pub fn manifest_path(rel: &str) -> PathBuf {
    shared_dir().join("corpus/manifests").join(rel)
}

/// The text of `corpus/manifests/<rel>`, as published.
pub fn manifest_text(rel: &str) -> String {
    let path = manifest_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every non-empty YAML document of `corpus/manifests/<rel>`, as JSON.
pub fn manifest(rel: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&manifest_text(rel))
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The `kind` named `name` in `corpus/manifests/<rel>`, as published.
pub fn doc(rel: &str, kind: &str, name: &str) -> Value {
    manifest(rel)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{rel} has no {kind} {name}"))
}

fn object_at<'v>(v: &'v mut Value, key: &str) -> &'v mut serde_json::Map<String, Value> {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("an object")
}

/// The object as the API server hands it to webhooks after `kubectl apply`
/// through `apps/v1` (as in the captured reviews): converted, with that
/// version's defaults. NetworkPolicies are left as written: the tests send
/// them as offline-checked manifests.
pub fn served(doc: &Value) -> Value {
    let mut d = doc.clone();
    let kind = d["kind"].as_str().unwrap_or_default().to_owned();
    if !matches!(kind.as_str(), "Deployment" | "ReplicaSet" | "DaemonSet") {
        return d;
    }
    d["apiVersion"] = json!("apps/v1");
    let labels = d["spec"]["template"]["metadata"]["labels"].clone();
    let spec = object_at(&mut d, "spec");
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
        return d;
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
    d
}

/// The object as the cluster stores it once running (what a snapshot or a
/// watch serves): served, with a uid, and for controllers a status with
/// every replica up.
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

/// Sets `spec.replicas` and `status.replicas` (a controller being scaled).
pub fn with_replicas(mut obj: Value, spec: i64, status: i64) -> Value {
    obj["spec"]["replicas"] = json!(spec);
    obj["status"] = json!({"replicas": status, "readyReplicas": status});
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

/// `(group, version, kind)` of an object.
fn gvk(obj: &Value) -> (&str, &str, &str) {
    let api = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    (group, version, obj["kind"].as_str().expect("kind"))
}

/// The AdmissionReview of a CREATE of `obj`.
pub fn create(uid: &str, obj: &Value) -> Value {
    review_of(uid, gvk(obj), "CREATE", obj.clone(), Value::Null)
}

/// The AdmissionReview of an UPDATE from `old` to `new`.
pub fn update(uid: &str, old: &Value, new: &Value) -> Value {
    review_of(uid, gvk(new), "UPDATE", new.clone(), old.clone())
}

/// The AdmissionReview of a DELETE of `old` (`object` null, as sent).
pub fn delete(uid: &str, old: &Value) -> Value {
    review_of(uid, gvk(old), "DELETE", Value::Null, old.clone())
}

/// `kubectl scale <resource> -n ns name --replicas=to`: the `scale`
/// subresource as `autoscaling/v1` Scale objects, named after the owner.
pub fn scale(uid: &str, resource: &str, ns: &str, name: &str, from: i64, to: i64) -> Value {
    let scale = |n: i64| {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": name, "namespace": ns},
               "spec": {"replicas": n}, "status": {"replicas": from}})
    };
    let mut review = review_of(
        uid,
        ("autoscaling", "v1", "Scale"),
        "UPDATE",
        scale(to),
        scale(from),
    );
    let request = &mut review["request"];
    request["resource"] = json!({"group": "apps", "version": "v1", "resource": resource});
    request["subResource"] = json!("scale");
    review
}

/// A review captured from a real API server (`shared/reviews/<file>`)
/// and the path to replay it on: its endpoint with the `query` member, which
/// the capture added, moved back into the query string.
pub fn captured(file: &str) -> (String, Value) {
    let path = shared_dir().join("reviews").join(file);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut review: Value = serde_json::from_slice(&text).expect("review JSON");
    let query = review
        .as_object_mut()
        .and_then(|r| r.remove("query"))
        .and_then(|q| q.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{file} has no query member"));
    let endpoint = if file.contains("--mutate--") {
        "/mutate"
    } else {
        "/validate"
    };
    (format!("{endpoint}?{query}"), review)
}

/// A namespace, DefaultDeny-annotated when `default_deny`.
pub fn namespace(name: &str, default_deny: bool) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if default_deny {
        ns["metadata"]["annotations"] = json!({
            "net.beta.kubernetes.io/network-policy": r#"{"ingress":{"isolation":"DefaultDeny"}}"#
        });
    }
    ns
}

/// A `networking.k8s.io/v1` NetworkPolicy as the API server stores it.
pub fn network_policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
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
