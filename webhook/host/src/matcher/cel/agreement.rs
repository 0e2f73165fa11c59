//! The CEL a `match:` renders to ([`super::parts`]) selects exactly the
//! requests the host's [`Matcher`] selects. Evaluated with the `cel` crate
//! (cel-rust) on the variables the API server gives `matchConditions`, for
//! every `match:` of the packs plus hand-written ones for the criteria the
//! packs do not use, on requests a real API server sent (`testdata/reviews`)
//! and requests built from every corpus manifest. A disagreement means the
//! API server would call Tollgate for less (or more) than the host judges.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cel::{Context, Env, Program};
use serde_json::{Value, json};
use tollgate_testkit::corpus::{all_manifests, captured, captured_files};
use tollgate_testkit::modern::{felix_default, operator_install, without_crds};
use tollgate_testkit::objects::{calico_pod, node, stored};
use tollgate_testkit::requests::{self, RequestBuilder};

use super::parts;
use crate::config::{Config, MatchConfig};
use crate::matcher::Matcher;
use crate::review::{Parsed, Review};

/// Criteria the packs do not use (or not in these combinations): each must
/// both select and reject some request below, or it proves nothing.
const HAND_WRITTEN: &[&str] = &[
    "{kinds: [{group: apps, version: v1, kind: DaemonSet}]}",
    "{kinds: [{group: '*', kind: ConfigMap}, {kind: Namespace}], operations: [CREATE]}",
    "{kinds: [{subresource: '*'}]}",
    "{kinds: [{group: apps, kind: ReplicaSet, subresource: scale}]}",
    "{namespaces: [kube-system], names: [calico-node, calico-config]}",
    "{names: [node-01]}",
    "{labelSelector: {matchLabels: {k8s-app: calico-node}}}",
    "{labelSelector: {matchExpressions: [{key: k8s-app, operator: In, values: [calico-node, calico-kube-controllers]}]}}",
    "{labelSelector: {matchExpressions: [{key: k8s-app, operator: NotIn, values: [calico-node]}]}}",
    "{labelSelector: {matchExpressions: [{key: k8s-app, operator: Exists}, {key: tier, operator: DoesNotExist}]}}",
    "{operations: [DELETE], labelSelector: {matchLabels: {k8s-app: calico-node}}}",
    "{operations: [CREATE, DELETE], images: [calico/node]}",
    "{images: [calico/cni, calico/node]}",
    "{kinds: [{group: '', kind: Pod}], images: [calico/node]}",
    "{kinds: [{group: apps, kind: DaemonSet}], images: [calico/node]}",
    "{changed: [spec.unschedulable]}",
    "{changed: ['metadata.labels[k8s-app]', spec.replicas]}",
    "{anyOf: [{operations: [DELETE], namespaces: [kube-system]}, {kinds: [{kind: Node}], changed: [spec.unschedulable]}]}",
    "{operations: [UPDATE, DELETE], anyOf: [{labelSelector: {matchLabels: {k8s-app: calico-node}}}, {images: [calico/kube-controllers]}]}",
];

/// Every `match:` to compare: the packs' (named by policy) and the
/// hand-written ones (named by their text).
fn matches() -> Vec<(String, MatchConfig, bool)> {
    let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies-wasm");
    let mut files = vec![packs.join("calico/policies.yaml")];
    let examples = std::fs::read_dir(packs.join("examples")).expect("policies-wasm/examples");
    files.extend(examples.flatten().map(|e| e.path().join("policies.yaml")));
    let mut out = Vec::new();
    for file in files.iter().filter(|f| f.exists()) {
        let config = Config::from_file(file).unwrap_or_else(|e| panic!("{e}"));
        for policy in config.policies {
            out.push((policy.id.clone(), policy.matches, false));
        }
    }
    assert!(out.len() >= 10, "pack policies: {}", out.len());
    for text in HAND_WRITTEN {
        let yaml = format!("- {{id: h, module: h.wasm, match: {text}}}");
        let config = Config::from_yaml(&yaml, text).unwrap_or_else(|e| panic!("{e}"));
        let m = config.policies.into_iter().next().expect("one policy");
        out.push(((*text).to_owned(), m.matches, true));
    }
    out
}

