//! The small version of the large-cluster bench (issue 20, item 4;
//! `bench/src/bin/large_cluster.rs`): Tollgate caches what its rules read,
//! not the cluster. Calico v3.31.7 through a real kube-apiserver, Tollgate
//! with the default pack and the admin kubeconfig; then thousands of Pods,
//! Deployments and ReplicaSets no rule is about. The objects cached per
//! type must not change, nor the verdicts of Calico's own reviews.
//!
//! The fill's namespaces are created before Tollgate starts: a rule reads
//! Namespaces cluster-wide, so they are not unrelated. Nodes and
//! NetworkPolicies are read by rules too and are left out here.
//!
//! `cargo test -p tollgate-tests --test cluster_scale -- --ignored --nocapture`
//! with `KUBE_APISERVER` and `ETCD` set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::cluster::Cluster;
use support::populate::{self, CALICO_NODES, Fill, Review};
use support::{Launch, Server};
use tollgate_tests as support;

/// Pods, Deployments and ReplicaSets no rule is about.
const UNRELATED: Fill = Fill {
    namespaces: 30,
    pod_namespaces: 30,
    pods: 3_000,
    deployments: 300,
    nodes: 0,
    network_policies: 0,
};

/// How long Tollgate may take to become ready (a loaded CI machine).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long the marker Pod written after the fill may take to reach the
/// cache: the events before it in the same watch have arrived by then.
const MARKER_WITHIN: Duration = Duration::from_secs(30);
/// How long the counts are watched after the marker arrived, for the
/// watches of other types.
const SETTLE: Duration = Duration::from_secs(3);

#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn unrelated_objects_are_not_cached() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
    // Built first (a no-op when current): the steps' times then show the
    // test's own work, and the API server does not wait for cargo.
    support::tollgate_bin();
    step("tollgate built");
    let cluster = Cluster::start();
    populate::install_calico(&cluster)
        .await
        .unwrap_or_else(|e| panic!("installing Calico: {e}\n{}", cluster.log_errors()));
    UNRELATED
        .namespaces(&cluster)
        .await
        .unwrap_or_else(|e| panic!("creating namespaces: {e}\n{}", cluster.log_errors()));
    let mix = populate::review_mix(&cluster)
        .await
        .expect("the review mix");
    step("Calico installed");

    let server = Launch::new()
        .arg("serve")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig.display().to_string())
        .shared_module_cache()
        .start();
    wait_ready(&server).await;
    let before = populate::cache_objects(&server.metrics().await);
    assert!(
        before
            .get("v1 Pod")
            .is_some_and(|n| *n >= CALICO_NODES.len() as f64),
        "the calico-node Pods are not cached: {before:?}\n{}",
        server.log_errors()
    );
    let verdicts = judge_all(&server, &mix).await;
    step(&format!("Tollgate ready, caching {before:?}"));
    for (review, verdict) in mix.iter().zip(&verdicts) {
        eprintln!("  {}: {}", review.name, populate::verdict_summary(verdict));
    }

    UNRELATED
        .workloads(&cluster)
        .await
        .unwrap_or_else(|e| panic!("filling: {e}\n{}", cluster.log_errors()));
    step("unrelated objects created");
    // A calico-node Pod written last: once it is cached, the Pod watch
    // has delivered everything before it. Deleted again before judging (it
    // is not Ready, which R6 reads), and its deletion awaited alike.
    let marker = marker_pod(&cluster).await;
    let pods = before.get("v1 Pod").copied().unwrap_or(0.0);
    let mut with_marker = before.clone();
    *with_marker.entry("v1 Pod".into()).or_default() += 1.0;
    settle(
        &server,
        &with_marker,
        pods,
        &format!("the Pod {marker} written after the fill"),
    )
    .await;
    let settled = Instant::now() + SETTLE;
    while Instant::now() < settled {
        let now = populate::cache_objects(&server.metrics().await);
        check_unchanged(&server, &with_marker, &now, None).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = cluster.kubectl(&[
        "delete",
        "pod",
        "-n",
        "kube-system",
        &marker,
        "--wait=false",
    ]);
    assert!(out.status.success(), "kubectl delete pod {marker}: {out:?}");
    settle(&server, &before, pods, &format!("the deletion of {marker}")).await;
    step("the cache holds what it held before the fill");

    let after = judge_all(&server, &mix).await;
    for ((review, was), now) in mix.iter().zip(&verdicts).zip(&after) {
        assert_eq!(
            was, now,
            "{}: the verdict changed with {} unrelated Pods and {} Deployments",
            review.name, UNRELATED.pods, UNRELATED.deployments
        );
    }
    step("verdicts unchanged");
}

