//! NetworkPolicy semantics before and after Calico's switch to v1
//! (guide, "Upgrading to v1 NetworkPolicy semantics").

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::views::{NetworkPolicy, NetworkPolicySpec};

use crate::identify::Datastore;

/// The namespace annotation of the beta NetworkPolicy API.
pub const ISOLATION_ANNOTATION: &str = "net.beta.kubernetes.io/network-policy";
/// [`ISOLATION_ANNOTATION`] as a lookup's JSON Pointer (`/` is `~1`).
pub const ISOLATION_ANNOTATION_POINTER: &str =
    "/metadata/annotations/net.beta.kubernetes.io~1network-policy";

/// The guide's policy that selects every pod and allows nothing, as JSON for
/// `kubectl apply -n NS -f -`.
pub const DEFAULT_DENY_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"default-deny"},"spec":{"podSelector":{}}}"#;

/// DefaultDeny(ns): the value of [`ISOLATION_ANNOTATION`] parses as JSON
/// with `.ingress.isolation == "DefaultDeny"`; anything else is not.
pub fn is_default_deny_annotation(annotation: &str) -> bool {
    // Only the member read is parsed (a scan meets thousands of these);
    // an annotation of another shape does not parse and is not DefaultDeny.
    #[derive(Deserialize)]
    struct Annotation<'a> {
        #[serde(borrow)]
        ingress: Ingress<'a>,
    }
    #[derive(Deserialize)]
    struct Ingress<'a> {
        #[serde(borrow)]
        isolation: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Annotation<'_>>(annotation)
        .is_ok_and(|a| a.ingress.isolation == "DefaultDeny")
}

/// What [`is_default_deny_policy`] reads of a policy, as a lookup's fields.
pub const DEFAULT_DENY_FIELDS: [&str; 3] =
    ["/spec/podSelector", "/spec/policyTypes", "/spec/ingress"];
/// The members a default-deny policy has empty, as a lookup's content
/// filter: the host then sends only policies of that shape. The SDK's
/// emptiness ([`tollgate_sdk::wire::is_empty_value`]) holds for every
/// selector that selects all pods and every absent or empty rule list, so
/// the filter keeps every policy [`is_default_deny_policy`] accepts (a
/// selector with unknown members would be the exception, and the API server
/// prunes those before it stores a policy).
pub const DEFAULT_DENY_EMPTY: [&str; 2] = ["/spec/podSelector", "/spec/ingress"];

/// A policy that selects every pod and allows no ingress: empty (or null or
/// missing) podSelector, no ingress rules, policyTypes absent or containing
/// Ingress.
pub fn is_default_deny_policy(policy: &NetworkPolicy<'_>) -> bool {
    is_default_deny_spec(&policy.spec)
}

/// [`is_default_deny_policy`] of a policy's spec.
pub fn is_default_deny_spec(spec: &NetworkPolicySpec<'_>) -> bool {
    spec.selects_all_pods()
        && spec.ingress.as_ref().is_none_or(Vec::is_empty)
        && spec.affects_ingress()
}

/// The releases at which the datastore switches to v1 semantics; both when
/// the datastore is unknown (the check then applies at either).
pub fn v1_boundaries<'v>(
    datastore: Datastore,
    kdd: &'v Version,
    etcd: &'v Version,
) -> Vec<&'v Version> {
    match datastore {
        Datastore::Kdd => vec![kdd],
        Datastore::Etcd => vec![etcd],
        Datastore::Unknown => vec![kdd, etcd],
    }
}

pub fn default_kdd_boundary() -> Version {
    Version::new(2, 3, 0)
}

pub fn default_etcd_boundary() -> Version {
    Version::new(2, 4, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<T: Deserialize<'static>>(v: serde_json::Value) -> T {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn default_deny_namespaces() {
        assert!(is_default_deny_annotation(
            r#"{"ingress":{"isolation":"DefaultDeny"}}"#
        ));
        assert!(!is_default_deny_annotation(
            r#"{"ingress":{"isolation":"None"}}"#
        ));
        assert!(!is_default_deny_annotation("DefaultDeny"));
        assert!(!is_default_deny_annotation(r#"{"ingress":"DefaultDeny"}"#));
        assert!(!is_default_deny_annotation("{not json"));
        assert!(is_default_deny_annotation(
            r#" { "other": 1, "ingress": { "isolation": "Default\u0044eny", "x": [] } } "#
        ));
        assert!(!is_default_deny_annotation(
            r#"{"ingress":{"isolation":null}}"#
        ));
        assert!(!is_default_deny_annotation(r#"{"ingress":null}"#));
        assert!(!is_default_deny_annotation(r#"[]"#));
    }

    #[test]
    fn default_deny_policies() {
        // Every policy accepted here passes the lookup's content filter.
        let filter = tollgate_sdk::wire::LookupQuery::list("networking.k8s.io/v1", "NetworkPolicy")
            .where_empty(&DEFAULT_DENY_EMPTY);
        let p = |spec: serde_json::Value| -> NetworkPolicy<'static> {
            let policy = json!({"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec});
            let view: NetworkPolicy<'static> = parse(policy.clone());
            assert!(
                !is_default_deny_policy(&view) || filter.selects(&policy),
                "{policy}"
            );
            view
        };
        assert!(is_default_deny_policy(&parse(
            json!({"kind": "NetworkPolicy", "metadata": {"name": "p"}})
        )));
        assert!(is_default_deny_policy(&p(json!({"podSelector": {}}))));
        assert!(is_default_deny_policy(&p(json!({"podSelector": null}))));
        assert!(is_default_deny_policy(&p(
            json!({"podSelector": {"matchLabels": {}, "matchExpressions": []}, "ingress": null})
        )));
        assert!(is_default_deny_policy(&p(json!({}))));
        assert!(is_default_deny_policy(&p(
            json!({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []})
        )));
        assert!(is_default_deny_policy(&p(
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        )));
        assert!(!is_default_deny_policy(&p(
            json!({"podSelector": {}, "policyTypes": ["Egress"]})
        )));
        assert!(!is_default_deny_policy(&p(
            json!({"podSelector": {"matchLabels": {"a": "b"}}})
        )));
        assert!(!is_default_deny_policy(&p(
            json!({"podSelector": {}, "ingress": [{}]})
        )));
        assert!(DEFAULT_DENY_JSON.contains("default-deny"));
    }

    #[test]
    fn the_annotation_pointer_names_the_annotation() {
        let pointer = format!(
            "/metadata/annotations/{}",
            jsonptr::Token::new(ISOLATION_ANNOTATION).encoded()
        );
        assert_eq!(ISOLATION_ANNOTATION_POINTER, pointer);
    }
}
