//! The admission contract (SPEC §2.1) through the real binary, with the
//! probing test guests as policies.

use tollgate_tests as support;

use serde_json::{Value, json};
use support::{Launch, Server, apply_patch, object, patch_of, response, review, review_with};

const POLICIES: &str = r#"
- id: allowed
  module: guests.wasm
  rule: allow
  match: {kinds: [{kind: ConfigMap}]}
- id: denier
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}]}
- id: second-denier
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}], names: [two]}
- id: warner
  module: guests.wasm
  rule: deny
  mode: warn
  match: {kinds: [{kind: ServiceAccount}]}
- id: auditor
  module: guests.wasm
  rule: deny
  mode: audit
  match: {kinds: [{kind: Role}]}
- id: replicas
  module: guests.wasm
  rule: patch
  mutate: true
  settings: [{op: replace, path: /spec/replicas, value: 1}]
  match: {kinds: [{group: apps, kind: Deployment}]}
- id: paused
  module: guests.wasm
  rule: patch
  mutate: true
  settings: [{op: test, path: /spec/replicas, value: 1}, {op: add, path: /spec/paused, value: true}]
  match: {kinds: [{group: apps, kind: Deployment}]}
- id: unpatchable
  module: guests.wasm
  rule: patch
  mutate: true
  settings: [{op: remove, path: /spec/missing}]
  match: {kinds: [{group: apps, kind: StatefulSet}]}
- id: bundled-allow
  module: guests-v2.wasm
  rule: allow
  match: {kinds: [{kind: Bundle}]}
- id: bundled-count
  module: guests-v2.wasm
  rule: counter
  match: {kinds: [{kind: Bundle}]}
- id: bundled-count-again
  module: guests-v2.wasm
  rule: counter
  match: {kinds: [{kind: Bundle}]}
- id: long-advice
  module: guests.wasm
  rule: patch
  mutate: true
  failurePolicy: ignore
  settings: [{op: remove, path: /spec/LONG}]
  match: {kinds: [{group: apps, kind: DaemonSet}]}
"#;

fn server() -> Server {
    let long = "x".repeat(400);
    Launch::new()
        .policies(&POLICIES.replace("LONG", &long))
        .start()
}

const CORE: (&str, &str, &str) = ("", "v1", "");

fn core(kind: &'static str) -> (&'static str, &'static str, &'static str) {
    (CORE.0, CORE.1, kind)
}

fn deployment(name: &str, replicas: u32) -> Value {
    let mut d = object("apps/v1", "Deployment", name);
    d["spec"] = json!({"replicas": replicas, "strategy": {"type": "RollingUpdate"}});
    d
}

#[tokio::test]
async fn answers_echo_uid_and_api_version_in_v1_and_v1beta1() {
    let server = server();
    for api_version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        for endpoint in ["/validate", "/mutate"] {
            for (kind, uid) in [("ConfigMap", "matched-1"), ("Pod", "unmatched-1")] {
                let mut request = review(uid, core(kind), "CREATE", object("v1", kind, "demo"));
                request["apiVersion"] = json!(api_version);
                let answer = server.review(endpoint, &request).await;
                let response_ = response(&request, &answer);
                assert_eq!(response_["allowed"], true, "{answer}");
                assert!(response_.get("patch").is_none());
            }
        }
    }
}

#[tokio::test]
async fn denials_start_with_the_policy_id_and_join_in_order() {
    let server = server();
    let request = review(
        "deny-1",
        core("Secret"),
        "CREATE",
        object("v1", "Secret", "one"),
    );
    let answer = server.review("/validate?timeout=10s", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], false);
    assert_eq!(response_["status"]["code"], 403);
    assert_eq!(
        response_["status"]["message"],
        "denier: denied by the deny rule"
    );

    let request = review(
        "deny-2",
        core("Secret"),
        "UPDATE",
        object("v1", "Secret", "two"),
    );
    let answer = server.review("/validate", &request).await;
    assert_eq!(
        response(&request, &answer)["status"]["message"],
        "denier: denied by the deny rule; second-denier: denied by the deny rule"
    );

    // The log names the uid, the policy and the verdict.
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("deny-1") && l.contains("denier"))
        .unwrap_or_else(|| panic!("no log line for deny-1:\n{logs}"));
    assert!(line.contains("verdict") && line.contains("deny"), "{line}");
}

#[tokio::test]
async fn warn_mode_allows_with_a_warning_and_audit_mode_only_records() {
    let server = server();
    let sa = object("v1", "ServiceAccount", "demo");
    let request = review("warn-1", core("ServiceAccount"), "CREATE", sa);
    let answer = server.review("/validate", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], true);
    assert_eq!(
        response_["warnings"],
        json!(["warner: denied by the deny rule"])
    );

    let role = object("rbac.authorization.k8s.io/v1", "Role", "demo");
    let request = review(
        "audit-1",
        ("rbac.authorization.k8s.io", "v1", "Role"),
        "CREATE",
        role,
    );
    let answer = server.review("/validate", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], true);
    assert!(response_.get("warnings").is_none(), "{answer}");
    assert!(response_.get("status").is_none(), "{answer}");

    let metrics = server.metrics().await;
    for series in [
        r#"tollgate_reviews_total{endpoint="validate",policy="auditor",verdict="deny",mode="audit"} 1"#,
        r#"tollgate_reviews_total{endpoint="validate",policy="warner",verdict="warn",mode="warn"} 1"#,
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
}

