//! R8–R10: the upgrade boundaries, on neighbouring corpus releases.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::rules::r08_kdd_v25_migration::{KddMigrationSettings, kdd_v25_migration};
use tollgate_calico::rules::r09_v1_networkpolicy_semantics::{
    SemanticsSettings, v1_networkpolicy_semantics,
};
use tollgate_calico::rules::r10_v3_needs_v265::{ETCD_WARNING, V3Settings, v3_needs_v265};
use tollgate_sdk::NoCluster;

fn ds(dir: &str) -> Value {
    doc(&format!("{dir}/calico.yaml"), "DaemonSet", "calico-node")
}

/// UPDATE of calico-node from one corpus manifest to another, as served.
fn upgrade(from: &str, to: &str) -> Value {
    update(&stored(&ds(from)), &served(&ds(to)))
}

/// UPDATE as the manifests were published (extensions/v1beta1, no defaults).
fn upgrade_published(from: &str, to: &str) -> Value {
    update(&ds(from), &ds(to))
}

fn tpr_data() -> Vec<Value> {
    vec![
        calico_data("projectcalico.org/v1", "GlobalConfig", "clusterguid"),
        calico_data("projectcalico.org/v1", "IpPool", "192-168-0-0-16"),
        calico_data("projectcalico.org/v1", "GlobalBgpConfig", "asnumber"),
        calico_data("projectcalico.org/v1", "GlobalBgpPeer", "10-0-0-1"),
    ]
}

fn crd_copies() -> Vec<Value> {
    vec![
        calico_data(
            "crd.projectcalico.org/v1",
            "GlobalFelixConfig",
            "clusterguid",
        ),
        calico_data("crd.projectcalico.org/v1", "IPPool", "192-168-0-0-16"),
        calico_data("crd.projectcalico.org/v1", "GlobalBGPConfig", "asnumber"),
        calico_data("crd.projectcalico.org/v1", "BGPPeer", "10-0-0-1"),
    ]
}

fn migration_job(status: Value) -> Value {
    let mut job = find(
        &read_docs(&corpus_path("upgrade-v2.5/manifests/upgrade-job.yaml")),
        "Job",
        "calico-upgrade-v2.5",
    );
    job["metadata"]["namespace"] = json!("default");
    job["status"] = status;
    job
}

// ---- R8 kdd-v2.5-migration ---------------------------------------------------

#[test]
fn r8_kdd_v2_4_to_v2_5_needs_migration_evidence() {
    let captured =
        review("02-upgrade-v2.4-to-v2.5-kdd--validate--update-daemonset-calico-node.json");
    for request in [
        captured,
        upgrade("v2.4/kdd", "v2.5/kdd"),
        upgrade_published("v2.4/kdd", "v2.5/kdd"),
        upgrade("v2.4/kdd-policy-only", "v2.5/kdd-policy-only"),
    ] {
        let v = run("kdd-v2.5-migration", &request, &cluster(tpr_data()));
        assert_violation(
            &v,
            &[
                "Kubernetes datastore",
                "v2.4.1 to v2.5.1",
                "GlobalConfig clusterguid",
                "IpPool 192-168-0-0-16",
                "calicoctl_v1.4 get ippools -o yaml > ippool.yaml",
                "kubectl apply -f https://raw.githubusercontent.com/projectcalico/calico/master/upgrade/v2.5/manifests/upgrade-job.yaml",
                "kubectl describe job/calico-upgrade-v2.5",
                "kubectl get globalfelixconfigs.crd.projectcalico.org -o wide",
                "rbac-kdd.yaml",
            ],
        );
        let mirrored = tpr_data().into_iter().chain(crd_copies());
        assert_allowed(&run("kdd-v2.5-migration", &request, &cluster(mirrored)));
        let done = tpr_data()
            .into_iter()
            .chain([migration_job(json!({"succeeded": 1}))]);
        assert_allowed(&run("kdd-v2.5-migration", &request, &cluster(done)));
        let complete = tpr_data().into_iter().chain([migration_job(
            json!({"conditions": [{"type": "Complete", "status": "True"}]}),
        )]);
        assert_allowed(&run("kdd-v2.5-migration", &request, &cluster(complete)));
    }
}

