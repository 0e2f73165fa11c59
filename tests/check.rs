//! `tollgate check` through the real binary, on real upgrades of the corpus
//! against the snapshots of `testdata/snapshots` (captured from a real API
//! server): the Kubernetes-datastore v2.4 → v2.5 upgrade is refused until
//! the data is migrated, a RollingUpdate policy controller is repaired and
//! then validates, and unusable input exits 2 naming the file and line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tollgate_tests as support;

/// The replay of an input as `kubectl apply -f` applies it.
mod check_replay;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

const V25_KDD: &str = "corpus/manifests/v2.5/kdd/calico.yaml";

fn tollgate() -> Command {
    let mut command = Command::new(support::binary::tollgate_bin());
    let cache = support::binary::target_tmp().join("tollgate-module-cache");
    command
        .env("XDG_CACHE_HOME", cache)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    command
}

/// `tollgate check ARGS…` with `stdin` on its standard input.
fn check_with(args: &[&str], stdin: &str) -> Output {
    let mut child = tollgate()
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tollgate check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait")
}

fn check(args: &[&str]) -> Output {
    check_with(args, "")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path(rel: &str) -> String {
    testdata(rel).display().to_string()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("-o json is not JSON ({e}): {}", text(output).0);
    })
}

/// The result of the object named `name` (`Kind namespace/name`).
fn object<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["object"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
}

