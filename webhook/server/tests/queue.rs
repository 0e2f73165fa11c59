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
use tollgate_context::EmptyContext;
use tollgate_host::{Config, Endpoint, PolicySet, Sandbox, SandboxLimits};
use tollgate_server::admission::{Admission, Reply};
use tollgate_server::metrics::Metrics;

const POLICIES: &str = r#"
- id: ok
  module: builtin:guests
  rule: allow
  concurrency: 8
  match: {kinds: [{kind: ConfigMap}]}
- id: busy
  module: builtin:guests
  rule: spin
  cpuBudget: 1s
  match: {kinds: [{kind: Spin}]}
"#;

/// A service over a sandbox of `slots` instances, and its metrics.
fn service(slots: u32) -> (Arc<Admission>, Arc<Metrics>) {
    let service = service_with(slots, POLICIES);
    (service.admission, service.metrics)
}

const BUILTINS: &[(&str, &[u8])] = &[
    ("guests", tollgate_test_artifacts::TEST_GUESTS),
    ("calico", tollgate_guests::CALICO),
];

fn load(sandbox: &Sandbox, yaml: &str) -> PolicySet {
    let config = Config::from_yaml(yaml, "test.yaml").unwrap();
    PolicySet::load(&config, sandbox, BUILTINS, Path::new(".")).unwrap()
}

/// An admission service, its metrics, the handle a reload swaps and the
/// sandbox a reload loads into.
struct Service {
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    policies: Arc<ArcSwap<PolicySet>>,
    sandbox: Arc<Sandbox>,
}

/// A service over `policies` (built-ins `guests` and `calico`).
fn service_with(slots: u32, policies: &str) -> Service {
    let sandbox = Sandbox::new(SandboxLimits {
        memory_bytes: 16 << 20,
        cache_dir: None,
        instances: slots,
        ..SandboxLimits::default()
    })
    .unwrap();
    let set = load(&sandbox, policies);
    let mut metrics = Metrics::new();
    metrics.register_sandbox(sandbox.stats());
    let metrics = Arc::new(metrics);
    let policies = Arc::new(ArcSwap::from_pointee(set));
    let admission = Admission::new(
        policies.clone(),
        Arc::new(EmptyContext),
        metrics.clone(),
        sandbox.limits().instances,
    );
    Service {
        admission: Arc::new(admission),
        metrics,
        policies,
        sandbox,
    }
}

fn body(uid: &str, kind: &str) -> Bytes {
    if let Some(file) = kind.strip_prefix("file:") {
        return captured(uid, file);
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
                    "operation": "CREATE", "namespace": "default", "name": uid,
                    "object": {"metadata": {"name": uid}}}
    });
    Bytes::from(review.to_string())
}

/// A review captured from the API server (`testdata/reviews/FILE`), under `uid`.
fn captured(uid: &str, file: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/reviews")
        .join(file);
    let mut review: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    review["request"]["uid"] = json!(uid);
    Bytes::from(review.to_string())
}

/// Reviews `uid` (of `kind`, or `file:NAME` for a captured review) with `budget`; returns the response and when
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

const DAEMONSET: &str = "file:01-install-v2.4-kdd--validate--create-daemonset-calico-node.json";
const NODE: &str = "file:11-create-node--validate--create-node-node-01.json";

/// The Calico pack plus a guest that spins on every Node review.
fn calico_and_node_spinner(spinner: &str) -> String {
    format!(
        "{}\n- id: node-spin\n  module: builtin:guests\n  rule: spin\n{spinner}  match: {{kinds: [{{kind: Node}}]}}\n",
        tollgate_guests::DEFAULT_POLICIES
    )
}

