//! `tollgate audit` through the real binary over a snapshot with violating
//! objects (`testdata/snapshots/audit-violations`, captured from a real API
//! server), in each output format. The PolicyReports are validated against
//! the `wgpolicyk8s.io/v1alpha2` schema of the Policy WG's CRDs
//! (`testdata/policyreport`), strictly: an unknown field is an error, as
//! `kubectl apply` with field validation makes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;
use tollgate_tests as support;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn path(rel: &str) -> String {
    testdata(rel).display().to_string()
}

const VIOLATIONS: &str = "snapshots/audit-violations";

fn audit(args: &[&str]) -> Output {
    let cache = support::binary::target_tmp().join("tollgate-module-cache");
    Command::new(support::binary::tollgate_bin())
        .arg("audit")
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("run tollgate audit")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The row of `object` and `policy` in the table.
fn row<'a>(stdout: &'a str, object: &str, policy: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(object) && l.contains(&format!(" {policy} ")))
        .unwrap_or_else(|| panic!("no row for {object} / {policy}: {stdout}"))
}

#[test]
fn the_table_names_every_violation_and_leaves_unmatched_objects_out() {
    let output = audit(&["--cluster-snapshot", &path(VIOLATIONS)]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let controller = "Deployment kube-system/calico-policy-controller";
    assert!(row(&stdout, controller, "controller-recreate").contains("patch"));
    assert!(row(&stdout, controller, "controller-one-active").contains("deny"));
    let other = "Deployment kube-system/calico-kube-controllers";
    assert!(row(&stdout, other, "controller-one-active").contains("would run while"));
    let node = "DaemonSet kube-system/calico-node";
    assert!(row(&stdout, node, "node-one-at-a-time").contains("patch"));
    assert!(
        stdout.contains(r#""path":"/spec/updateStrategy/rollingUpdate/maxUnavailable","value":1"#)
    );
    assert!(
        !stdout.contains("nginx"),
        "no policy matches nginx: {stdout}"
    );
    assert!(
        stdout.contains("5 matched by a policy: 4 fail, 0 error, 2 warn, 18 pass"),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: fail\n"), "{stdout}");
}

#[test]
fn json_gives_each_matched_object_its_results() {
    let output = audit(&["--cluster-snapshot", &path(VIOLATIONS), "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output).1);
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"fail": 4, "error": 0, "warn": 2, "pass": 18})
    );
    assert_eq!(doc["stored"], 11);
    let objects = doc["objects"].as_array().unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ConfigMap kube-system/calico-config",
            "DaemonSet kube-system/calico-node",
            "Deployment kube-system/calico-kube-controllers",
            "Deployment kube-system/calico-policy-controller",
            "NetworkPolicy web/default-deny",
        ]
    );
    let node = &objects[1];
    let result = |policy: &str| {
        node["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == policy)
            .unwrap_or_else(|| panic!("no {policy}: {node:#}"))
            .clone()
    };
    assert_eq!(result("node-one-at-a-time")["result"], "fail");
    assert_eq!(result("kdd-v2.5-migration")["result"], "pass");
    assert_eq!(result("version-skew")["result"], "warn");
}

#[test]
fn a_cluster_that_follows_the_guide_passes() {
    let output = audit(&["--cluster-snapshot", &path("snapshots/kdd-v2.4-migrated")]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 fail, 0 error"), "{stdout}");
    assert!(stdout.ends_with("result: pass\n"), "{stdout}");
}

#[test]
fn audit_needs_a_cluster_and_a_usable_one() {
    let output = audit(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output)
            .1
            .contains("--cluster-snapshot DIR or --kubeconfig PATH")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "kind: [\n").unwrap();
    let output = audit(&["--cluster-snapshot", &dir.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output).1;
    assert!(
        stderr.contains(&format!("{}:", dir.path().join("bad.yaml").display())),
        "{stderr}"
    );
    let output = audit(&[
        "--cluster-snapshot",
        &path(VIOLATIONS),
        "--max-results",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(2));
}

/// The reports printed by `audit -o policyreport ARGS`.
fn reports(args: &[&str]) -> (Vec<Value>, String) {
    let snapshot = path(VIOLATIONS);
    let mut all = vec![
        "--cluster-snapshot",
        snapshot.as_str(),
        "-o",
        "policyreport",
    ];
    all.extend_from_slice(args);
    let output = audit(&all);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let docs = serde_yaml_ng::Deserializer::from_str(&stdout)
        .map(|d| Value::deserialize(d).expect("YAML document"))
        .collect();
    (docs, stderr)
}

#[test]
fn policy_reports_follow_the_v1alpha2_schema_one_per_namespace() {
    let (docs, stderr) = reports(&[]);
    assert!(stderr.is_empty(), "{stderr}");
    let names: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["namespace"].as_str().unwrap_or("-"),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "PolicyReport kube-system/tollgate-audit",
            "PolicyReport web/tollgate-audit"
        ]
    );
    for doc in &docs {
        assert_eq!(doc["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        let problems = schema::problems(doc);
        assert!(problems.is_empty(), "{problems:#?}\n{doc:#}");
    }
    let system = &docs[0];
    assert_eq!(
        system["summary"],
        serde_json::json!({"pass": 17, "fail": 4, "warn": 2, "error": 0, "skip": 0})
    );
    let results = system["results"].as_array().unwrap();
    assert_eq!(results.len(), 23);
    // Worst first.
    assert!(
        results[..4].iter().all(|r| r["result"] == "fail"),
        "{system:#}"
    );
    let recreate = results
        .iter()
        .find(|r| r["policy"] == "controller-recreate")
        .unwrap();
    assert_eq!(recreate["resources"][0]["name"], "calico-policy-controller");
    assert_eq!(recreate["resources"][0]["kind"], "Deployment");
    assert!(
        recreate["properties"]["patch"]
            .as_str()
            .unwrap()
            .contains("Recreate")
    );
    assert_eq!(docs[1]["summary"]["pass"], 1);
}

#[test]
fn a_full_policy_report_is_cut_and_says_so() {
    let (docs, stderr) = reports(&["--max-results", "3"]);
    let system = &docs[0];
    assert_eq!(system["results"].as_array().unwrap().len(), 3);
    assert!(
        system["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "fail")
    );
    assert_eq!(
        system["summary"]["fail"], 4,
        "the summary counts every result"
    );
    assert_eq!(system["summary"]["pass"], 17);
    assert_eq!(
        system["metadata"]["annotations"]["tollgate.dev/results-omitted"],
        "20"
    );
    assert!(
        stderr.contains(
            "PolicyReport kube-system/tollgate-audit holds the first 3 of its results; 20 more"
        ),
        "{stderr}"
    );
    for doc in &docs {
        assert!(schema::problems(doc).is_empty());
    }
}

#[test]
fn the_schema_check_catches_what_the_api_server_would_refuse() {
    let (docs, _) = reports(&[]);
    let mut bad = docs[0].clone();
    bad["results"][0]["result"] = "denied".into();
    bad["results"][1]["extra"] = "field".into();
    bad["summary"]["fail"] = "four".into();
    bad["results"][2].as_object_mut().unwrap().remove("policy");
    let problems = schema::problems(&bad);
    assert_eq!(problems.len(), 4, "{problems:#?}");
}

/// A structural-schema check of the CRDs' `openAPIV3Schema`: types,
/// enums, required fields, and no field the schema does not name (unless
/// it preserves unknown fields or only says `type: object`, as for
/// `metadata`, which the API server checks itself).
mod schema {
    use super::*;

    fn crd_schema(kind: &str) -> Value {
        let file = match kind {
            "PolicyReport" => "policyreport/wgpolicyk8s.io_policyreports.yaml",
            "ClusterPolicyReport" => "policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml",
            other => panic!("not a report kind: {other}"),
        };
        let text = std::fs::read_to_string(testdata(file)).expect("CRD");
        let crd: Value = serde_yaml_ng::from_str(&text).expect("CRD YAML");
        crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "v1alpha2")
            .expect("v1alpha2 is served")["schema"]["openAPIV3Schema"]
            .clone()
    }

    pub fn problems(report: &Value) -> Vec<String> {
        let schema = crd_schema(report["kind"].as_str().unwrap_or_default());
        let mut out = Vec::new();
        check(&schema, report, "", &mut out);
        out
    }

    fn check(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let ok = match schema["type"].as_str() {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("boolean") => value.is_boolean(),
            Some("number") => value.is_number(),
            _ => true,
        };
        if !ok {
            out.push(format!("{at}: not of type {}", schema["type"]));
            return;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            out.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let Some(items) = value.as_array() {
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        let Some(fields) = value.as_object() else {
            return;
        };
        for required in schema["required"].as_array().into_iter().flatten() {
            if !fields.contains_key(required.as_str().unwrap_or_default()) {
                out.push(format!("{at}: {required} is required"));
            }
        }
        let properties = schema["properties"].as_object();
        let additional = &schema["additionalProperties"];
        let open = schema["x-kubernetes-preserve-unknown-fields"] == true
            || (properties.is_none() && additional.is_null());
        for (name, field) in fields {
            let path = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => check(sub, field, &path, out),
                None if additional.is_object() => check(additional, field, &path, out),
                None if open => {}
                None => out.push(format!("{path}: unknown field")),
            }
        }
    }
}