#[test]
fn kdd_v24_to_v25_without_the_migration_is_denied_and_names_it() {
    let snapshot = path("snapshots/kdd-v2.4-not-migrated");
    let output = check(&["-f", &path(V25_KDD), "--cluster-snapshot", &snapshot]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "stderr is for problems only: {stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("UPDATE DaemonSet kube-system/calico-node"))
        .unwrap_or_else(|| panic!("no calico-node row: {stdout}"));
    for part in [
        "kdd-v2.5-migration",
        "validate",
        "deny",
        "GlobalConfig clusterguid, IpPool 192-168-0-0-16",
        "Migrate first",
        "upgrade-job.yaml",
    ] {
        assert!(row.contains(part), "{part:?} missing from {row}");
    }
    assert!(!stdout.contains('\x1b'), "no colour when not a terminal");
    // The object is named with where it was read; the rest were CREATEs
    // (not in the cluster) or UPDATEs that nothing objects to.
    assert!(
        stdout.contains(&format!(
            "denied: UPDATE DaemonSet kube-system/calico-node ({}:43)",
            path(V25_KDD)
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("8 objects (5 CREATE, 3 UPDATE)"),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: DENIED\n"), "{stdout}");

    let output = check(&[
        "-f",
        &path(V25_KDD),
        "--cluster-snapshot",
        &snapshot,
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let doc = json(&output);
    assert_eq!(doc["allowed"], false);
    let node = object(&doc, "DaemonSet kube-system/calico-node");
    assert_eq!(node["operation"], "UPDATE");
    assert_eq!(node["allowed"], false);
    assert_eq!(node["apiVersion"], "extensions/v1beta1");
    let findings = node["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{node:#}");
    assert_eq!(findings[0]["policy"], "kdd-v2.5-migration");
    assert_eq!(findings[0]["verdict"], "deny");
    assert_eq!(findings[0]["stage"], "validate");
    let config = object(&doc, "ConfigMap kube-system/calico-config");
    assert_eq!(config["operation"], "UPDATE");
    let crd = object(
        &doc,
        "CustomResourceDefinition ippools.crd.projectcalico.org",
    );
    assert_eq!(crd["operation"], "CREATE");
}

#[test]
fn kdd_v24_to_v25_after_the_migration_is_admitted() {
    let snapshot = path("snapshots/kdd-v2.4-migrated");
    let output = check(&["-f", &path(V25_KDD), "--cluster-snapshot", &snapshot]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("kdd-v2.5-migration"), "{stdout}");
    assert!(stdout.contains("0 denied"), "{stdout}");
    assert!(stdout.ends_with("result: admitted\n"), "{stdout}");
    let output = check(&[
        "-f",
        &path(V25_KDD),
        "--cluster-snapshot",
        &snapshot,
        "-o",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let doc = json(&output);
    assert_eq!(doc["allowed"], true);
    let node = object(&doc, "DaemonSet kube-system/calico-node");
    assert_eq!(
        node["operation"], "UPDATE",
        "the snapshot's DaemonSet is found"
    );
    assert_eq!(node["findings"], serde_json::json!([]));
}

#[test]
fn without_a_cluster_every_object_is_a_create() {
    let output = check(&["-f", &path(V25_KDD), "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    let objects = doc["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 8);
    assert!(
        objects.iter().all(|o| o["operation"] == "CREATE"),
        "{doc:#}"
    );

    // A directory: its manifest files in name order (calico.yaml, then
    // rbac-kdd.yaml), each object with its own file and line.
    let dir = path("corpus/manifests/v2.5/kdd");
    let output = check(&["-f", &dir, "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    let objects = doc["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 10, "{doc:#}");
    let origins: Vec<&str> = objects
        .iter()
        .map(|o| o["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins[0], format!("{}:8", path(V25_KDD)));
    assert_eq!(origins[8], format!("{dir}/rbac-kdd.yaml:3"));
    assert_eq!(origins[9], format!("{dir}/rbac-kdd.yaml:59"));
}

/// The corpus's v2.5 policy controller with the strategy the guide forbids
/// (every published controller manifest is already `Recreate`).
fn rolling_update_controller() -> String {
    let published =
        std::fs::read_to_string(testdata("corpus/manifests/v2.5/policy-controller.yaml"))
            .expect("corpus policy controller");
    assert!(published.contains("    type: Recreate\n"));
    published.replace("    type: Recreate\n", "    type: RollingUpdate\n")
}

#[test]
fn a_rolling_update_policy_controller_is_repaired_and_then_validates() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("policy-controller.yaml");
    std::fs::write(&manifest, rolling_update_controller()).unwrap();
    let manifest = manifest.display().to_string();
    let output = check(&["-f", &manifest]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("CREATE Deployment kube-system/calico-policy-controller"))
        .unwrap_or_else(|| panic!("no controller row: {stdout}"));
    assert!(lines[at].contains("controller-recreate"), "{stdout}");
    assert!(lines[at].contains("mutate"), "{stdout}");
    assert!(lines[at].contains("patch"), "{stdout}");
    assert!(
        lines[at + 1].trim_start().starts_with("patch: [")
            && lines[at + 1].contains(r#""value":{"type":"Recreate"}"#),
        "{stdout}"
    );
    assert!(stdout.contains("0 denied, 1 repaired"), "{stdout}");
    assert!(stdout.ends_with("result: admitted\n"), "{stdout}");

    // The same through stdin, as JSON: the repair is the only finding, so
    // validation passed on the patched object.
    let output = check_with(&["-f", "-", "-o", "json"], &rolling_update_controller());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let doc = json(&output);
    let controller = object(&doc, "Deployment kube-system/calico-policy-controller");
    assert_eq!(controller["origin"], "-:9", "the line of its apiVersion");
    assert_eq!(controller["allowed"], true);
    assert_eq!(controller["repaired"], true);
    let findings = controller["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{controller:#}");
    assert_eq!(findings[0]["stage"], "mutate");
    assert_eq!(findings[0]["verdict"], "patch");
    let patch: json_patch::Patch = serde_json::from_value(findings[0]["patch"].clone()).unwrap();
    let mut object: Value = serde_yaml_ng::from_str(&rolling_update_controller()).unwrap();
    json_patch::patch(&mut object, &patch).expect("the repair applies to the manifest");
    assert_eq!(
        object["spec"]["strategy"],
        serde_json::json!({"type": "Recreate"})
    );
}

#[test]
fn unreadable_yaml_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // The published v2.5 manifest with a tab indenting line 47 (inside the
    // calico-node DaemonSet's metadata).
    let published = std::fs::read_to_string(testdata(V25_KDD)).unwrap();
    let mut lines: Vec<String> = published.lines().map(str::to_owned).collect();
    assert_eq!(lines[46].trim(), "namespace: kube-system");
    lines[46] = format!("\t{}", lines[46].trim());
    let broken = dir.path().join("calico.yaml");
    std::fs::write(&broken, lines.join("\n")).unwrap();
    let shown = broken.display().to_string();
    let output = check(&["-f", &shown]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "no partial answer: {stdout}");
    assert!(
        stderr.starts_with(&format!("tollgate check: {shown}:47:")),
        "{stderr}"
    );
    assert!(stderr.contains("not valid YAML"), "{stderr}");

    // An object without a name, on stdin, after a good one.
    let unnamed = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\ndata: {}\n";
    let output = check_with(&["-f", "-"], unnamed);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output).1,
        "tollgate check: -:5: ConfigMap has no metadata.name\n"
    );

    // A file that does not exist.
    let missing = dir.path().join("nope.yaml").display().to_string();
    let output = check(&["-f", &missing]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).1.contains(&format!("{missing}: cannot read")),
        "{}",
        text(&output).1
    );

    // A snapshot that does not parse names its file and line too.
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir(&snapshot).unwrap();
    std::fs::write(
        snapshot.join("ns.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [\n",
    )
    .unwrap();
    let output = check(&[
        "-f",
        &path(V25_KDD),
        "--cluster-snapshot",
        &snapshot.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output).1;
    assert!(
        stderr.contains(&format!("{}:", snapshot.join("ns.yaml").display())),
        "{stderr}"
    );
}

#[test]
fn an_unusable_policy_configuration_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.yaml");
    std::fs::write(&policies, "- id: p\n  module: builtin:nope\n").unwrap();
    let output = check(&[
        "-f",
        &path(V25_KDD),
        "--policies",
        &policies.display().to_string(),
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("tollgate check: cannot load the policies"),
        "{stderr}"
    );
    assert!(stderr.contains("builtin:nope"), "{stderr}");
    // Both cluster sources at once is a usage error (clap's status 2).
    let output = check(&[
        "-f",
        &path(V25_KDD),
        "--cluster-snapshot",
        "a",
        "--kubeconfig",
        "b",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

/// Runs `tollgate check` under a pseudo-terminal (util-linux `script`).
fn check_on_a_terminal(args: &str, no_color: bool) -> String {
    let bin = support::binary::tollgate_bin().display().to_string();
    let cache = support::binary::target_tmp().join("tollgate-module-cache");
    let mut script = Command::new("script");
    script
        .args(["-qec", &format!("{bin} check {args}"), "/dev/null"])
        .env("XDG_CACHE_HOME", cache)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let output = script.output().expect("run script(1)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_not_with_no_color() {
    let args = format!(
        "-f {} --cluster-snapshot {}",
        path(V25_KDD),
        path("snapshots/kdd-v2.4-not-migrated")
    );
    let coloured = check_on_a_terminal(&args, false);
    assert!(coloured.contains("\x1b[31mdeny"), "{coloured}");
    assert!(coloured.contains("\x1b[31mDENIED\x1b[0m"), "{coloured}");
    let plain = check_on_a_terminal(&args, true);
    assert!(plain.contains("result: DENIED"), "{plain}");
    assert!(!plain.contains('\x1b'), "{plain}");
}
