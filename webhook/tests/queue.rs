//! Bounded concurrency: evaluations beyond the instance pool queue in front
//! of the blocking pool; a review whose deadline passes while queued is
//! answered at its deadline with its policies' failure verdicts; overload
//! never fails instantiation. Driven through the admission service itself.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Value, json};
use tollgate::admission::{Admission, Reply};
use tollgate::metrics::Metrics;
use tollgate_context::EmptyContext;
use tollgate_host::{Config, Endpoint, PolicySet, Sandbox, SandboxLimits};

const POLICIES: &str = r#"
- id: ok
  module: builtin:guests
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: busy
  module: builtin:guests
  rule: spin
  timeout: 1s
  match: {kinds: [{kind: Spin}]}
"#;

/// A service over a sandbox of `slots` instances, and its metrics.
fn service(slots: u32) -> (Arc<Admission>, Arc<Metrics>) {
    let sandbox = Sandbox::new(SandboxLimits {
        memory_bytes: 16 << 20,
        cache_dir: None,
        instances: slots,
        ..SandboxLimits::default()
    })
    .unwrap();
    let config = Config::from_yaml(POLICIES, "test.yaml").unwrap();
    let builtins: &[(&str, &[u8])] = &[("guests", tollgate_test_artifacts::TEST_GUESTS)];
    let set = PolicySet::load(&config, &sandbox, builtins, Path::new(".")).unwrap();
    let mut metrics = Metrics::new();
    metrics.register_sandbox(sandbox.stats());
    let metrics = Arc::new(metrics);
    let admission = Admission::new(
        Arc::new(ArcSwap::from_pointee(set)),
        Arc::new(EmptyContext),
        metrics.clone(),
        sandbox.limits().instances,
    );
    (Arc::new(admission), metrics)
}

fn body(uid: &str, kind: &str) -> Bytes {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
                    "operation": "CREATE", "namespace": "default", "name": uid,
                    "object": {"metadata": {"name": uid}}}
    });
    Bytes::from(review.to_string())
}

/// Reviews `uid` (of `kind`) with `budget`; returns the response and when
/// it came.
async fn review(
    admission: &Admission,
    uid: &str,
    kind: &str,
    budget: Duration,
) -> (Value, Duration) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + budget;
    let Reply::Review(json) = admission
        .review(Endpoint::Validate, deadline, body(uid, kind))
        .await
    else {
        panic!("{uid}: not answered with a review")
    };
    let answer: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(answer["response"]["uid"], uid);
    (answer["response"].clone(), started.elapsed())
}

fn metric(metrics: &Metrics, line_prefix: &str) -> f64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_queued_past_its_deadline_gets_its_failure_verdict_at_the_deadline() {
    let (admission, metrics) = service(1);
    // The only slot is busy for a second.
    let busy = tokio::spawn({
        let admission = admission.clone();
        async move { review(&admission, "busy-1", "Spin", Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let patient = tokio::spawn({
        let admission = admission.clone();
        async move {
            review(
                &admission,
                "patient-1",
                "ConfigMap",
                Duration::from_secs(10),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(metric(&metrics, "tollgate_evaluation_queue_depth "), 1.0);

    let (response, took) = review(
        &admission,
        "hurried-1",
        "ConfigMap",
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "ok: policy failed (deadline): deadline already passed before the evaluation started"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(800),
        "answered after {took:?}"
    );

    // The patient review waited for the slot and was judged normally.
    let (response, took) = patient.await.unwrap();
    assert_eq!(response["allowed"], true, "{response}");
    assert!(took >= Duration::from_millis(700), "it queued: {took:?}");
    let (response, _) = busy.await.unwrap();
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("busy: policy failed (deadline): exceeded its CPU budget of 1s"),
        "{message}"
    );

    assert_eq!(metric(&metrics, "tollgate_evaluation_queue_depth "), 0.0);
    assert_eq!(
        metric(&metrics, "tollgate_evaluation_queue_expired_total "),
        1.0
    );
    assert_eq!(
        metric(&metrics, "tollgate_evaluation_queue_wait_seconds_count "),
        3.0
    );
    assert_eq!(metric(&metrics, "tollgate_evaluation_slots "), 1.0);
    assert_eq!(
        metric(
            &metrics,
            r#"tollgate_policy_failures_total{policy="ok",cause="deadline"} "#
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_queues_instead_of_failing_instantiation() {
    let (admission, metrics) = service(2);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                review(
                    &admission,
                    &format!("load-{i}"),
                    "ConfigMap",
                    Duration::from_secs(30),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        let (response, _) = task.await.unwrap();
        assert_eq!(response["allowed"], true, "{response}");
    }
    assert_eq!(
        metric(&metrics, "tollgate_evaluation_queue_expired_total "),
        0.0
    );
    assert_eq!(
        metric(&metrics, "tollgate_evaluation_queue_wait_seconds_count "),
        64.0
    );
    // One instance per review (a v1 rule each), plus the load-time calls.
    let instances = metric(&metrics, "tollgate_wasm_instances_total ");
    assert!(instances >= 64.0, "{instances}");
    assert_eq!(metric(&metrics, "tollgate_evaluation_queue_depth "), 0.0);
}
