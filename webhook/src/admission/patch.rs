//! Composing the patches of several mutating policies.
//!
//! Policies run in configuration order and each one sees the object as the
//! previous ones repaired it ([`GuestInput::with_object`]). Each policy's
//! operations are applied to that evolving object as they arrive; since
//! applying a sequence of operations one after another is the same as
//! applying their concatenation, the answer's patch (the concatenation) is
//! thereby verified to apply cleanly to `request.object`. A patch that does
//! not apply is its policy's failure.

use serde_json::Value;
use tollgate_host::GuestInput;
use tollgate_sdk::PatchOp;

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
    /// Applies one policy's operations to the current object (`input`'s until
    /// a first patch) and returns the repaired object. On error nothing
    /// changes.
    pub fn apply(&mut self, input: &GuestInput<'_>, ops: &[PatchOp]) -> Result<&Value, PatchError> {
        let mut object = match &self.object {
            Some(object) => object.clone(),
            None => input.object().ok_or(PatchError::NoObject)?,
        };
        let ops = serde_json::to_value(ops).map_err(PatchError::Invalid)?;
        let patch: json_patch::Patch = serde_json::from_value(ops).map_err(PatchError::Invalid)?;
        json_patch::patch(&mut object, &patch).map_err(PatchError::Apply)?;
        Ok(self.object.insert(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serde_json::value::RawValue;

    use super::*;

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn repairs_accumulate() {
        let request = raw(json!({"uid": "u", "object": {"spec": {"replicas": 3}}}));
        let input = GuestInput::new(&request);
        let mut composer = Composer::default();
        let once = composer
            .apply(&input, &[PatchOp::replace("/spec/replicas", json!(1))])
            .unwrap()
            .clone();
        assert_eq!(once, json!({"spec": {"replicas": 1}}));
        let next = input.with_object(&once);
        let twice = composer
            .apply(&next, &[PatchOp::add("/spec/paused", json!(true))])
            .unwrap();
        assert_eq!(twice, &json!({"spec": {"replicas": 1, "paused": true}}));
    }

    #[test]
    fn a_patch_that_does_not_apply_changes_nothing() {
        let request = raw(json!({"object": {"spec": {"replicas": 3}}}));
        let input = GuestInput::new(&request);
        let mut composer = Composer::default();
        composer
            .apply(&input, &[PatchOp::replace("/spec/replicas", json!(1))])
            .unwrap();
        let error = composer
            .apply(&input, &[PatchOp::remove("/spec/missing")])
            .unwrap_err();
        assert!(matches!(error, PatchError::Apply(_)), "{error}");
        assert_eq!(composer.object, Some(json!({"spec": {"replicas": 1}})));
    }

    #[test]
    fn delete_has_nothing_to_patch() {
        let request = raw(json!({"object": null, "oldObject": {}}));
        let error = Composer::default()
            .apply(&GuestInput::new(&request), &[PatchOp::remove("/spec")])
            .unwrap_err();
        assert!(matches!(error, PatchError::NoObject));
    }
}
