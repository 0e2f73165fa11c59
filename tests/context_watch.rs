//! `tollgate serve --kubeconfig FILE` against a fake Kubernetes API server
//! (list, watch and discovery over real HTTP, driven through the real
//! kube-rs client): readiness waits for the caches, verdicts follow watch
//! events, and an API group the cluster does not serve is "no objects".

use tollgate_tests as support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::corpus::{calico_data, doc, served, stored, update, with_replicas};
use support::{Launch, Server, eventually};
use tollgate_testkit::fake_api::FakeApiServer;

/// How long a watch event may take to reach a verdict.
const PROPAGATION: Duration = Duration::from_secs(10);

const CRD_API: &str = "crd.projectcalico.org/v1";
const TPR_API: &str = "projectcalico.org/v1";

/// Serves every type the built-in pack reads except the `projectcalico.org`
/// TPRs of Calico < v2.5 (a cluster where they were never installed).
fn serve_builtin_types(fake: &FakeApiServer) {
    for (api_version, kind, plural, namespaced) in [
        ("apps/v1", "Deployment", "deployments", true),
        ("apps/v1", "ReplicaSet", "replicasets", true),
        ("apps/v1", "DaemonSet", "daemonsets", true),
        ("v1", "Node", "nodes", false),
        ("v1", "Pod", "pods", true),
        ("v1", "Namespace", "namespaces", false),
        (
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
        ("batch/v1", "Job", "jobs", true),
        (CRD_API, "GlobalFelixConfig", "globalfelixconfigs", false),
        (CRD_API, "IPPool", "ippools", false),
        (CRD_API, "GlobalBGPConfig", "globalbgpconfigs", false),
        (CRD_API, "BGPPeer", "bgppeers", false),
    ] {
        fake.serve(api_version, kind, plural, namespaced);
    }
}

/// The built-in pack watching `fake` through a kubeconfig (no credentials).
fn serve_kubeconfig(fake: &FakeApiServer) -> Server {
    let launch = Launch::new().arg("serve");
    let kubeconfig = launch.dir().join("kubeconfig");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: fake\n  cluster:\n    server: {url}\n\
         users:\n- name: anonymous\n  user: {{}}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: anonymous\n\
         current-context: fake\n",
        url = fake.url
    );
    std::fs::write(&kubeconfig, yaml).expect("write kubeconfig");
    launch
        .arg("--kubeconfig")
        .arg(kubeconfig.display().to_string())
        .shared_module_cache()
        .start()
}

async fn readyz(server: &Server) -> StatusCode {
    server.get("/readyz").await.0
}

/// Applies a stored object to the fake cluster under its own apiVersion.
fn apply(fake: &FakeApiServer, plural: &str, object: Value) {
    let api_version = object["apiVersion"]
        .as_str()
        .expect("apiVersion")
        .to_owned();
    fake.apply(&api_version, plural, object);
}

/// The v2.6 etcd manifest's controller Deployments as a cluster runs them.
fn v26(name: &str) -> Value {
    stored(&doc("v2.6/etcd/calico.yaml", "Deployment", name))
}

