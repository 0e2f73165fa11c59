//! R15, R16 and "upgrade to Calico X" (SPEC §5), on the published
//! files of `testdata/modern` and the clusters they leave behind.

mod support;

use serde_json::{Value, json};
use support::*;
use tollgate_calico::identify::Identity;
use tollgate_calico::upgrade::{Upgrade, Via, upgrade_of};
use tollgate_sdk::version::Version;
use tollgate_testkit::modern::{manifest_install, modern_doc, operator_install};
use tollgate_testkit::operator::{
    MIGRATION_LABEL, OPERATOR_USER, by, find_in, installation, operator_deployment as operator,
    operator_upgrade,
};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// A manifest install of `manifest_tag` (with Typha) being migrated by the
/// operator of `operator_tag`: `Installation default` created.
fn migrating(manifest_tag: &str, operator_tag: &str) -> Vec<Value> {
    let mut objects = manifest_install(manifest_tag, "calico-typha.yaml");
    objects.push(operator(operator_tag));
    objects.push(stored(&installation(operator_tag)));
    objects
}

#[test]
fn upgrades_through_the_operator_and_the_manifest() {
    let id = Identity::default();
    let up = parse_request(&operator_upgrade("v3.31.7", "v3.32.1"));
    let expected = Upgrade {
        from: Some(v("v3.31.7")),
        to: v("v3.32.1"),
        via: Via::Operator,
    };
    assert_eq!(upgrade_of(&up, &id), Some(expected));
    let down = parse_request(&operator_upgrade("v3.32.1", "v3.31.7"));
    assert_eq!(upgrade_of(&down, &id), None);
    let ds = |tag: &str| modern_doc(tag, "calico.yaml", "DaemonSet", "calico-node");
    let manifest = parse_request(&update(&stored(&ds("v3.30.6")), &served(&ds("v3.31.0"))));
    let expected = Upgrade {
        from: Some(v("v3.30.6")),
        to: v("v3.31.0"),
        via: Via::Manifest,
    };
    assert_eq!(upgrade_of(&manifest, &id), Some(expected));
    // An operator tag outside the table: unknown old release still upgrades,
    // an unknown new one is no upgrade to a known release.
    let unknown = with_image(
        operator("v3.31.7"),
        "tigera-operator",
        "quay.io/tigera/operator:v1.40.99",
    );
    let up = parse_request(&update(&unknown, &operator("v3.32.1")));
    assert_eq!(upgrade_of(&up, &id).map(|u| u.from), Some(None));
    let to_unknown = parse_request(&update(&operator("v3.31.7"), &unknown));
    assert_eq!(upgrade_of(&to_unknown, &id), None);
    // The operator's calico-system calico-node is not the manifest install.
    let objects = operator_install("v3.31.7");
    let owned = find_in(&objects, "DaemonSet", "calico-system", "calico-node");
    let bumped = with_image(owned.clone(), "calico-node", "quay.io/calico/node:v3.32.1");
    assert_eq!(
        upgrade_of(&parse_request(&update(&owned, &bumped)), &id),
        None
    );
    assert_eq!(
        upgrade_of(&parse_request(&create(&operator("v3.32.1"))), &id),
        None
    );
}

// --- R15 operator-migration-freeze ---

#[test]
fn r15_freezes_the_kube_system_workloads_while_migrating() {
    let objects = migrating("v3.32.1", "v3.32.1");
    let c = cluster(objects.clone());
    for (kind, name) in [
        ("DaemonSet", "calico-node"),
        ("Deployment", "calico-kube-controllers"),
        ("Deployment", "calico-typha"),
    ] {
        let old = find_in(&objects, kind, "kube-system", name);
        let edited = with_replicas(old.clone(), 2, 2);
        for request in [update(&old, &edited), delete(&old)] {
            let verdict = run("operator-migration-freeze", &request, &c);
            assert_violation(&verdict, &[name, "kubectl describe tigerastatus calico"]);
            assert_allowed(&run(
                "operator-migration-freeze",
                &by(request, OPERATOR_USER),
                &c,
            ));
        }
    }
}

