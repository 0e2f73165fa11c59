//! Tests of [`super::LookupQuery`]: the one meaning every backend shares.

use serde_json::json;

use super::LookupQuery;

fn policy() -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "a", "uid": "u", "labels": {"x": "1"},
                     "annotations": {"net.beta.kubernetes.io/network-policy": "dd", "a/b": "s"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": []}]},
    })
}

#[test]
fn no_fields_is_the_whole_object() {
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy");
    assert_eq!(q.project(&policy()), policy());
}

#[test]
fn fields_keep_identity_and_the_named_members() {
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy").with_fields(&[
        "/spec/podSelector",
        "/spec/ingress/0/from",
        "/metadata/annotations/a~1b",
        "/spec/missing",
        "/metadata/name/deeper",
        "",
        "no-slash",
    ]);
    assert_eq!(
        q.project(&policy()),
        json!({
            "metadata": {"name": "p", "namespace": "a", "annotations": {"a/b": "s"}},
            "spec": {"podSelector": {}, "ingress": [{"from": []}]},
        })
    );
}

#[test]
fn overlapping_pointers_keep_the_wider_member() {
    let q = LookupQuery::list("v1", "Namespace").with_fields(&["/spec", "/spec/podSelector"]);
    assert_eq!(q.project(&policy())["spec"], policy()["spec"]);
    let q = LookupQuery::list("v1", "Namespace").with_fields(&["/spec/podSelector", "/spec"]);
    assert_eq!(q.project(&policy())["spec"], policy()["spec"]);
}