#[test]
fn r8_partial_or_failed_migrations_are_not_evidence() {
    let request = upgrade("v2.4/kdd", "v2.5/kdd");
    let failed = tpr_data()
        .into_iter()
        .chain([migration_job(json!({"failed": 1}))]);
    assert_violation(
        &run("kdd-v2.5-migration", &request, &cluster(failed)),
        &["GlobalConfig clusterguid"],
    );
    let partial = tpr_data()
        .into_iter()
        .chain(crd_copies().into_iter().take(2));
    let v = run("kdd-v2.5-migration", &request, &cluster(partial));
    assert_violation(&v, &["GlobalBgpConfig asnumber", "GlobalBgpPeer 10-0-0-1"]);
    assert!(!v.message.unwrap().contains("GlobalConfig clusterguid"));
    // A CRD object of another name proves nothing.
    let renamed = tpr_data().into_iter().chain([calico_data(
        "crd.projectcalico.org/v1",
        "GlobalFelixConfig",
        "default",
    )]);
    assert_violation(
        &run("kdd-v2.5-migration", &request, &cluster(renamed)),
        &["GlobalConfig clusterguid"],
    );
    // The Job in a namespace the settings do not name is not looked at.
    let settings = json!({"jobNamespaces": ["kube-system"]});
    let elsewhere = tpr_data()
        .into_iter()
        .chain([migration_job(json!({"succeeded": 1}))]);
    assert!(
        !run_with(
            "kdd-v2.5-migration",
            &request,
            &settings,
            &cluster(elsewhere)
        )
        .allowed
    );
}

#[test]
fn r8_only_kdd_updates_crossing_v2_5() {
    let data = || cluster(tpr_data());
    // Nothing to migrate: allowed.
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &upgrade("v2.4/kdd", "v2.5/kdd"),
        &cluster([]),
    ));
    // etcd is not concerned.
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &upgrade("v2.4/etcd", "v2.5/etcd"),
        &data(),
    ));
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &upgrade("v2.4/etcd-kubeadm-1.6", "v2.5/etcd-kubeadm-1.6"),
        &data(),
    ));
    // Other KDD steps do not cross.
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &upgrade("v2.3/kdd", "v2.4/kdd"),
        &data(),
    ));
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &upgrade("v2.5/kdd", "v2.6/kdd"),
        &data(),
    ));
    let dry_run = review(
        "16-server-dry-run-upgrade-v2.5-to-v2.6-kdd--validate--update-daemonset-calico-node.json",
    );
    assert_allowed(&run("kdd-v2.5-migration", &dry_run, &data()));
    // Skipping ahead still crosses; so does leaving an unversioned image.
    assert!(
        !run(
            "kdd-v2.5-migration",
            &upgrade("v2.2/kdd", "v3.1/kdd"),
            &data()
        )
        .allowed
    );
    let mut latest = stored(&ds("v2.4/kdd"));
    latest["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("quay.io/calico/node:latest");
    let v = run(
        "kdd-v2.5-migration",
        &update(&latest, &served(&ds("v2.5/kdd"))),
        &data(),
    );
    assert_violation(&v, &["an unversioned release"]);
    // A create is not an upgrade.
    assert_allowed(&run(
        "kdd-v2.5-migration",
        &create(&served(&ds("v2.5/kdd"))),
        &data(),
    ));
}

