//! Context-aware rules through `tollgate serve --cluster-snapshot DIR`: R3
//! controller-one-active and R4 controller-replicaset-first decided from
//! snapshot directories built from the corpus, a bad snapshot refusing to
//! serve, and the `context` allow-list enforced by the server.

use tollgate_tests as support;

use serde_json::{Value, json};
use support::Launch;
use support::corpus::{create, doc, manifest_text, scale, stored, update, with_replicas};
use support::snapshot::serve_snapshot;

/// The pre-2.0 policy controller: a ReplicaSet, published as
/// `extensions/v1beta1`.
const V16_RS: &str = "v1.6/policy-controller.yaml";
const RS_SCALE_TO_0: &str = "kubectl scale rs -n kube-system calico-policy-controller --replicas=0";

fn v16_replicaset(spec: i64, status: i64) -> Value {
    // As the API server serves it to a watch or `kubectl get rs -o yaml`:
    // apps/v1 with a status.
    with_replicas(
        stored(&doc(V16_RS, "ReplicaSet", "calico-policy-controller")),
        spec,
        status,
    )
}

/// The v2.0 policy controller Deployment (replicas 1, Recreate), served.
fn v20_deployment() -> Value {
    support::corpus::served(&doc(
        "v2.0/policy-controller.yaml",
        "Deployment",
        "calico-policy-controller",
    ))
}

/// The v2.6 etcd manifest's calico-kube-controllers Deployment and its
/// `replicas: 0` calico-policy-controller stub.
fn v26_controllers() -> [Value; 2] {
    let rel = "v2.6/etcd/calico.yaml";
    [
        stored(&doc(rel, "Deployment", "calico-kube-controllers")),
        stored(&doc(rel, "Deployment", "calico-policy-controller")),
    ]
}

