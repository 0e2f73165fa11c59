//! NetworkPolicy semantics before and after Calico's switch to v1
//! (guide, "Upgrading to v1 NetworkPolicy semantics").

use tollgate_sdk::Object;
use tollgate_sdk::version::Version;

use crate::identify::Datastore;

/// The namespace annotation of the beta NetworkPolicy API.
pub const ISOLATION_ANNOTATION: &str = "net.beta.kubernetes.io/network-policy";

/// The guide's policy that selects every pod and allows nothing, as JSON for
/// `kubectl apply -n NS -f -`.
pub const DEFAULT_DENY_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"default-deny"},"spec":{"podSelector":{}}}"#;

/// DefaultDeny(ns): the annotation parses as JSON with
/// `.ingress.isolation == "DefaultDeny"`; anything else is not.
pub fn is_default_deny_namespace(ns: &Object<'_>) -> bool {
    ns.annotation(ISOLATION_ANNOTATION)
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .is_some_and(|v| v["ingress"]["isolation"] == "DefaultDeny")
}

/// A policy that selects every pod and allows no ingress: empty (or null or
/// missing) podSelector, no ingress rules, policyTypes absent or containing
/// Ingress.
pub fn is_default_deny_policy(policy: &Object<'_>) -> bool {
    let Some(spec) = policy.spec.as_ref() else {
        return true;
    };
    let selects_all = match &spec.pod_selector {
        None | Some(None) => true,
        Some(Some(selector)) => selector.is_empty(),
    };
    let no_ingress = spec.ingress.as_ref().is_none_or(Vec::is_empty);
    let covers_ingress = spec
        .policy_types
        .as_ref()
        .is_none_or(|t| t.iter().any(|t| t == "Ingress"));
    selects_all && no_ingress && covers_ingress
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

    fn parse(v: serde_json::Value) -> Object<'static> {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn ns(annotation: Option<&str>) -> Object<'static> {
        let mut v = json!({"kind": "Namespace", "metadata": {"name": "n"}});
        if let Some(a) = annotation {
            v["metadata"]["annotations"] = json!({ISOLATION_ANNOTATION: a});
        }
        parse(v)
    }

    #[test]
    fn default_deny_namespaces() {
        assert!(is_default_deny_namespace(&ns(Some(
            r#"{"ingress":{"isolation":"DefaultDeny"}}"#
        ))));
        assert!(!is_default_deny_namespace(&ns(Some(
            r#"{"ingress":{"isolation":"None"}}"#
        ))));
        assert!(!is_default_deny_namespace(&ns(Some("DefaultDeny"))));
        assert!(!is_default_deny_namespace(&ns(Some(
            r#"{"ingress":"DefaultDeny"}"#
        ))));
        assert!(!is_default_deny_namespace(&ns(Some("{not json"))));
        assert!(!is_default_deny_namespace(&ns(None)));
    }

    #[test]
    fn default_deny_policies() {
        let p = |spec: serde_json::Value| {
            parse(json!({"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec}))
        };
        assert!(is_default_deny_policy(&p(json!({"podSelector": {}}))));
        assert!(is_default_deny_policy(&p(json!({"podSelector": null}))));
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
}