#[test]
fn r8_fails_closed_and_direct_call_agrees() {
    let request = upgrade("v2.4/kdd", "v2.5/kdd");
    assert_violation(
        &run("kdd-v2.5-migration", &request, &Refusing),
        &["cannot verify", "batch/v1 Job"],
    );
    let c = cluster(tpr_data());
    let direct = kdd_v25_migration(
        &parse_request(&request),
        &KddMigrationSettings::default(),
        &c,
    );
    assert_eq!(direct, run("kdd-v2.5-migration", &request, &c));
    assert!(
        !entry("kdd-v2.5-migration")
            .check_settings(br#"{"boundary": "2.5"}"#)
            .valid
    );
    assert!(
        entry("kdd-v2.5-migration")
            .check_settings(br#"{"boundary": "v2.5.0"}"#)
            .valid
    );
}

// ---- R9 v1-networkpolicy-semantics -------------------------------------------

/// Namespaces as the guide describes them before preparation: `web` has a
/// policy but no DefaultDeny (it would become active), `legacy` is
/// DefaultDeny without a default-deny policy (it would lose isolation).
fn unprepared() -> Vec<Value> {
    vec![
        namespace("default", false),
        namespace("kube-system", false),
        namespace("web", false),
        namespace("legacy", true),
        network_policy(
            "web",
            "allow-frontend",
            json!({"podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}], "policyTypes": ["Ingress"]}),
        ),
    ]
}

/// After the guide's steps: web's policy deleted, legacy holds default-deny.
fn prepared() -> Vec<Value> {
    vec![
        namespace("default", false),
        namespace("kube-system", false),
        namespace("web", false),
        namespace("legacy", true),
        default_deny_policy("legacy"),
    ]
}

#[test]
fn r9_node_upgrades_crossing_v1_semantics() {
    for (from, to, boundary) in [
        ("v2.2/kdd", "v2.3/kdd", "v2.3.0"),
        ("v2.2/kdd-policy-only", "v2.3/kdd-policy-only", "v2.3.0"),
        ("v2.3/etcd", "v2.4/etcd", "v2.4.0"),
        ("v2.3/etcd-kubeadm-1.6", "v2.4/etcd-kubeadm-1.6", "v2.4.0"),
    ] {
        for request in [upgrade(from, to), upgrade_published(from, to)] {
            let v = run(
                "v1-networkpolicy-semantics",
                &request,
                &cluster(unprepared()),
            );
            assert_violation(
                &v,
                &[
                    boundary,
                    "web",
                    "kubectl delete networkpolicy --all -n NAMESPACE",
                    "legacy",
                    "\"name\":\"default-deny\"",
                    "Upgrading to v1 NetworkPolicy semantics",
                ],
            );
            assert_allowed(&run(
                "v1-networkpolicy-semantics",
                &request,
                &cluster(prepared()),
            ));
        }
    }
}

#[test]
fn r9_steps_that_do_not_cross() {
    let c = || cluster(unprepared());
    for (from, to) in [
        ("v2.2/etcd", "v2.3/etcd"),
        ("v2.3/kdd", "v2.4/kdd"),
        ("v2.4/etcd", "v2.5/etcd"),
        ("v2.1/kdd", "v2.2/kdd"),
        ("v3.0/kdd", "v3.1/kdd"),
    ] {
        assert_allowed(&run("v1-networkpolicy-semantics", &upgrade(from, to), &c()));
    }
    assert_allowed(&run(
        "v1-networkpolicy-semantics",
        &create(&served(&ds("v2.4/etcd"))),
        &c(),
    ));
}

#[test]
fn r9_each_preparation_step_is_needed() {
    let request = upgrade("v2.3/etcd", "v2.4/etcd");
    let only_web: Vec<Value> = prepared()
        .into_iter()
        .chain([unprepared().pop().unwrap()])
        .collect();
    let v = run("v1-networkpolicy-semantics", &request, &cluster(only_web));
    assert_violation(&v, &["web"]);
    assert!(
        !v.message
            .unwrap()
            .contains("DefaultDeny namespaces that would lose")
    );
    let no_default_deny: Vec<Value> = prepared()
        .into_iter()
        .filter(|o| o["kind"] != "NetworkPolicy")
        .collect();
    let v = run(
        "v1-networkpolicy-semantics",
        &request,
        &cluster(no_default_deny),
    );
    assert_violation(
        &v,
        &["DefaultDeny namespaces that would lose their isolation: legacy"],
    );
    // The guide's tutorial policy, as published (podSelector: null), counts.
    let mut tutorial = doc(
        "v2.4/tutorials/stars-policy/default-deny.yaml",
        "NetworkPolicy",
        "default-deny",
    );
    tutorial["metadata"]["namespace"] = json!("legacy");
    tutorial["apiVersion"] = json!("networking.k8s.io/v1");
    let with_tutorial: Vec<Value> = prepared()
        .into_iter()
        .filter(|o| o["kind"] != "NetworkPolicy")
        .chain([tutorial])
        .collect();
    assert_allowed(&run(
        "v1-networkpolicy-semantics",
        &request,
        &cluster(with_tutorial),
    ));
    // A malformed annotation is not DefaultDeny: the policy there is a problem.
    let mut odd = namespace("odd", false);
    odd["metadata"]["annotations"] =
        json!({"net.beta.kubernetes.io/network-policy": "DefaultDeny"});
    let objs = prepared()
        .into_iter()
        .chain([odd, default_deny_policy("odd")]);
    assert_violation(
        &run("v1-networkpolicy-semantics", &request, &cluster(objs)),
        &["odd"],
    );
}

#[test]
fn r9_controller_upgrades_crossing_v0_7_0() {
    let ctrl = |dir: &str| {
        doc(
            &format!("{dir}/etcd/calico.yaml"),
            "Deployment",
            "calico-policy-controller",
        )
    };
    let request = update(&stored(&ctrl("v2.3")), &served(&ctrl("v2.4")));
    assert_violation(
        &run(
            "v1-networkpolicy-semantics",
            &request,
            &cluster(unprepared()),
        ),
        &["v0.6.0", "v0.7.0", "calico/kube-policy-controller v0.7.0"],
    );
    assert_allowed(&run(
        "v1-networkpolicy-semantics",
        &request,
        &cluster(prepared()),
    ));
    let standalone = update(
        &doc(
            "v2.3/policy-controller.yaml",
            "Deployment",
            "calico-policy-controller",
        ),
        &doc(
            "v2.4/policy-controller.yaml",
            "Deployment",
            "calico-policy-controller",
        ),
    );
    assert!(
        !run(
            "v1-networkpolicy-semantics",
            &standalone,
            &cluster(unprepared())
        )
        .allowed
    );
    // v0.7.0 to v0.7.0 (v2.4 → v2.5) does not cross.
    let same = update(&stored(&ctrl("v2.4")), &served(&ctrl("v2.5")));
    assert_allowed(&run(
        "v1-networkpolicy-semantics",
        &same,
        &cluster(unprepared()),
    ));
    // The v1.6 ReplicaSet moved straight to calico/kube-controllers crosses.
    let rs = stored(&doc(
        "v1.6/policy-controller.yaml",
        "ReplicaSet",
        "calico-policy-controller",
    ));
    let mut moved = rs.clone();
    moved["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("quay.io/calico/kube-controllers:v1.0.2");
    assert!(
        !run(
            "v1-networkpolicy-semantics",
            &update(&rs, &moved),
            &cluster(unprepared())
        )
        .allowed
    );
}

#[test]
fn r9_fails_closed_and_direct_call_agrees() {
    let request = upgrade("v2.2/kdd", "v2.3/kdd");
    assert_violation(
        &run("v1-networkpolicy-semantics", &request, &Refusing),
        &["cannot verify"],
    );
    let c = cluster(unprepared());
    let direct =
        v1_networkpolicy_semantics(&parse_request(&request), &SemanticsSettings::default(), &c);
    assert_eq!(direct, run("v1-networkpolicy-semantics", &request, &c));
    // A threshold moved by settings moves the boundary.
    let settings = json!({"kddBoundary": "v2.2.0"});
    assert_allowed(&run_with(
        "v1-networkpolicy-semantics",
        &request,
        &settings,
        &c,
    ));
}

// ---- R10 v3-needs-v2.6.5 -------------------------------------------------------

#[test]
fn r10_v3_only_from_v2_6_5() {
    for variant in ["etcd", "kdd", "kdd-policy-only"] {
        for target in ["v3.0", "v3.1"] {
            let from_262 = upgrade(&format!("v2.6.2/{variant}"), &format!("{target}/{variant}"));
            let v = run("v3-needs-v2.6.5", &from_262, &NoCluster);
            assert_violation(
                &v,
                &[
                    "Calico v2.6.2",
                    "v2.6.5",
                    "do not skip this step",
                    "quay.io/calico/node:v2.6.5",
                ],
            );
            assert_eq!(
                v.warnings.contains(&ETCD_WARNING.to_owned()),
                variant == "etcd",
                "{variant}"
            );
            let from_265 = upgrade(&format!("v2.6/{variant}"), &format!("{target}/{variant}"));
            let v = run("v3-needs-v2.6.5", &from_265, &NoCluster);
            assert!(v.allowed, "{variant} {target}: {v:?}");
            assert_eq!(v.warnings.len(), usize::from(variant == "etcd"));
        }
    }
    assert!(
        !run(
            "v3-needs-v2.6.5",
            &upgrade("v2.6.2/etcd-kubeadm-1.6", "v3.0/etcd-kubeadm-1.7"),
            &NoCluster
        )
        .allowed
    );
    assert!(
        !run(
            "v3-needs-v2.6.5",
            &upgrade_published("v2.5/kdd", "v3.1/kdd"),
            &NoCluster
        )
        .allowed
    );
}

#[test]
fn r10_other_steps_and_unknown_versions() {
    for (from, to) in [
        ("v3.0/etcd", "v3.1/etcd"),
        ("v2.6.2/etcd", "v2.6/etcd"),
        ("v2.5/kdd", "v2.6/kdd"),
    ] {
        let v = run("v3-needs-v2.6.5", &upgrade(from, to), &NoCluster);
        assert!(v.allowed && v.warnings.is_empty(), "{from} → {to}: {v:?}");
    }
    let mut liquid = stored(&ds("v2.6/etcd"));
    liquid["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(r#"quay.io/calico/node:{% include version component="calico/node" %}"#);
    let v = run(
        "v3-needs-v2.6.5",
        &update(&liquid, &served(&ds("v3.0/etcd"))),
        &NoCluster,
    );
    assert_violation(&v, &["cannot be confirmed"]);
    assert!(
        !entry("v3-needs-v2.6.5")
            .check_settings(br#"{"minimum": "v3.0.0", "target": "v3.0.0"}"#)
            .valid
    );
    let direct = v3_needs_v265(
        &parse_request(&upgrade("v2.6.2/kdd", "v3.0/kdd")),
        &V3Settings::default(),
        &NoCluster,
    );
    assert!(!direct.allowed);
    assert!(ETCD_WARNING.chars().count() <= WARNING_MAX);
}
