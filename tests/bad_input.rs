//! Bad input is answered, never crashes the server (SPEC §2.1): what is not
//! an AdmissionReview gets a 4xx with a one-line reason; slow clients are
//! cut off.

use tollgate_tests as support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::{Launch, Server, object, raw_tls, response, review};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICIES: &str = r#"
- id: allowed
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
"#;

fn server() -> Server {
    Launch::new()
        .policies(POLICIES)
        .arg("--header-read-timeout")
        .arg("1s")
        .start()
}

fn assert_one_line(reason: &str, expected: &str) {
    assert!(reason.ends_with('\n'), "{reason:?}");
    assert_eq!(reason.lines().count(), 1, "{reason:?}");
    assert!(
        reason.contains(expected),
        "{reason:?} should mention {expected:?}"
    );
}

#[tokio::test]
async fn what_is_not_an_admission_review_gets_400_with_a_one_line_reason() {
    let server = server();
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"apiVersion\": ".into(), "not a JSON AdmissionReview"),
        ("empty body", String::new(), "not a JSON AdmissionReview"),
        ("not an object", "[1,2]".into(), "not a JSON AdmissionReview"),
        (
            "wrong kind",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "Pod", "request": {"uid": "1"}}).to_string(),
            "kind is \"Pod\"",
        ),
        (
            "wrong apiVersion",
            json!({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {"uid": "1"}}).to_string(),
            "apiVersion is \"admission.k8s.io/v2\"",
        ),
        (
            "no request",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(),
            "no request",
        ),
        (
            "missing uid",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"operation": "CREATE", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"}}})
            .to_string(),
            "no uid",
        ),
        (
            "a newline in a quoted value",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "Bad\nKind"}).to_string(),
            "kind is",
        ),
    ];
    for endpoint in ["/validate", "/mutate"] {
        for (case, body, expected) in &cases {
            let (status, reason) = server.post(endpoint, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {reason}");
            assert_one_line(&reason, expected);
        }
    }
    let metrics = server.metrics().await;
    let count = support::metric(
        &metrics,
        r#"tollgate_invalid_reviews_total{endpoint="validate"}"#,
    );
    assert_eq!(count, cases.len() as f64, "{metrics}");
}

#[tokio::test]
async fn a_malformed_request_with_a_uid_is_denied_echoing_the_uid() {
    let server = server();
    let mut request = review(
        "odd-1",
        ("", "v1", "ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "x"),
    );
    request["request"]["operation"] = json!("EXPLODE");
    request["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = server.review("/validate", &request).await;
    let response = response(&request, &answer);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("EXPLODE"), "{message}");
}

#[tokio::test]
async fn a_bad_timeout_parameter_is_refused() {
    let server = server();
    let request = review(
        "t-1",
        ("", "v1", "ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "x"),
    );
    let (status, reason) = server
        .post(
            "/validate?timeout=soon",
            serde_json::to_vec(&request).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_one_line(&reason, "timeout");
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let server = server();
    assert_eq!(
        server.get("/validate").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(server.get("/nope").await.0, StatusCode::NOT_FOUND);
    let (status, _) = server.post("/healthz", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_headers_is_disconnected() {
    let server = server();
    let mut slow = raw_tls(&server).await;
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    let started = Instant::now();

    // Meanwhile everyone else is served.
    let request = review(
        "fast-1",
        ("", "v1", "ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "x"),
    );
    assert_eq!(
        response(&request, &server.review("/validate", &request).await)["allowed"],
        true
    );

    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the slow connection is still open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_within_the_review_timeout_gets_408() {
    let server = server();
    let mut slow = raw_tls(&server).await;
    slow.write_all(
        b"POST /validate?timeout=1s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\":",
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("an answer before the client gives up")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered late: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_oversize_chunked_body_without_a_length_gets_413() {
    let server = Launch::new()
        .policies(POLICIES)
        .arg("--max-body-bytes")
        .arg("1048576")
        .start();
    let mut conn = raw_tls(&server).await;
    conn.write_all(
        b"POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..32 {
        conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        conn.write_all(&chunk).await.unwrap();
        conn.write_all(b"\r\n").await.unwrap();
    }
    conn.write_all(b"0\r\n\r\n").await.unwrap();
    conn.flush().await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("exceeds the limit of 1048576 bytes"),
        "{answer}"
    );

    // Just under the limit is fine (the body is all whitespace around a review).
    let request = review(
        "fits-1",
        ("", "v1", "ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "x"),
    );
    let mut body = serde_json::to_vec(&request).unwrap();
    body.resize(1048576, b' ');
    let (status, text) = server.post("/validate", body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// Posts `request` (raw JSON: a `Value` cannot hold a duplicate key) and
/// returns the review's response.
async fn raw_review(server: &Server, path: &str, request: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
    );
    let (status, text) = server.post(path, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    answer["response"].clone()
}

/// Issue 10: a key twice (which made the SDK guest trap while the host had
/// accepted it) is refused by the host with a 400 in the review naming the
/// key, before any policy runs.
#[tokio::test]
async fn a_duplicate_key_is_denied_with_400_naming_it() {
    let server = server();
    for (request, expected) in [
        (
            r#"{"uid":"dup-1","uid":"dup-1","kind":{"group":"","version":"v1","kind":"ConfigMap"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}}"#,
            "duplicate field `uid`",
        ),
        (
            r#"{"uid":"dup-1","kind":{"group":"","version":"v1","kind":"ConfigMap"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","name":"y"}}}"#,
            r#"duplicate key \"name\""#,
        ),
    ] {
        let response = raw_review(&server, "/validate", request).await;
        assert_eq!(response["uid"], "dup-1");
        assert_eq!(response["allowed"], false, "{response}");
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].to_string();
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("trap"), "{message}");
    }
}

/// Issue 10: a 200-level nested object on `/mutate` failed with "patch has
/// no object to apply to".
#[tokio::test]
async fn a_deeply_nested_object_is_denied_with_a_clear_reason() {
    let server = server();
    let request = format!(
        r#"{{"uid":"deep-1","kind":{{"group":"","version":"v1","kind":"ConfigMap"}},"operation":"CREATE","object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"x"}},"data":{}1{}}}}}"#,
        r#"{"a":"#.repeat(200),
        "}".repeat(200)
    );
    let response = raw_review(&server, "/mutate", &request).await;
    assert_eq!(response["uid"], "deep-1");
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("nested deeper than 100 levels"),
        "{message}"
    );
    assert!(!message.contains("patch"), "{message}");
}