#[test]
fn r15_freezes_the_node_migration_label() {
    let c = cluster(migrating("v3.32.1", "v3.32.1"));
    let plain = node("worker-1", false, &[]);
    let mut labelled = plain.clone();
    labelled["metadata"]["labels"] = json!({MIGRATION_LABEL: "pre-operator"});
    let request = update(&labelled, &plain);
    assert_violation(
        &run("operator-migration-freeze", &request, &c),
        &[MIGRATION_LABEL],
    );
    assert_allowed(&run(
        "operator-migration-freeze",
        &by(request, OPERATOR_USER),
        &c,
    ));
    let mut other = labelled.clone();
    other["metadata"]["labels"]["team"] = json!("a");
    assert_allowed(&run(
        "operator-migration-freeze",
        &update(&labelled, &other),
        &c,
    ));
}

#[test]
fn r15_allows_when_not_migrating() {
    let manifest = manifest_install("v3.32.1", "calico-typha.yaml");
    let ds = find_in(&manifest, "DaemonSet", "kube-system", "calico-node");
    let request = delete(&ds);
    // No Installation: a plain manifest install.
    assert_allowed(&run(
        "operator-migration-freeze",
        &request,
        &cluster(manifest.clone()),
    ));
    // Installation, but every kube-system workload is already being deleted.
    let mut objects = migrating("v3.32.1", "v3.32.1");
    for o in objects
        .iter_mut()
        .filter(|o| o["metadata"]["namespace"] == "kube-system")
    {
        o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    assert_allowed(&run(
        "operator-migration-freeze",
        &request,
        &cluster(objects),
    ));
    // An operator install's own workloads are R21's business.
    let op = operator_install("v3.32.1");
    let owned = find_in(&op, "DaemonSet", "calico-system", "calico-node");
    assert_allowed(&run(
        "operator-migration-freeze",
        &delete(&owned),
        &cluster(op),
    ));
}

#[test]
fn r15_fails_closed() {
    let ds = find_in(
        &manifest_install("v3.32.1", "calico.yaml"),
        "DaemonSet",
        "kube-system",
        "calico-node",
    );
    let verdict = run("operator-migration-freeze", &delete(&ds), &Refusing);
    assert_violation(&verdict, &["cannot verify"]);
}

// --- R16 operator-migration-same-release ---

fn r16(manifest_tag: &str, operator_tag: &str) -> tollgate_sdk::Verdict {
    let mut objects = manifest_install(manifest_tag, "calico.yaml");
    objects.push(operator(operator_tag));
    run(
        "operator-migration-same-release",
        &create(&installation(operator_tag)),
        &cluster(objects),
    )
}

#[test]
fn r16_migrates_only_from_the_operators_release_line() {
    let denied = r16("v3.31.7", "v3.32.1");
    assert_violation(
        &denied,
        &[
            "v3.31.7",
            "v3.32.1",
            "kubectl apply --server-side --force-conflicts -f https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/calico.yaml",
        ],
    );
    assert_allowed(&r16("v3.31.7", "v3.31.7"));
    // "$[version]" is the minor: a patch apart is supported.
    assert_allowed(&r16("v3.31.0", "v3.31.7"));
    assert_allowed(&r16("v3.30.6", "v3.30.7"));
    // A manifest newer than the operator: run the matching operator.
    assert_violation(&r16("v3.32.1", "v3.31.7"), &["tigera/operator v1.42.3"]);
}

#[test]
fn r16_without_a_manifest_install_or_readable_releases() {
    let request = create(&installation("v3.32.1"));
    // A fresh operator install: nothing to migrate.
    assert_allowed(&run(
        "operator-migration-same-release",
        &request,
        &cluster(vec![operator("v3.32.1")]),
    ));
    // No operator, or an operator outside the table: cannot tell, warns.
    let manifest = manifest_install("v3.31.7", "calico.yaml");
    let v = run(
        "operator-migration-same-release",
        &request,
        &cluster(manifest.clone()),
    );
    assert!(
        v.allowed && v.warnings[0].contains("no Deployment tigera-operator/tigera-operator"),
        "{v:?}"
    );
    let mut objects = manifest;
    objects.push(with_image(
        operator("v3.32.1"),
        "tigera-operator",
        "quay.io/tigera/operator:v9.9.9",
    ));
    let v = run(
        "operator-migration-same-release",
        &request,
        &cluster(objects),
    );
    assert!(v.allowed && v.warnings[0].contains("v9.9.9"), "{v:?}");
    // Only the CREATE of Installation default.
    assert_allowed(&run(
        "operator-migration-same-release",
        &update(&installation("v3.32.1"), &installation("v3.32.1")),
        &Refusing,
    ));
    assert_violation(
        &run("operator-migration-same-release", &request, &Refusing),
        &["cannot verify"],
    );
}
