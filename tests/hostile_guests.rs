//! Hostile guests (SPEC §2.2 sandbox): a guest that spins, grows memory,
//! panics, returns garbage or points out of bounds yields its policy's
//! failure verdict within its deadline, and never disturbs other reviews.

use tollgate_tests as support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Launch, Server, object, response, review, review_with};

const POLICIES: &str = r#"
- id: ok
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: spin
  module: guests.wasm
  cpuBudget: 300ms
  match: {kinds: [{kind: Spin}]}
- id: grow
  module: guests.wasm
  cpuBudget: 2s
  match: {kinds: [{kind: Grow}]}
- id: panic
  module: guests.wasm
  match: {kinds: [{kind: Panic}]}
- id: garbage
  module: guests.wasm
  match: {kinds: [{kind: Garbage}]}
- id: out-of-bounds
  module: guests.wasm
  match: {kinds: [{kind: OutOfBounds}]}
- id: spin-open
  module: guests.wasm
  rule: spin
  cpuBudget: 300ms
  failurePolicy: ignore
  match: {kinds: [{kind: SpinOpen}]}
- id: spin-long
  module: guests.wasm
  rule: spin
  cpuBudget: 20s
  match: {kinds: [{kind: SpinLong}]}
- id: counter
  module: guests.wasm
  match: {kinds: [{kind: Counter}]}
- id: peek
  module: guests.wasm
  settings: {apiVersion: v1, kind: Secret, namespace: kube-system}
  match: {kinds: [{kind: Peek}]}
"#;

/// `(kind, policy id, failure cause, policy timeout)`.
const HOSTILE: [(&str, &str, &str, Duration); 5] = [
    ("Spin", "spin", "deadline", Duration::from_millis(300)),
    ("Grow", "grow", "memory", Duration::from_secs(2)),
    ("Panic", "panic", "trap", Duration::from_secs(1)),
    ("Garbage", "garbage", "output", Duration::from_secs(1)),
    (
        "OutOfBounds",
        "out-of-bounds",
        "output",
        Duration::from_secs(1),
    ),
];

/// Scheduling and debug-build slack on top of a deadline.
const SLACK: Duration = Duration::from_secs(1);

fn server() -> Server {
    Launch::new().policies(POLICIES).start()
}

fn request(uid: &str, kind: &str) -> Value {
    review(
        uid,
        ("example.com", "v1", kind),
        "CREATE",
        object("example.com/v1", kind, uid),
    )
}

fn assert_failure(request: &Value, answer: &Value, id: &str, cause: &str) {
    let response = response(request, answer);
    assert_eq!(response["allowed"], false, "{answer}");
    let message = response["status"]["message"].as_str().unwrap();
    let prefix = format!("{id}: policy failed ({cause}): ");
    assert!(
        message.starts_with(&prefix),
        "{message:?} should start with {prefix:?}"
    );
}

#[tokio::test]
async fn each_hostile_guest_yields_its_failure_verdict_within_its_deadline() {
    let server = server();
    for (kind, id, cause, timeout) in HOSTILE {
        let request = request(&format!("{id}-1"), kind);
        let started = Instant::now();
        let answer = server.review("/validate?timeout=10s", &request).await;
        let elapsed = started.elapsed();
        assert_failure(&request, &answer, id, cause);
        assert!(elapsed < timeout + SLACK, "{id} answered after {elapsed:?}");
    }
    let metrics = server.metrics().await;
    for (_, id, cause, _) in HOSTILE {
        let series =
            format!(r#"tollgate_policy_failures_total{{policy="{id}",cause="{cause}"}} 1"#);
        assert!(metrics.contains(&series), "missing {series} in\n{metrics}");
    }
    let spin = r#"tollgate_reviews_total{endpoint="validate",policy="spin",verdict="failure",mode="enforce"} 1"#;
    assert!(metrics.contains(spin), "{metrics}");
}

#[tokio::test]
async fn ordinary_reviews_are_answered_correctly_while_hostile_guests_run() {
    let server = server();
    let client = server.client();
    let url = server.url("/validate?timeout=10s");
    let mut hostile = Vec::new();
    for round in 0..4 {
        for (kind, id, cause, _) in HOSTILE {
            let (client, url) = (client.clone(), url.clone());
            let request = request(&format!("{id}-{round}"), kind);
            hostile.push(tokio::spawn(async move {
                let answer = review_with(&client, &url, &request).await;
                assert_failure(&request, &answer, id, cause);
            }));
        }
    }
    let ordinary: Vec<_> = (0..200)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let request = review(
                &format!("ok-{i}"),
                ("", "v1", "ConfigMap"),
                "CREATE",
                object("v1", "ConfigMap", "c"),
            );
            tokio::spawn(async move {
                let answer = review_with(&client, &url, &request).await;
                assert_eq!(response(&request, &answer)["allowed"], true, "{answer}");
            })
        })
        .collect();
    for task in ordinary.into_iter().chain(hostile) {
        task.await.unwrap();
    }
    // And the process is still healthy.
    assert_eq!(server.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn the_timeout_query_parameter_is_a_hard_deadline() {
    let server = server();
    let request = request("long-1", "SpinLong");
    let started = Instant::now();
    let answer = server.review("/validate?timeout=1s", &request).await;
    let elapsed = started.elapsed();
    assert_failure(&request, &answer, "spin-long", "deadline");
    assert!(
        elapsed < Duration::from_secs(1),
        "answered after {elapsed:?}, past ?timeout=1s"
    );
}

#[tokio::test]
async fn failure_policy_ignore_allows_with_a_warning() {
    let server = server();
    let request = request("open-1", "SpinOpen");
    let answer = server.review("/validate", &request).await;
    let response = response(&request, &answer);
    assert_eq!(response["allowed"], true, "{answer}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("spin-open: policy failed (deadline): "),
        "{warning}"
    );
}

#[tokio::test]
async fn no_state_survives_between_evaluations() {
    let server = server();
    for i in 0..3 {
        let request = request(&format!("count-{i}"), "Counter");
        let answer = server.review("/validate", &request).await;
        assert_eq!(
            response(&request, &answer)["warnings"],
            json!(["counter: count=1"])
        );
    }
}

#[tokio::test]
async fn lookups_outside_the_policy_grants_are_refused() {
    let server = server();
    let request = request("peek-1", "Peek");
    let answer = server.review("/validate", &request).await;
    let response = response(&request, &answer);
    assert_eq!(response["allowed"], false, "{answer}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("peek: ") && message.contains("may not read"),
        "{message}"
    );
}