#[tokio::test]
async fn mutate_composes_patches_in_configuration_order_and_validate_never_patches() {
    let server = server();
    let request = review(
        "mutate-1",
        ("apps", "v1", "Deployment"),
        "CREATE",
        deployment("web", 3),
    );
    let answer = server.review("/mutate?timeout=10s", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], true, "{answer}");
    let patch = patch_of(response_).expect("a patch");
    assert_eq!(
        patch,
        json!([
            {"op": "replace", "path": "/spec/replicas", "value": 1},
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "add", "path": "/spec/paused", "value": true},
        ])
    );
    let repaired = apply_patch(&request, &patch);
    assert_eq!(repaired["spec"]["replicas"], 1);
    assert_eq!(repaired["spec"]["paused"], true);

    let answer = server.review("/validate", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], false);
    assert_eq!(
        response_["status"]["message"],
        "replicas: repairable; paused: repairable"
    );
    assert!(response_.get("patch").is_none() && response_.get("patchType").is_none());
}

#[tokio::test]
async fn the_rules_of_a_v2_module_share_one_instance_per_review() {
    let server = server();
    let instances = |metrics: &str| support::metric(metrics, "tollgate_wasm_instances_total");
    for i in 0..3 {
        let before = instances(&server.metrics().await);
        let request = review(
            &format!("bundle-{i}"),
            ("example.com", "v1", "Bundle"),
            "CREATE",
            object("example.com/v1", "Bundle", "b"),
        );
        let answer = server.review("/validate", &request).await;
        let response_ = response(&request, &answer);
        assert_eq!(response_["allowed"], true, "{answer}");
        // Both counters ran in the same (fresh) instance.
        assert_eq!(
            response_["warnings"],
            json!(["bundled-count: count=1", "bundled-count-again: count=2"])
        );
        assert_eq!(instances(&server.metrics().await) - before, 1.0);
    }
}

#[tokio::test]
async fn no_patch_on_delete() {
    let server = server();
    let request = review(
        "delete-1",
        ("apps", "v1", "Deployment"),
        "DELETE",
        deployment("web", 3),
    );
    let answer = server.review("/mutate", &request).await;
    let response_ = response(&request, &answer);
    assert!(response_.get("patch").is_none(), "{answer}");
    assert!(response_.get("patchType").is_none(), "{answer}");
}

#[tokio::test]
async fn a_patch_that_does_not_apply_is_the_policy_failure() {
    let server = server();
    let mut sts = object("apps/v1", "StatefulSet", "db");
    sts["spec"] = json!({"replicas": 1});
    let request = review("bad-patch-1", ("apps", "v1", "StatefulSet"), "CREATE", sts);
    let answer = server.review("/mutate", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(response_["allowed"], false, "{answer}");
    let message = response_["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("unpatchable: policy failed (output): "),
        "{message}"
    );
    assert!(response_.get("patch").is_none());
    let metrics = server.metrics().await;
    let series = r#"tollgate_policy_failures_total{policy="unpatchable",cause="output"} 1"#;
    assert!(metrics.contains(series), "{metrics}");
}

#[tokio::test]
async fn warnings_are_prefixed_and_at_most_256_characters() {
    let server = server();
    let mut ds = object("apps/v1", "DaemonSet", "agent");
    ds["spec"] = json!({});
    let request = review("long-1", ("apps", "v1", "DaemonSet"), "CREATE", ds);
    let answer = server.review("/mutate", &request).await;
    let response_ = response(&request, &answer);
    assert_eq!(
        response_["allowed"], true,
        "failurePolicy ignore allows: {answer}"
    );
    let warnings = response_["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("long-advice: policy failed (output): "),
        "{warning}"
    );
    assert_eq!(warning.chars().count(), 256, "{warning}");
}

#[tokio::test]
async fn seven_mib_reviews_are_accepted_and_forty_mib_refused_with_413() {
    let server = server();
    let mut cm = object("v1", "ConfigMap", "big");
    cm["data"] = json!({"blob": "a".repeat(7 << 20)});
    let request = review("big-1", core("ConfigMap"), "UPDATE", cm);
    let answer = server.review("/validate?timeout=10s", &request).await;
    assert_eq!(response(&request, &answer)["allowed"], true);

    let mut huge = object("v1", "ConfigMap", "huge");
    huge["data"] = json!({"blob": "a".repeat(40 << 20)});
    let body = serde_json::to_vec(&review("huge-1", core("ConfigMap"), "UPDATE", huge)).unwrap();
    for http1 in [false, true] {
        let client = server.client_with(|b| if http1 { b.http1_only() } else { b });
        let response = client
            .post(server.url("/validate"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("an answer, not a reset");
        assert_eq!(response.status(), 413, "http1: {http1}");
        let reason = response.text().await.unwrap();
        assert_eq!(reason.trim_end().lines().count(), 1, "{reason}");
    }
    // The server is still fine.
    let request = review(
        "after-1",
        core("ConfigMap"),
        "CREATE",
        object("v1", "ConfigMap", "x"),
    );
    assert_eq!(
        response(&request, &server.review("/validate", &request).await)["allowed"],
        true
    );
}

#[tokio::test]
async fn four_hundred_concurrent_reviews_each_get_their_own_answer() {
    let server = server();
    let client = server.client();
    let url = server.url("/validate?timeout=30s");
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let kind = ["ConfigMap", "Secret", "Pod", "ServiceAccount"][i % 4];
            let request = review(
                &format!("uid-{i}"),
                core(kind),
                "CREATE",
                object("v1", kind, &format!("o{i}")),
            );
            tokio::spawn(async move {
                let answer = review_with(&client, &url, &request).await;
                (kind, request, answer)
            })
        })
        .collect();
    for task in tasks {
        let (kind, request, answer) = task.await.unwrap();
        let response = response(&request, &answer);
        assert_eq!(response["allowed"], kind != "Secret", "{kind}: {answer}");
    }
}
