//! R19, R20, R21 (SPEC §5) on operator installs built from the published
//! files of `testdata/modern`, and the operator rules' settings and grants.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_sdk::{Cluster, MemoryCluster};
use tollgate_testkit::modern::{manifest_install, modern, operator_install};
use tollgate_testkit::operator::{
    OPERATOR_USER, by, find_in, imageset, installation, operator_deployment as operator,
    operator_upgrade, with_operator_args as with_args,
};

// --- R19 crds-before-operator ---

#[test]
fn r19_needs_the_v3_32_crds_before_the_operator() {
    let c = cluster(operator_install("v3.31.7"));
    let up = operator_upgrade("v3.31.7", "v3.32.1");
    let warned = run("crds-before-operator", &up, &c);
    assert!(warned.allowed, "{warned:?}");
    assert!(
        warned.warnings[0].contains("clusternetworkpolicies.policy.networking.k8s.io"),
        "{warned:?}"
    );
    assert!(
        warned.warnings[0].ends_with(
            "kubectl apply --server-side --force-conflicts -f v1_crd_projectcalico_org.yaml"
        ),
        "{warned:?}"
    );
    let new = &up["object"];
    for args in [
        json!(["-manage-crds=false"]),
        json!([]),
        json!(["-manage-crds=true", "--manage-crds=false"]),
    ] {
        let request = update(&up["oldObject"], &with_args(new.clone(), args));
        assert_violation(
            &run("crds-before-operator", &request, &c),
            &[
                "kubectl apply --server-side --force-conflicts -f https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v1_crd_projectcalico_org.yaml",
            ],
        );
    }
    // Go flag syntax: a bare flag is true, `=1`/`=T` too; the last one wins.
    for args in [
        json!(["--manage-crds"]),
        json!(["-manage-crds=1"]),
        json!(["-manage-crds=false", "-manage-crds=T"]),
    ] {
        let request = update(&up["oldObject"], &with_args(new.clone(), args));
        let v = run("crds-before-operator", &request, &c);
        assert!(v.allowed && v.warnings.len() == 1, "{v:?}");
    }
    // With the v3.32 CRDs applied first, as the docs say.
    let mut objects = operator_install("v3.31.7");
    objects.extend(modern("v3.32.1", "operator-crds.yaml").iter().map(stored));
    let request = update(
        &up["oldObject"],
        &with_args(new.clone(), json!(["-manage-crds=false"])),
    );
    assert_allowed(&run("crds-before-operator", &request, &cluster(objects)));
    // Releases before v3.32 need no such CRD; a failed read denies.
    assert_allowed(&run(
        "crds-before-operator",
        &operator_upgrade("v3.30.7", "v3.31.7"),
        &Refusing,
    ));
    assert_violation(
        &run("crds-before-operator", &up, &Refusing),
        &["cannot verify"],
    );
}

// --- R20 imageset-for-release ---

#[test]
fn r20_needs_an_imageset_for_the_new_release() {
    let up = operator_upgrade("v3.31.7", "v3.32.1");
    let mut objects = operator_install("v3.31.7");
    assert_allowed(&run("imageset-for-release", &up, &cluster(objects.clone())));
    objects.push(imageset("calico-v3.31.7"));
    assert_violation(
        &run("imageset-for-release", &up, &cluster(objects.clone())),
        &["calico-v3.32.1", "calico-v3.31.7"],
    );
    // Downgrades too ("upgrading … or downgrading").
    let down = operator_upgrade("v3.32.1", "v3.31.7");
    let mut newer = operator_install("v3.32.1");
    newer.push(imageset("calico-v3.32.1"));
    assert_violation(
        &run("imageset-for-release", &down, &cluster(newer)),
        &["calico-v3.31.7"],
    );
    objects.push(imageset("calico-v3.32.1"));
    assert_allowed(&run("imageset-for-release", &up, &cluster(objects)));
    // Same release, other ImageSets only, or a failed read.
    let same = update(
        &operator("v3.32.1"),
        &with_args(operator("v3.32.1"), json!([])),
    );
    assert_allowed(&run("imageset-for-release", &same, &Refusing));
    assert_allowed(&run(
        "imageset-for-release",
        &up,
        &cluster(vec![imageset("tigera-v3.20.0")]),
    ));
    assert_violation(
        &run("imageset-for-release", &up, &Refusing),
        &["cannot verify"],
    );
}

// --- R21 operator-owned ---

#[test]
fn r21_warns_about_hand_edits_of_operator_owned_workloads() {
    let objects = operator_install("v3.32.1");
    for (kind, name) in [
        ("DaemonSet", "calico-node"),
        ("Deployment", "calico-kube-controllers"),
        ("Deployment", "calico-typha"),
    ] {
        let old = find_in(&objects, kind, "calico-system", name);
        let new = with_replicas(old.clone(), 3, 3);
        let request = update(&old, &new);
        let v = run("operator-owned", &request, &MemoryCluster::default());
        assert_violation(&v, &[name, "kubectl edit installation default"]);
        assert!(v.patch.is_none());
        assert_allowed(&run(
            "operator-owned",
            &by(request, OPERATOR_USER),
            &MemoryCluster::default(),
        ));
    }
    // The controllers' status writes are not hand edits.
    let old = find_in(&objects, "DaemonSet", "calico-system", "calico-node");
    let mut status = update(&old, &old);
    status["subResource"] = json!("status");
    assert_allowed(&run("operator-owned", &status, &MemoryCluster::default()));
    // Not owned: the manifest install's workloads, and the operator itself.
    let ds = find_in(
        &manifest_install("v3.32.1", "calico.yaml"),
        "DaemonSet",
        "kube-system",
        "calico-node",
    );
    assert_allowed(&run(
        "operator-owned",
        &update(&ds, &ds),
        &MemoryCluster::default(),
    ));
    assert_allowed(&run(
        "operator-owned",
        &operator_upgrade("v3.31.7", "v3.32.1"),
        &MemoryCluster::default(),
    ));
}

