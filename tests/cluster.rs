//! Tollgate against a real kube-apiserver (see `support::cluster`): what a
//! cluster does to it, byte for byte.
//!
//! `cargo test -p tollgate-tests --test cluster -- --ignored` with
//! `KUBE_APISERVER` and `ETCD` set (the workplace's `tools/kube/install` prints
//! them); `.ci/run` always runs this suite.

use std::time::Duration;

use reqwest::StatusCode;
use support::Launch;
use support::cluster::Cluster;
use tollgate_tests as support;

#[test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
fn the_harness_runs_a_real_api_server() {
    let cluster = Cluster::start();
    let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
    let version = cluster.kubectl_ok(&["version", "-o", "json"]);
    assert!(version.contains("\"gitVersion\": \"v1.28"), "{version}");
}

#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn readyz_waits_for_the_watch_caches_of_the_real_api_server() {
    let cluster = Cluster::start();
    // A service account with no permissions yet: its watches cannot list.
    let user = "system:serviceaccount:tollgate:tollgate";
    let server = Launch::new()
        .arg("serve")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_for(user).display().to_string())
        .shared_module_cache()
        .start();
    for _ in 0..10 {
        let (status, text) = server.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(text.contains("cluster context has not synced"), "{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Granted what `tollgate rbac` says the built-in pack reads, the caches
    // sync and the server is ready.
    let role = std::process::Command::new(support::tollgate_bin())
        .arg("rbac")
        .output()
        .expect("tollgate rbac");
    assert!(
        role.status.success(),
        "{}",
        String::from_utf8_lossy(&role.stderr)
    );
    cluster.apply(&String::from_utf8(role.stdout).unwrap());
    cluster.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
         metadata: {name: tollgate}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tollgate}\n\
         subjects: [{kind: ServiceAccount, name: tollgate, namespace: tollgate}]\n",
    );
    support::eventually(Duration::from_secs(60), "/readyz is 200", || async {
        server.get("/readyz").await.0 == StatusCode::OK
    })
    .await;
    let metrics = server.metrics().await;
    assert!(metrics.contains("tollgate_context"), "{metrics}");
}
