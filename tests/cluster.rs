//! Tollgate against a real kube-apiserver (see `support::cluster`): what a
//! cluster does to it, byte for byte.
//!
//! `cargo test -p tollgate-e2e --test cluster -- --ignored` with
//! `KUBE_APISERVER` and `ETCD` set (`../shared/tools/kube/install` prints
//! them); `.ci/run` always runs this suite.

use std::time::Duration;

use reqwest::StatusCode;
use support::Launch;
use support::cluster::Cluster;
use tollgate_e2e as support;

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
    let server = Launch::new()
        .arg("serve")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig.display().to_string())
        .shared_module_cache()
        .start();
    support::eventually(Duration::from_secs(30), "/readyz is 200", || async {
        server.get("/readyz").await.0 == StatusCode::OK
    })
    .await;
    let metrics = server.metrics().await;
    assert!(metrics.contains("tollgate_context"), "{metrics}");
}
