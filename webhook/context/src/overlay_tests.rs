//! The overlay on published objects: a v3.31.0 `calico.yaml` install with
//! objects of v3.32.1 applied over it.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tollgate_testkit::modern::{manifest_install, modern_doc};

use super::*;
use crate::{EmptyContext, SnapshotContext};

fn snapshot(objects: &[Value]) -> SnapshotContext {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let text = serde_yaml_ng::to_string(&list).unwrap();
    SnapshotContext::from_text(Path::new("cluster.yaml"), &text).unwrap()
}

fn ask(context: &dyn ClusterContext, query: &LookupQuery) -> Value {
    serde_json::from_slice(&context.lookup(query).unwrap()).unwrap()
}

fn node(tag: &str) -> Value {
    modern_doc(tag, "calico.yaml", "DaemonSet", "calico-node")
}

fn images(answer: &Value) -> Vec<String> {
    answer
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
        })
        .map(|c| c["image"].as_str().unwrap().to_owned())
        .collect()
}

const DS: &str = "apps/v1";

#[test]
fn an_applied_object_replaces_the_base_one() {
    let base = Arc::new(snapshot(&manifest_install("v3.31.0", "calico.yaml")));
    let overlay = OverlayContext::new(base.clone());
    let get = LookupQuery::get(DS, "DaemonSet", Some("kube-system"), "calico-node");
    assert_eq!(
        images(&ask(&overlay, &get)),
        ["quay.io/calico/node:v3.31.0"]
    );
    overlay.apply(node("v3.32.1"));
    assert_eq!(
        images(&ask(&overlay, &get)),
        ["quay.io/calico/node:v3.32.1"]
    );
    let list = LookupQuery::list(DS, "DaemonSet").with_label("k8s-app", "calico-node");
    assert_eq!(
        images(&ask(&overlay, &list)),
        ["quay.io/calico/node:v3.32.1"]
    );
    // The base is untouched, and other types pass through.
    assert_eq!(images(&ask(&*base, &get)), ["quay.io/calico/node:v3.31.0"]);
    let cm = LookupQuery::list("v1", "ConfigMap").in_namespace("kube-system");
    assert_eq!(ask(&overlay, &cm), ask(&*base, &cm));
}

#[test]
fn filters_projections_and_distinct_mean_what_they_mean_in_the_store() {
    let objects = manifest_install("v3.31.0", "calico.yaml");
    let base = Arc::new(snapshot(&objects));
    let overlay = OverlayContext::new(Arc::new(EmptyContext));
    for object in &objects {
        overlay.apply(object.clone());
    }
    let queries = [
        LookupQuery::list(DS, "DaemonSet"),
        LookupQuery::list(DS, "Deployment").in_namespace("kube-system"),
        LookupQuery::list(DS, "Deployment").in_namespace("default"),
        LookupQuery::list("v1", "ServiceAccount").with_label("k8s-app", "none"),
        LookupQuery::list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .with_fields(&["/spec/group", "/spec/names/kind"]),
        LookupQuery::list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .distinct(&["/spec/scope"]),
        LookupQuery::list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .distinct(&["/spec/group", "/spec/scope"]),
        LookupQuery::list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .where_non_empty(&["/spec/versions/0/schema"])
            .with_fields(&["/spec/scope"]),
        LookupQuery::list("v1", "ConfigMap").where_empty(&["/data/typha_service_name"]),
    ];
    for query in &queries {
        assert_eq!(ask(&overlay, query), ask(&*base, query), "{query:?}");
    }
}

#[test]
fn a_replaced_object_leaves_distinct_answers() {
    let base = Arc::new(snapshot(&manifest_install("v3.31.0", "calico.yaml")));
    let overlay = OverlayContext::new(base.clone());
    let query = LookupQuery::list(DS, "DaemonSet").distinct(&["/spec/template/spec/containers"]);
    let before = ask(&overlay, &query).to_string();
    assert!(before.contains("node:v3.31.0"), "{before}");
    overlay.apply(node("v3.32.1"));
    let after = ask(&overlay, &query).to_string();
    assert!(
        after.contains("node:v3.32.1") && !after.contains("node:v3.31.0"),
        "{after}"
    );
    // A pointer that is not a member names the whole object.
    let whole = LookupQuery::list(DS, "DaemonSet").distinct(&[""]);
    let answer = ask(&overlay, &whole);
    assert_eq!(images(&answer), ["quay.io/calico/node:v3.32.1"]);
}

#[test]
fn a_new_type_and_a_new_namespace_appear() {
    let base = Arc::new(snapshot(&manifest_install("v3.31.0", "calico.yaml")));
    let overlay = OverlayContext::new(base.clone());
    let mut moved = node("v3.32.1");
    moved["metadata"]["namespace"] = json!("calico-system");
    overlay.apply(moved);
    let all = LookupQuery::list(DS, "DaemonSet");
    let names: Vec<Value> = ask(&overlay, &all)
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["namespace"].clone())
        .collect();
    assert_eq!(names, [json!("calico-system"), json!("kube-system")]);
    // Unnamed objects are not stored; a v1beta1 query does not see apps/v1.
    overlay.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}));
    assert_eq!(
        ask(&overlay, &LookupQuery::list("v1", "Namespace")),
        json!([])
    );
    let old = LookupQuery::list("extensions/v1beta1", "DaemonSet");
    assert_eq!(ask(&overlay, &old), json!([]));
    assert!(overlay.is_ready());
}

/// A base that cannot answer: the overlay says so rather than answering
/// from the applied objects alone.
struct Broken;

impl ClusterContext for Broken {
    fn lookup(&self, _: &LookupQuery) -> Result<Answer, LookupError> {
        Ok(Answer::from(&b"{}"[..]))
    }
}

#[test]
fn a_base_failure_is_the_overlays_failure() {
    let overlay = OverlayContext::new(Arc::new(Broken));
    overlay.apply(node("v3.32.1"));
    let err = overlay
        .lookup(&LookupQuery::list(DS, "DaemonSet"))
        .unwrap_err();
    assert!(err.to_string().contains("not a list"), "{err}");
    // A type nothing was applied to is the base's answer, whatever it is.
    let cm = overlay
        .lookup(&LookupQuery::list("v1", "ConfigMap"))
        .unwrap();
    assert_eq!(&*cm, b"{}");
}

/// `except` meets applied objects on either side, and the snapshot under
/// the overlay answers it as the SDK defines it.
#[test]
fn except_sees_applied_objects_of_both_types() {
    let ns =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let policy = |ns: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "p", "namespace": ns}, "spec": {}})
    };
    let objects = [ns("a"), ns("b"), policy("b"), policy("c")];
    let base = Arc::new(snapshot(&objects));
    let names = LookupQuery::list("v1", "Namespace").distinct(&["/metadata/name"]);
    let holding = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .distinct(&["/metadata/namespace"]);
    let without = names.clone().except(holding.clone());
    let orphans = holding.clone().except(names.clone());
    assert_eq!(ask(&*base, &without), without.answer_among(&objects));
    assert_eq!(ask(&*base, &without), json!(["a"]));
    assert_eq!(ask(&*base, &orphans), json!(["c"]));
    let overlay = OverlayContext::new(base.clone());
    overlay.apply(policy("a"));
    assert_eq!(ask(&overlay, &without), json!([]));
    overlay.apply(ns("c"));
    assert_eq!(ask(&overlay, &orphans), json!([]));
    assert_eq!(ask(&overlay, &holding.except(names)), json!([]));
}
