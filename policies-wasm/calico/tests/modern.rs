//! Today's Calico (v3.28–v3.32, SPEC §5) on the published files of
//! `testdata/modern`: R1–R3, R5, R11 and R12 on `calico.yaml` and on the
//! operator's `calico-system` workloads, R22 typha-replicas and R23
//! ebpf-needs-iptables-kube-proxy. (R17 and R18: `modern_upgrades.rs`.)

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_sdk::NoCluster;
use tollgate_testkit::modern::{
    OPERATOR_NAMESPACE, RELEASES, felix_default, kubeadm_kube_proxy, manifest_install, modern_doc,
    operator_install, operator_install_from, published,
};
use tollgate_testkit::operator::find_in;

/// `kind/name` of `objects`, in the namespace given.
fn manifest_workload(tag: &str, kind: &str, name: &str) -> Value {
    stored(&modern_doc(tag, "calico.yaml", kind, name))
}

fn operator_workload(tag: &str, kind: &str, name: &str) -> Value {
    find_in(&operator_install(tag), kind, OPERATOR_NAMESPACE, name)
}

/// `obj` without the Installation as owner: a calico-system workload that
/// is not the operator's (the operator's own are R21's, not R1–R3's or R5's).
fn orphan(mut obj: Value) -> Value {
    obj["metadata"]["ownerReferences"] = json!([]);
    obj
}

fn nodes(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| node(&format!("node-{i:02}"), false, &[]))
        .collect()
}

// ---- R1–R3: calico-kube-controllers in kube-system and calico-system -----------

#[test]
fn r1_r2_every_published_controller_passes_in_both_namespaces() {
    for tag in RELEASES {
        for ctrl in [
            manifest_workload(tag, "Deployment", "calico-kube-controllers"),
            operator_workload(tag, "Deployment", "calico-kube-controllers"),
        ] {
            for id in ["controller-recreate", "controller-single-replica"] {
                assert_allowed(&run(id, &create(&ctrl), &NoCluster));
            }
        }
    }
}

