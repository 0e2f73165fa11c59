use serde_json::{Value, json};

use super::*;

fn raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap()
}

fn request() -> Value {
    json!({
        "uid": "u1",
        "operation": "UPDATE",
        "object": {
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "x",
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED: "{...}", "keep": "me"},
                "labels": {"a": "b"}
            },
            "spec": {"replicas": 2}
        },
        "oldObject": {
            "metadata": {"name": "x", "managedFields": [], "annotations": {LAST_APPLIED: "{}"}},
            "spec": {"replicas": 1}
        },
        "dryRun": false
    })
}

fn stripped_expected() -> Value {
    let mut expected = request();
    for key in ["object", "oldObject"] {
        let meta = expected[key]["metadata"].as_object_mut().unwrap();
        meta.remove("managedFields");
        meta["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(LAST_APPLIED);
    }
    expected
}

#[test]
fn strips_managed_fields_and_last_applied_only() {
    let raw = raw(&request());
    let input = GuestInput::new(&raw);
    let stripped: Value = serde_json::from_slice(input.bytes(false)).unwrap();
    assert_eq!(stripped, stripped_expected());
}

#[test]
fn bulky_fields_get_the_raw_bytes() {
    let raw = raw(&request());
    let input = GuestInput::new(&raw);
    assert_eq!(input.bytes(true), raw.get().as_bytes());
}

#[test]
fn stripped_form_is_built_once() {
    let raw = raw(&request());
    let input = GuestInput::new(&raw);
    let first = input.bytes(false).as_ptr();
    assert_eq!(first, input.bytes(false).as_ptr());
}

#[test]
fn nothing_to_strip_keeps_the_text() {
    for value in [
        json!({"uid": "u", "object": null, "oldObject": {"metadata": {"name": "x"}}}),
        json!({"uid": "u", "object": {"spec": {}}}),
        json!({"uid": "u", "object": {"metadata": {"annotations": {"k": "v"}}}}),
        json!({"uid": "u"}),
    ] {
        let raw = raw(&value);
        assert_eq!(strip_request(&raw), raw.get().as_bytes(), "{value}");
    }
}

#[test]
fn delete_strips_the_old_object() {
    let value = json!({"operation": "DELETE", "object": null,
        "oldObject": {"metadata": {"managedFields": [1], "name": "x"}}});
    let raw = raw(&value);
    let stripped: Value = serde_json::from_slice(&strip_request(&raw)).unwrap();
    assert_eq!(
        stripped,
        json!({"operation": "DELETE", "object": null, "oldObject": {"metadata": {"name": "x"}}})
    );
}

#[test]
fn escaped_keys_and_values_survive() {
    let value = json!({"object": {"metadata": {"managedFields": [], "labels": {"a\"b": "c\\d\u{e9}"}}}, "k\n": 1});
    let raw = raw(&value);
    let stripped: Value = serde_json::from_slice(&strip_request(&raw)).unwrap();
    assert_eq!(
        stripped,
        json!({"object": {"metadata": {"labels": {"a\"b": "c\\d\u{e9}"}}}, "k\n": 1})
    );
}

#[test]
fn object_returns_the_request_object() {
    let raw = raw(&request());
    assert_eq!(
        GuestInput::new(&raw).object(),
        Some(request()["object"].clone())
    );
    let delete = self::raw(&json!({"object": null}));
    assert_eq!(GuestInput::new(&delete).object(), None);
    let none = self::raw(&json!({"uid": "u"}));
    assert_eq!(GuestInput::new(&none).object(), None);
}

#[test]
fn with_object_replaces_the_object_and_keeps_the_rest() {
    let raw = raw(&request());
    let input = GuestInput::new(&raw);
    let mut patched = input.object().unwrap();
    patched["spec"]["replicas"] = json!(1);
    let next = input.with_object(&patched);

    let mut expected = request();
    expected["object"] = patched.clone();
    let full: Value = serde_json::from_slice(next.bytes(true)).unwrap();
    assert_eq!(full, expected);
    assert_eq!(next.object(), Some(patched));

    let stripped: Value = serde_json::from_slice(next.bytes(false)).unwrap();
    let mut expected_stripped = stripped_expected();
    expected_stripped["object"]["spec"]["replicas"] = json!(1);
    assert_eq!(stripped, expected_stripped);
    // The original is untouched.
    assert_eq!(
        serde_json::from_slice::<Value>(input.bytes(true)).unwrap(),
        request()
    );
}

#[test]
fn with_object_adds_a_missing_object() {
    let raw = raw(&json!({"uid": "u"}));
    let next = GuestInput::new(&raw).with_object(&json!({"a": 1}));
    assert_eq!(
        serde_json::from_slice::<Value>(next.bytes(true)).unwrap(),
        json!({"uid": "u", "object": {"a": 1}})
    );
}

/// A review captured from kube-apiserver (a calico-node DaemonSet update,
/// with managedFields and the last-applied annotation on both objects).
const CAPTURED: &str = include_str!("../../tests/fixtures/review-update-daemonset.json");

#[test]
fn captured_review_is_stripped_like_a_value_rewrite() {
    let review: Value = serde_json::from_str(CAPTURED).unwrap();
    let request = &review["request"];
    let raw = raw(request);
    let mut expected = request.clone();
    for key in ["object", "oldObject"] {
        let meta = expected[key]["metadata"].as_object_mut().unwrap();
        assert!(meta.remove("managedFields").is_some());
        assert!(
            meta["annotations"]
                .as_object_mut()
                .unwrap()
                .remove(LAST_APPLIED)
                .is_some()
        );
    }
    let stripped = strip_request(&raw);
    assert!(
        stripped.len() < raw.get().len() / 2,
        "{} of {}",
        stripped.len(),
        raw.get().len()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&stripped).unwrap(),
        expected
    );
}