#[test]
fn fields_travel_on_the_wire_only_when_set() {
    let q = LookupQuery::list("v1", "Namespace");
    assert!(!serde_json::to_string(&q).unwrap().contains("fields"));
    let q = q.with_fields(&["/metadata/annotations"]);
    let text = serde_json::to_string(&q).unwrap();
    assert!(
        text.contains(r#""fields":["/metadata/annotations"]"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<LookupQuery>(&text).unwrap(), q);
}

#[test]
fn content_filters_keep_objects_of_a_shape() {
    let deny = json!({"metadata": {"name": "d"}, "spec": {"podSelector": {"matchLabels": {}}}});
    let open = json!({"metadata": {"name": "o"}, "spec": {"podSelector": {}, "ingress": [{}]}});
    let some =
        json!({"metadata": {"name": "s"}, "spec": {"podSelector": {"matchLabels": {"a": "b"}}}});
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .where_empty(&["/spec/podSelector", "/spec/ingress"]);
    assert!(q.selects(&deny));
    assert!(!q.selects(&open));
    assert!(!q.selects(&some));
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .where_non_empty(&["/spec/ingress"]);
    assert!(!q.selects(&deny));
    assert!(q.selects(&open));
}

#[test]
fn emptiness() {
    use super::is_empty_value;
    for empty in [
        json!(null),
        json!(""),
        json!([]),
        json!({}),
        json!({"a": {"b": []}}),
    ] {
        assert!(is_empty_value(Some(&empty)), "{empty}");
    }
    for full in [
        json!(false),
        json!(0),
        json!("x"),
        json!([{}]),
        json!({"a": 0}),
    ] {
        assert!(!is_empty_value(Some(&full)), "{full}");
    }
    assert!(is_empty_value(None));
}

#[test]
fn distinct_answers_each_value_once_in_text_order() {
    let objects = [
        json!({"metadata": {"name": "p", "namespace": "b"}}),
        json!({"metadata": {"name": "q", "namespace": "a"}}),
        json!({"metadata": {"name": "r", "namespace": "b"}}),
        json!({"metadata": {"name": "cluster-scoped"}}),
    ];
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .distinct(&["/metadata/namespace"]);
    assert!(q.reads_content());
    assert_eq!(q.answer(&objects), json!(["a", "b"]));
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .distinct(&["/metadata/namespace", "/metadata/name"]);
    assert_eq!(
        q.answer(&objects),
        json!([["a", "q"], ["b", "p"], ["b", "r"], [null, "cluster-scoped"]])
    );
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
        .distinct(&["/metadata/namespace", "/spec"]);
    assert_eq!(
        q.answer(&objects),
        json!([["a", null], ["b", null], [null, null]])
    );
    let q = LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy");
    assert!(!q.reads_content());
    assert_eq!(q.answer(&objects[..1]), json!([objects[0]]));
}

#[test]
fn filters_and_distinct_travel_on_the_wire_only_when_set() {
    let q = LookupQuery::list("v1", "Namespace");
    let text = serde_json::to_string(&q).unwrap();
    for member in ["empty", "nonEmpty", "distinct"] {
        assert!(!text.contains(member), "{text}");
    }
    let q = q
        .where_empty(&["/a"])
        .where_non_empty(&["/b"])
        .distinct(&["/metadata/name"]);
    let text = serde_json::to_string(&q).unwrap();
    assert!(
        text.contains(r#""empty":["/a"],"nonEmpty":["/b"],"distinct":["/metadata/name"]"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<LookupQuery>(&text).unwrap(), q);
}

#[test]
fn one_of_keeps_objects_whose_member_is_among_the_values() {
    let ns = |name: &str, annotation: Option<&str>| {
        let mut o = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Some(a) = annotation {
            o["metadata"]["annotations"] = json!({"x": a});
        }
        o
    };
    let objects = [ns("a", Some("dd")), ns("b", Some("other")), ns("c", None)];
    let q = LookupQuery::list("v1", "Namespace")
        .where_one_of("/metadata/annotations/x", [json!("dd")])
        .distinct(&["/metadata/name"]);
    assert!(q.reads_content());
    assert_eq!(q.answer_among(&objects), json!(["a"]));
    // `null` stands for a member that is absent, too.
    let q = q.where_one_of("/metadata/annotations/x", [json!(null), json!("other")]);
    assert_eq!(q.answer_among(&objects), json!(["b", "c"]));
    // No values: nothing is among them.
    let q = q.where_one_of("/metadata/annotations/x", []);
    assert_eq!(q.answer_among(&objects), json!([]));
}

#[test]
fn except_leaves_out_what_another_query_answers() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}),
        json!({"apiVersion": "n/v1", "kind": "Policy", "metadata": {"name": "p", "namespace": "b"}}),
        json!({"apiVersion": "n/v1", "kind": "Policy", "metadata": {"name": "q", "namespace": "c"}}),
    ];
    let names = LookupQuery::list("v1", "Namespace").distinct(&["/metadata/name"]);
    let holding = LookupQuery::list("n/v1", "Policy").distinct(&["/metadata/namespace"]);
    assert_eq!(
        names.clone().except(holding.clone()).answer_among(&objects),
        json!(["a"])
    );
    assert_eq!(
        holding.clone().except(names.clone()).answer_among(&objects),
        json!(["c"])
    );
    // Nested: what is left out is itself an answer with `except`.
    let nested = holding.clone().except(names.clone().except(holding));
    assert_eq!(nested.answer_among(&objects), json!(["b", "c"]));
    assert_eq!(nested.without_except().except, None);
    assert_eq!(
        LookupQuery::except_answer(vec![json!(1), json!("1"), json!([1])], &[json!(1)]),
        [json!("1"), json!([1])]
    );
}

#[test]
fn one_of_and_except_travel_on_the_wire_only_when_set() {
    let q = LookupQuery::list("v1", "Namespace");
    let text = serde_json::to_string(&q).unwrap();
    assert!(
        !text.contains("oneOf") && !text.contains("except"),
        "{text}"
    );
    let q = q
        .where_one_of("/a", [json!({"b": 1}), json!(null)])
        .except(LookupQuery::list("v1", "Pod").where_one_of("/c", []));
    let text = serde_json::to_string(&q).unwrap();
    assert!(
        text.contains(r#""oneOf":{"/a":[{"b":1},null]},"except":{"apiVersion":"v1","kind":"Pod","oneOf":{"/c":[]}}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<LookupQuery>(&text).unwrap(), q);
}