#[tokio::test]
async fn r4_denies_the_first_deployment_while_the_v16_replicaset_runs() {
    let server = serve_snapshot([v16_replicaset(1, 1)]);
    let deployment = v20_deployment();
    let v = server
        .verdict(
            "v2.0 create",
            "/validate",
            &create("r4-deny-1", &deployment),
        )
        .await;
    v.assert_denied(
        "controller-replicaset-first",
        &[
            RS_SCALE_TO_0,
            "spec 1, status 1",
            "kube-system/calico-policy-controller",
        ],
    );
    // The running ReplicaSet is also the other active controller of R3.
    v.assert_denied(
        "controller-one-active",
        &["ReplicaSet kube-system/calico-policy-controller (spec 1, status 1)"],
    );

    // Any controller Deployment: calico-kube-controllers of v2.6 too.
    let kube_controllers = support::corpus::served(&doc(
        "v2.6/calico-kube-controllers.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    server
        .verdict(
            "kube-controllers create",
            "/validate",
            &create("r4-deny-2", &kube_controllers),
        )
        .await
        .assert_denied("controller-replicaset-first", &[RS_SCALE_TO_0]);

    // R4 intercepts CREATE only: an UPDATE is R3's business alone.
    server
        .verdict(
            "v2.0 update",
            "/validate",
            &update("r4-update", &deployment, &deployment),
        )
        .await
        .assert_silent("controller-replicaset-first")
        .assert_denied(
            "controller-one-active",
            &["ReplicaSet kube-system/calico-policy-controller"],
        );
}

#[tokio::test]
async fn r4_waits_until_the_replicaset_status_reaches_zero() {
    // `kubectl scale --replicas=0` was accepted but the pod still runs.
    let server = serve_snapshot([v16_replicaset(0, 1)]);
    server
        .verdict(
            "terminating",
            "/validate",
            &create("r4-status", &v20_deployment()),
        )
        .await
        .assert_denied(
            "controller-replicaset-first",
            &["spec 0, status 1", RS_SCALE_TO_0],
        )
        .assert_denied("controller-one-active", &["(spec 0, status 1)"]);
}

#[tokio::test]
async fn controllers_start_once_every_other_controller_is_at_zero() {
    let [kube_controllers, stub] = v26_controllers();
    let server = serve_snapshot([v16_replicaset(0, 0), with_replicas(kube_controllers, 0, 0)]);
    server
        .verdict(
            "v2.0 create",
            "/validate",
            &create("stopped-1", &v20_deployment()),
        )
        .await
        .assert_allowed()
        .assert_silent("controller-replicaset-first")
        .assert_silent("controller-one-active");

    // Raising the v2.6 stub to one replica while calico-kube-controllers
    // is scaled to 0.
    let raised = with_replicas(stub.clone(), 1, 0);
    server
        .verdict(
            "stub to 1",
            "/validate",
            &update("stopped-2", &stub, &raised),
        )
        .await
        .assert_allowed();
    server
        .verdict(
            "scale stub to 1",
            "/validate",
            &scale(
                "stopped-3",
                "deployments",
                "kube-system",
                "calico-policy-controller",
                0,
                1,
            ),
        )
        .await
        .assert_allowed();
}

#[tokio::test]
async fn r3_names_the_active_kube_controllers_next_to_the_v26_stub() {
    let [kube_controllers, stub] = v26_controllers();
    let server = serve_snapshot([kube_controllers.clone(), stub.clone()]);
    let named = [
        "Deployment kube-system/calico-kube-controllers (spec 1, status 1)",
        "kubectl scale deploy -n kube-system calico-kube-controllers --replicas=0",
    ];

    // The old controller brought back by an edit or by `kubectl scale`.
    let v25 = support::corpus::served(&doc(
        "v2.5/policy-controller.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    server
        .verdict(
            "stub edited to v2.5",
            "/validate",
            &update("r3-deny-1", &stub, &v25),
        )
        .await
        .assert_denied("controller-one-active", &named)
        .assert_silent("controller-replicaset-first");
    server
        .verdict(
            "scale stub to 1",
            "/validate",
            &scale(
                "r3-deny-2",
                "deployments",
                "kube-system",
                "calico-policy-controller",
                0,
                1,
            ),
        )
        .await
        .assert_denied("controller-one-active", &named);

    // The stub itself, as the v2.6 manifest applies it: replicas 0.
    server
        .verdict(
            "stub re-applied",
            "/validate",
            &update("r3-allow-1", &stub, &stub),
        )
        .await
        .assert_allowed();
    // calico-kube-controllers upgraded (v2.6.2 → v2.6.5) beside the stub,
    // which has no replicas.
    let old = support::corpus::served(&doc(
        "v2.6.2/etcd/calico.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    server
        .verdict(
            "kube-controllers upgrade",
            "/validate",
            &update("r3-allow-2", &old, &kube_controllers),
        )
        .await
        .assert_silent("controller-one-active");
}

/// The snapshot backend serves an object under the apiVersion it was saved
/// with, and the rules ask for `apps/v1`. The v1.6 manifest as published
/// (`extensions/v1beta1`, no status) is therefore invisible to R3 and R4:
/// a snapshot must hold objects as the API server serves them today
/// (`kubectl get rs -o yaml`), not the manifests they were created from.
#[tokio::test]
async fn the_published_v16_file_in_a_snapshot_is_not_seen_as_apps_v1() {
    let server = Launch::new()
        .snapshot(|s| {
            s.file("policy-controller.yaml", &manifest_text(V16_RS));
        })
        .start();
    server
        .verdict(
            "v2.0 create",
            "/validate",
            &create("published-1", &v20_deployment()),
        )
        .await
        .assert_allowed()
        .assert_silent("controller-replicaset-first")
        .assert_silent("controller-one-active");
}

#[test]
fn a_bad_snapshot_file_stops_serve_naming_the_file_and_document() {
    let launch = Launch::new().snapshot(|s| {
        s.objects([v16_replicaset(1, 1)]);
        // Document 1 is fine, document 2 has no kind.
        s.file(
            "broken.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\napiVersion: v1\nmetadata: {name: nameless}\n",
        );
    });
    let output = launch.run_to_exit();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "serve exited successfully: {stderr}"
    );
    assert!(
        stderr.contains("broken.yaml: document 2") && stderr.contains("kind"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot load the cluster snapshot"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening"),
        "it must not serve"
    );
}

/// The probing `peek` guest looks up the query in its settings and answers
/// the objects as a warning, or the refusal as its denial.
fn peek(id: &str, query: Value, context: Value) -> Value {
    json!({
        "id": id, "module": "guests.wasm", "rule": "peek",
        "settings": query,
        "match": {"kinds": [{"kind": "Peek"}]},
        "context": context,
    })
}

#[tokio::test]
async fn lookups_outside_the_context_grants_are_refused_and_logged() {
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "calico-config", "namespace": "kube-system"}, "data": {"k": "v"}});
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "calico-etcd-secrets", "namespace": "kube-system"}});
    let grant = json!([{"apiVersion": "v1", "kind": "ConfigMap", "namespaces": ["kube-system"]}]);
    let policies = json!([
        peek(
            "granted",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-system"}),
            grant.clone()
        ),
        peek(
            "other-kind",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": "kube-system"}),
            grant.clone()
        ),
        peek(
            "other-namespace",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default"}),
            grant.clone()
        ),
        peek(
            "all-namespaces",
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            grant
        ),
        peek(
            "no-context",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-system"}),
            json!([])
        ),
    ]);
    let launch = Launch::new().snapshot(|s| {
        s.objects([config_map, secret]);
    });
    let server = launch.policies(&policies.to_string()).start();
    let request = support::review(
        "peek-1",
        ("example.com", "v1", "Peek"),
        "CREATE",
        support::object("example.com/v1", "Peek", "probe"),
    );
    let answer = server.review("/validate", &request).await;
    let response = support::response(&request, &answer);
    assert_eq!(response["allowed"], false, "{answer}");

    // The granted lookup reads the snapshot (and only the ConfigMap).
    let warnings = response["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{answer}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("granted: ") && warning.contains("calico-config"),
        "{warning}"
    );
    assert!(!warning.contains("calico-etcd-secrets"), "{warning}");

    let message = response["status"]["message"].as_str().unwrap();
    // The guest quotes the host's answer: `{"error":"<refusal>"}`.
    for (policy, refusal) in [
        (
            "other-kind",
            "may not read v1 Secret in namespace kube-system",
        ),
        (
            "other-namespace",
            "may not read v1 ConfigMap in namespace default",
        ),
        ("all-namespaces", "may not read v1 ConfigMap\""),
        (
            "no-context",
            "may not read v1 ConfigMap in namespace kube-system",
        ),
    ] {
        let expected = format!(r#"{policy}: {{"error":"policy {policy} {refusal}"#);
        assert!(message.contains(&expected), "{expected:?} not in {message}");
    }
    assert!(!message.contains("calico-etcd-secrets"), "{message}");

    // The server logs each refusal with the policy.
    let logs = server.logs();
    for policy in [
        "other-kind",
        "other-namespace",
        "all-namespaces",
        "no-context",
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains("lookup refused") && l.contains(policy)),
            "no refusal logged for {policy}:\n{logs}"
        );
    }
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("lookup refused") && l.contains("granted")),
        "{logs}"
    );
}