/// Finding: a guest spinning until a 20 s timeout, hit by many concurrent
/// Node reviews, held every pooled instance, and the healthy DaemonSet
/// policies failed with "maximum concurrent limit ... (trap)". Now the
/// spinner holds only its share (a quarter of the pool): the DaemonSet
/// reviews keep their real verdicts, and the Node reviews fail with the
/// spinner's own causes, never trap or pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_policy_saturates_only_its_own_share() {
    // Breaker off: the share alone must protect the others.
    let service = service_with(
        16,
        &calico_and_node_spinner("  cpuBudget: 20s\n  breaker: {enabled: false}\n"),
    );
    let admission = &service.admission;
    let (expected, _) = review(admission, "baseline", DAEMONSET, Duration::from_secs(10)).await;
    assert!(
        !expected.to_string().contains("policy failed"),
        "{expected}"
    );

    let spinners: Vec<_> = (0..60)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                review(
                    &admission,
                    &format!("node-{i}"),
                    NODE,
                    Duration::from_secs(2),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        metric(
            &service.metrics,
            r#"tollgate_policy_evaluations_in_flight{policy="node-spin"} "#
        ),
        4.0
    );
    let healthy: Vec<_> = (0..40)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                review(
                    &admission,
                    &format!("ds-{i}"),
                    DAEMONSET,
                    Duration::from_secs(10),
                )
                .await
            })
        })
        .collect();
    for task in healthy {
        let (mut response, _) = task.await.unwrap();
        response["uid"] = expected["uid"].clone();
        assert_eq!(
            response, expected,
            "a DaemonSet review lost its real verdict"
        );
    }
    let (mut overloaded, mut stopped) = (0, 0);
    for task in spinners {
        let (response, took) = task.await.unwrap();
        assert!(
            took < Duration::from_millis(2500),
            "answered after {took:?}"
        );
        let message = response["status"]["message"].as_str().unwrap();
        if message.starts_with("node-spin: policy failed (overload): all 4 of its concurrent evaluation slots were busy until the review deadline") {
            overloaded += 1;
        } else if message.starts_with("node-spin: policy failed (deadline): no verdict before the review deadline")
            // Got a share slot just before its deadline, then waited for a
            // turn on a CPU (the policy is known to run long) past it.
            || message.starts_with("node-spin: policy failed (deadline): deadline already passed before the evaluation started")
        {
            stopped += 1;
        } else {
            panic!("unexpected answer: {message}");
        }
    }
    // The share itself is proven by the in-flight gauge above. Which of the
    // two failures a spinner review gets depends on timing: one that takes a
    // slot freed just before its own deadline is stopped there.
    assert_eq!(
        overloaded + stopped,
        60,
        "{overloaded} overloaded, {stopped} stopped"
    );
    assert!(stopped >= 1, "no spinner ever ran");
    let failures = |cause: &str| {
        metric(
            &service.metrics,
            &format!(r#"tollgate_policy_failures_total{{policy="node-spin",cause="{cause}"}} "#),
        )
    };
    assert_eq!(failures("overload"), f64::from(overloaded));
    assert_eq!(failures("trap") + failures("pool"), 0.0);
    assert_eq!(
        metric(
            &service.metrics,
            r#"tollgate_policy_evaluation_slots{policy="node-spin"} "#
        ),
        4.0
    );
}

/// Finding: with spinners running, a 0.3 ms rule failed its 250 ms "CPU
/// deadline", which was wall time. Now the budget is CPU time: a fast rule
/// keeps its verdict however long it waits for a core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_rule_keeps_its_budget_while_spinners_run() {
    let policies = r#"
- id: ok
  module: builtin:guests
  rule: allow
  cpuBudget: 10ms
  concurrency: 64
  match: {kinds: [{kind: ConfigMap}]}
- id: busy
  module: builtin:guests
  rule: spin
  cpuBudget: 1s
  concurrency: 8
  breaker: {enabled: false}
  match: {kinds: [{kind: Spin}]}
"#;
    let service = service_with(64, policies);
    let admission = &service.admission;
    let spinners: Vec<_> = (0..8)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                review(
                    &admission,
                    &format!("spin-{i}"),
                    "Spin",
                    Duration::from_secs(10),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let healthy: Vec<_> = (0..100)
        .map(|i| {
            let admission = admission.clone();
            tokio::spawn(async move {
                review(
                    &admission,
                    &format!("ok-{i}"),
                    "ConfigMap",
                    Duration::from_secs(10),
                )
                .await
            })
        })
        .collect();
    for task in healthy {
        let (response, _) = task.await.unwrap();
        assert_eq!(response["allowed"], true, "{response}");
    }
    // Their CPU budget, or the review deadline when the shared cores are
    // that busy: either way their own failure.
    for task in spinners {
        let (response, _) = task.await.unwrap();
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            [
                "busy: policy failed (deadline): exceeded its CPU budget of 1s",
                "busy: policy failed (deadline): no verdict before the review deadline"
            ]
            .contains(&message),
            "{message}"
        );
    }
}