#[test]
fn r1_repairs_a_rolling_controller_in_calico_system() {
    let owned = operator_workload("v3.32.1", "Deployment", "calico-kube-controllers");
    let mut rolling = owned.clone();
    rolling["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
    // The operator's own controller is rendered from the Installation.
    assert_allowed(&run(
        "controller-recreate",
        &update(&owned, &rolling),
        &NoCluster,
    ));
    let (ctrl, rolling) = (orphan(owned), orphan(rolling));
    let v = run("controller-recreate", &update(&ctrl, &rolling), &NoCluster);
    assert_violation(
        &v,
        &["calico-system/calico-kube-controllers", "RollingUpdate"],
    );
    assert_eq!(
        patched(&rolling, &v)["spec"]["strategy"],
        json!({"type": "Recreate"})
    );
}

#[test]
fn r2_scaling_the_operators_controller_to_3_is_repaired() {
    let cluster = cluster(operator_install("v3.32.1"));
    let req = scale(
        "deployments",
        OPERATOR_NAMESPACE,
        "calico-kube-controllers",
        1,
        3,
    );
    let v = run("controller-single-replica", &req, &cluster);
    assert_violation(&v, &["calico-system/calico-kube-controllers", "3 replicas"]);
    let v = run(
        "controller-single-replica",
        &scale(
            "deployments",
            OPERATOR_NAMESPACE,
            "calico-kube-controllers",
            1,
            0,
        ),
        &cluster,
    );
    assert_allowed(&v);
}

#[test]
fn r3_two_controllers_across_the_namespaces_are_denied() {
    // A v3.31.7 manifest install; the operator's controller comes up beside it.
    let mut objects = manifest_install("v3.31.7", "calico.yaml");
    let owned = operator_workload("v3.31.7", "Deployment", "calico-kube-controllers");
    // The operator's own migration is not R3's to stop (it would stall).
    assert_allowed(&run(
        "controller-one-active",
        &create(&owned),
        &cluster(objects.clone()),
    ));
    let theirs = orphan(owned);
    let v = run(
        "controller-one-active",
        &create(&theirs),
        &cluster(objects.clone()),
    );
    assert_violation(
        &v,
        &[
            "Deployment kube-system/calico-kube-controllers",
            "kubectl scale deploy -n kube-system",
        ],
    );
    // Once the kube-system one is scaled to 0 (and its pod gone), it may start.
    let ours = find_in(
        &objects,
        "Deployment",
        "kube-system",
        "calico-kube-controllers",
    );
    objects.retain(|o| o != &ours);
    objects.push(with_replicas(ours.clone(), 0, 0));
    assert_allowed(&run(
        "controller-one-active",
        &create(&theirs),
        &cluster(objects),
    ));
    // And the other way round: the kube-system one while calico-system runs.
    let both: Vec<Value> = operator_install("v3.31.7");
    let v = run(
        "controller-one-active",
        &update(&with_replicas(ours.clone(), 0, 0), &ours),
        &cluster(both),
    );
    assert_violation(&v, &["Deployment calico-system/calico-kube-controllers"]);
}

// ---- R5: calico-node one node at a time ----------------------------------------------

#[test]
fn r5_published_daemonsets_pass_and_a_faster_rollout_is_repaired() {
    for tag in RELEASES {
        let owned = operator_workload(tag, "DaemonSet", "calico-node");
        let mut fast = owned.clone();
        fast["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}});
        // The operator rolls its calico-node out as the Installation says (R21).
        assert_allowed(&run(
            "node-one-at-a-time",
            &update(&owned, &fast),
            &NoCluster,
        ));
        for ds in [
            manifest_workload(tag, "DaemonSet", "calico-node"),
            orphan(owned),
        ] {
            assert_allowed(&run("node-one-at-a-time", &create(&ds), &NoCluster));
            let mut fast = ds.clone();
            fast["spec"]["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}});
            let v = run("node-one-at-a-time", &update(&ds, &fast), &NoCluster);
            assert_violation(&v, &["maxUnavailable \"10%\""]);
            let fixed = patched(&fast, &v);
            assert_eq!(
                fixed["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
                1
            );
        }
    }
}

// ---- R11: quay.io/calico/* and docker.io/calico/* are pinned -------------------------

#[test]
fn r11_published_images_are_pinned_and_latest_is_not() {
    for tag in RELEASES {
        let objects = manifest_install(tag, "calico.yaml")
            .into_iter()
            .chain(operator_install(tag));
        for w in objects.filter(|o| matches!(o["kind"].as_str(), Some("DaemonSet" | "Deployment")))
        {
            assert_allowed(&run("pinned-images", &create(&w), &NoCluster));
        }
    }
    let ds = manifest_workload("v3.32.1", "DaemonSet", "calico-node");
    for image in [
        "docker.io/calico/node:latest",
        "docker.io/calico/node",
        "quay.io/calico/node:master",
    ] {
        let v = run(
            "pinned-images",
            &create(&with_image(ds.clone(), "calico-node", image)),
            &NoCluster,
        );
        assert_violation(&v, &["container calico-node", image]);
    }
    let ctrl = operator_workload("v3.32.1", "Deployment", "calico-kube-controllers");
    let latest = with_image(
        ctrl,
        "calico-kube-controllers",
        "quay.io/calico/kube-controllers:latest",
    );
    assert_violation(
        &run("pinned-images", &create(&latest), &NoCluster),
        &["kube-controllers:latest"],
    );
}

// ---- R12: one install's components from one release --------------------------------

#[test]
fn r12_a_whole_install_of_each_release_is_consistent() {
    for tag in RELEASES {
        let manifest = manifest_install(tag, "calico.yaml");
        let ds = find_in(&manifest, "DaemonSet", "kube-system", "calico-node");
        assert_allowed(&run(
            "version-skew",
            &create(&ds),
            &cluster(manifest.clone()),
        ));
        let operator = operator_install(tag);
        let ctrl = find_in(
            &operator,
            "Deployment",
            OPERATOR_NAMESPACE,
            "calico-kube-controllers",
        );
        assert_allowed(&run("version-skew", &create(&ctrl), &cluster(operator)));
    }
}

#[test]
fn r12_skew_is_judged_within_one_install() {
    // Mid-migration: a v3.31.7 manifest install and a v3.32.1 operator. Each
    // install is consistent; their difference is R16's business.
    let mut objects = manifest_install("v3.31.7", "calico.yaml");
    objects.extend(operator_install("v3.32.1"));
    let ds = find_in(&objects, "DaemonSet", OPERATOR_NAMESPACE, "calico-node");
    assert_allowed(&run(
        "version-skew",
        &update(&ds, &ds),
        &cluster(objects.clone()),
    ));
    let old = find_in(&objects, "DaemonSet", "kube-system", "calico-node");
    assert_allowed(&run(
        "version-skew",
        &update(&old, &old),
        &cluster(objects.clone()),
    ));
    // Upgrading calico-system's calico-node alone skews it from its controller.
    let v32 = manifest_workload("v3.32.1", "DaemonSet", "calico-node");
    let operator = operator_install("v3.31.7");
    let ds = find_in(&operator, "DaemonSet", OPERATOR_NAMESPACE, "calico-node");
    let mut new = ds.clone();
    new["spec"]["template"] = v32["spec"]["template"].clone();
    let v = run(
        "version-skew",
        &update(&ds, &new),
        &cluster(operator.clone()),
    );
    assert_violation(&v, &["different Calico releases", "v3.31", "v3.32"]);
    // A downgrade warns.
    let v = run("version-skew", &update(&new, &ds), &cluster(operator));
    assert_violation(&v, &["downgrade of", "node v3.32.1 → v3.31.7"]);
}

// ---- R22 typha-replicas ------------------------------------------------------------

fn typha(tag: &str, replicas: Option<i64>) -> Value {
    let mut d = stored(&modern_doc(
        tag,
        "calico-typha.yaml",
        "Deployment",
        "calico-typha",
    ));
    if let Some(n) = replicas {
        d = with_replicas(d, n, 1);
    }
    d
}

fn typha_cluster(tag: &str, file: &str, n: usize) -> Vec<Value> {
    let mut objects = manifest_install(tag, file);
    objects.extend(nodes(n));
    objects
}

#[test]
fn r22_published_typha_passes_on_enough_nodes() {
    for tag in RELEASES
        .iter()
        .filter(|t| published(t, "calico-typha.yaml"))
    {
        let cluster = cluster(typha_cluster(tag, "calico-typha.yaml", 3));
        let v = run("typha-replicas", &create(&typha(tag, None)), &cluster);
        assert_allowed(&v);
        assert!(v.warnings.is_empty(), "{tag}: {v:?}");
    }
}

#[test]
fn r22_zero_replicas_with_a_typha_service_is_denied() {
    let objects = typha_cluster("v3.31.0", "calico-typha.yaml", 3);
    let old = typha("v3.31.0", None);
    for req in [
        update(&old, &typha("v3.31.0", Some(0))),
        scale("deployments", "kube-system", "calico-typha", 1, 0),
    ] {
        let v = run("typha-replicas", &req, &cluster(objects.clone()));
        assert_violation(
            &v,
            &[
                "0 replicas",
                "typha_service_name: calico-typha",
                "Felix will not start",
            ],
        );
    }
    // calico.yaml's calico-config says typha_service_name "none": 0 is fine.
    let none = typha_cluster("v3.31.0", "calico.yaml", 3);
    assert_allowed(&run(
        "typha-replicas",
        &scale("deployments", "kube-system", "calico-typha", 1, 0),
        &cluster(none),
    ));
    // No calico-config at all: nothing says Felix waits for Typha.
    assert_allowed(&run(
        "typha-replicas",
        &scale("deployments", "kube-system", "calico-typha", 1, 0),
        &cluster(nodes(3)),
    ));
}

#[test]
fn r22_too_many_replicas_warn() {
    let old = typha("v3.32.1", None);
    let objects = typha_cluster("v3.32.1", "calico-typha.yaml", 3);
    let v = run(
        "typha-replicas",
        &update(&old, &typha("v3.32.1", Some(3))),
        &cluster(objects),
    );
    assert!(v.allowed && v.warnings.len() == 1, "{v:?}");
    assert!(v.warnings[0].contains("3 replicas on 3 nodes"), "{v:?}");
    let big = typha_cluster("v3.32.1", "calico-typha.yaml", 40);
    let v = run(
        "typha-replicas",
        &scale("deployments", "kube-system", "calico-typha", 3, 21),
        &cluster(big),
    );
    assert!(
        v.allowed && v.warnings[0].contains("no more than 20"),
        "{v:?}"
    );
    // No Node known (an offline check): only the cap applies.
    let v = run(
        "typha-replicas",
        &update(&old, &typha("v3.32.1", Some(5))),
        &NoCluster,
    );
    assert_allowed(&v);
    assert!(v.warnings.is_empty(), "{v:?}");
}

#[test]
fn r22_lookups_fail_closed_only_for_the_deny() {
    let old = typha("v3.32.1", None);
    let v = run(
        "typha-replicas",
        &update(&old, &typha("v3.32.1", Some(0))),
        &Refusing,
    );
    assert_violation(
        &v,
        &["cannot verify", "ConfigMap kube-system/calico-config"],
    );
    let v = run(
        "typha-replicas",
        &update(&old, &typha("v3.32.1", Some(2))),
        &Refusing,
    );
    assert!(
        v.allowed && v.warnings[0].contains("cannot verify"),
        "{v:?}"
    );
}

#[test]
fn r22_ignores_the_operators_typha_and_other_deployments() {
    let theirs = operator_workload("v3.32.1", "Deployment", "calico-typha");
    let zero = with_replicas(theirs.clone(), 0, 0);
    let objects = typha_cluster("v3.32.1", "calico-typha.yaml", 3);
    assert_allowed(&run(
        "typha-replicas",
        &update(&theirs, &zero),
        &cluster(objects.clone()),
    ));
    let ctrl = manifest_workload("v3.32.1", "Deployment", "calico-kube-controllers");
    assert_allowed(&run(
        "typha-replicas",
        &update(&ctrl, &with_replicas(ctrl.clone(), 0, 0)),
        &cluster(objects.clone()),
    ));
    assert_allowed(&run(
        "typha-replicas",
        &delete(&typha("v3.32.1", None)),
        &cluster(objects),
    ));
}

// ---- R23 ebpf-needs-iptables-kube-proxy ------------------------------------------

/// `Installation default` of v3.31.0's `custom-resources.yaml` and of its
/// `custom-resources-bpf.yaml` (linuxDataplane BPF).
fn installations() -> (Value, Value) {
    let find = |file| pick_installation(&operator_install_from("v3.31.0", file));
    (
        find("custom-resources.yaml"),
        find("custom-resources-bpf.yaml"),
    )
}

fn pick_installation(objects: &[Value]) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == "Installation")
        .cloned()
        .expect("Installation default")
}

#[test]
fn r23_turning_ebpf_on_under_ipvs_kube_proxy_is_denied() {
    let (iptables, bpf) = installations();
    let ipvs = cluster([kubeadm_kube_proxy("ipvs")]);
    let v = run(
        "ebpf-needs-iptables-kube-proxy",
        &update(&iptables, &bpf),
        &ipvs,
    );
    assert_violation(
        &v,
        &[
            "Installation default turns eBPF on",
            "IPVS",
            "kube-system/kube-proxy",
            "restart",
        ],
    );
    // A new Installation with BPF turns it on too.
    let v = run("ebpf-needs-iptables-kube-proxy", &create(&bpf), &ipvs);
    assert_violation(&v, &["IPVS"]);
    // FelixConfiguration default, patched as the eBPF guide does.
    let v = run(
        "ebpf-needs-iptables-kube-proxy",
        &update(&felix_default(false), &felix_default(true)),
        &ipvs,
    );
    assert_violation(&v, &["FelixConfiguration default turns eBPF on"]);
    let mut v3 = felix_default(true);
    v3["apiVersion"] = json!("projectcalico.org/v3");
    assert_violation(
        &run("ebpf-needs-iptables-kube-proxy", &create(&v3), &ipvs),
        &["IPVS"],
    );
}

#[test]
fn r23_allows_iptables_no_configmap_and_what_does_not_turn_ebpf_on() {
    let (iptables, bpf) = installations();
    for mode in ["", "iptables"] {
        let c = cluster([kubeadm_kube_proxy(mode)]);
        assert_allowed(&run(
            "ebpf-needs-iptables-kube-proxy",
            &update(&iptables, &bpf),
            &c,
        ));
    }
    // No kube-proxy ConfigMap (not kubeadm): no verdict.
    assert_allowed(&run(
        "ebpf-needs-iptables-kube-proxy",
        &update(&iptables, &bpf),
        &NoCluster,
    ));
    let ipvs = cluster([kubeadm_kube_proxy("ipvs")]);
    // Already on, turned off, or never on.
    for (old, new) in [(&bpf, &bpf), (&bpf, &iptables), (&iptables, &iptables)] {
        assert_allowed(&run(
            "ebpf-needs-iptables-kube-proxy",
            &update(old, new),
            &ipvs,
        ));
    }
    let mut other = felix_default(true);
    other["metadata"]["name"] = json!("node.node-01");
    assert_allowed(&run(
        "ebpf-needs-iptables-kube-proxy",
        &create(&other),
        &ipvs,
    ));
}

#[test]
fn r23_fails_closed_and_takes_settings() {
    let (iptables, bpf) = installations();
    let v = run(
        "ebpf-needs-iptables-kube-proxy",
        &update(&iptables, &bpf),
        &Refusing,
    );
    assert_violation(&v, &["cannot verify", "ConfigMap kube-system/kube-proxy"]);
    let mut moved = kubeadm_kube_proxy("ipvs");
    moved["metadata"]["namespace"] = json!("infra");
    let settings = json!({"namespace": "infra"});
    let v = run_with(
        "ebpf-needs-iptables-kube-proxy",
        &update(&iptables, &bpf),
        &settings,
        &cluster([moved]),
    );
    assert_violation(&v, &["infra/kube-proxy"]);
    let bad = json!({"key": ""});
    assert!(
        entry("ebpf-needs-iptables-kube-proxy")
            .evaluate(b"{}", bad.to_string().as_bytes(), &NoCluster)
            .is_err()
    );
}
