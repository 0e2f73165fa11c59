use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tollgate_testkit::corpus::captured_files;
use tollgate_testkit::requests::strip_value;

use super::*;

fn raw(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
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
    assert_eq!(input.bytes(true), raw.as_bytes());
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
        assert_eq!(strip_request(&raw), raw.as_bytes(), "{value}");
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
fn a_request_rebuilt_around_a_repaired_object_is_stripped_too() {
    let body = serde_json::to_string(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request()
    }))
    .unwrap();
    let crate::review::Parsed::Review(review) = crate::Review::parse(body.as_bytes()).unwrap()
    else {
        panic!("a review")
    };
    let mut patched = review.object_value().unwrap();
    patched["spec"]["replicas"] = json!(1);
    let next = GuestInput::new(review.with_object(&patched));

    let mut expected = request();
    expected["object"] = patched.clone();
    let full: Value = serde_json::from_slice(next.bytes(true)).unwrap();
    assert_eq!(full, expected);
    let stripped: Value = serde_json::from_slice(next.bytes(false)).unwrap();
    let mut expected_stripped = stripped_expected();
    expected_stripped["object"]["spec"]["replicas"] = json!(1);
    assert_eq!(stripped, expected_stripped);
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
        stripped.len() < raw.len() / 2,
        "{} of {}",
        stripped.len(),
        raw.len()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&stripped).unwrap(),
        expected
    );
}

/// Strips `text` as sent, checks the result against the Value rewrite and
/// returns it.
fn strip_text(text: &str) -> String {
    let stripped = String::from_utf8(strip_request(text)).unwrap();
    let parsed: Value = serde_json::from_str(&stripped)
        .unwrap_or_else(|e| panic!("invalid JSON {stripped:?} from {text:?}: {e}"));
    assert_eq!(
        parsed,
        strip_value(&serde_json::from_str(text).unwrap()),
        "{text}"
    );
    stripped
}

#[test]
fn cut_members_take_the_right_comma() {
    for (input, expected) in [
        // managedFields first, in the middle, last, alone.
        (
            r#"{"object":{"metadata":{"managedFields":[{"a":1}],"name":"x","uid":"u"}}}"#,
            r#"{"object":{"metadata":{"name":"x","uid":"u"}}}"#,
        ),
        (
            r#"{"object":{"metadata":{"name":"x","managedFields":[],"uid":"u"}}}"#,
            r#"{"object":{"metadata":{"name":"x","uid":"u"}}}"#,
        ),
        (
            r#"{"object":{"metadata":{"name":"x","managedFields":[]}},"dryRun":false}"#,
            r#"{"object":{"metadata":{"name":"x"}},"dryRun":false}"#,
        ),
        (
            r#"{"object":{"metadata":{"managedFields":[]}}}"#,
            r#"{"object":{"metadata":{}}}"#,
        ),
        // The last-applied annotation alone, first, last.
        (
            r#"{"object":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}}}"#,
            r#"{"object":{"metadata":{"annotations":{}}}}"#,
        ),
        (
            r#"{"object":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","a":"b"}}}}"#,
            r#"{"object":{"metadata":{"annotations":{"a":"b"}}}}"#,
        ),
        (
            r#"{"object":{"metadata":{"annotations":{"a":"b","kubectl.kubernetes.io/last-applied-configuration":"{}"}}}}"#,
            r#"{"object":{"metadata":{"annotations":{"a":"b"}}}}"#,
        ),
        // The API server's order: annotations emptied, then managedFields
        // last, in both objects.
        (
            r#"{"uid":"u","object":{"metadata":{"name":"x","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"},"managedFields":[{}]},"spec":{}},"oldObject":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","g":"1"},"managedFields":[]}}}"#,
            r#"{"uid":"u","object":{"metadata":{"name":"x","annotations":{}},"spec":{}},"oldObject":{"metadata":{"annotations":{"g":"1"}}}}"#,
        ),
        // Duplicated keys: runs of cuts at the start, middle and end.
        (
            r#"{"object":{"metadata":{"managedFields":1,"managedFields":2,"name":"x","managedFields":3,"managedFields":4,"uid":"u","managedFields":5,"managedFields":6}}}"#,
            r#"{"object":{"metadata":{"name":"x","uid":"u"}}}"#,
        ),
        (
            r#"{"object":{"metadata":{"managedFields":1,"managedFields":2}}}"#,
            r#"{"object":{"metadata":{}}}"#,
        ),
    ] {
        assert_eq!(strip_text(input), expected, "{input}");
    }
}