/// Waits until the Pod count is `expected`'s (the marker's event arrived),
/// checking meanwhile that no other count moves and that the Pod count
/// stays within one of what it was before the fill (`pods`).
async fn settle(server: &Server, expected: &BTreeMap<String, f64>, pods: f64, what: &str) {
    let deadline = Instant::now() + MARKER_WITHIN;
    loop {
        let now = populate::cache_objects(&server.metrics().await);
        check_unchanged(server, expected, &now, Some(("v1 Pod", pods, pods + 1.0))).await;
        if now.get("v1 Pod") == expected.get("v1 Pod") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not reach the cache within {MARKER_WITHIN:?}: {now:?}\n{}",
            server.log_errors()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fails, naming the type, when a count differs from `expected`; the type
/// `pending` names (whose events may still be arriving) may hold any count
/// in its range.
async fn check_unchanged(
    server: &Server,
    expected: &BTreeMap<String, f64>,
    now: &BTreeMap<String, f64>,
    pending: Option<(&str, f64, f64)>,
) {
    let types = expected.keys().chain(now.keys());
    for ty in types {
        let (want, got) = (
            expected.get(ty).copied().unwrap_or(0.0),
            now.get(ty).copied().unwrap_or(0.0),
        );
        let wrong = match pending {
            Some((pending, low, high)) if pending == ty => !(low..=high).contains(&got),
            _ => got != want,
        };
        if wrong {
            let metrics = server.metrics().await;
            let context: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("tollgate_context_"))
                .collect();
            panic!(
                "unrelated objects cached: {ty} holds {got}, expected {want} \
                 (the fill added {} Pods in {} namespaces, {} Deployments and as many ReplicaSets)\n\
                 --- context metrics\n{}\n{}",
                UNRELATED.pods,
                UNRELATED.pod_namespaces,
                UNRELATED.deployments,
                context.join("\n"),
                server.log_errors()
            );
        }
    }
}

/// Polls `/readyz` until 200; fails with its answer and Tollgate's log.
async fn wait_ready(server: &Server) {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let (status, text) = server.get("/readyz").await;
        if status == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Tollgate not ready within {READY_WITHIN:?}: {status} {text}\n{}",
            server.log_errors()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `response` of each review of `mix`.
async fn judge_all(server: &Server, mix: &[Review]) -> Vec<Value> {
    let client = server.client();
    let base = server.url("");
    let mut answers = Vec::new();
    for review in mix {
        let response = populate::judge(&client, &base, review)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log_errors()));
        answers.push(response);
    }
    answers
}

/// Writes one more calico-node Pod (a copy of `calico-node-0`, on the
/// same Node); returns its name.
async fn marker_pod(cluster: &Cluster) -> String {
    let path = "/api/v1/namespaces/kube-system/pods";
    let mut pod = cluster
        .get_json(&format!("{path}/calico-node-0"))
        .await
        .expect("calico-node-0");
    let name = "calico-node-marker";
    let metadata = pod["metadata"].as_object_mut().expect("metadata");
    metadata.retain(|k, _| ["labels", "ownerReferences", "namespace"].contains(&k.as_str()));
    metadata.insert("name".into(), name.into());
    if let Some(pod) = pod.as_object_mut() {
        pod.remove("status");
    }
    let response = cluster
        .api()
        .post(cluster.api_url(path))
        .json(&pod)
        .send()
        .await
        .expect("POST the marker Pod");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST the marker Pod: {status}: {text}");
    name.to_owned()
}