fn with_node_update(strategy: Value) -> Value {
    let mut i = installation("v3.32.1");
    i["spec"]["nodeUpdateStrategy"] = strategy;
    i
}

#[test]
fn r21_repairs_the_installations_node_update_strategy() {
    let c: &dyn Cluster = &MemoryCluster::default();
    let fast = with_node_update(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 1}}),
    );
    for request in [create(&fast), update(&installation("v3.32.1"), &fast)] {
        let v = run("operator-owned", &request, c);
        assert_violation(&v, &["maxUnavailable \"10%\"", "maxSurge 1"]);
        let repaired = patched(&fast, &v);
        assert_eq!(
            repaired["spec"]["nodeUpdateStrategy"]["rollingUpdate"],
            json!({"maxUnavailable": 1, "maxSurge": 0})
        );
    }
    for fine in [
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}),
        json!({"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 5}}),
        json!({"type": "RollingUpdate"}),
    ] {
        assert_allowed(&run("operator-owned", &create(&with_node_update(fine)), c));
    }
    assert_allowed(&run("operator-owned", &create(&installation("v3.32.1")), c));
}

#[test]
fn operator_settings_are_checked() {
    for id in [
        "operator-migration-freeze",
        "operator-migration-same-release",
        "crds-before-operator",
        "imageset-for-release",
        "operator-owned",
    ] {
        let bad = entry(id).evaluate(b"{}", br#"{"operator": {"user": ""}}"#, &Refusing);
        assert!(bad.is_err(), "{id}");
        let unknown = entry(id).evaluate(b"{}", br#"{"operatr": {}}"#, &Refusing);
        assert!(unknown.is_err(), "{id}");
    }
}

/// What a grant of `policies.yaml` covers (as the host checks it).
fn covers(grant: &Value, q: &tollgate_sdk::wire::LookupQuery) -> bool {
    grant["apiVersion"] == q.api_version.as_str()
        && grant["kind"] == q.kind.as_str()
        && match (grant["namespaces"].as_array(), &q.namespace) {
            (None, _) => true,
            (Some(list), Some(ns)) => list.iter().any(|n| n == ns.as_str()),
            (Some(_), None) => false,
        }
}

#[test]
fn operator_rules_read_exactly_what_their_context_grants() {
    let mut objects = manifest_install("v3.31.7", "calico-typha.yaml");
    objects.extend([operator("v3.32.1"), installation("v3.32.1")]);
    let inner = cluster(objects.clone());
    let ds = find_in(&objects, "DaemonSet", "kube-system", "calico-node");
    let requests = [
        delete(&ds),
        create(&installation("v3.32.1")),
        operator_upgrade("v3.31.7", "v3.32.1"),
        create(&installation("v3.32.1")),
    ];
    for id in [
        "operator-migration-freeze",
        "operator-migration-same-release",
        "crds-before-operator",
        "imageset-for-release",
        "operator-owned",
    ] {
        let grants = policy(id)["context"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let recording = Recording::new(&inner);
        for request in &requests {
            run(id, request, &recording);
        }
        let queries = recording.queries.borrow();
        for q in queries.iter() {
            assert!(
                grants.iter().any(|g| covers(g, q)),
                "{id}: reads {q:?} without a grant"
            );
        }
        for g in &grants {
            assert!(
                queries.iter().any(|q| covers(g, q)),
                "{id}: grant {g} is never used"
            );
        }
    }
}

// --- R1, R2, R5 leave the operator's workloads to it (R21) ---

#[test]
fn manifest_rules_leave_operator_owned_workloads_to_the_installation() {
    let installed = operator_install("v3.31.7");
    let c = cluster(installed.clone());
    let node = find_in(&installed, "DaemonSet", "calico-system", "calico-node");
    let ctrl = find_in(
        &installed,
        "Deployment",
        "calico-system",
        "calico-kube-controllers",
    );
    let mut wide = node.clone();
    wide["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 3, "maxSurge": 0}});
    let mut rolling = ctrl.clone();
    rolling["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    rolling["spec"]["replicas"] = json!(2);
    let writes = [
        ("node-one-at-a-time", update(&node, &wide)),
        ("controller-recreate", update(&ctrl, &rolling)),
        ("controller-single-replica", update(&ctrl, &rolling)),
    ];
    for (rule, request) in &writes {
        // The operator writes them as its Installation says.
        assert_allowed(&run(rule, &by(request.clone(), OPERATOR_USER), &c));
        // The same objects without the Installation as owner are the
        // manifest rules' to judge.
        let mut orphan = request.clone();
        for side in ["object", "oldObject"] {
            orphan[side]["metadata"]["ownerReferences"] = json!([]);
        }
        assert!(!run(rule, &orphan, &c).allowed, "{rule}");
    }
    // A human's edit of them is R21's warning.
    let human = by(update(&node, &wide), "jane@example.com");
    let warned = run("operator-owned", &human, &c);
    assert!(
        !warned.allowed && warned.message.unwrap_or_default().contains("Installation"),
        "R21 warns"
    );
}