/// Raising the v2.6 `replicas: 0` calico-policy-controller stub to 1.
fn raise_stub() -> Value {
    let stub = v26("calico-policy-controller");
    update("raise-stub", &stub, &with_replicas(stub.clone(), 1, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_first_lists_and_verdicts_follow_watch_events() {
    let fake = FakeApiServer::start().await;
    serve_builtin_types(&fake);
    apply(&fake, "deployments", v26("calico-kube-controllers"));
    fake.hold_lists(true);
    let server = serve_kubeconfig(&fake);

    // Nothing listed yet: not ready, and a rule that needs the cluster
    // fails closed instead of guessing.
    assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    server
        .verdict("before sync", "/validate", &raise_stub())
        .await
        .assert_denied(
            "controller-one-active",
            &["cannot verify", "cluster context unavailable"],
        );
    assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);

    fake.hold_lists(false);
    eventually(PROPAGATION, "/readyz turns 200", || async {
        readyz(&server).await == StatusCode::OK
    })
    .await;
    server
        .verdict("synced", "/validate", &raise_stub())
        .await
        .assert_denied(
            "controller-one-active",
            &["Deployment kube-system/calico-kube-controllers (spec 1, status 1)"],
        );

    // `kubectl scale deploy calico-kube-controllers --replicas=0` reaches
    // the cache as a MODIFIED event.
    apply(
        &fake,
        "deployments",
        with_replicas(v26("calico-kube-controllers"), 0, 0),
    );
    eventually(PROPAGATION, "the stub may start", || async {
        server
            .review("/validate", &raise_stub())
            .await
            .pointer("/response/allowed")
            == Some(&Value::Bool(true))
    })
    .await;
    server
        .verdict("scaled down", "/validate", &raise_stub())
        .await
        .assert_allowed();

    // And back: a new active controller is seen again.
    apply(&fake, "deployments", v26("calico-kube-controllers"));
    eventually(PROPAGATION, "the stub is held back again", || async {
        !server
            .verdict("scaled up", "/validate", &raise_stub())
            .await
            .allowed
    })
    .await;
}

/// The Kubernetes-datastore calico-node upgrade across v2.5.0.
fn kdd_v24_to_v25() -> Value {
    let ds = |rel: &str| served(&doc(rel, "DaemonSet", "calico-node"));
    update(
        "kdd-v2.5",
        &ds("v2.4/kdd/calico.yaml"),
        &ds("v2.5/kdd/calico.yaml"),
    )
}

const R8: &str = "kdd-v2.5-migration";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_group_the_cluster_does_not_serve_is_no_objects() {
    // No projectcalico.org/v1 at all (discovery and lists answer 404): no
    // TPR data to migrate, so R8 decides from the rest and allows.
    let fake = FakeApiServer::start().await;
    serve_builtin_types(&fake);
    let server = serve_kubeconfig(&fake);
    eventually(PROPAGATION, "/readyz turns 200", || async {
        readyz(&server).await == StatusCode::OK
    })
    .await;
    server
        .verdict("no TPR API", "/validate", &kdd_v24_to_v25())
        .await
        .assert_allowed()
        .assert_silent(R8);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("/apis/projectcalico.org/v1")),
        "the TPR API was never asked for: {:?}",
        fake.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_allows_once_the_crd_copy_arrives_by_watch() {
    let fake = FakeApiServer::start().await;
    serve_builtin_types(&fake);
    for (kind, plural) in [
        ("GlobalConfig", "globalconfigs"),
        ("IpPool", "ippools"),
        ("GlobalBgpConfig", "globalbgpconfigs"),
        ("GlobalBgpPeer", "globalbgppeers"),
    ] {
        fake.serve(TPR_API, kind, plural, true);
    }
    apply(
        &fake,
        "ippools",
        calico_data(TPR_API, "IpPool", "192-168-0-0-16"),
    );
    let server = serve_kubeconfig(&fake);
    eventually(PROPAGATION, "/readyz turns 200", || async {
        readyz(&server).await == StatusCode::OK
    })
    .await;
    server
        .verdict("unmigrated", "/validate", &kdd_v24_to_v25())
        .await
        .assert_denied(R8, &["IpPool 192-168-0-0-16", "calico-upgrade-v2.5"]);

    // The migration job's copy of the pool (ADDED on the CRD watch).
    apply(
        &fake,
        "ippools",
        calico_data(CRD_API, "IPPool", "192-168-0-0-16"),
    );
    eventually(PROPAGATION, "the migration is seen", || async {
        server
            .verdict("migrated", "/validate", &kdd_v24_to_v25())
            .await
            .allowed
    })
    .await;
    server
        .verdict("migrated", "/validate", &kdd_v24_to_v25())
        .await
        .assert_allowed()
        .assert_silent(R8);
}
