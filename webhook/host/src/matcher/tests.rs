use super::*;
use crate::config::Config;

fn matcher(yaml_match: &str) -> Matcher {
    let config = Config::from_yaml(
        &format!("- {{id: a, module: a.wasm, match: {yaml_match}}}"),
        "t",
    )
    .unwrap();
    Matcher::compile(&config.policies[0].matches).unwrap()
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

fn meta<'a>(object: Option<&'a RawValue>, old: Option<&'a RawValue>) -> RequestMeta<'a> {
    RequestMeta {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        sub_resource: None,
        operation: Operation::Create,
        namespace: Some("kube-system"),
        name: Some("calico-policy-controller"),
        object,
        old_object: old,
    }
}

#[test]
fn empty_match_selects_everything() {
    assert!(matcher("{}").matches(&meta(None, None)));
}

#[test]
fn kinds_with_wildcards() {
    let m = meta(None, None);
    assert!(matcher("{kinds: [{group: apps, kind: Deployment}]}").matches(&m));
    assert!(matcher("{kinds: [{group: '*', version: '*', kind: Deployment}]}").matches(&m));
    assert!(matcher("{kinds: [{kind: DaemonSet}, {group: apps}]}").matches(&m));
    assert!(matcher("{kinds: [{group: apps, version: v1, kind: Deployment}]}").matches(&m));
    assert!(!matcher("{kinds: [{group: '', kind: Deployment}]}").matches(&m));
    assert!(!matcher("{kinds: [{version: v1beta1}]}").matches(&m));
    assert!(!matcher("{kinds: [{kind: DaemonSet}]}").matches(&m));
}

#[test]
fn operations() {
    let mut m = meta(None, None);
    assert!(matcher("{operations: [CREATE, UPDATE]}").matches(&m));
    m.operation = Operation::Delete;
    assert!(!matcher("{operations: [CREATE, UPDATE]}").matches(&m));
    m.operation = Operation::Connect;
    assert!(matcher("{operations: [CONNECT]}").matches(&m));
}

#[test]
fn namespaces_and_names() {
    let mut m = meta(None, None);
    assert!(matcher("{namespaces: [default, kube-system]}").matches(&m));
    assert!(!matcher("{namespaces: [default]}").matches(&m));
    assert!(matcher("{names: [calico-policy-controller]}").matches(&m));
    assert!(!matcher("{names: [other]}").matches(&m));
    // Cluster-scoped requests have no namespace: a namespace list excludes them.
    m.namespace = None;
    assert!(!matcher("{namespaces: [kube-system]}").matches(&m));
    m.name = None;
    assert!(!matcher("{names: [x]}").matches(&m));
}

#[test]
fn match_labels() {
    let object = raw(
        r#"{"metadata":{"name":"x","labels":{"k8s-app":"calico-policy","tier":"a"}},"spec":{}}"#,
    );
    let m = meta(Some(&object), None);
    assert!(matcher("{labelSelector: {matchLabels: {k8s-app: calico-policy}}}").matches(&m));
    assert!(
        matcher("{labelSelector: {matchLabels: {k8s-app: calico-policy, tier: a}}}").matches(&m)
    );
    assert!(!matcher("{labelSelector: {matchLabels: {k8s-app: other}}}").matches(&m));
    assert!(!matcher("{labelSelector: {matchLabels: {missing: x}}}").matches(&m));
    assert!(matcher("{labelSelector: {}}").matches(&m));
}

#[test]
fn match_expressions() {
    let object = raw(r#"{"metadata":{"labels":{"tier":"a","escaped\"key":"v"}}}"#);
    let m = meta(Some(&object), None);
    let sel = |expr: &str| {
        matcher(&format!(
            "{{labelSelector: {{matchExpressions: [{expr}]}}}}"
        ))
        .matches(&m)
    };
    assert!(sel("{key: tier, operator: In, values: [a, b]}"));
    assert!(!sel("{key: tier, operator: In, values: [b]}"));
    assert!(!sel("{key: missing, operator: In, values: [a]}"));
    assert!(sel("{key: tier, operator: NotIn, values: [b]}"));
    assert!(!sel("{key: tier, operator: NotIn, values: [a]}"));
    assert!(sel("{key: missing, operator: NotIn, values: [a]}"));
    assert!(sel("{key: tier, operator: Exists}"));
    assert!(!sel("{key: missing, operator: Exists}"));
    assert!(sel("{key: missing, operator: DoesNotExist}"));
    assert!(!sel("{key: tier, operator: DoesNotExist}"));
    assert!(sel(r#"{key: 'escaped"key', operator: Exists}"#));
}

#[test]
fn objects_without_labels_have_none() {
    let sel = matcher("{labelSelector: {matchExpressions: [{key: k, operator: DoesNotExist}]}}");
    let needs = matcher("{labelSelector: {matchLabels: {k: v}}}");
    for json in [
        r#"{"metadata":{}}"#,
        r#"{"spec":{}}"#,
        "null",
        r#"{"metadata":{"labels":null}}"#,
    ] {
        let object = raw(json);
        let m = meta(Some(&object), None);
        assert!(sel.matches(&m), "{json}");
        assert!(!needs.matches(&m), "{json}");
    }
    assert!(sel.matches(&meta(None, None)));
}

#[test]
fn delete_uses_the_old_object() {
    let old = raw(r#"{"metadata":{"labels":{"k":"old"}}}"#);
    let new = raw(r#"{"metadata":{"labels":{"k":"new"}}}"#);
    let sel = matcher("{labelSelector: {matchLabels: {k: old}}}");
    let mut m = meta(Some(&new), Some(&old));
    assert!(!sel.matches(&m));
    m.operation = Operation::Delete;
    assert!(sel.matches(&m));
    m.object = None;
    assert!(sel.matches(&m));
}

#[test]
fn all_criteria_must_hold() {
    let object = raw(r#"{"metadata":{"labels":{"k":"v"}}}"#);
    let m = meta(Some(&object), None);
    let both = "{kinds: [{kind: Deployment}], operations: [CREATE], namespaces: [kube-system], labelSelector: {matchLabels: {k: v}}}";
    assert!(matcher(both).matches(&m));
    let mut other = m;
    other.kind = "DaemonSet";
    assert!(!matcher(both).matches(&other));
}

/// The error of compiling a `match:` (checked where it is compiled, once,
/// when the policy set loads).
fn compile_error(yaml_match: &str) -> MatchError {
    let config = Config::from_yaml(
        &format!("- {{id: a, module: a.wasm, match: {yaml_match}}}"),
        "t",
    )
    .unwrap();
    Matcher::compile(&config.policies[0].matches).unwrap_err()
}

#[test]
fn label_selector_operators_are_checked() {
    let error = compile_error("{labelSelector: {matchExpressions: [{key: k, operator: Near}]}}");
    assert_eq!(error.field, "match.labelSelector.matchExpressions");
    assert!(error.message.contains("Near"), "{error}");
    let error = compile_error("{labelSelector: {matchExpressions: [{key: k, operator: In}]}}");
    assert!(error.message.contains("needs"), "{error}");
    let error = compile_error(
        "{labelSelector: {matchExpressions: [{key: k, operator: Exists, values: [x]}]}}",
    );
    assert!(error.message.contains("takes no"), "{error}");
}
