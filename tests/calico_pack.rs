//! Every rule of the built-in Calico pack (SPEC §3, R1–R14, default
//! configuration) through `tollgate serve --cluster-snapshot DIR`: each
//! rule's violation and an allowed counterpart, on requests built from the
//! published manifests and on reviews a real API server sent; the repairs
//! of R1, R2 and R5 on `/mutate` applied and validated again.
//!
//! Three snapshot clusters, one server each:
//! - unprepared: Calico v2.2 (KDD), the v1.6 ReplicaSet still running, TPR
//!   data not migrated, namespaces not prepared for v1 NetworkPolicy
//!   semantics, node-01 uncordoned with its calico-node pod not Ready;
//! - prepared: Calico v2.5, ReplicaSet at 0, TPR data copied to CRDs,
//!   namespaces prepared, nodes cordoned with Ready pods;
//! - migrated-by-job: TPR data not copied, but the migration Job succeeded.

use tollgate_tests as support;

use serde_json::{Value, json};
use support::corpus::{
    calico_data, calico_pod, captured, create, delete, doc, namespace, network_policy, node,
    served, stored, update, with_image, with_replicas,
};
use support::snapshot::serve_snapshot;
use support::verdict::Answer;
use support::{Server, apply_patch};

const TPR_API: &str = "projectcalico.org/v1";
const CRD_API: &str = "crd.projectcalico.org/v1";
const POOL: &str = "192-168-0-0-16";
const VALIDATE: &str = "/validate?timeout=10s";
const MUTATE: &str = "/mutate?timeout=10s";

const R1: &str = "controller-recreate";
const R2: &str = "controller-single-replica";
const R3: &str = "controller-one-active";
const R4: &str = "controller-replicaset-first";
const R5: &str = "node-one-at-a-time";
const R6: &str = "node-pod-cordoned";
const R7: &str = "node-uncordon-ready";
const R8: &str = "kdd-v2.5-migration";
const R9: &str = "v1-networkpolicy-semantics";
const R10: &str = "v3-needs-v2.6.5";
const R11: &str = "pinned-images";
const R12: &str = "version-skew";
const R13: &str = "config-restart";
const R14: &str = "default-deny-shape";

/// Captured reviews (`testdata/reviews`).
const EDIT_TO_ROLLING_UPDATE: &str =
    "04-edit-controller-to-rollingupdate--{}--update-deployment-calico-policy-controller.json";
const SCALE_TO_3: &str =
    "05-scale-controller-to-3--{}--update-scale-scale-calico-policy-controller.json";
const INSTALL_CONTROLLER: &str =
    "03-install-policy-controller-v2.5--validate--create-deployment-calico-policy-controller.json";
const EDIT_CONFIG: &str = "08-edit-calico-config--validate--update-configmap-calico-config.json";
const GUIDE_DEFAULT_DENY: &str =
    "10-guide-default-deny-null-selector--validate--create-networkpolicy-default-deny.json";
const DELETE_POD: &str = "14-delete-calico-node-pod--validate--delete-pod-calico-node-x7k2p.json";
const UNCORDON: &str = "15-uncordon-node--validate--update-node-node-01.json";

/// `file` with `{}` replaced by `validate` or `mutate`.
fn both(file: &str, endpoint: &str) -> String {
    file.replace("{}", endpoint)
}

/// The calico-node DaemonSet of a manifest, as the API server serves it.
fn ds(rel: &str) -> Value {
    served(&doc(rel, "DaemonSet", "calico-node"))
}

fn ds_update(from: &str, to: &str) -> Value {
    update("ds-update", &ds(from), &ds(to))
}

fn policy_controller(release: &str) -> Value {
    served(&doc(
        &format!("{release}/policy-controller.yaml"),
        "Deployment",
        "calico-policy-controller",
    ))
}

fn v16_replicaset(spec: i64, status: i64) -> Value {
    with_replicas(
        stored(&doc(
            "v1.6/policy-controller.yaml",
            "ReplicaSet",
            "calico-policy-controller",
        )),
        spec,
        status,
    )
}

fn unprepared_cluster() -> Vec<Value> {
    vec![
        stored(&doc("v2.2/kdd/calico.yaml", "DaemonSet", "calico-node")),
        v16_replicaset(1, 1),
        calico_data(TPR_API, "IpPool", POOL),
        namespace("kube-system", false),
        namespace("default", false),
        namespace("open", false),
        namespace("secure", true),
        network_policy(
            "open",
            "allow-web",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}], "policyTypes": ["Ingress"]}),
        ),
        node("node-01", false, &["quay.io/calico/node:v1.2.1"]),
        node("node-02", true, &["quay.io/calico/node:v1.2.1"]),
        calico_pod(
            "calico-node-x7k2p",
            "node-01",
            "quay.io/calico/node:v1.2.1",
            false,
        ),
        calico_pod(
            "calico-node-b",
            "node-02",
            "quay.io/calico/node:v1.2.1",
            true,
        ),
    ]
}

