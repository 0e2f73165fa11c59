//! NetworkPolicy semantics before and after Calico's switch to v1
//! (guide, "Upgrading to v1 NetworkPolicy semantics").

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::views::{NetworkPolicy, ObjectMeta};

use crate::identify::Datastore;

/// The namespace annotation of the beta NetworkPolicy API.
pub const ISOLATION_ANNOTATION: &str = "net.beta.kubernetes.io/network-policy";
/// [`ISOLATION_ANNOTATION`] as a lookup's JSON Pointer (`/` is `~1`).
pub const ISOLATION_ANNOTATION_POINTER: &str =
    "/metadata/annotations/net.beta.kubernetes.io~1network-policy";

/// The guide's policy that selects every pod and allows nothing, as JSON for
/// `kubectl apply -n NS -f -`.
pub const DEFAULT_DENY_JSON: &str = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"default-deny"},"spec":{"podSelector":{}}}"#;

/// What is read of a Namespace: its metadata. A view this small keeps a
/// scan of thousands of namespaces cheap in the guest.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Namespace<'a> {
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
}

impl Namespace<'_> {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
}

/// DefaultDeny(ns): the annotation parses as JSON with
/// `.ingress.isolation == "DefaultDeny"`; anything else is not.
pub fn is_default_deny_namespace(ns: &Namespace<'_>) -> bool {
    ns.metadata
        .annotation(ISOLATION_ANNOTATION)
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .is_some_and(|v| v["ingress"]["isolation"] == "DefaultDeny")
}

/// A policy that selects every pod and allows no ingress: empty (or null or
/// missing) podSelector, no ingress rules, policyTypes absent or containing
/// Ingress.
pub fn is_default_deny_policy(policy: &NetworkPolicy<'_>) -> bool {
    let spec = &policy.spec;
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

    fn ns(annotation: Option<&str>) -> Namespace<'static> {
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
        let p = |spec: serde_json::Value| -> NetworkPolicy<'static> {
            parse(json!({"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec}))
        };
        assert!(is_default_deny_policy(&parse(
            json!({"kind": "NetworkPolicy", "metadata": {"name": "p"}})
        )));
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

    #[test]
    fn the_annotation_pointer_names_the_annotation() {
        let pointer = format!(
            "/metadata/annotations/{}",
            ISOLATION_ANNOTATION.replace('~', "~0").replace('/', "~1")
        );
        assert_eq!(ISOLATION_ANNOTATION_POINTER, pointer);
    }
}
