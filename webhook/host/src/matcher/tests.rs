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

/// `json`, checked to be JSON (as the review's objects are).
fn raw(json: &str) -> String {
    serde_json::from_str::<serde::de::IgnoredAny>(json).unwrap();
    json.to_owned()
}

fn meta<'a>(object: Option<&'a str>, old: Option<&'a str>) -> RequestMeta<'a> {
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
        // As the shape check finds it: no `\u` or `\/` escape anywhere.
        plain_text: [object, old]
            .into_iter()
            .flatten()
            .all(|o| !o.contains("\\u") && !o.contains("\\/")),
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

fn deployment(images: &[&str]) -> String {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .map(|i| serde_json::json!({"name": "c", "image": i}))
        .collect();
    raw(&serde_json::json!({
        "metadata": {"name": "web", "annotations": {"note": "calico/node is mentioned here"}},
        "spec": {"template": {"spec": {"containers": containers}}},
        "status": {"replicas": 1},
    })
    .to_string())
}

#[test]
fn images_match_repository_paths_whatever_the_registry_tag_or_digest() {
    let m = matcher("{images: [calico/node, calico/kube-controllers]}");
    for image in [
        "calico/node:v2.6.5",
        "quay.io/calico/node:v3.1.3",
        "localhost:5000/calico/node",
        "registry.example.com/mirror/calico/kube-controllers@sha256:abc",
        "calico/node",
    ] {
        let object = deployment(&["nginx:1.25", image]);
        assert!(m.matches(&meta(Some(&object), None)), "{image}");
    }
    for image in [
        "nginx:1.25",
        "xcalico/node:v1",
        "calico/node-exporter:v1",
        "quay.io/calico/cni:v3.1.3",
        "calico/ctl:{% include version component=\"calico/node\" %}",
    ] {
        let object = deployment(&[image]);
        assert!(!m.matches(&meta(Some(&object), None)), "{image}");
    }
}

#[test]
fn images_are_read_from_templates_pods_and_init_containers_only() {
    let m = matcher("{images: [calico/node]}");
    let pod = raw(
        r#"{"spec":{"initContainers":[{"name":"i","image":"quay.io/calico/node:v3"}],"containers":[]}}"#,
    );
    assert!(m.matches(&meta(Some(&pod), None)));
    let template_init = raw(
        r#"{"spec":{"template":{"spec":{"initContainers":[{"image":"calico/node:v3"}],"containers":null}}}}"#,
    );
    assert!(m.matches(&meta(Some(&template_init), None)));
    // A status naming the image is not a container.
    let status = raw(r#"{"spec":{},"status":{"image":"calico/node:v3"}}"#);
    assert!(!m.matches(&meta(Some(&status), None)));
    // An escaped slash still spells the image.
    let escaped = raw(r#"{"spec":{"containers":[{"image":"calico\/node:v3"}]}}"#);
    assert!(m.matches(&meta(Some(&escaped), None)));
    // No object (a scale request has one without containers).
    assert!(!m.matches(&meta(None, None)));
    let scale = raw(r#"{"kind":"Scale","spec":{"replicas":3}}"#);
    assert!(!m.matches(&meta(Some(&scale), None)));
}

#[test]
fn images_of_an_unreadable_object_hold() {
    let m = matcher("{images: [calico/node]}");
    let odd = raw(r#"{"spec":{"containers":"calico/node"}}"#);
    assert!(m.matches(&meta(Some(&odd), None)));
}

#[test]
fn images_read_the_new_object_and_the_old_one_of_a_delete() {
    let m = matcher("{images: [calico/node]}");
    let (old, new) = (deployment(&["calico/node:v1"]), deployment(&["nginx"]));
    let mut request = meta(Some(&new), Some(&old));
    assert!(!m.matches(&request));
    request.operation = Operation::Delete;
    request.object = None;
    assert!(m.matches(&request));
}

#[test]
fn image_entries_are_repository_paths() {
    let m = matcher("{images: [calico/node, node]}");
    assert!(!m.matches(&meta(None, None)));
    for bad in [
        "[quay.io/calico/node]",
        "['calico/node:v1']",
        "['']",
        "[/node]",
    ] {
        let error = compile_error(&format!("{{images: {bad}}}"));
        assert_eq!(error.field, "match.images", "{bad}");
    }
    assert!(
        compile_error("{images: [quay.io/calico/node]}")
            .message
            .contains("registry")
    );
}

#[test]
fn changed_compares_a_field_of_the_old_and_new_object() {
    let m = matcher("{changed: [spec.unschedulable]}");
    let cordoned = raw(r#"{"metadata":{"name":"n"},"spec":{"unschedulable":true}}"#);
    let uncordoned = raw(r#"{"metadata":{"name":"n"},"spec":{}}"#);
    let relabelled = raw(r#"{"metadata":{"name":"n","labels":{"a":"b"}},"spec":{}}"#);
    let explicit_false = raw(r#"{"spec":{"unschedulable":false}}"#);
    let null = raw(r#"{"spec":{"unschedulable":null}}"#);
    let mut request = meta(Some(&uncordoned), Some(&cordoned));
    request.operation = Operation::Update;
    assert!(m.matches(&request), "uncordon");
    request.object = Some(&cordoned);
    request.old_object = Some(&uncordoned);
    assert!(m.matches(&request), "cordon");
    request.object = Some(&relabelled);
    assert!(!m.matches(&request), "a label change");
    request.old_object = Some(&cordoned);
    request.object = Some(&cordoned);
    assert!(!m.matches(&request), "still cordoned");
    request.object = Some(&explicit_false);
    assert!(m.matches(&request), "true -> false");
    request.old_object = Some(&null);
    request.object = Some(&uncordoned);
    assert!(!m.matches(&request), "null is absent");
    // A CREATE has no old object: the field is new if present.
    request.old_object = None;
    request.object = Some(&cordoned);
    assert!(m.matches(&request));
    assert_eq!(compile_error("{changed: [spec..x]}").field, "match.changed");
}

#[test]
fn changed_reads_a_bracketed_label_key() {
    let m = matcher("{changed: ['metadata.labels[projectcalico.org/operator-node-migration]']}");
    let plain = raw(r#"{"metadata":{"name":"n","labels":{"tier":"web"}}}"#);
    let retiered = raw(r#"{"metadata":{"name":"n","labels":{"tier":"db"}}}"#);
    let migrating = raw(
        r#"{"metadata":{"name":"n","labels":{"tier":"web","projectcalico.org/operator-node-migration":"pre-operator"}}}"#,
    );
    let mut request = meta(Some(&retiered), Some(&plain));
    request.operation = Operation::Update;
    assert!(!m.matches(&request), "another label changed");
    request.object = Some(&migrating);
    assert!(m.matches(&request), "the label added");
    request.old_object = Some(&migrating);
    request.object = Some(&plain);
    assert!(m.matches(&request), "the label removed");
    request.object = Some(&migrating);
    assert!(!m.matches(&request), "unchanged");
    for bad in [
        "metadata.labels[]",
        "metadata.labels[a",
        "[a].b",
        "a.[b]",
        "a[b]c",
        "a[b[c]]",
    ] {
        assert_eq!(
            compile_error(&format!("{{changed: ['{bad}']}}")).field,
            "match.changed",
            "{bad}"
        );
    }
    let nested = matcher("{changed: ['metadata.annotations[a.b/c].x']}");
    let annotated = raw(r#"{"metadata":{"annotations":{"a.b/c":{"x":1}}}}"#);
    let mut request = meta(Some(&annotated), Some(&plain));
    request.operation = Operation::Update;
    assert!(nested.matches(&request), "a key after a bracketed one");
}

#[test]
fn any_of_needs_one_alternative() {
    let m = matcher(
        "{kinds: [{kind: Deployment}, {group: apps, kind: Deployment, subresource: scale}], \
         anyOf: [{names: [calico-kube-controllers]}, {images: [calico/kube-controllers]}, \
                 {kinds: [{subresource: scale}]}]}",
    );
    let nginx = deployment(&["nginx"]);
    let renamed = deployment(&["quay.io/calico/kube-controllers:v3.1.3"]);
    let mut request = meta(Some(&nginx), None);
    request.name = Some("web");
    assert!(!m.matches(&request), "unrelated");
    request.object = Some(&renamed);
    assert!(m.matches(&request), "by image");
    request.object = Some(&nginx);
    request.name = Some("calico-kube-controllers");
    assert!(m.matches(&request), "by name");
    let scale = raw(r#"{"kind":"Scale","spec":{"replicas":3}}"#);
    let mut scaled = meta(Some(&scale), None);
    (scaled.group, scaled.kind, scaled.sub_resource) = ("autoscaling", "Scale", Some("scale"));
    scaled.name = Some("anything");
    assert!(m.matches(&scaled), "every scale request");
    scaled.sub_resource = Some("status");
    assert!(!m.matches(&scaled));
}

#[test]
fn subresource_patterns() {
    let mut request = meta(None, None);
    let main = matcher("{kinds: [{group: apps, kind: Deployment}]}");
    let scale = matcher("{kinds: [{group: apps, kind: Deployment, subresource: scale}]}");
    let any = matcher("{kinds: [{subresource: '*'}]}");
    assert!(main.matches(&request) && !scale.matches(&request) && !any.matches(&request));
    (request.group, request.kind, request.sub_resource) = ("autoscaling", "Scale", Some("scale"));
    assert!(!main.matches(&request) && scale.matches(&request) && any.matches(&request));
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
