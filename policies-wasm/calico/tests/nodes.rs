//! R5–R7: the calico-node DaemonSet, its pods and the nodes they run on.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::pods::PodSettings;
use tollgate_calico::rules::IdentitySettings;
use tollgate_calico::rules::r05_node_one_at_a_time::node_one_at_a_time;
use tollgate_calico::rules::r06_node_pod_cordoned::{PodCordonedSettings, node_pod_cordoned};
use tollgate_calico::rules::r07_node_uncordon_ready::node_uncordon_ready;
use tollgate_sdk::NoCluster;

/// Every calico-node DaemonSet Calico published.
fn published_node_daemonsets() -> Vec<(String, Value)> {
    all_manifests()
        .into_iter()
        .filter_map(|(file, docs)| try_find(&docs, "DaemonSet", "calico-node").map(|d| (file, d)))
        .collect()
}

fn node_ds(variant: &str) -> Value {
    doc(
        &format!("{variant}/calico.yaml"),
        "DaemonSet",
        "calico-node",
    )
}

fn set_rolling(mut ds: Value, rolling: Value) -> Value {
    ds["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": rolling});
    ds
}

// ---- R5 node-one-at-a-time --------------------------------------------------

#[test]
fn r5_published_daemonsets_and_captured_reviews_pass() {
    let all = published_node_daemonsets();
    assert_eq!(all.len(), 38);
    for (file, ds) in all {
        assert!(
            run("node-one-at-a-time", &create(&ds), &NoCluster).allowed,
            "{file}"
        );
        assert!(
            run("node-one-at-a-time", &create(&served(&ds)), &NoCluster).allowed,
            "{file}"
        );
    }
    for file in [
        "01-install-v2.4-kdd--mutate--create-daemonset-calico-node.json",
        "02-upgrade-v2.4-to-v2.5-kdd--mutate--update-daemonset-calico-node.json",
        "16-server-dry-run-upgrade-v2.5-to-v2.6-kdd--mutate--update-daemonset-calico-node.json",
        "18-v1beta1-review-upgrade-v2.5-to-v2.6-kdd--validate--update-daemonset-calico-node.json",
    ] {
        assert_allowed(&run("node-one-at-a-time", &review(file), &NoCluster));
    }
}

