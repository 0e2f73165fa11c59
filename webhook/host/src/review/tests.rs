use super::*;

fn parse(body: &str) -> Result<Parsed<'_>, ReviewError> {
    Review::parse(body.as_bytes())
}

fn review(body: &str) -> Review<'_> {
    match parse(body).unwrap() {
        Parsed::Review(review) => review,
        other => panic!("expected a review, got {other:?}"),
    }
}

const GOOD: &str = r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview",
    "request":{"uid":"u-1","kind":{"group":"apps","version":"v1","kind":"Deployment"},
    "operation":"DELETE","namespace":"kube-system","name":"x","object":null,
    "oldObject":{"metadata":{"name":"x"}},"subResource":"scale"}}"#;

#[test]
fn reads_routing_fields_and_keeps_objects_raw() {
    let review = review(GOOD);
    assert_eq!(review.api_version, "admission.k8s.io/v1beta1");
    assert_eq!(review.uid, "u-1");
    assert_eq!(review.operation(), Operation::Delete);
    let meta = review.meta();
    assert_eq!(
        (meta.group, meta.version, meta.kind),
        ("apps", "v1", "Deployment")
    );
    assert_eq!(meta.sub_resource, Some("scale"));
    assert_eq!(meta.namespace, Some("kube-system"));
    assert!(meta.object.is_none(), "null object is absent");
    assert_eq!(meta.old_object.unwrap(), r#"{"metadata":{"name":"x"}}"#);
    assert!(review.request().starts_with(r#"{"uid":"u-1""#));
    assert!(review.request().ends_with(r#""subResource":"scale"}"#));
}

#[test]
fn the_request_span_is_the_member_exactly_as_sent() {
    let body = "{ \"request\" :\n  {\n   \"uid\" : \"u\\u0031\", \"operation\":\"CREATE\",\n\t\"object\": {\"a\": [1, 2]} \n  } ,\n \"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\"}";
    let review = review(body);
    assert_eq!(review.uid, "u1", "escapes are decoded");
    let span = review.request();
    assert!(span.starts_with("{\n   \"uid\""), "{span:?}");
    assert!(span.ends_with("[1, 2]} \n  }"), "{span:?}");
    let whole: Value = serde_json::from_str(body).unwrap();
    let span: Value = serde_json::from_str(span).unwrap();
    assert_eq!(span, whole["request"]);
    assert_eq!(review.object().unwrap(), "{\"a\": [1, 2]}");
}

#[test]
fn with_object_replaces_only_the_object() {
    let review = review(GOOD);
    let rebuilt = review.with_object(&serde_json::json!({"spec": {"replicas": 1}}));
    let rebuilt: Value = serde_json::from_str(&rebuilt).unwrap();
    let mut expected: Value = serde_json::from_str(review.request()).unwrap();
    expected["object"] = serde_json::json!({"spec": {"replicas": 1}});
    assert_eq!(rebuilt, expected);

    // A request without an object member gains one.
    let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE"}}"#;
    let rebuilt: Value = serde_json::from_str(&super::Review::with_object(
        &self::review(body),
        &serde_json::json!({"a": 1}),
    ))
    .unwrap();
    assert_eq!(
        rebuilt,
        serde_json::json!({"uid": "u", "operation": "CREATE", "object": {"a": 1}})
    );
}

#[test]
fn object_value_parses_the_object() {
    let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE","object":{"spec":{"replicas":3}}}}"#;
    assert_eq!(
        review(body).object_value(),
        Some(serde_json::json!({"spec": {"replicas": 3}}))
    );
    assert_eq!(self::review(GOOD).object_value(), None);
}

#[test]
fn rejects_what_is_not_an_admission_review() {
    for (body, expected) in [
        ("{", "not a JSON"),
        ("[]", "not a JSON"),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
            "kind is \"Pod\"",
        ),
        (
            r#"{"apiVersion":"v1","kind":"AdmissionReview"}"#,
            "apiVersion is \"v1\"",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "no request",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#,
            "no uid",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","operation":"CREATE"}}"#,
            "no uid",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#,
            "no uid",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#,
            "uid is not a string",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[]}"#,
            "not a JSON",
        ),
        // Members Tollgate does not read are JSON too.
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"\ud800","request":{"uid":"u"}}"#,
            "not a JSON AdmissionReview: unexpected end of hex escape at line 1 column 73",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"x":[1e400]}"#,
            "not a JSON AdmissionReview: number out of range",
        ),
        // A member read twice would be read two ways.
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","kind":"AdmissionReview","request":{"uid":"u"}}"#,
            "not a JSON AdmissionReview: duplicate field `kind`",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"request":{"uid":"v"}}"#,
            "not a JSON AdmissionReview: duplicate field `request`",
        ),
    ] {
        let error = parse(body).unwrap_err().to_string();
        assert!(error.contains(expected), "{body}: {error}");
    }
    let error = Review::parse(b"{\"kind\":\"\xff\"}")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not a JSON AdmissionReview: invalid UTF-8"),
        "{error}"
    );
}

