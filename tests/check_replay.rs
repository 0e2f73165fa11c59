//! `tollgate check -f` replays its input as `kubectl apply -f` does (SPEC
//! §5), on the files Calico publishes today (`testdata/modern`) against
//! clusters built from them: each object meets the cluster with the earlier
//! ones stored (a CRD before its resources, the DaemonSet before the
//! Deployment, an object given twice), a denied one is not stored, and a
//! warning a later object resolves is transient and does not count.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use tollgate_testkit::modern::{manifest_install, modern_path, write_snapshot};

use super::{check, json, object, text};

fn published(tag: &str, file: &str) -> String {
    modern_path(tag, file).display().to_string()
}

/// A snapshot directory of `objects`.
fn snapshot(objects: &[Value]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), objects);
    dir
}

fn shown(dir: &Path) -> String {
    dir.display().to_string()
}

/// `(policy, verdict, transient)` of every finding of `object`.
fn findings(doc: &Value, name: &str) -> Vec<(String, String, bool)> {
    object(doc, name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_owned();
            (s("policy"), s("verdict"), f["transient"].as_bool().unwrap())
        })
        .collect()
}

const NODE: &str = "DaemonSet kube-system/calico-node";
const CONTROLLER: &str = "Deployment kube-system/calico-kube-controllers";

fn skew(transient: bool) -> (String, String, bool) {
    ("version-skew".into(), "warn".into(), transient)
}

#[test]
fn a_v3_31_0_to_v3_32_1_upgrade_is_admitted_with_its_skew_transient() {
    let cluster = snapshot(&manifest_install("v3.31.0", "calico.yaml"));
    let file = published("v3.32.1", "calico.yaml");
    let args = ["-f", &file, "--cluster-snapshot", &shown(cluster.path())];
    let output = check(&args);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("UPDATE {NODE}")))
        .unwrap_or_else(|| panic!("no calico-node row: {stdout}"));
    assert!(
        row.contains("version-skew") && row.contains("warn (transient)"),
        "{row}"
    );
    assert!(
        !stdout.contains(&format!("UPDATE {CONTROLLER}")),
        "the DaemonSet was applied before the Deployment: {stdout}"
    );
    assert!(
        stdout.contains(": 0 denied, 0 repaired, 0 findings, 1 transient\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: admitted\n"), "{stdout}");

    let output = check(&[&args[..], &["-o", "json"]].concat());
    assert_eq!(output.status.code(), Some(0));
    let doc = json(&output);
    assert_eq!(
        (doc["allowed"].clone(), doc["findings"].clone()),
        (true.into(), 0.into())
    );
    assert_eq!(doc["transient"], 1);
    assert_eq!(findings(&doc, NODE), [skew(true)]);
    assert_eq!(findings(&doc, CONTROLLER), []);
    let every = doc["objects"].as_array().unwrap().iter();
    let marked = every.flat_map(|o| o["findings"].as_array().unwrap());
    assert!(
        marked.into_iter().all(|f| f["transient"].is_boolean()),
        "{doc:#}"
    );
}

