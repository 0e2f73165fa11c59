//! AdmissionRequests shaped like the ones kube-apiserver sends (compare
//! `testdata/reviews`), so rule tests and end-to-end tests exercise the same
//! input.

use serde_json::{Value, json};

/// The user of the captured reviews: a cluster admin.
fn user_info() -> Value {
    json!({"username": "admin", "uid": "1000", "groups": ["system:masters", "system:authenticated"]})
}

/// An AdmissionRequest of `operation` on `new` (or `old`, for a DELETE);
/// its uid names the operation and the object, so it is stable across runs.
pub fn request(operation: &str, old: Option<&Value>, new: Option<&Value>) -> Value {
    let subject = new.or(old).expect("an object");
    let (group, version, kind) = gvk(subject);
    let name = &subject["metadata"]["name"];
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let resource = json!({"group": group, "version": version, "resource": plural(kind)});
    json!({
        "uid": format!("uid-{operation}-{}", name.as_str().unwrap_or_default()),
        "kind": gvk,
        "resource": resource,
        "requestKind": gvk,
        "requestResource": resource,
        "name": name,
        "namespace": subject["metadata"]["namespace"],
        "operation": operation,
        "userInfo": user_info(),
        "object": new.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": false,
    })
}

/// The request of a CREATE of `obj`.
pub fn create(obj: &Value) -> Value {
    request("CREATE", None, Some(obj))
}

/// The request of an UPDATE from `old` to `new`.
pub fn update(old: &Value, new: &Value) -> Value {
    request("UPDATE", Some(old), Some(new))
}

/// The request of a DELETE of `old` (`object` null, as sent).
pub fn delete(old: &Value) -> Value {
    request("DELETE", Some(old), None)
}

/// `kubectl scale <resource> -n ns name --replicas=to` of a Deployment or
/// ReplicaSet: the `scale` subresource, with `autoscaling/v1` Scale objects
/// carrying the owner's name and uid (as [`crate::objects::stored`] gives
/// it). Zero replicas leave `spec` empty, as the API server omits them.
pub fn scale(resource: &str, ns: &str, name: &str, from: i64, to: i64) -> Value {
    let scale = |n: i64| {
        let spec = if n == 0 {
            json!({})
        } else {
            json!({"replicas": n})
        };
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
               "spec": spec, "status": {"replicas": from}})
    };
    let kind = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
    let owner = json!({"group": "apps", "version": "v1", "resource": resource});
    json!({
        "uid": format!("uid-scale-{name}"),
        "kind": kind,
        "resource": owner,
        "subResource": "scale",
        "requestKind": kind,
        "requestResource": owner,
        "requestSubResource": "scale",
        "name": name,
        "namespace": ns,
        "operation": "UPDATE",
        "userInfo": user_info(),
        "object": scale(to),
        "oldObject": scale(from),
        "dryRun": false,
    })
}

/// `request` in an `admission.k8s.io/v1` AdmissionReview with uid `uid`,
/// as POSTed to a webhook (whose answer must echo that uid).
pub fn review(uid: &str, mut request: Value) -> Value {
    request["uid"] = json!(uid);
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// `(group, version, kind)` of an object; core objects have the empty group.
pub fn gvk(obj: &Value) -> (&str, &str, &str) {
    let api = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    (group, version, obj["kind"].as_str().expect("kind"))
}

/// The resource name of a kind (`NetworkPolicy` → `networkpolicies`,
/// `Ingress` → `ingresses`).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s') {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// The annotation `kubectl apply` stores the whole previous object in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the host's request stripping means, spelled with
/// `serde_json::Value`: `managedFields` and the last-applied annotation
/// removed from `object` and `oldObject`'s metadata. The reference the
/// host's one-pass splice must agree with (its tests) and must beat (its
/// benchmark); test-only, so it lives here rather than in the host.
pub fn strip_value(request: &Value) -> Value {
    let mut value = request.clone();
    for key in ["object", "oldObject"] {
        if let Some(meta) = value
            .get_mut(key)
            .and_then(|o| o.get_mut("metadata"))
            .and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove(LAST_APPLIED);
            }
        }
    }
    value
}