#[test]
fn escapes_in_keys_and_values_are_read_not_matched_as_text() {
    // Escaped spellings of the cut keys are cut; look-alikes inside strings
    // (with escaped quotes and braces) are not.
    let input = r##"{"object":{"metadata":{"annotations":{"a\"}":"x\\\",\"}","kubectl.kubernetes.io\/last-applied-configuration":"{\"metadata\":{\"managedFields\":[]},\"k\":\"\\\"}\"}","z\u0041":"\"}"},"managed\u0046ields":[{"f:\"x\"":{}}],"name":"n\"}","managedFields\u0000":1}},"obj\u0065ct":null}"##;
    let expected = r##"{"object":{"metadata":{"annotations":{"a\"}":"x\\\",\"}","z\u0041":"\"}"},"name":"n\"}","managedFields\u0000":1}},"obj\u0065ct":null}"##;
    assert_eq!(strip_text(input), expected);

    let escaped_object = r#"{"obj\u0065ct":{"metadata":{"managedFields":[],"name":"x"}}}"#;
    assert_eq!(
        strip_text(escaped_object),
        r#"{"obj\u0065ct":{"metadata":{"name":"x"}}}"#
    );
}

#[test]
fn whitespace_is_kept_around_what_stays() {
    let input = "{ \"object\" : {\n  \"metadata\" : {\n    \"managedFields\" : [ 1 ] ,\n    \"name\" : \"x\" ,\n    \"annotations\" : { \"kubectl.kubernetes.io/last-applied-configuration\" : \"{}\" } ,\n    \"managedFields\" : [ ]\n  }\n} }";
    let expected = "{ \"object\" : {\n  \"metadata\" : {\n    \"name\" : \"x\" ,\n    \"annotations\" : {  }\n  }\n} }";
    assert_eq!(strip_text(input), expected);

    let tabs = "{\"object\":{\"metadata\":{\r\n\t\"managedFields\":[]\r\n}}}";
    assert_eq!(strip_text(tabs), "{\"object\":{\"metadata\":{\r\n\t\r\n}}}");
}

#[test]
fn pretty_printed_review_is_stripped_like_a_pretty_value_rewrite() {
    let review: Value = serde_json::from_str(CAPTURED).unwrap();
    let request = &review["request"];
    let pretty = serde_json::to_string_pretty(request).unwrap();
    // The calico-node annotations keep a member, so no object is emptied and
    // the splice matches the pretty printer byte for byte.
    assert_eq!(
        strip_text(&pretty),
        serde_json::to_string_pretty(&strip_value(request)).unwrap()
    );
}

#[test]
fn unexpected_shapes_are_kept_as_sent() {
    for input in [
        r#"{"object":"text","oldObject":[{"metadata":{"managedFields":[]}}]}"#,
        r#"{"object":42,"oldObject":-1.5e3}"#,
        r#"{"object":true,"oldObject":false}"#,
        r#"{"object":{"metadata":null},"oldObject":{"metadata":[{"managedFields":[]}]}}"#,
        r#"{"object":{"metadata":"x"}}"#,
        r#"{"object":{"kind":"Pod","spec":{"template":{"metadata":{"managedFields":[]}}}}}"#,
        r#"{"object":{"metadata":{"annotations":["kubectl.kubernetes.io/last-applied-configuration"]}}}"#,
        r#"{"metadata":{"managedFields":[]},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":""}}"#,
        r#"{"object":{},"oldObject":{"metadata":{}}}"#,
        r#"{}"#,
        r#"[{"object":{"metadata":{"managedFields":[]}}}]"#,
        r#""text""#,
        r#"null"#,
    ] {
        assert_eq!(strip_text(input), input);
    }
}