/// Every review to judge: the captured ones, a CREATE, an UPDATE (labels
/// and replicas changed) and a DELETE of each corpus object and of an
/// operator install, and the cordons, pods and scales the rule tests use.
fn reviews() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (file, _) in captured_files() {
        out.push((file.clone(), captured(&file).1));
    }
    let mut build = |name: String, request: RequestBuilder| {
        out.push((name.clone(), request.with_uid(name).review()));
    };
    let mut objects: Vec<(String, Value)> = Vec::new();
    for (file, docs) in all_manifests() {
        let docs = docs.iter().filter(|d| d["kind"].is_string());
        objects.extend(
            docs.enumerate()
                .map(|(i, d)| (format!("{file}#{i}"), stored(d))),
        );
    }
    // The operator's objects, which the release rules of the pack match.
    let operator = without_crds(operator_install("v3.32.1")).into_iter();
    objects.extend(
        operator
            .enumerate()
            .map(|(i, o)| (format!("operator#{i}"), o)),
    );
    objects.push(("felix".into(), felix_default(true)));
    for (what, old) in objects {
        let old = without_nulls(old);
        let mut new = old.clone();
        // `pointer_mut`, not `[]`, which would add `labels: null`.
        if let Some(labels) = new
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove("k8s-app");
        }
        if let Some(n) = new["spec"]["replicas"].as_i64() {
            new["spec"]["replicas"] = json!(n + 1);
        }
        build(format!("{what} create"), RequestBuilder::create(&old));
        build(format!("{what} update"), RequestBuilder::update(&old, &new));
        build(format!("{what} delete"), RequestBuilder::delete(&old));
    }
    let (up, down) = (node("node-01", false, &[]), node("node-01", true, &[]));
    build("cordon".into(), RequestBuilder::update(&up, &down));
    build("uncordon".into(), RequestBuilder::update(&down, &up));
    let pod = calico_pod(
        "calico-node-x",
        "node-01",
        "quay.io/calico/node:v3.1.3",
        true,
    );
    build("pod create".into(), RequestBuilder::create(&pod));
    build("pod delete".into(), RequestBuilder::delete(&pod));
    for resource in ["deployments", "replicasets"] {
        let scale = requests::scale(resource, "kube-system", "calico-policy-controller", 1, 3);
        out.push((format!("scale {resource}"), requests::review("s", scale)));
    }
    out
}

/// `value` without null members, as the API server sends built-in kinds
/// (decoding drops them). The test kit's helpers write some
/// (`initContainers: null` where a workload has none), which the matcher
/// reads as absent but CEL's `has()` as present.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The `matchConditions` variables of a review: `request` without the
/// objects and without the members the API server omits when empty, and
/// `object`/`oldObject` (null when the operation has none).
fn variables<'a>(env: &Arc<Env>, review: &Value) -> Context<'a, 'a> {
    let mut request = review["request"].clone();
    let mut take = |key: &str| {
        request
            .as_object_mut()
            .and_then(|r| r.remove(key))
            .unwrap_or(Value::Null)
    };
    let (object, old_object) = (take("object"), take("oldObject"));
    if let Some(members) = request.as_object_mut() {
        members.retain(|_, v| !v.is_null() && *v != json!(""));
    }
    let mut context = Context::with_env(env.clone());
    for (name, value) in [
        ("request", request),
        ("object", object),
        ("oldObject", old_object),
    ] {
        context.add_variable(name, value).expect("JSON converts");
    }
    context
}

#[test]
fn the_cel_of_a_match_selects_what_the_matcher_selects() {
    let env = Arc::new(Env::stdlib());
    let compiled: Vec<(String, Matcher, String, Program, bool)> = matches()
        .into_iter()
        .map(|(name, config, hand_written)| {
            let matcher = Matcher::compile(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (guard, rest) = parts(&config);
            let cel = format!("({guard}) && ({rest})");
            let program = env
                .compile(&cel)
                .unwrap_or_else(|e| panic!("{name}: {cel}: {e}"));
            (name, matcher, cel, program, hand_written)
        })
        .collect();
    let reviews = reviews();
    assert!(reviews.len() > 500, "reviews: {}", reviews.len());
    let mut disagreements = Vec::new();
    let mut selected: BTreeMap<&str, usize> = BTreeMap::new();
    for (what, review) in &reviews {
        let body = serde_json::to_vec(review).expect("JSON");
        let Ok(Parsed::Review(parsed)) = Review::parse(&body) else {
            panic!("{what}: not a valid review");
        };
        let context = variables(&env, review);
        for (name, matcher, cel, program, _) in &compiled {
            let host = matcher.matches(&parsed.meta());
            let api_server = match program.execute(&context) {
                Ok(cel::Value::Bool(b)) => b,
                other => panic!("{name} on {what}: {cel} gave {other:?}"),
            };
            if host != api_server {
                disagreements.push(format!("{name} on {what}: host {host}, CEL {api_server}"));
            }
            *selected.entry(name).or_default() += usize::from(host);
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, e.g. {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    // Each match must select some request, and a hand-written one must
    // also reject some: otherwise agreeing proves nothing about it.
    let vacuous: Vec<&str> = compiled
        .iter()
        .filter(|(name, _, _, _, hand_written)| {
            let n = selected.get(name.as_str()).copied().unwrap_or_default();
            n == 0 || (*hand_written && n == reviews.len())
        })
        .map(|(name, ..)| name.as_str())
        .collect();
    assert!(
        vacuous.is_empty(),
        "select nothing or everything: {vacuous:#?}"
    );
}
