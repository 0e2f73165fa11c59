//! The generator of the fixtures of `tests/cases/operator.test.yaml`: its
//! snapshot clusters (`tests/cases/snapshots/operator-*`) and its requests
//! (`tests/cases/operator-requests/`), all built from the published files of
//! `testdata/modern` with `tollgate-testkit`. The test fails when a committed
//! fixture differs from what it generates; `TOLLGATE_BLESS=1 cargo test -p
//! tollgate-calico --test operator_cases` rewrites them.
//!
//! Snapshots leave out the published CustomResourceDefinitions (megabytes
//! that no operator rule reads) except the one R19 looks for.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate_testkit::modern::{manifest_install, modern, modern_doc, operator_install};
use tollgate_testkit::objects::{node, stored, with_image};
use tollgate_testkit::operator::{
    MIGRATION_LABEL, OPERATOR_USER, by, find_in, imageset, installation,
    operator_deployment as operator, operator_upgrade, with_operator_args,
};
use tollgate_testkit::requests::{create, delete, update};

const CNP_CRD: &str = "clusternetworkpolicies.policy.networking.k8s.io";

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn labelled_node(label: Option<&str>) -> Value {
    let mut n = node("worker-1", false, &[]);
    if let Some(value) = label {
        n["metadata"]["labels"] = json!({MIGRATION_LABEL: value});
    }
    n
}

fn slim(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition" || o["metadata"]["name"] == CNP_CRD)
        .collect()
}

fn cnp_crd(tag: &str) -> Value {
    stored(&modern_doc(
        tag,
        "operator-crds.yaml",
        "CustomResourceDefinition",
        CNP_CRD,
    ))
}

/// Snapshot name → objects.
fn snapshots() -> Vec<(&'static str, Vec<Value>)> {
    // v3.31.7 manifest install (with Typha) being migrated by the v3.32.1
    // operator: Installation default created, a node mid-migration.
    let mut migration = manifest_install("v3.31.7", "calico-typha.yaml");
    migration.extend([
        operator("v3.32.1"),
        stored(&installation("v3.32.1")),
        labelled_node(Some("pre-operator")),
    ]);
    // The same manifest install next to the v3.31.7 operator, before the
    // Installation is created.
    let mut same = manifest_install("v3.31.7", "calico.yaml");
    same.push(operator("v3.31.7"));
    // An operator install of v3.31.7 pinning its images with an ImageSet.
    let mut pinned = operator_install("v3.31.7");
    pinned.push(imageset("calico-v3.31.7"));
    // And prepared for v3.32.1: its CRDs applied, its ImageSet created.
    let mut prepared = pinned.clone();
    prepared.extend([cnp_crd("v3.32.1"), imageset("calico-v3.32.1")]);
    vec![
        ("operator-migration", slim(migration)),
        ("operator-before-migration", slim(same)),
        ("operator-v3.31.7", slim(pinned)),
        ("operator-v3.31.7-prepared", slim(prepared)),
    ]
}

/// Request file name → AdmissionRequest.
fn requests() -> Vec<(&'static str, Value)> {
    let kube_system = manifest_install("v3.31.7", "calico-typha.yaml");
    let ds = find_in(&kube_system, "DaemonSet", "kube-system", "calico-node");
    let mut edited = ds.clone();
    edited["metadata"]["annotations"] = json!({"example.com/edited": "true"});
    let typha = find_in(&kube_system, "Deployment", "kube-system", "calico-typha");
    let node_label = update(&labelled_node(Some("pre-operator")), &labelled_node(None));
    let up = operator_upgrade("v3.31.7", "v3.32.1");
    let no_crds = update(
        &up["oldObject"],
        &with_operator_args(up["object"].clone(), json!(["-manage-crds=false"])),
    );
    let owned = find_in(
        &operator_install("v3.31.7"),
        "DaemonSet",
        "calico-system",
        "calico-node",
    );
    let owned_new = with_image(owned.clone(), "calico-node", "quay.io/calico/node:v3.31.0");
    let mut fast = installation("v3.31.7");
    fast["spec"]["nodeUpdateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}});
    vec![
        ("update-kube-system-calico-node.json", update(&ds, &edited)),
        ("delete-kube-system-calico-typha.json", delete(&typha)),
        (
            "delete-kube-system-calico-typha-by-operator.json",
            by(delete(&typha), OPERATOR_USER),
        ),
        ("update-node-migration-label.json", node_label),
        (
            "create-installation-v3.32.1.json",
            create(&installation("v3.32.1")),
        ),
        (
            "create-installation-v3.31.7.json",
            create(&installation("v3.31.7")),
        ),
        ("update-operator-v3.31.7-to-v3.32.1.json", up),
        (
            "update-operator-v3.31.7-to-v3.32.1-manage-crds-false.json",
            no_crds,
        ),
        (
            "update-calico-system-calico-node.json",
            update(&owned, &owned_new),
        ),
        (
            "update-calico-system-calico-node-by-operator.json",
            by(update(&owned, &owned_new), OPERATOR_USER),
        ),
        (
            "create-installation-max-unavailable-10-percent.json",
            create(&fast),
        ),
    ]
}

fn snapshot_text(objects: &[Value]) -> String {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    json_text(&list)
}

fn json_text(v: &Value) -> String {
    // JSON is YAML: the snapshot loader reads either; pretty JSON diffs well.
    format!("{}\n", serde_json::to_string_pretty(v).expect("serialises"))
}

/// Compares `text` with `path`, or writes it when blessing; returns the
/// path when it differs.
fn check(path: &Path, text: &str, bless: bool) -> Option<String> {
    if bless {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    (committed != text).then(|| path.display().to_string())
}

#[test]
fn operator_case_fixtures_are_generated_from_the_published_files() {
    let bless = std::env::var_os("TOLLGATE_BLESS").is_some();
    let dir = cases_dir();
    let mut stale = Vec::new();
    for (name, objects) in snapshots() {
        let path = dir.join("snapshots").join(name).join("cluster.yaml");
        stale.extend(check(&path, &snapshot_text(&objects), bless));
    }
    for (name, request) in requests() {
        let path = dir.join("operator-requests").join(name);
        stale.extend(check(&path, &json_text(&request), bless));
    }
    assert!(
        stale.is_empty(),
        "stale fixtures: {stale:?}; regenerate with\n  \
         TOLLGATE_BLESS=1 cargo test -p tollgate-calico --test operator_cases"
    );
}

#[test]
fn the_published_v3_32_crds_hold_the_crd_r19_needs() {
    assert_eq!(cnp_crd("v3.32.1")["metadata"]["name"], CNP_CRD);
    assert!(
        !modern("v3.31.7", "operator-crds.yaml")
            .iter()
            .any(|o| o["metadata"]["name"] == CNP_CRD)
    );
}
