//! The AdmissionReview Tollgate answers.
//!
//! A small borrowed serde struct rather than `kube::core::admission`: kube's
//! `AdmissionReview` deserialises both objects into `Value`s (the hot-path
//! cost this crate avoids) and only speaks `admission.k8s.io/v1`, while the
//! answer must echo the request's apiVersion, v1beta1 included.

use crate::Decision;
use base64::Engine;
use serde::Serialize;
use tollgate_sdk::PatchOp;

/// The code of a policy denial.
pub const DENIED: u16 = 403;

/// The code in the answer to a review whose request fields are unusable.
pub const INVALID_REQUEST: u16 = 400;

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

/// The answer carrying a judged review's decision.
pub fn decision(api_version: &str, uid: &str, decision: &Decision) -> Vec<u8> {
    let denial = decision.denial.as_deref().map(|m| (DENIED, m));
    encode(
        api_version,
        uid,
        denial,
        &decision.warnings,
        decision.patch(),
    )
}

/// The denial of a review whose request fields are unusable.
pub fn invalid(api_version: &str, uid: &str, message: &str) -> Vec<u8> {
    encode(
        api_version,
        uid,
        Some((INVALID_REQUEST, message)),
        &[],
        None,
    )
}

/// Serialises the AdmissionReview answering `uid` in `api_version`:
/// `denial` is `(code, message)` (`None` allows); `patch` is non-empty and
/// only ever set on `/mutate`.
fn encode(
    api_version: &str,
    uid: &str,
    denial: Option<(u16, &str)>,
    warnings: &[String],
    patch: Option<&[PatchOp]>,
) -> Vec<u8> {
    // The API server applies no patch of a denial; sending one anyway (a
    // Decision built by hand with both) would only mislead whoever reads it.
    let patch = patch.filter(|_| denial.is_none());
    let review = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: denial.is_none(),
            status: denial.map(|(code, message)| StatusOut { code, message }),
            warnings,
            patch_type: patch.map(|_| "JSONPatch"),
            patch: patch.map(|ops| {
                let json = serde_json::to_vec(ops).expect("patch operations serialise");
                base64::engine::general_purpose::STANDARD.encode(json)
            }),
        },
    };
    serde_json::to_vec(&review).expect("the answer serialises")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const V1BETA1: &str = "admission.k8s.io/v1beta1";

    fn answer(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn an_allowed_answer_is_minimal() {
        assert_eq!(
            answer(decision(V1BETA1, "u-1", &Decision::default())),
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                   "response": {"uid": "u-1", "allowed": true}})
        );
    }

    #[test]
    fn a_denial_carries_status_and_warnings() {
        let warnings = vec!["p: careful".to_owned()];
        let a = encode(V1BETA1, "u-1", Some((403, "p: no")), &warnings, None);
        assert_eq!(
            answer(a)["response"],
            json!({"uid": "u-1", "allowed": false, "status": {"code": 403, "message": "p: no"},
                   "warnings": ["p: careful"]})
        );
    }

    #[test]
    fn a_denial_carries_no_patch() {
        // `Decision::new` clears the patch of a denial; the encoder holds to
        // it on its own (the response_encode fuzz target's property).
        let decision = Decision {
            denial: Some("p: no".to_owned()),
            patch: vec![PatchOp::remove("/spec")],
            ..Decision::default()
        };
        let response = &answer(super::decision(V1BETA1, "u-1", &decision))["response"];
        assert_eq!(response["allowed"], false);
        assert!(response.get("patch").is_none() && response.get("patchType").is_none());
    }

    #[test]
    fn a_patch_is_base64_json() {
        let ops = vec![PatchOp::replace("/spec/replicas", json!(1))];
        let response = &answer(encode(V1BETA1, "u-1", None, &[], Some(&ops)))["response"];
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

    #[test]
    fn an_invalid_request_is_denied_with_400() {
        let response = &answer(invalid(V1BETA1, "u-2", "bad operation"))["response"];
        assert_eq!(
            response,
            &json!({"uid": "u-2", "allowed": false, "status": {"code": 400, "message": "bad operation"}})
        );
    }
}
