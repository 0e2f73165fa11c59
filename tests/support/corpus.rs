//! The shared corpus as the end-to-end tests send it: the helpers of
//! `tollgate-testkit`, with requests wrapped in whole AdmissionReviews (the
//! uid names the step, so a failure points at it) and captured reviews paired
//! with the endpoint they were sent to.

use serde_json::Value;
pub use tollgate_testkit::corpus::{doc, manifest_text};
pub use tollgate_testkit::objects::{
    calico_data, calico_pod, namespace, network_policy, node, served, stored, with_image,
    with_replicas,
};
use tollgate_testkit::requests::{self, review};

/// The AdmissionReview of a CREATE of `obj`.
pub fn create(uid: &str, obj: &Value) -> Value {
    review(uid, requests::create(obj))
}

/// The AdmissionReview of an UPDATE from `old` to `new`.
pub fn update(uid: &str, old: &Value, new: &Value) -> Value {
    review(uid, requests::update(old, new))
}

/// The AdmissionReview of a DELETE of `old`.
pub fn delete(uid: &str, old: &Value) -> Value {
    review(uid, requests::delete(old))
}

/// The AdmissionReview of `kubectl scale <resource> -n ns name --replicas=to`.
pub fn scale(uid: &str, resource: &str, ns: &str, name: &str, from: i64, to: i64) -> Value {
    review(uid, requests::scale(resource, ns, name, from, to))
}

/// A review captured from a real API server (`testdata/reviews/<file>`) and
/// the path to replay it on: its endpoint (named in the file) with the
/// captured query string.
pub fn captured(file: &str) -> (String, Value) {
    let (query, review) = tollgate_testkit::corpus::captured(file);
    let endpoint = if file.contains("--mutate--") {
        "/mutate"
    } else {
        "/validate"
    };
    (format!("{endpoint}?{query}"), review)
}
