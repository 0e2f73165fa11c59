//! pod-privileged on the pod kube-apiserver really sent (a calico-node pod
//! CREATE, captured in `testdata/reviews`) and on privileged variants of it.

use serde_json::{Value, json};
use tollgate_sdk::{NoCluster, Verdict};
use tollgate_testkit::corpus::captured;

const CAPTURED: &str = "13-create-calico-node-pod--validate--create-pod-calico-node-x7k2p.json";

fn captured_pod() -> Value {
    captured(CAPTURED).1["request"].take()
}

fn judge(request: &Value, settings: Value) -> Verdict {
    let calls = json!([{"rule": "pod-privileged", "settings": settings}]);
    let mut verdicts = pod_privileged::rules()
        .evaluate(
            request.to_string().as_bytes(),
            calls.to_string().as_bytes(),
            &NoCluster,
        )
        .unwrap()
        .verdicts;
    assert_eq!(verdicts.len(), 1);
    verdicts.remove(0)
}

fn privileged(mut request: Value, field: &str, name: &str) -> Value {
    let container = json!({"name": name, "image": "busybox:1.36",
                           "securityContext": {"privileged": true}});
    let spec = &mut request["object"]["spec"];
    match spec[field].as_array_mut() {
        Some(list) => list.push(container),
        None => spec[field] = json!([container]),
    }
    request
}

#[test]
fn the_captured_pod_is_not_privileged() {
    let request = captured_pod();
    assert_eq!(request["kind"]["kind"], "Pod");
    assert_eq!(request["operation"], "CREATE");
    assert!(judge(&request, json!({})).allowed);
}

#[test]
fn privileged_containers_of_every_list_are_denied_and_named() {
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        let request = privileged(captured_pod(), field, "debug");
        let v = judge(&request, json!({}));
        let message = v.message.unwrap_or_default();
        assert!(
            message.starts_with("pod kube-system/calico-node-x7k2p runs privileged containers"),
            "{message}"
        );
        assert!(message.contains(&format!("{field} \"debug\"")), "{message}");
        assert!(judge(&request, json!({"exemptNamespaces": ["kube-system"]})).allowed);
    }
    let both = privileged(
        privileged(captured_pod(), "initContainers", "a"),
        "containers",
        "b",
    );
    let message = judge(&both, json!({})).message.unwrap();
    assert!(
        message.contains("(initContainers \"a\", containers \"b\")"),
        "{message}"
    );
}

#[test]
fn privileged_false_and_absent_security_contexts_are_allowed() {
    let mut request = privileged(captured_pod(), "containers", "x");
    request["object"]["spec"]["containers"][1]["securityContext"]["privileged"] = json!(false);
    assert!(judge(&request, json!({})).allowed);
    request["object"]["spec"]["containers"][1]["securityContext"] = Value::Null;
    assert!(judge(&request, json!({})).allowed);
}

#[test]
fn updates_are_judged_on_what_they_make_privileged() {
    let created = privileged(captured_pod(), "containers", "agent")["object"].take();
    let mut relabelled = created.clone();
    relabelled["metadata"]["labels"]["team"] = json!("net");
    let update = tollgate_testkit::requests::update(&created, &relabelled);
    assert!(judge(&update, json!({})).allowed, "already privileged");

    // `kubectl debug --profile=sysadmin`: a privileged ephemeral container.
    let mut debugged = created.clone();
    debugged["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "securityContext": {"privileged": true}}]);
    let update = tollgate_testkit::requests::update(&created, &debugged);
    let v = judge(&update, json!({}));
    assert!(v.is_violation());
    assert!(
        v.message
            .unwrap()
            .contains("ephemeralContainers \"debugger\"")
    );
}

#[test]
fn deletes_are_allowed() {
    let pod = privileged(captured_pod(), "containers", "agent")["object"].take();
    assert!(judge(&tollgate_testkit::requests::delete(&pod), json!({})).allowed);
}

#[test]
fn the_policy_file_serves_the_rule_with_valid_settings() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.yaml");
    let docs = tollgate_testkit::corpus::read_docs(std::path::Path::new(path));
    let policy = &docs[0][0];
    assert_eq!(policy["id"], "pod-privileged");
    assert!(
        policy["module"]
            .as_str()
            .unwrap()
            .ends_with("wasm32-unknown-unknown/release/pod_privileged.wasm")
    );
    let rule = pod_privileged::rules().rule("pod-privileged").unwrap();
    let settings = serde_json::to_vec(&policy["settings"]).unwrap();
    assert!(rule.check_settings(&settings).valid);
    assert_eq!(
        policy["match"]["kinds"],
        json!([{"group": "", "kind": "Pod"}])
    );
}
