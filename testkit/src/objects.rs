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

/// Namespaces and NetworkPolicies in every state R9 tells apart, none of
/// them prepared the plain way: ten namespaces whose policies would become
/// active and ten DefaultDeny namespaces without a default-deny policy (more
/// than a message lists), annotations of odd values and escapes, policies
/// shaped like a default-deny whose policyTypes do or do not isolate
/// ingress, a policy in a namespace that does not exist, and names beyond
/// ASCII. Names start with `r9-` (the bench's large cluster has none).
pub fn r9_variety() -> Vec<Value> {
    const ISOLATION: &str = "net.beta.kubernetes.io/network-policy";
    let annotated = |name: &str, annotation: Value| {
        let mut ns = namespace(name, false);
        ns["metadata"]["annotations"] = json!({ ISOLATION: annotation });
        ns
    };
    let deny_shaped = |ns: &str, name: &str, spec: Value| network_policy(ns, name, spec);
    let app = |ns: &str| {
        network_policy(
            ns,
            "allow-web",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}),
        )
    };
    let mut out = Vec::new();
    for i in 0..10 {
        let clean = format!("r9-clean-{i:02}");
        out.extend([namespace(&clean, false), app(&clean)]);
        out.push(namespace(&format!("r9-isolate-{i:02}"), true));
    }
    out.extend([
        // Not JSON: not DefaultDeny, so its default-deny policy is a policy
        // that would become active.
        annotated("r9-ann-plain", json!("DefaultDeny")),
        default_deny_policy("r9-ann-plain"),
        // An escape inside the annotation's JSON: DefaultDeny.
        annotated(
            "r9-ann-escaped",
            json!(r#"{"ingress":{"isolation":"Default\u0044eny"}}"#),
        ),
        annotated(
            "r9-ann-spaced",
            json!(r#"{ "ingress": { "isolation": "DefaultDeny" } }"#),
        ),
        default_deny_policy("r9-ann-spaced"),
        annotated("r9-ann-none", json!(r#"{"ingress":{"isolation":"None"}}"#)),
        app("r9-ann-none"),
        annotated("r9-ann-empty", json!("")),
        app("r9-ann-empty"),
        annotated("r9-ann-number", json!(5)),
        annotated(
            "r9-ann-object",
            json!({"ingress": {"isolation": "DefaultDeny"}}),
        ),
        app("r9-ann-object"),
        // Default-deny-shaped policies in DefaultDeny namespaces.
        namespace("r9-types-egress", true),
        deny_shaped(
            "r9-types-egress",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        ),
        namespace("r9-types-both", true),
        deny_shaped(
            "r9-types-both",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Egress", "Ingress"]}),
        ),
        namespace("r9-types-absent", true),
        deny_shaped("r9-types-absent", "deny", json!({"podSelector": {}})),
        namespace("r9-types-null", true),
        deny_shaped(
            "r9-types-null",
            "deny",
            json!({"podSelector": {}, "policyTypes": null}),
        ),
        namespace("r9-types-empty", true),
        deny_shaped(
            "r9-types-empty",
            "deny",
            json!({"podSelector": {}, "policyTypes": []}),
        ),
        namespace("r9-selector-null", true),
        deny_shaped(
            "r9-selector-null",
            "deny",
            json!({"podSelector": null, "ingress": []}),
        ),
        namespace("r9-allows-some", true),
        deny_shaped(
            "r9-allows-some",
            "deny",
            json!({"podSelector": {}, "ingress": [{}]}),
        ),
        namespace("r9-two-denies", true),
        default_deny_policy("r9-two-denies"),
        deny_shaped(
            "r9-two-denies",
            "deny-again",
            json!({"podSelector": {"matchLabels": {}}}),
        ),
        // A policy whose namespace is not stored.
        app("r9-ghost"),
        // Beyond ASCII, where JSON text order and name order agree.
        namespace("r9-ünï", true),
        namespace("r9-zed", false),
        app("r9-zed"),
    ]);
    out
}