#[test]
fn r5_repairs_max_unavailable_and_max_surge() {
    let base = served(&node_ds("v3.1/kdd"));
    for (rolling, expected) in [
        (
            json!({"maxUnavailable": "10%"}),
            json!({"maxUnavailable": 1}),
        ),
        (
            json!({"maxUnavailable": 3, "maxSurge": 0}),
            json!({"maxUnavailable": 1, "maxSurge": 0}),
        ),
        (json!({"maxUnavailable": "1"}), json!({"maxUnavailable": 1})),
        (
            json!({"maxUnavailable": 1, "maxSurge": 1}),
            json!({"maxUnavailable": 1, "maxSurge": 0}),
        ),
        (
            json!({"maxUnavailable": 0, "maxSurge": "25%"}),
            json!({"maxUnavailable": 1, "maxSurge": 0}),
        ),
    ] {
        let ds = set_rolling(base.clone(), rolling.clone());
        let v = run("node-one-at-a-time", &update(&base, &ds), &NoCluster);
        assert_violation(&v, &["kube-system/calico-node", "one node at a time"]);
        let fixed = patched(&ds, &v);
        assert_eq!(
            fixed["spec"]["updateStrategy"]["rollingUpdate"], expected,
            "{rolling}"
        );
        assert_allowed(&run(
            "node-one-at-a-time",
            &update(&base, &fixed),
            &NoCluster,
        ));
    }
    // As published (extensions/v1beta1) with a rolling update written out.
    let written = set_rolling(node_ds("v3.0/etcd"), json!({"maxUnavailable": 2}));
    let v = run("node-one-at-a-time", &create(&written), &NoCluster);
    assert_eq!(
        patched(&written, &v)["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        1
    );
}

#[test]
fn r5_strategy_defaults_follow_the_api_version() {
    // extensions/v1beta1 without a type is OnDelete: rollingUpdate is unused.
    let mut ds = node_ds("v2.6/kdd");
    ds["spec"]["updateStrategy"] = json!({"rollingUpdate": {"maxUnavailable": 5}});
    assert_allowed(&run("node-one-at-a-time", &create(&ds), &NoCluster));
    ds["spec"]["updateStrategy"]["type"] = json!("OnDelete");
    assert_allowed(&run("node-one-at-a-time", &create(&ds), &NoCluster));
    // apps/v1beta2 without a type is RollingUpdate.
    ds["apiVersion"] = json!("apps/v1beta2");
    ds["spec"]["updateStrategy"] = json!({"rollingUpdate": {"maxUnavailable": 5}});
    assert_violation(
        &run("node-one-at-a-time", &create(&ds), &NoCluster),
        &["maxUnavailable 5"],
    );
}

#[test]
fn r5_only_concerns_calico_node() {
    let etcd = set_rolling(
        served(&doc(
            "v3.1/etcd-kubeadm-1.7/calico.yaml",
            "DaemonSet",
            "calico-etcd",
        )),
        json!({"maxUnavailable": 5}),
    );
    assert_allowed(&run("node-one-at-a-time", &create(&etcd), &NoCluster));
    let mut canal = set_rolling(served(&node_ds("v3.1/kdd")), json!({"maxUnavailable": 5}));
    canal["metadata"]["name"] = json!("canal");
    let v = run("node-one-at-a-time", &create(&canal), &NoCluster);
    assert_violation(&v, &["kube-system/canal"]);
    let direct = node_one_at_a_time(
        &parse_request(&create(&canal)),
        &IdentitySettings::default(),
        &NoCluster,
    );
    assert_eq!(direct, v);
}

// ---- R6 node-pod-cordoned ----------------------------------------------------

const DELETE_POD: &str = "14-delete-calico-node-pod--validate--delete-pod-calico-node-x7k2p.json";
const V25_IMAGE: &str = "quay.io/calico/node:v2.5.1";

fn v25_daemonset() -> Value {
    stored(&node_ds("v2.5/kdd"))
}

#[test]
fn r6_captured_delete_on_a_cordoned_node() {
    let request = review(DELETE_POD);
    let pod = request["oldObject"].clone();
    let c = cluster([node("node-01", true, &[]), v25_daemonset(), pod.clone()]);
    let v = run("node-pod-cordoned", &request, &c);
    assert!(v.allowed, "{v:?}");
    assert_eq!(v.warnings.len(), 1);
    assert!(
        v.warnings[0].contains("pre-pull") && v.warnings[0].contains(V25_IMAGE),
        "{:?}",
        v.warnings
    );
    // The image is on the node already: nothing to say.
    let c = cluster([
        node("node-01", true, &["docker.io/library/busybox:1", V25_IMAGE]),
        v25_daemonset(),
        pod,
    ]);
    let v = run("node-pod-cordoned", &request, &c);
    assert!(v.allowed && v.warnings.is_empty(), "{v:?}");
}

#[test]
fn r6_denies_on_an_uncordoned_node_or_while_another_node_upgrades() {
    let request = review(DELETE_POD);
    let pod = request["oldObject"].clone();
    let c = cluster([
        node("node-01", false, &[V25_IMAGE]),
        v25_daemonset(),
        pod.clone(),
    ]);
    assert_violation(
        &run("node-pod-cordoned", &request, &c),
        &[
            "node-01 is not cordoned",
            "kubectl cordon node-01",
            "kubectl uncordon node-01",
        ],
    );
    let busy = calico_pod("calico-node-b2", "node-02", V25_IMAGE, false);
    let c = cluster([
        node("node-01", true, &[V25_IMAGE]),
        v25_daemonset(),
        pod.clone(),
        busy,
    ]);
    assert_violation(
        &run("node-pod-cordoned", &request, &c),
        &["calico-node-b2 (node node-02) is not Ready"],
    );
    let fine = calico_pod("calico-node-b3", "node-03", V25_IMAGE, true);
    let c = cluster([
        node("node-01", true, &[V25_IMAGE]),
        v25_daemonset(),
        pod,
        fine,
    ]);
    assert_allowed(&run("node-pod-cordoned", &request, &c));
}

#[test]
fn r6_exemptions_and_what_it_ignores() {
    let mut request = review(DELETE_POD);
    let c = cluster([node("node-01", false, &[])]);
    request["userInfo"] =
        json!({"username": "system:serviceaccount:kube-system:daemon-set-controller"});
    assert_allowed(&run("node-pod-cordoned", &request, &c));
    let mut other = review(DELETE_POD);
    other["oldObject"]["metadata"]["labels"] = json!({"app": "web"});
    assert_allowed(&run("node-pod-cordoned", &other, &c));
    let mut pending = review(DELETE_POD);
    pending["oldObject"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("nodeName");
    assert_allowed(&run("node-pod-cordoned", &pending, &c));
    // The node is gone: nothing to cordon.
    assert_allowed(&run("node-pod-cordoned", &review(DELETE_POD), &cluster([])));
    // Creating the pod is not deleting it.
    let created = review("13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json");
    assert_allowed(&run("node-pod-cordoned", &created, &c));
}

#[test]
fn r6_fails_closed_and_takes_settings() {
    assert_violation(
        &run("node-pod-cordoned", &review(DELETE_POD), &Refusing),
        &["cannot verify", "v1 Node"],
    );
    let mut request = review(DELETE_POD);
    request["oldObject"]["metadata"]["labels"] = json!({"app": "calico"});
    let c = cluster([node("node-01", false, &[])]);
    let settings = json!({"podLabels": {"app": "calico"}});
    assert_violation(
        &run_with("node-pod-cordoned", &request, &settings, &c),
        &["not cordoned"],
    );
    let settings = json!({"exemptUsers": ["admin"]});
    assert_allowed(&run_with(
        "node-pod-cordoned",
        &review(DELETE_POD),
        &settings,
        &c,
    ));
    assert!(
        !entry("node-pod-cordoned")
            .check_settings(br#"{"podLabels": {}}"#)
            .valid
    );
    let direct = node_pod_cordoned(
        &parse_request(&review(DELETE_POD)),
        &PodCordonedSettings::default(),
        &c,
    );
    assert_violation(&direct, &["not cordoned"]);
}

// ---- R7 node-uncordon-ready ---------------------------------------------------

const UNCORDON: &str = "15-uncordon-node--validate--update-node-node-01.json";
const V265_IMAGE: &str = "quay.io/calico/node:v2.6.5";

fn v265_daemonset() -> Value {
    stored(&node_ds("v2.6/kdd"))
}

#[test]
fn r7_uncordon_once_the_new_pod_is_ready() {
    let request = review(UNCORDON);
    let ready = calico_pod("calico-node-n1", "node-01", V265_IMAGE, true);
    assert_allowed(&run(
        "node-uncordon-ready",
        &request,
        &cluster([v265_daemonset(), ready]),
    ));
    let starting = calico_pod("calico-node-n1", "node-01", V265_IMAGE, false);
    assert_violation(
        &run(
            "node-uncordon-ready",
            &request,
            &cluster([v265_daemonset(), starting]),
        ),
        &["calico-node-n1 is not Ready", "kubectl uncordon node-01"],
    );
    let old = calico_pod("calico-node-n1", "node-01", V25_IMAGE, true);
    assert_violation(
        &run(
            "node-uncordon-ready",
            &request,
            &cluster([v265_daemonset(), old]),
        ),
        &["still runs quay.io/calico/node:v2.5.1", "v2.6.5"],
    );
    let elsewhere = calico_pod("calico-node-n2", "node-02", V265_IMAGE, true);
    assert_violation(
        &run(
            "node-uncordon-ready",
            &request,
            &cluster([v265_daemonset(), elsewhere]),
        ),
        &["no calico-node pod runs on it"],
    );
}

#[test]
fn r7_only_uncordoning_is_checked() {
    let c = cluster([]);
    let cordon = review("12-cordon-node--validate--update-node-node-01.json");
    assert_allowed(&run("node-uncordon-ready", &cordon, &c));
    let create = review("11-create-node--validate--create-node-node-01.json");
    assert_allowed(&run("node-uncordon-ready", &create, &c));
    let v = run("node-uncordon-ready", &review(UNCORDON), &Refusing);
    assert_violation(&v, &["cannot verify"]);
    let direct = node_uncordon_ready(
        &parse_request(&review(UNCORDON)),
        &PodSettings::default(),
        &c,
    );
    assert_violation(&direct, &["no calico-node pod"]);
}
