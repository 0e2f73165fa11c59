//! R11 pinned-images and R12 version-skew, on every corpus manifest.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::rules::IdentitySettings;
use tollgate_calico::rules::r11_pinned_images::{PinnedSettings, pinned_images};
use tollgate_calico::rules::r12_version_skew::version_skew;
use tollgate_sdk::NoCluster;

const LIQUID: &str = r#"quay.io/calico/ctl:{% include version component="calico/node" %}"#;

fn calico_workloads(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("DaemonSet" | "Deployment" | "ReplicaSet")
            )
        })
        .cloned()
        .collect()
}

fn with_image(mut obj: Value, container: usize, image: &str) -> Value {
    obj["spec"]["template"]["spec"]["containers"][container]["image"] = json!(image);
    obj
}

fn node_ds(dir: &str) -> Value {
    doc(&format!("{dir}/calico.yaml"), "DaemonSet", "calico-node")
}

// ---- R11 pinned-images ----------------------------------------------------------

#[test]
fn r11_every_published_workload_is_pinned() {
    let mut checked = 0;
    for (file, docs) in all_manifests() {
        for w in calico_workloads(&docs) {
            for obj in [w.clone(), served(&w)] {
                let v = run("pinned-images", &create(&obj), &NoCluster);
                assert!(v.allowed, "{file}: {v:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
    // The registry-less image of the v2.0 KDD manifest is pinned.
    assert_eq!(
        node_ds("v2.0/kdd")["spec"]["template"]["spec"]["containers"][0]["image"],
        "calico/node:v1.0.2"
    );
}

#[test]
fn r11_the_unrendered_liquid_image_is_not_a_version() {
    let job = doc("v2.0/kdd/calico.yaml", "Job", "configure-calico");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        LIQUID
    );
    // A Job is neither NODE_DS nor CTRL: out of scope.
    assert_allowed(&run("pinned-images", &create(&job), &NoCluster));
    // The same reference in calico-node is refused.
    let ds = with_image(node_ds("v2.0/kdd"), 0, LIQUID);
    let v = run("pinned-images", &create(&ds), &NoCluster);
    assert_violation(
        &v,
        &[
            "container calico-node",
            "not a version",
            "quay.io/calico/node:v3.1.3",
        ],
    );
}

#[test]
fn r11_unpinned_forms() {
    let base = served(&node_ds("v3.1/kdd"));
    for (image, why) in [
        ("quay.io/calico/node:latest", "latest"),
        ("quay.io/calico/node", "has no tag"),
        ("localhost:5000/calico/node", "has no tag"),
        ("calico/node@sha256:0123abcd", "has no tag"),
        ("quay.io/calico/node:v3.1", "not a version"),
        ("quay.io/calico/node:3.1.3", "not a version"),
    ] {
        let v = run(
            "pinned-images",
            &update(&base, &with_image(base.clone(), 0, image)),
            &NoCluster,
        );
        assert_violation(&v, &[image, why]);
    }
    for image in [
        "quay.io/calico/node:v3.1.3@sha256:0123",
        "localhost:5000/calico/node:v3.1.3",
        "calico/node:v3.2.0-rc1",
    ] {
        assert_allowed(&run(
            "pinned-images",
            &create(&with_image(base.clone(), 0, image)),
            &NoCluster,
        ));
    }
    // The cni image in the same DaemonSet counts too.
    let v = run(
        "pinned-images",
        &create(&with_image(base.clone(), 1, "quay.io/calico/cni:latest")),
        &NoCluster,
    );
    assert_violation(&v, &["container install-cni"]);
    // Non-Calico images are someone else's business.
    let mut sidecar = base.clone();
    sidecar["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debug", "image": "busybox"}));
    assert_allowed(&run("pinned-images", &create(&sidecar), &NoCluster));
    // Controllers are checked as well.
    let ctrl = with_image(
        served(&doc(
            "v3.1/calico-kube-controllers.yaml",
            "Deployment",
            "calico-kube-controllers",
        )),
        0,
        "quay.io/calico/kube-controllers:latest",
    );
    assert_violation(
        &run("pinned-images", &create(&ctrl), &NoCluster),
        &["Deployment kube-system/calico-kube-controllers"],
    );
}

#[test]
fn r11_settings() {
    let ds = with_image(
        served(&node_ds("v3.1/kdd")),
        0,
        "registry.corp/mirror/node:latest",
    );
    assert_allowed(&run("pinned-images", &create(&ds), &NoCluster));
    let settings = json!({"imageOwners": ["mirror"]});
    assert!(!run_with("pinned-images", &create(&ds), &settings, &NoCluster).allowed);
    assert!(
        !entry("pinned-images")
            .check_settings(br#"{"imageOwners": []}"#)
            .valid
    );
    let direct = pinned_images(
        &parse_request(&create(&ds)),
        &PinnedSettings::default(),
        &NoCluster,
    );
    assert!(direct.allowed);
}

// ---- R12 version-skew ------------------------------------------------------------

#[test]
fn r12_every_published_manifest_is_one_release() {
    for (file, docs) in all_manifests() {
        let workloads = calico_workloads(&docs);
        let in_cluster: Vec<Value> = workloads.iter().map(stored).collect();
        for w in &workloads {
            let v = run(
                "version-skew",
                &create(&served(w)),
                &cluster(in_cluster.clone()),
            );
            assert!(v.allowed, "{file}: {v:?}");
        }
    }
}

#[test]
fn r12_daemonset_against_the_running_controller() {
    let ds = served(&node_ds("v2.6/etcd"));
    let old_ctrl = stored(&doc(
        "v2.5/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let v = run("version-skew", &create(&ds), &cluster([old_ctrl.clone()]));
    assert_violation(
        &v,
        &[
            "node v2.6.5 (v2.6)",
            "cni v1.11.2 (v2.6)",
            "controller v0.7.0 (v2.4-v2.5)",
        ],
    );
    // The v2.6 stub (0 replicas, and its old pods gone) does not count.
    let stub = stored(&doc(
        "v2.6/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    let kube = stored(&doc(
        "v2.6/etcd/calico.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    assert_allowed(&run("version-skew", &create(&ds), &cluster([stub, kube])));
    // A mixed DaemonSet is skewed on its own.
    let mixed = with_image(
        served(&node_ds("v2.5/kdd")),
        1,
        "quay.io/calico/cni:v1.11.2",
    );
    assert_violation(
        &run("version-skew", &create(&mixed), &cluster([])),
        &["node v2.5.1 (v2.5)", "cni v1.11.2 (v2.6)"],
    );
}

#[test]
fn r12_controller_against_the_running_daemonset() {
    let kube = served(&doc(
        "v2.6/calico-kube-controllers.yaml",
        "Deployment",
        "calico-kube-controllers",
    ));
    let old_ds = stored(&node_ds("v2.5/etcd"));
    assert_violation(
        &run("version-skew", &create(&kube), &cluster([old_ds.clone()])),
        &["controller v1.0.2 (v2.6)", "node v2.5.1 (v2.5)"],
    );
    assert_allowed(&run(
        "version-skew",
        &create(&kube),
        &cluster([stored(&node_ds("v2.6/etcd"))]),
    ));
    // The zero-replica stub runs nothing: no skew to report.
    let stub = served(&doc(
        "v2.6/etcd/calico.yaml",
        "Deployment",
        "calico-policy-controller",
    ));
    assert_allowed(&run("version-skew", &create(&stub), &cluster([old_ds])));
}

#[test]
fn r12_downgrades() {
    let v = run(
        "version-skew",
        &update(&stored(&node_ds("v2.6/kdd")), &served(&node_ds("v2.5/kdd"))),
        &cluster([]),
    );
    assert_violation(
        &v,
        &["downgrade of node v2.6.5 → v2.5.1, cni v1.11.2 → v1.10.0"],
    );
    let v = run(
        "version-skew",
        &update(&stored(&node_ds("v3.1/kdd")), &served(&node_ds("v3.1/kdd"))),
        &cluster([]),
    );
    assert_allowed(&v);
}

#[test]
fn r12_fails_closed_and_reads_only_kube_system() {
    let ds = served(&node_ds("v2.6/etcd"));
    assert_violation(
        &run("version-skew", &create(&ds), &Refusing),
        &["cannot verify"],
    );
    let c = cluster([]);
    let recorded = Recording::new(&c);
    let direct = version_skew(
        &parse_request(&create(&ds)),
        &IdentitySettings::default(),
        &recorded,
    );
    assert!(direct.allowed);
    assert!(
        recorded
            .queries
            .borrow()
            .iter()
            .all(|q| q.namespace.as_deref() == Some("kube-system"))
    );
    let captured = review(
        "16-server-dry-run-upgrade-v2.5-to-v2.6-kdd--validate--update-daemonset-calico-node.json",
    );
    assert_allowed(&run("version-skew", &captured, &c));
}