#[test]
fn a_v3_28_0_to_v3_32_1_upgrade_counts_only_the_config_restart() {
    let cluster = snapshot(&manifest_install("v3.28.0", "calico.yaml"));
    let file = published("v3.32.1", "calico.yaml");
    let output = check(&[
        "-f",
        &file,
        "--cluster-snapshot",
        &shown(cluster.path()),
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    assert_eq!(findings(&doc, NODE), [skew(true)]);
    assert_eq!(findings(&doc, CONTROLLER), []);
    // R13 reads no other object: nothing later in the file can resolve it.
    let config = "ConfigMap kube-system/calico-config";
    assert_eq!(
        findings(&doc, config),
        [("config-restart".into(), "warn".into(), false)]
    );
    assert_eq!(
        (doc["findings"].clone(), doc["transient"].clone()),
        (1.into(), 1.into())
    );
}

#[test]
fn a_crd_earlier_in_the_input_serves_its_resources() {
    let crds = published("v3.32.1", "operator-crds.yaml");
    let resources = published("v3.32.1", "custom-resources.yaml");
    let output = check(&["-f", &crds, "-f", &resources, "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    let installation = object(&doc, "Installation default");
    assert_eq!(installation["operation"], "CREATE");
    assert_eq!(
        installation["namespace"],
        Value::Null,
        "the CRD's scope is Cluster"
    );
    // Without its CRD, Tollgate cannot know the scope and guesses namespaced.
    let output = check(&["-f", &resources, "-o", "json"]);
    assert_eq!(
        object(&json(&output), "Installation default")["namespace"],
        "default"
    );

    // R19's lookup sees the CRD applied before the operator: no warning;
    // applied after it, the warning is transient.
    let cluster = snapshot(&manifest_install("v3.31.0", "tigera-operator.yaml"));
    let operator = published("v3.32.1", "tigera-operator.yaml");
    let at = shown(cluster.path());
    let name = "Deployment tigera-operator/tigera-operator";
    let crds_first = check(&[
        "-f",
        &crds,
        "-f",
        &operator,
        "--cluster-snapshot",
        &at,
        "-o",
        "json",
    ]);
    assert_eq!(crds_first.status.code(), Some(0));
    assert_eq!(findings(&json(&crds_first), name), []);
    let operator_first = check(&[
        "-f",
        &operator,
        "-f",
        &crds,
        "--cluster-snapshot",
        &at,
        "-o",
        "json",
    ]);
    assert_eq!(operator_first.status.code(), Some(0));
    let doc = json(&operator_first);
    let crds_later = [("crds-before-operator".into(), "warn".into(), true)];
    assert_eq!(findings(&doc, name), crds_later);
    let alone = check(&["-f", &operator, "--cluster-snapshot", &at, "-o", "json"]);
    let crds_never = [("crds-before-operator".into(), "warn".into(), false)];
    assert_eq!(findings(&json(&alone), name), crds_never);
}

/// The published calico-node DaemonSet of `tag` with one more environment
/// variable, in a file of its own (`dir`, not the snapshot's): an UPDATE of
/// a kube-system object that R15 freezes.
fn edited_node(tag: &str, dir: &Path) -> String {
    let text = std::fs::read_to_string(modern_path(tag, "calico.yaml")).unwrap();
    let node: Value = serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .find(|d: &Value| d["kind"] == "DaemonSet")
        .unwrap();
    let mut node = node;
    let env = node["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    env.push(serde_json::json!({"name": "FELIX_LOGSEVERITYSCREEN", "value": "Debug"}));
    let path = dir.join("calico-node.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&node).unwrap()).unwrap();
    shown(&path)
}

#[test]
fn a_denied_object_is_not_stored_for_later_lookups() {
    let operator = published("v3.32.1", "tigera-operator.yaml");
    let resources = published("v3.32.1", "custom-resources.yaml");
    let freeze = "operator-migration-freeze";
    // From v3.31.7, R16 denies the Installation: the migration never
    // starts, so the later edit of kube-system/calico-node is not frozen.
    let cluster = snapshot(&manifest_install("v3.31.7", "calico.yaml"));
    let edits = tempfile::tempdir().unwrap();
    let node = edited_node("v3.31.7", edits.path());
    let args = ["-f", &operator, "-f", &resources, "-f", &node];
    let at = shown(cluster.path());
    let output = check(&[&args[..], &["--cluster-snapshot", &at, "-o", "json"]].concat());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output).1);
    let doc = json(&output);
    let installation = findings(&doc, "Installation default");
    assert_eq!(
        installation[0].0, "operator-migration-same-release",
        "{doc:#}"
    );
    assert_eq!(installation[0].1, "deny");
    assert!(!installation[0].2, "denials are never transient");
    assert!(
        findings(&doc, NODE).iter().all(|f| f.0 != freeze),
        "{doc:#}"
    );
    assert_eq!(object(&doc, NODE)["allowed"], true);

    // From v3.32.1 the Installation is admitted and stored: the edit is.
    let cluster = snapshot(&manifest_install("v3.32.1", "calico.yaml"));
    let node = edited_node("v3.32.1", edits.path());
    let args = ["-f", &operator, "-f", &resources, "-f", &node];
    let at = shown(cluster.path());
    let output = check(&[&args[..], &["--cluster-snapshot", &at, "-o", "json"]].concat());
    assert_eq!(output.status.code(), Some(1));
    let doc = json(&output);
    assert_eq!(object(&doc, "Installation default")["allowed"], true);
    assert_eq!(
        findings(&doc, NODE),
        [(freeze.into(), "deny".into(), false)]
    );
}

#[test]
fn an_object_given_twice_is_an_update_of_the_first() {
    let old = published("v3.28.0", "calico.yaml");
    let new = published("v3.32.1", "calico.yaml");
    let output = check(&["-f", &old, "-f", &new, "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    let config: Vec<&Value> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object"] == "ConfigMap kube-system/calico-config")
        .collect();
    assert_eq!(config.len(), 2);
    assert_eq!(config[0]["operation"], "CREATE");
    assert_eq!(config[0]["findings"], serde_json::json!([]));
    // Against the v3.28.0 ConfigMap stored a moment before: R13 sees the
    // change of cni_network_config.
    assert_eq!(config[1]["operation"], "UPDATE");
    assert_eq!(
        config[1]["findings"][0]["policy"], "config-restart",
        "{doc:#}"
    );
    let output = check(&["-f", &new, "-f", &new]);
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("76 objects (38 CREATE, 38 UPDATE)"),
        "{stdout}"
    );
}
