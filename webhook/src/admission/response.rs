//! The AdmissionReview Tollgate answers.
//!
//! A small borrowed serde struct rather than `kube::core::admission`: kube's
//! `AdmissionReview` deserialises both objects into `Value`s (the hot-path
//! cost this crate avoids) and only speaks `admission.k8s.io/v1`, while the
//! answer must echo the request's apiVersion, v1beta1 included.

use base64::Engine;
use serde::Serialize;
use tollgate_sdk::PatchOp;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    message: &'a str,
}

/// What to answer for one review.
#[derive(Debug, Default)]
pub struct Answer<'a> {
    /// `(code, message)` of a denial; `None` allows.
    pub denial: Option<(u16, &'a str)>,
    pub warnings: &'a [String],
    /// A non-empty JSONPatch (only ever set on `/mutate`).
    pub patch: Option<&'a [PatchOp]>,
}

impl Answer<'_> {
    /// Serialises the AdmissionReview answering `uid` in `api_version`.
    pub fn to_json(&self, api_version: &str, uid: &str) -> Vec<u8> {
        let review = ReviewOut {
            api_version,
            kind: "AdmissionReview",
            response: ResponseOut {
                uid,
                allowed: self.denial.is_none(),
                status: self
                    .denial
                    .map(|(code, message)| StatusOut { code, message }),
                warnings: self.warnings,
                patch_type: self.patch.map(|_| "JSONPatch"),
                patch: self.patch.map(|ops| {
                    let json = serde_json::to_vec(ops).expect("patch operations serialise");
                    base64::engine::general_purpose::STANDARD.encode(json)
                }),
            },
        };
        serde_json::to_vec(&review).expect("the answer serialises")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn answer(a: &Answer<'_>) -> Value {
        serde_json::from_slice(&a.to_json("admission.k8s.io/v1beta1", "u-1")).unwrap()
    }

    #[test]
    fn an_allowed_answer_is_minimal() {
        assert_eq!(
            answer(&Answer::default()),
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                   "response": {"uid": "u-1", "allowed": true}})
        );
    }

    #[test]
    fn a_denial_carries_status_and_warnings() {
        let warnings = vec!["p: careful".to_owned()];
        let a = Answer {
            denial: Some((403, "p: no")),
            warnings: &warnings,
            patch: None,
        };
        assert_eq!(
            answer(&a)["response"],
            json!({"uid": "u-1", "allowed": false, "status": {"code": 403, "message": "p: no"},
                   "warnings": ["p: careful"]})
        );
    }

    #[test]
    fn a_patch_is_base64_json() {
        let ops = vec![PatchOp::replace("/spec/replicas", json!(1))];
        let a = Answer {
            patch: Some(&ops),
            ..Answer::default()
        };
        let response = &answer(&a)["response"];
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "replace", "path": "/spec/replicas", "value": 1}])
        );
    }
}