/// A policy that keeps hitting its deadline is opened for its cool-down
/// (its reviews fail at once, saying until when), then one review probes
/// it: a probe that overruns re-opens it, one that finishes closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_keeps_hitting_its_deadline_opens_its_breaker() {
    let flaky = |rule: &str| {
        format!(
            "- id: flaky\n  module: builtin:guests\n  rule: {rule}\n  cpuBudget: 50ms\n  \
             breaker: {{failures: 3, coolDown: 400ms}}\n  match: {{kinds: [{{kind: Spin}}]}}\n"
        )
    };
    let service = service_with(4, &flaky("spin"));
    let (admission, metrics) = (&service.admission, &service.metrics);
    let state = || metric(metrics, r#"tollgate_policy_breaker_state{policy="flaky"} "#);
    let message = |response: &Value| response["status"]["message"].as_str().unwrap().to_owned();
    for i in 0..3 {
        assert_eq!(state(), 0.0);
        let (response, _) = review(admission, &format!("spin-{i}"), "Spin", SECOND).await;
        assert_eq!(
            message(&response),
            "flaky: policy failed (deadline): exceeded its CPU budget of 50ms"
        );
    }
    assert_eq!(state(), 1.0);
    let (response, took) = review(admission, "open", "Spin", SECOND).await;
    let text = message(&response);
    assert!(
        text.starts_with("flaky: policy failed (breaker): circuit breaker open after 3 consecutive deadline failures; not run until ")
            && text.ends_with(" GMT"),
        "{text}"
    );
    assert!(took < Duration::from_millis(40), "failed fast: {took:?}");
    assert_eq!(response["allowed"], false);

    // The probe after the cool-down overruns again: open again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (response, _) = review(admission, "probe-1", "Spin", SECOND).await;
    assert!(message(&response).contains("exceeded its CPU budget"));
    assert_eq!(state(), 1.0);
    let (response, _) = review(admission, "still-open", "Spin", SECOND).await;
    assert!(message(&response).contains("(breaker)"));

    // Fixed (a reload keeps the policy's breaker): the next probe closes it.
    service
        .policies
        .store(Arc::new(load(&service.sandbox, &flaky("allow"))));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (response, _) = review(admission, "probe-2", "Spin", SECOND).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(state(), 0.0);
    assert_eq!(
        metric(
            metrics,
            r#"tollgate_policy_breaker_opened_total{policy="flaky"} "#
        ),
        2.0
    );
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_queue_length_a_review_gets_its_failure_verdict_at_once() {
    let service = service_with(1, POLICIES);
    let admission = Arc::new(
        Arc::into_inner(service.admission)
            .expect("the only handle")
            .with_max_queued(1),
    );
    let metrics = service.metrics;
    // The only slot is busy; one review may wait for it.
    let busy = tokio::spawn({
        let admission = admission.clone();
        async move { review(&admission, "busy-q", "Spin", Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = tokio::spawn({
        let admission = admission.clone();
        async move { review(&admission, "wait-q", "ConfigMap", Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (response, took) = review(&admission, "full-q", "ConfigMap", Duration::from_secs(10)).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "ok: policy failed (overload): 1 reviews were already waiting for an evaluation slot"
    );
    assert!(
        took < Duration::from_millis(300),
        "refused at once, not after {took:?}"
    );
    let (response, _) = waiting.await.unwrap();
    assert_eq!(response["allowed"], true, "{response}");
    busy.await.unwrap();
    assert_eq!(
        metric(
            &metrics,
            r#"tollgate_requests_rejected_total{reason="queue_full"} "#
        ),
        1.0
    );
}

/// Short reviews are judged on the worker that has them; a spinner is
/// handed off to an evaluation thread once (its policy is then known to run
/// long) and still answered at its deadline, while the short policy's next
/// review is judged where it arrives again. Counted in
/// `tollgate_evaluations_handed_off_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reviews_stay_on_their_worker_and_a_spinner_is_handed_off() {
    let (admission, metrics) = service(8);
    let handed_off = || metric(&metrics, "tollgate_evaluations_handed_off_total");
    let (ok, _) = review(&admission, "ok-1", "ConfigMap", Duration::from_secs(5)).await;
    assert_eq!(ok["allowed"], true);
    assert_eq!(handed_off(), 0.0);
    let budget = Duration::from_millis(400);
    let (spun, took) = review(&admission, "spin-1", "Spin", budget).await;
    assert_eq!(spun["allowed"], false, "{spun}");
    assert!(
        took < budget + Duration::from_millis(500),
        "answered after {took:?}"
    );
    assert_eq!(handed_off(), 1.0);
    let (spun, _) = review(&admission, "spin-2", "Spin", budget).await;
    assert_eq!(spun["allowed"], false, "{spun}");
    assert_eq!(
        handed_off(),
        2.0,
        "known to run long: handed off before it starts"
    );
    let (ok, _) = review(&admission, "ok-2", "ConfigMap", Duration::from_secs(5)).await;
    assert_eq!(ok["allowed"], true);
    assert_eq!(handed_off(), 2.0);
}
