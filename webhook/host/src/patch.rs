//! Composing the patches of several mutating policies.
//!
//! Policies are judged in configuration order and each one sees the object
//! as the previous ones repaired it ([`crate::Review::with_object`]). Each
//! policy's operations are applied to that evolving object as they are
//! accepted; since
//! applying a sequence of operations one after another is the same as
//! applying their concatenation, the answer's patch (the concatenation) is
//! thereby verified to apply cleanly to `request.object`. A patch that does
//! not apply is its policy's failure.

use serde_json::Value;
use tollgate_sdk::PatchOp;

use crate::review::Review;

/// Why a policy's patch was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("patch has no object to apply to")]
    NoObject,
    #[error("patch is not a JSON patch: {0}")]
    Invalid(#[source] serde_json::Error),
    #[error("patch does not apply to the object: {0}")]
    Apply(#[source] json_patch::PatchError),
}

/// The object as the policies evaluated so far have repaired it.
#[derive(Debug, Default)]
pub struct Composer {
    /// Parsed on the first patch; `None` while nothing was patched.
    object: Option<Value>,
}

impl Composer {
    /// Applies one policy's operations to the current object (the review's
    /// until a first patch) and returns the repaired object. On error
    /// nothing changes.
    pub fn apply(&mut self, review: &Review<'_>, ops: &[PatchOp]) -> Result<&Value, PatchError> {
        let mut object = match &self.object {
            Some(object) => object.clone(),
            None => review.object_value().ok_or(PatchError::NoObject)?,
        };
        let ops = serde_json::to_value(ops).map_err(PatchError::Invalid)?;
        let patch: json_patch::Patch = serde_json::from_value(ops).map_err(PatchError::Invalid)?;
        // On a copy, so a failure leaves nothing to undo: json-patch's
        // transactional `patch` panics when undoing some sequences (a move
        // onto its own parent, then a failing operation), and a guest's
        // patch must never take the host down.
        json_patch::patch_unsafe(&mut object, &patch).map_err(PatchError::Apply)?;
        Ok(self.object.insert(object))
    }

    /// The object as repaired so far; `None` before the first repair.
    pub fn object(&self) -> Option<&Value> {
        self.object.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::review::Parsed;

    fn body(request: Value) -> String {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
            .to_string()
    }

    fn review(body: &str) -> Review<'_> {
        match Review::parse(body.as_bytes()).unwrap() {
            Parsed::Review(review) => review,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repairs_accumulate() {
        let body =
            body(json!({"uid": "u", "operation": "UPDATE", "object": {"spec": {"replicas": 3}}}));
        let review = review(&body);
        let mut composer = Composer::default();
        let once = composer
            .apply(&review, &[PatchOp::replace("/spec/replicas", json!(1))])
            .unwrap()
            .clone();
        assert_eq!(once, json!({"spec": {"replicas": 1}}));
        let twice = composer
            .apply(&review, &[PatchOp::add("/spec/paused", json!(true))])
            .unwrap();
        assert_eq!(twice, &json!({"spec": {"replicas": 1, "paused": true}}));
    }

    #[test]
    fn a_patch_that_does_not_apply_changes_nothing() {
        let body =
            body(json!({"uid": "u", "operation": "UPDATE", "object": {"spec": {"replicas": 3}}}));
        let review = review(&body);
        let mut composer = Composer::default();
        composer
            .apply(&review, &[PatchOp::replace("/spec/replicas", json!(1))])
            .unwrap();
        let error = composer
            .apply(&review, &[PatchOp::remove("/spec/missing")])
            .unwrap_err();
        assert!(matches!(error, PatchError::Apply(_)), "{error}");
        assert_eq!(composer.object, Some(json!({"spec": {"replicas": 1}})));
    }

    #[test]
    fn a_failing_patch_after_a_move_onto_its_parent_is_an_error() {
        // Found by the patch_compose fuzz target: json_patch::patch undoes
        // the move as a move of /spec into /spec/replicas, which fails, and
        // panicked ("unable to undo applied patches").
        let body =
            body(json!({"uid": "u", "operation": "UPDATE", "object": {"spec": {"replicas": 3}}}));
        let review = review(&body);
        let mut composer = Composer::default();
        let ops = [
            PatchOp::Move {
                from: "/spec/replicas".to_owned(),
                path: "/spec".to_owned(),
            },
            PatchOp::remove("/missing"),
        ];
        let error = composer.apply(&review, &ops).unwrap_err();
        assert!(matches!(error, PatchError::Apply(_)), "{error}");
        assert_eq!(composer.object, None, "a refused patch changes nothing");
    }

    #[test]
    fn a_test_of_a_float_copied_from_the_object_holds_where_the_api_server_applies_it() {
        // Found by the patch_compose fuzz target: serde_json's default float
        // parsing read 999990.199999900000 as 999990.1999999001, so the
        // answer's `test` (written as that) failed against the object as the
        // API server reads it. Parsing is exact (`float_roundtrip`) now.
        let body = body(json!({"uid": "u", "operation": "UPDATE", "object": {}})).replace(
            r#""object":{}"#,
            r#""object":{"weight":999990.199999900000}"#,
        );
        let review = review(&body);
        let weight = review.object_value().unwrap()["weight"].clone();
        assert_eq!(weight.as_f64(), Some("999990.1999999".parse().unwrap()));
        let ops = [
            PatchOp::Test {
                path: "/weight".to_owned(),
                value: weight,
            },
            PatchOp::add("/checked", json!(true)),
        ];
        Composer::default().apply(&review, &ops).unwrap();
        // What the API server gets: the operations as text, applied to
        // request.object as sent.
        let patch: json_patch::Patch =
            serde_json::from_str(&serde_json::to_string(&ops).unwrap()).unwrap();
        let mut sent: Value = serde_json::from_str(r#"{"weight":999990.199999900000}"#).unwrap();
        json_patch::patch(&mut sent, &patch).unwrap();
    }

    #[test]
    fn delete_has_nothing_to_patch() {
        let body =
            body(json!({"uid": "u", "operation": "DELETE", "object": null, "oldObject": {}}));
        let error = Composer::default()
            .apply(&review(&body), &[PatchOp::remove("/spec")])
            .unwrap_err();
        assert!(matches!(error, PatchError::NoObject));
    }
}