fn prepared_cluster() -> Vec<Value> {
    vec![
        stored(&doc("v2.5/kdd/calico.yaml", "DaemonSet", "calico-node")),
        v16_replicaset(0, 0),
        calico_data(TPR_API, "IpPool", POOL),
        calico_data(CRD_API, "IPPool", POOL),
        namespace("kube-system", false),
        namespace("default", false),
        namespace("secure", true),
        network_policy(
            "secure",
            "default-deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
        node("node-01", true, &["quay.io/calico/node:v2.5.1"]),
        node("node-02", true, &[]),
        calico_pod(
            "calico-node-x7k2p",
            "node-01",
            "quay.io/calico/node:v2.5.1",
            true,
        ),
        calico_pod(
            "calico-node-b",
            "node-02",
            "quay.io/calico/node:v2.4.1",
            true,
        ),
    ]
}

/// Sends `review` (uid set to `case`) to `/validate`.
async fn check(server: &Server, case: &str, mut review: Value) -> Answer {
    review["request"]["uid"] = json!(case);
    server.verdict(case, VALIDATE, &review).await
}

/// Replays a captured review, keeping the uid the API server gave it.
async fn replay(server: &Server, file: &str) -> Answer {
    let (path, review) = captured(file);
    server.verdict(file, &path, &review).await
}

/// `/mutate` answers `review` with a patch (allowed); the patch applies to
/// `request.object`, and the patched request then passes `id` on
/// `/validate`. Returns the patched object.
async fn assert_repaired(
    server: &Server,
    case: &str,
    path: &str,
    review: &Value,
    id: &str,
) -> Value {
    let v = server.verdict(case, path, review).await;
    assert!(v.allowed, "{case}: {:#}", v.response);
    let patch = v
        .patch
        .clone()
        .unwrap_or_else(|| panic!("{case}: no patch: {:#}", v.response));
    let patched = apply_patch(review, &patch);
    let mut again = review.clone();
    again["request"]["object"] = patched.clone();
    check(server, &format!("{case} (patched)"), again)
        .await
        .assert_silent(id);
    patched
}

#[tokio::test]
async fn an_unprepared_cluster_is_protected() {
    let server = serve_snapshot(unprepared_cluster());

    // R3 + R4: the first controller Deployment while the v1.6 ReplicaSet runs.
    check(
        &server,
        "r3r4-create",
        create("", &policy_controller("v2.0")),
    )
    .await
    .assert_denied(
        R4,
        &["kubectl scale rs -n kube-system calico-policy-controller --replicas=0"],
    )
    .assert_denied(R3, &["ReplicaSet kube-system/calico-policy-controller"]);

    // R6: deleting the calico-node pod of an uncordoned node.
    replay(&server, DELETE_POD)
        .await
        .assert_denied(R6, &["node-01 is not cordoned", "kubectl cordon node-01"]);
    // ... or of a cordoned node while another calico-node pod is not Ready.
    let pod_b = calico_pod(
        "calico-node-b",
        "node-02",
        "quay.io/calico/node:v1.2.1",
        true,
    );
    check(&server, "r6-mid-upgrade", delete("", &pod_b))
        .await
        .assert_denied(R6, &["calico-node-x7k2p (node node-01) is not Ready"]);
    // The DaemonSet controller's own deletes are not checked.
    let (_, mut by_controller) = captured(DELETE_POD);
    by_controller["request"]["userInfo"]["username"] =
        json!("system:serviceaccount:kube-system:daemon-set-controller");
    check(&server, "r6-exempt", by_controller)
        .await
        .assert_allowed();

    // R7 (warn): uncordoning node-01 while its calico-node pod is not Ready.
    replay(&server, UNCORDON)
        .await
        .assert_warned(R7, &["calico-node-x7k2p is not Ready"]);

    // R8: v2.4 → v2.5 on the Kubernetes datastore, TPR data not copied.
    check(
        &server,
        "r8-unmigrated",
        ds_update("v2.4/kdd/calico.yaml", "v2.5/kdd/calico.yaml"),
    )
    .await
    .assert_denied(R8, &[&format!("IpPool {POOL}"), "upgrade-job.yaml"]);

    // R9: the v1 NetworkPolicy semantics boundaries, namespaces unprepared.
    for (case, review) in [
        (
            "r9-kdd-v2.3",
            ds_update("v2.2/kdd/calico.yaml", "v2.3/kdd/calico.yaml"),
        ),
        (
            "r9-etcd-v2.4",
            ds_update("v2.3/etcd/calico.yaml", "v2.4/etcd/calico.yaml"),
        ),
        (
            "r9-controller-v0.7",
            update("", &policy_controller("v2.3"), &policy_controller("v2.4")),
        ),
    ] {
        check(&server, case, review).await.assert_denied(
            R9,
            &[
                "whose NetworkPolicies would become active and may block traffic: open",
                "DefaultDeny namespaces that would lose their isolation: secure",
            ],
        );
    }

    // R14 (advice): this cluster's Calico ignores the policy until upgraded.
    replay(&server, GUIDE_DEFAULT_DENY)
        .await
        .assert_warned(R14, &["Calico v2.2.1, older than v2.3.0"]);
}

#[tokio::test]
async fn a_prepared_cluster_lets_the_upgrade_through() {
    let server = serve_snapshot(prepared_cluster());

    // R3 + R4: the ReplicaSet is at 0.
    check(
        &server,
        "r3r4-create",
        create("", &policy_controller("v2.0")),
    )
    .await
    .assert_silent(R4)
    .assert_silent(R3);

    // R6: node-01 is cordoned, every other calico-node pod Ready, the new
    // image pulled.
    replay(&server, DELETE_POD)
        .await
        .assert_allowed()
        .assert_silent(R6);
    // node-02 has not pulled the DaemonSet's image: allowed with advice.
    let pod_b = calico_pod(
        "calico-node-b",
        "node-02",
        "quay.io/calico/node:v2.4.1",
        true,
    );
    check(&server, "r6-not-pulled", delete("", &pod_b))
        .await
        .assert_warned(
            R6,
            &["node node-02 has not pulled quay.io/calico/node:v2.5.1"],
        );

    // R7: node-01's pod is Ready on the DaemonSet's image...
    replay(&server, UNCORDON)
        .await
        .assert_allowed()
        .assert_silent(R7);
    // ... node-02's still runs the old one.
    let (_, mut uncordon_02) = captured(UNCORDON);
    for object in ["object", "oldObject"] {
        uncordon_02["request"][object]["metadata"]["name"] = json!("node-02");
    }
    uncordon_02["request"]["name"] = json!("node-02");
    check(&server, "r7-old-image", uncordon_02)
        .await
        .assert_warned(
            R7,
            &["still runs quay.io/calico/node:v2.4.1, not quay.io/calico/node:v2.5.1"],
        );

    // R8: every TPR object has its CRD copy.
    check(
        &server,
        "r8-migrated",
        ds_update("v2.4/kdd/calico.yaml", "v2.5/kdd/calico.yaml"),
    )
    .await
    .assert_allowed()
    .assert_silent(R8);

    // R9: namespaces prepared.
    for (case, review) in [
        (
            "r9-kdd-v2.3",
            ds_update("v2.2/kdd/calico.yaml", "v2.3/kdd/calico.yaml"),
        ),
        (
            "r9-etcd-v2.4",
            ds_update("v2.3/etcd/calico.yaml", "v2.4/etcd/calico.yaml"),
        ),
        (
            "r9-controller-v0.7",
            update("", &policy_controller("v2.3"), &policy_controller("v2.4")),
        ),
    ] {
        check(&server, case, review).await.assert_silent(R9);
    }

    // R14: v2.5 enforces v1 semantics; the API server's `{}` is the shape.
    replay(&server, GUIDE_DEFAULT_DENY)
        .await
        .assert_allowed()
        .assert_silent(R14);
}

#[tokio::test]
async fn a_succeeded_migration_job_is_proof_for_r8() {
    let server = serve_snapshot([
        calico_data(TPR_API, "IpPool", POOL),
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "calico-upgrade-v2.5", "namespace": "kube-system"},
               "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}),
    ]);
    check(
        &server,
        "r8-job",
        ds_update("v2.4/kdd/calico.yaml", "v2.5/kdd/calico.yaml"),
    )
    .await
    .assert_allowed()
    .assert_silent(R8);
}