#[test]
fn a_malformed_request_with_a_uid_is_still_answerable() {
    for (request, field, expected) in [
        (
            r#"{"uid":"u-2","operation":"EXPLODE"}"#,
            "operation",
            "EXPLODE",
        ),
        (r#"{"uid":"u-2"}"#, "operation", "missing field `operation`"),
        (
            r#"{"uid":"u-2","operation":"CREATE","name":"a","name":"b"}"#,
            "name",
            "duplicate field `name`",
        ),
        (
            r#"{"uid":"u-2","operation":"CREATE","kind":"Deployment"}"#,
            "kind",
            "invalid type",
        ),
    ] {
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        );
        match parse(&body).unwrap() {
            Parsed::InvalidRequest {
                api_version,
                uid,
                error,
            } => {
                assert_eq!(api_version, "admission.k8s.io/v1");
                assert_eq!(uid, "u-2");
                assert_eq!(error.field, field);
                let message = error.to_string();
                assert!(message.starts_with(&format!("{field}: ")), "{message}");
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("{request}: expected an invalid request, got {other:?}"),
        }
    }
}

fn invalid_request(request: &str) -> String {
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
    );
    match parse(&body).unwrap() {
        Parsed::InvalidRequest { uid, error, .. } => {
            assert_eq!(uid, "u-3");
            error.to_string()
        }
        other => panic!("{request}: expected an invalid request, got {other:?}"),
    }
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"uid":"u-3","operation":"CREATE","object":{}1{}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    )
}

/// Issue 10: a key twice anywhere in the request (the SDK's typed structs
/// refuse such a document while the host's raw scan kept both) is refused
/// once, by the host, naming the key.
#[test]
fn a_duplicate_key_anywhere_in_the_request_is_refused_naming_it() {
    let message = invalid_request(r#"{"uid":"u-3","uid":"u-3","operation":"CREATE"}"#);
    assert_eq!(message, "uid: duplicate field `uid`");
    let message = invalid_request(
        r#"{"uid":"u-3","operation":"CREATE","object":{"metadata":{"name":"a","labels":{},"name":"b"}}}"#,
    );
    assert!(message.starts_with("request: "), "{message}");
    assert!(message.contains(r#"duplicate key "name""#), "{message}");
    // Escapes are compared decoded: "\u006e" is "n".
    let message =
        invalid_request(r#"{"uid":"u-3","operation":"CREATE","object":{"name":1,"\u006eame":2}}"#);
    assert!(message.contains(r#"duplicate key "name""#), "{message}");
    // The same key in sibling objects is fine.
    review(
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","object":{"a":{"name":1},"b":{"name":2}},"oldObject":{"a":{"name":1}}}}"#,
    );
}

/// Issue 10: a 200-level nested object was accepted and then failed on
/// `/mutate` as "patch has no object to apply to".
#[test]
fn nesting_deeper_than_the_limit_is_refused_with_a_clear_error() {
    for depth in [MAX_DEPTH, 200, 10_000] {
        let message = invalid_request(&nested(depth));
        assert!(message.starts_with("request: "), "{message}");
        assert!(
            message.contains(&format!("request: nested deeper than {MAX_DEPTH} levels")),
            "{message}"
        );
    }
    // The request itself is one level: MAX_DEPTH - 1 levels of `object` is
    // the deepest accepted.
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}}"#,
        nested(MAX_DEPTH - 1)
    );
    let review = review(&body);
    assert!(review.object_value().is_some(), "parses as a Value too");
}