#[test]
fn managed_fields_go_even_when_annotations_are_not_an_object() {
    assert_eq!(
        strip_text(r#"{"object":{"metadata":{"annotations":null,"managedFields":[]}}}"#),
        r#"{"object":{"metadata":{"annotations":null}}}"#
    );
}

#[test]
fn captured_review_is_stripped_byte_for_byte_like_a_value_rewrite() {
    let review: Value = serde_json::from_str(CAPTURED).unwrap();
    let request = &review["request"];
    assert_eq!(
        strip_request(&raw(request)),
        serde_json::to_vec(&strip_value(request)).unwrap()
    );
}

#[test]
fn every_captured_review_is_stripped_like_a_value_rewrite() {
    #[derive(Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: &'a RawValue,
    }
    let dir = tollgate_testkit::corpus::testdata_dir().join("reviews");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no reviews in {}", dir.display());
    let mut changed = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let review: Review<'_> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let request: Value = serde_json::from_str(review.request.get()).unwrap();
        let expected = strip_value(&request);

        // As the API server sent it: same document.
        let stripped = strip_request(review.request.get());
        assert_eq!(
            serde_json::from_slice::<Value>(&stripped).unwrap(),
            expected,
            "{}",
            file.display()
        );
        // Serialised by serde_json: the very same bytes as the rewrite.
        assert_eq!(
            strip_request(&raw(&request)),
            serde_json::to_vec(&expected).unwrap(),
            "{}",
            file.display()
        );
        // Pretty-printed: still the same document.
        strip_text(&serde_json::to_string_pretty(&request).unwrap());
        changed += usize::from(expected != request);
    }
    assert!(
        changed * 2 > files.len(),
        "only {changed} of {} reviews had something to strip",
        files.len()
    );
}

/// The stripped input of a parsed review (its cuts found by the shape
/// check) is byte for byte what the standalone pass makes of its request.
fn assert_cuts_agree(body: &str) {
    let crate::Parsed::Review(review) = crate::Review::parse(body.as_bytes()).unwrap() else {
        panic!("not a valid review: {body}")
    };
    assert_eq!(
        String::from_utf8_lossy(GuestInput::of(&review).bytes(false)),
        String::from_utf8_lossy(&strip_request(review.request())),
        "{body}"
    );
}

#[test]
fn the_shape_check_cuts_as_the_standalone_strip() {
    for (_, text) in captured_files() {
        assert_cuts_agree(&text);
    }
    assert_cuts_agree(CAPTURED);
    let envelope = |request: &str| {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    };
    assert_cuts_agree(&envelope(&raw(&request())));
    assert_cuts_agree(&envelope(
        &serde_json::to_string_pretty(&request()).unwrap(),
    ));
    // Escaped keys, cut members first, last and alone, and odd types.
    for request in [
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":{"managed\u0046ields":[1],"name":"x"}}}"#,
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":{"name":"x","managedFields":[{"a":{"b":[]}}]}}}"#,
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":{"managedFields":[]}}}"#,
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}}}"#,
        r#"{ "uid" : "u" , "operation" : "UPDATE" , "oldObject" : { "metadata" : { "annotations" : { "a" : "b" , "kubectl.kubernetes.io/last-applied-configuration" : "x" } , "managedFields" : null } } }"#,
        r#"{"uid":"u","operation":"CREATE","object":null,"oldObject":[1,{"metadata":{"managedFields":[]}}]}"#,
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":"text"}}"#,
    ] {
        assert_cuts_agree(&envelope(request));
    }
}

#[test]
fn a_cut_member_is_checked_for_its_shape_too() {
    let envelope = |request: &str| {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    };
    let duplicate = envelope(
        r#"{"uid":"u","operation":"CREATE","object":{"metadata":{"managedFields":[{"a":1,"a":2}]}}}"#,
    );
    let deep = envelope(&format!(
        r#"{{"uid":"u","operation":"CREATE","object":{{"metadata":{{"managedFields":{}{}}}}}}}"#,
        "[".repeat(120),
        "]".repeat(120)
    ));
    for (body, expected) in [
        (duplicate, r#"duplicate key "a" in one object"#),
        (deep, "nested deeper than 100 levels"),
    ] {
        let crate::Parsed::InvalidRequest { error, .. } =
            crate::Review::parse(body.as_bytes()).unwrap()
        else {
            panic!("accepted {body}")
        };
        let message = error.to_string();
        assert!(message.contains(expected), "{message}");
        // Once: the position is the request's, not the cut value's.
        assert_eq!(message.matches(" at line ").count(), 1, "{message}");
    }
}