#[tokio::test]
async fn workload_rules_deny_warn_and_repair() {
    let server = serve_snapshot(prepared_cluster());

    // R1: the captured edit to RollingUpdate; the v2.5 install (Recreate).
    check(
        &server,
        "r1-rolling",
        captured(&both(EDIT_TO_ROLLING_UPDATE, "validate")).1,
    )
    .await
    .assert_denied(R1, &["Recreate"]);
    replay(&server, INSTALL_CONTROLLER)
        .await
        .assert_allowed()
        .assert_silent(R1);
    let (path, review) = captured(&both(EDIT_TO_ROLLING_UPDATE, "mutate"));
    let patched = assert_repaired(&server, "r1-mutate", &path, &review, R1).await;
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));

    // R2: the captured `kubectl scale --replicas=3`, and a Deployment of 3.
    replay(&server, &both(SCALE_TO_3, "validate"))
        .await
        .assert_denied(R2, &["3 replicas", "--replicas=1"]);
    let (path, review) = captured(&both(SCALE_TO_3, "mutate"));
    let patched = assert_repaired(&server, "r2-mutate-scale", &path, &review, R2).await;
    assert_eq!(patched["spec"]["replicas"], 1);
    let three = with_replicas(policy_controller("v2.5"), 3, 0);
    check(&server, "r2-create-3", create("", &three))
        .await
        .assert_denied(R2, &["3 replicas"]);
    let patched = assert_repaired(
        &server,
        "r2-mutate-create",
        MUTATE,
        &create("r2", &three),
        R2,
    )
    .await;
    assert_eq!(patched["spec"]["replicas"], 1);
    check(
        &server,
        "r2-create-1",
        create("", &policy_controller("v2.5")),
    )
    .await
    .assert_allowed();

    // R5: a rollout two nodes at a time; OnDelete; the default.
    let mut two_at_a_time = ds("v2.6/kdd/calico.yaml");
    two_at_a_time["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!(2);
    check(&server, "r5-two", create("", &two_at_a_time))
        .await
        .assert_denied(R5, &["maxUnavailable 2"]);
    let patched = assert_repaired(
        &server,
        "r5-mutate",
        MUTATE,
        &create("r5", &two_at_a_time),
        R5,
    )
    .await;
    assert_eq!(
        patched["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        1
    );
    let mut on_delete = ds("v2.6/kdd/calico.yaml");
    on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    check(&server, "r5-on-delete", create("", &on_delete))
        .await
        .assert_allowed();
    check(
        &server,
        "r5-default",
        create("", &ds("v2.6/kdd/calico.yaml")),
    )
    .await
    .assert_allowed();

    // R10: v3 only from v2.6.5; etcd also needs the data migration.
    check(
        &server,
        "r10-from-v2.6.2",
        ds_update("v2.6.2/kdd/calico.yaml", "v3.0/kdd/calico.yaml"),
    )
    .await
    .assert_denied(R10, &["from Calico v2.6.2 straight to v3.0.4", "v2.6.5"]);
    check(
        &server,
        "r10-from-v2.6.5",
        ds_update("v2.6/kdd/calico.yaml", "v3.0/kdd/calico.yaml"),
    )
    .await
    .assert_allowed()
    .assert_silent(R10);
    check(
        &server,
        "r10-etcd",
        ds_update("v2.6/etcd/calico.yaml", "v3.0/etcd/calico.yaml"),
    )
    .await
    .assert_warned(R10, &["etcd datastore", "calico-upgrade"]);

    // R11: the unrendered `{% include %}` the v2.0 KDD manifest published
    // (in its Job), and `latest`.
    let include = doc("v2.0/kdd/calico.yaml", "Job", "configure-calico")["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .as_str()
        .expect("the Job's image")
        .to_owned();
    assert!(include.contains("{% include"), "{include}");
    let unrendered = with_image(ds("v2.0/kdd/calico.yaml"), "calico-node", &include);
    check(&server, "r11-include", create("", &unrendered))
        .await
        .assert_denied(R11, &["{% include"]);
    let latest = with_image(
        ds("v3.1/kdd/calico.yaml"),
        "calico-node",
        "quay.io/calico/node:latest",
    );
    check(
        &server,
        "r11-latest",
        update("", &ds("v3.0/kdd/calico.yaml"), &latest),
    )
    .await
    .assert_denied(R11, &["quay.io/calico/node:latest"]);
    check(
        &server,
        "r11-pinned",
        ds_update("v3.0/kdd/calico.yaml", "v3.1/kdd/calico.yaml"),
    )
    .await
    .assert_allowed()
    .assert_silent(R11);

    // R12 (warn): components of different releases, downgrades.
    let skewed = with_image(
        ds("v2.6/kdd/calico.yaml"),
        "install-cni",
        "quay.io/calico/cni:v1.8.3",
    );
    check(
        &server,
        "r12-skew",
        update("", &ds("v2.5/kdd/calico.yaml"), &skewed),
    )
    .await
    .assert_warned(R12, &["different Calico releases"]);
    check(
        &server,
        "r12-downgrade",
        ds_update("v2.6/kdd/calico.yaml", "v2.5/kdd/calico.yaml"),
    )
    .await
    .assert_warned(R12, &["downgrade"]);
    let kube_controllers_v31 = served(&doc(
        "v3.1/calico-kube-controllers.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    check(
        &server,
        "r12-controller-vs-node",
        create("", &kube_controllers_v31),
    )
    .await
    .assert_warned(R12, &["different Calico releases"]);
    check(
        &server,
        "r12-same-release",
        ds_update("v2.5/kdd/calico.yaml", "v2.6/kdd/calico.yaml"),
    )
    .await
    .assert_allowed()
    .assert_silent(R12);

    // R13 (warn): the captured calico-config edit; an edit of labels only.
    replay(&server, EDIT_CONFIG)
        .await
        .assert_warned(R13, &["kube-system/calico-config changed", "restart"]);
    let (_, mut labels_only) = captured(EDIT_CONFIG);
    let old_data = labels_only["request"]["oldObject"]["data"].clone();
    labels_only["request"]["object"]["data"] = old_data;
    labels_only["request"]["object"]["metadata"]["labels"] = json!({"edited": "true"});
    check(&server, "r13-labels", labels_only)
        .await
        .assert_allowed()
        .assert_silent(R13);

    // R14: the guide's `podSelector:` checked as written (offline) is
    // denied on /validate and repaired to `{}` on /mutate, and the repaired
    // object passes.
    let guide = guide_default_deny();
    assert!(guide["spec"]["podSelector"].is_null());
    check(&server, "r14-null", create("", &guide))
        .await
        .assert_denied(R14, &["null podSelector", "podSelector: {}"]);
    let patched = assert_repaired(&server, "r14-mutate", MUTATE, &create("r14", &guide), R14).await;
    assert_eq!(patched["spec"]["podSelector"], json!({}));
    assert_eq!(patched, served_policy(&guide));
    check(&server, "r14-empty", create("", &served_policy(&guide)))
        .await
        .assert_allowed()
        .assert_silent(R14);
}

/// The guide's default-deny NetworkPolicy (`podSelector:` null) in
/// namespace `secure`, as written.
fn guide_default_deny() -> Value {
    let mut guide = doc(
        "v2.4/tutorials/stars-policy/default-deny.yaml",
        "NetworkPolicy",
        "default-deny",
    );
    guide["metadata"]["namespace"] = json!("secure");
    guide
}

/// A NetworkPolicy as the API server normalises it: `podSelector: {}`.
fn served_policy(policy: &Value) -> Value {
    let mut policy = policy.clone();
    policy["spec"]["podSelector"] = json!({});
    policy
}

/// A review near the API server's object size limit: the guest needs more
/// memory than the SDK's bump arena (2 MiB), so it grows its memory and still
/// answers correctly.
#[tokio::test]
async fn a_three_mib_object_is_judged_beyond_the_guest_arena() {
    let server = serve_snapshot(vec![]);
    let (_, mut review) = captured(EDIT_CONFIG);
    let big = "x".repeat(3 << 20);
    review["request"]["object"]["data"]["big"] = json!(big);
    check(&server, "r13-3mib", review)
        .await
        .assert_warned(R13, &["kube-system/calico-config changed", "big"]);
}

/// R9 on a large prepared cluster: every namespace and policy is read (the
/// lookups projected to what R9 reads), and the answers — several MiB, well
/// beyond the guest's 2 MiB arena — fit the 64 MiB memory cap. Before the
/// SDK allocator bumped through grown memory a chunk at a time, each
/// allocation past the arena took a whole page and this failed with
/// "exceeded its memory cap".
#[tokio::test]
async fn r9_scans_thousands_of_namespaces_and_policies_within_the_memory_cap() {
    let mut cluster = prepared_cluster();
    for i in 0..1_500 {
        let ns = format!("team-{i:04}");
        cluster.push(namespace(&ns, true));
        cluster.push(network_policy(
            &ns,
            "default-deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ));
        for app in [
            "allow-dns",
            "allow-monitoring",
            "allow-same-namespace",
            "allow-web",
        ] {
            cluster.push(network_policy(
                &ns,
                app,
                json!({
                    "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": ns}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                           "podSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}],
                                 "ports": [{"protocol": "TCP", "port": 8080}]}],
                }),
            ));
        }
    }
    let server = serve_snapshot(cluster);
    check(
        &server,
        "r9-large-prepared",
        ds_update("v2.2/kdd/calico.yaml", "v2.3/kdd/calico.yaml"),
    )
    .await
    .assert_silent(R9);
}
