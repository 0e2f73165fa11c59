//! AdmissionRequests shaped like the ones kube-apiserver sends (compare
//! `testdata/reviews`), so rule tests and end-to-end tests exercise the same
//! input. Built by the pre-flight [`RequestBuilder`], the one builder
//! `check` and `audit` use too; these are the rule tests' short names.

use serde_json::{Value, json};
pub use tollgate_preflight::review::{Operation, RequestBuilder};

/// The operation named `name` (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`).
///
/// # Panics
/// On any other name: a test that means it spells it right.
pub fn operation(name: &str) -> Operation {
    serde_json::from_value(json!(name)).unwrap_or_else(|e| panic!("operation {name:?}: {e}"))
}

/// An AdmissionRequest of `operation` on `new` (or `old`, for a DELETE);
/// its uid names the operation and the object, so it is stable across runs.
pub fn request(operation: &str, old: Option<&Value>, new: Option<&Value>) -> Value {
    let subject = new.or(old).expect("an object");
    let name = subject["metadata"]["name"].as_str().unwrap_or_default();
    RequestBuilder::new(self::operation(operation), old, new)
        .with_uid(format!("uid-{operation}-{name}"))
        .build()
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
    RequestBuilder::update(&scale(from), &scale(to))
        .with_uid(format!("uid-scale-{name}"))
        .with_resource("apps", "v1", resource)
        .with_sub_resource("scale")
        .build()
}

/// `request` in an `admission.k8s.io/v1` AdmissionReview with uid `uid`,
/// as POSTed to a webhook (whose answer must echo that uid).
pub fn review(uid: &str, mut request: Value) -> Value {
    request["uid"] = json!(uid);
    tollgate_preflight::review::review(request)
}

/// `(group, version, kind)` of an object; core objects have the empty group.
pub use tollgate_preflight::served::gvk;
/// The resource name of a kind (`NetworkPolicy` → `networkpolicies`).
pub use tollgate_preflight::served::plural;

pub use tollgate_sdk::api::LAST_APPLIED;

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
