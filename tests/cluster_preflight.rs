//! `tollgate check --kubeconfig` and `tollgate audit --kubeconfig` against a
//! real kube-apiserver (see `support::cluster`): the stored objects are read
//! through discovery and GET/LIST, the policies' lookups through the same
//! watch caches `serve` uses; the PolicyReports an audit prints are accepted
//! by the API server with the Policy WG's CRDs installed.
//!
//! `cargo test -p tollgate-tests --test cluster_preflight -- --ignored` with
//! `KUBE_APISERVER` and `ETCD` set; `.ci/run` always runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::cluster::Cluster;
use support::corpus::served;
use tollgate_testkit::corpus::{manifest, read_docs};
use tollgate_tests as support;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn tollgate(cluster: &Cluster, args: &[&str]) -> Output {
    let cache = support::binary::target_tmp().join("tollgate-module-cache");
    Command::new(support::binary::tollgate_bin())
        .args(args)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tollgate")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(output)))
}

/// Applies `objects` (as JSON documents of a List).
fn apply_all(cluster: &Cluster, objects: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    cluster.apply(&list.to_string());
}

/// Applies CRDs from `file` and waits until they serve.
fn install_crds(cluster: &Cluster, file: &Path) {
    let file = file.display().to_string();
    cluster.kubectl_ok(&["apply", "-f", &file]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "-f",
        &file,
    ]);
}

/// The manifests of the corpus as a v1.28 server accepts them (the removed
/// beta groups submitted through the served version).
fn served_docs(rel: &str) -> Vec<Value> {
    manifest(rel).iter().map(served).collect()
}

fn finding<'a>(doc: &'a Value, object: &str) -> &'a Value {
    doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
        .unwrap_or_else(|| panic!("no {object}: {doc:#}"))
}

#[test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
fn check_against_a_live_kdd_v24_cluster_refuses_v25_until_the_data_is_migrated() {
    let cluster = Cluster::start();
    install_crds(&cluster, &testdata("preflight/calico-data-kinds.yaml"));
    apply_all(&cluster, served_docs("v2.4/kdd/calico.yaml"));
    apply_all(&cluster, read_docs(&testdata("preflight/tpr-data.yaml")));
    let manifest = testdata("corpus/manifests/v2.5/kdd/calico.yaml");
    let manifest = manifest.display().to_string();

    let output = tollgate(&cluster, &["check", "-f", &manifest, "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let doc = json_of(&output);
    let node = finding(&doc, "DaemonSet kube-system/calico-node");
    assert_eq!(
        node["operation"], "UPDATE",
        "read from the cluster: {node:#}"
    );
    assert_eq!(node["findings"][0]["policy"], "kdd-v2.5-migration");
    assert_eq!(node["findings"][0]["verdict"], "deny");
    let message = node["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("GlobalConfig clusterguid, IpPool 192-168-0-0-16"),
        "{message}"
    );
    assert_eq!(
        finding(&doc, "ConfigMap kube-system/calico-config")["operation"],
        "UPDATE"
    );
    assert_eq!(
        finding(
            &doc,
            "CustomResourceDefinition bgppeers.crd.projectcalico.org"
        )["operation"],
        "CREATE"
    );
    assert!(doc["cluster"].as_str().unwrap().starts_with("cluster of "));

    // The migration job's result: the same data as cluster-scoped CRD objects.
    apply_all(&cluster, read_docs(&testdata("preflight/crd-data.yaml")));
    let output = tollgate(&cluster, &["check", "-f", &manifest]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("result: admitted"), "{shown}");
    assert!(
        shown.contains("(3 CREATE, 5 UPDATE)"),
        "two of its CRDs stand in for the data kinds: {shown}"
    );
}

/// The violations of `testdata/snapshots/audit-violations`, built from the
/// corpus: a RollingUpdate policy controller, a second controller active
/// at the same time, calico-node rolling two nodes at once, and an nginx
/// Deployment no policy matches.
fn violations() -> Vec<Value> {
    let mut controller = served(
        &manifest("v2.5/policy-controller.yaml")
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .unwrap(),
    );
    controller["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    let other = served(
        &manifest("v3.0/calico-kube-controllers.yaml")
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .unwrap(),
    );
    let mut node = served(
        &manifest("v2.4/kdd/calico.yaml")
            .into_iter()
            .find(|d| d["kind"] == "DaemonSet")
            .unwrap(),
    );
    node["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}});
    let nginx = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                 "template": {"metadata": {"labels": {"app": "nginx"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}});
    vec![controller, other, node, nginx]
}

#[test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
fn audit_of_a_live_cluster_and_its_policy_reports_accepted_by_the_api_server() {
    let cluster = Cluster::start();
    apply_all(&cluster, violations());

    let output = tollgate(&cluster, &["audit", "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let doc = json_of(&output);
    let names: Vec<&str> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "DaemonSet kube-system/calico-node",
            "Deployment kube-system/calico-kube-controllers",
            "Deployment kube-system/calico-policy-controller",
        ],
        "listed from the cluster, nginx matched by no policy"
    );
    assert_eq!(doc["summary"]["fail"], 4, "{doc:#}");

    let output = tollgate(&cluster, &["audit", "-o", "policyreport"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let reports = String::from_utf8(output.stdout).unwrap();
    install_crds(
        &cluster,
        &testdata("policyreport/wgpolicyk8s.io_policyreports.yaml"),
    );
    install_crds(
        &cluster,
        &testdata("policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml"),
    );
    let dry = cluster.kubectl_with_input(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(&reports),
    );
    assert!(
        dry.status.success(),
        "{}\n{reports}",
        String::from_utf8_lossy(&dry.stderr)
    );
    cluster.apply(&reports);
    let stored = cluster.kubectl_ok(&[
        "get",
        "policyreports.v1alpha2.wgpolicyk8s.io",
        "-n",
        "kube-system",
        "tollgate-audit",
        "-o",
        "json",
    ]);
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["summary"]["fail"], 4, "{stored:#}");
    assert_eq!(stored["results"][0]["result"], "fail");
}
