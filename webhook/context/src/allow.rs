//! What a policy may read: its `context:` allow-list.
//!
//! A grant names a type and may narrow it to namespaces, object names,
//! labels and the parts of each object read. The narrowing serves two ends:
//! a lookup outside it is refused (so a policy cannot come to depend on more
//! than it declared), and the watch caches hold only what some grant covers
//! ([`crate::plan`]), so a large cluster's unrelated objects cost nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{LookupError, LookupQuery};

/// An apiVersion/kind pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    pub api_version: String,
    pub kind: String,
}

impl ResourceType {
    pub fn new(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

/// One entry of a policy's `context:` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    pub api_version: String,
    pub kind: String,
    /// Restricts reads to these namespaces; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Restricts reads to objects of these names, each read by name;
    /// absent means any object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Restricts reads to objects carrying these labels: a query must ask
    /// for each of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The parts of each object read besides its metadata, as JSON Pointers
    /// (`/spec/unschedulable`); `[]` is metadata only. A query must name the
    /// parts it reads (`fields`, and any pointer it filters on) within
    /// these. Absent means whole objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl Grant {
    /// A grant of every object of a type.
    pub fn whole(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespaces: None,
            names: None,
            labels: BTreeMap::new(),
            fields: None,
        }
    }

    /// Whether this grant covers everything `query` can answer.
    pub fn covers(&self, query: &LookupQuery) -> bool {
        self.api_version == query.api_version
            && self.kind == query.kind
            && within(self.namespaces.as_deref(), query.namespace.as_deref())
            && within(self.names.as_deref(), query.name.as_deref())
            && self
                .labels
                .iter()
                .all(|(k, v)| query.labels.get(k) == Some(v))
            && self.fields.as_deref().is_none_or(|granted| {
                // Without `fields` (or `distinct`) the answer is whole objects.
                (!query.fields.is_empty() || !query.distinct.is_empty())
                    && read_pointers(query)
                        .all(|p| is_under(p, "/metadata") || granted.iter().any(|g| is_under(p, g)))
            })
    }

    /// What makes this grant unusable, if anything: an empty list (which
    /// would grant nothing, surely not what was meant), or a field that is
    /// not a JSON Pointer.
    pub fn problem(&self) -> Option<String> {
        let what = format!("{} {}", self.api_version, self.kind);
        if self.namespaces.as_ref().is_some_and(Vec::is_empty) {
            return Some(format!(
                "{what}: `namespaces: []` grants nothing; omit it for all namespaces"
            ));
        }
        if self.names.as_ref().is_some_and(Vec::is_empty) {
            return Some(format!(
                "{what}: `names: []` grants nothing; omit it for any object"
            ));
        }
        if let Some(bad) = self.fields.iter().flatten().find(|f| !f.starts_with('/')) {
            return Some(format!(
                "{what}: field {bad:?} is not a JSON Pointer (write /spec/...)"
            ));
        }
        None
    }

    /// The type this grant names.
    pub fn resource_type(&self) -> ResourceType {
        ResourceType {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// Whether a query's `asked` value is among the `allowed` ones (`None`:
/// any). A query that does not narrow (`None`) is covered only by a grant
/// that does not either: a list across all namespaces needs an
/// all-namespace grant, a list of a type one read by name only.
fn within(allowed: Option<&[String]>, asked: Option<&str>) -> bool {
    match (allowed, asked) {
        (None, _) => true,
        (Some(allowed), Some(asked)) => allowed.iter().any(|a| a == asked),
        (Some(_), None) => false,
    }
}

/// Every JSON Pointer the answer to `query` depends on.
fn read_pointers(query: &LookupQuery) -> impl Iterator<Item = &str> {
    [
        &query.fields,
        &query.empty,
        &query.non_empty,
        &query.distinct,
    ]
    .into_iter()
    .flatten()
    .chain(query.one_of.keys())
    .map(String::as_str)
}

/// Whether JSON Pointer `pointer` names `parent` or something inside it.
pub(crate) fn is_under(pointer: &str, parent: &str) -> bool {
    pointer
        .strip_prefix(parent)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The most `except` queries one lookup may nest (R9 nests one).
pub const MAX_NESTED_EXCEPT: usize = 4;

/// A policy's allow-list. Empty means the policy reads nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub policy: String,
    pub grants: Vec<Grant>,
}

impl AllowList {
    pub fn new(policy: impl Into<String>, grants: Vec<Grant>) -> Self {
        Self {
            policy: policy.into(),
            grants,
        }
    }

    /// Ok when some grant covers the query; otherwise the refusal to send the
    /// guest (and log).
    /// The query's `except` reads too, so each query of the chain must be
    /// covered; the refusal names the first that is not. A chain longer
    /// than [`MAX_NESTED_EXCEPT`] is refused.
    pub fn check(&self, query: &LookupQuery) -> Result<(), LookupError> {
        let nested = std::iter::successors(query.except.as_deref(), |q| q.except.as_deref());
        if nested.count() > MAX_NESTED_EXCEPT {
            return Err(LookupError::TooNested {
                max: MAX_NESTED_EXCEPT,
            });
        }
        let mut next = Some(query);
        while let Some(query) = next {
            if !self.grants.iter().any(|g| g.covers(query)) {
                return Err(LookupError::NotAllowed {
                    policy: self.policy.clone(),
                    api_version: query.api_version.clone(),
                    kind: query.kind.clone(),
                    namespace: query.namespace.clone(),
                });
            }
            next = query.except.as_deref();
        }
        Ok(())
    }

    /// The resource types this list grants.
    pub fn resource_types(&self) -> impl Iterator<Item = ResourceType> + '_ {
        self.grants.iter().map(Grant::resource_type)
    }
}

/// Every resource type some policy may read: what the watch backend caches
/// and the ClusterRole grants.
pub fn resource_types<'a>(
    lists: impl IntoIterator<Item = &'a AllowList>,
) -> BTreeSet<ResourceType> {
    lists
        .into_iter()
        .flat_map(AllowList::resource_types)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn grant(api_version: &str, kind: &str, namespaces: Option<&[&str]>) -> Grant {
        Grant {
            namespaces: namespaces.map(|n| n.iter().map(|s| (*s).to_owned()).collect()),
            ..Grant::whole(api_version, kind)
        }
    }

    #[test]
    fn grants_cover_type_and_namespaces() {
        let list = AllowList::new(
            "controller-one-active",
            vec![
                grant("apps/v1", "ReplicaSet", None),
                grant("v1", "Pod", Some(&["kube-system"])),
            ],
        );
        assert!(
            list.check(&LookupQuery::list("apps/v1", "ReplicaSet"))
                .is_ok()
        );
        assert!(
            list.check(&LookupQuery::get("apps/v1", "ReplicaSet", Some("x"), "y"))
                .is_ok()
        );
        assert!(
            list.check(&LookupQuery::list("v1", "Pod").in_namespace("kube-system"))
                .is_ok()
        );

        let refused = |q: &LookupQuery| list.check(q).unwrap_err().to_string();
        assert_eq!(
            refused(&LookupQuery::list("extensions/v1beta1", "ReplicaSet")),
            "policy controller-one-active may not read extensions/v1beta1 ReplicaSet"
        );
        assert_eq!(
            refused(&LookupQuery::list("v1", "Pod").in_namespace("default")),
            "policy controller-one-active may not read v1 Pod in namespace default"
        );
        // A namespace-restricted grant does not allow a list across all namespaces.
        assert_eq!(
            refused(&LookupQuery::list("v1", "Pod")),
            "policy controller-one-active may not read v1 Pod"
        );
        assert!(
            AllowList::default()
                .check(&LookupQuery::list("v1", "Pod"))
                .is_err()
        );
    }

    #[test]
    fn narrowed_grants_cover_only_queries_within_them() {
        let yaml = "[{apiVersion: v1, kind: Pod, namespaces: [kube-system], labels: {k8s-app: calico-node}},
                     {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system], names: [calico-policy-controller]},
                     {apiVersion: v1, kind: Node, fields: [/spec/unschedulable]}]";
        let list = AllowList::new("p", serde_yaml_ng::from_str(yaml).unwrap());
        let pods = LookupQuery::list("v1", "Pod").in_namespace("kube-system");
        let rs = |name| LookupQuery::get("apps/v1", "ReplicaSet", Some("kube-system"), name);
        let node = LookupQuery::get("v1", "Node", None, "n1");
        for allowed in [
            pods.clone().with_label("k8s-app", "calico-node"),
            pods.clone()
                .with_label("k8s-app", "calico-node")
                .with_label("other", "x"),
            rs("calico-policy-controller"),
            node.clone().with_fields(&["/spec/unschedulable"]),
            node.clone()
                .with_fields(&["/metadata/labels", "/spec/unschedulable/x"]),
            LookupQuery::list("v1", "Node").with_fields(&["/metadata/name"]),
        ] {
            assert!(list.check(&allowed).is_ok(), "{allowed:?}");
        }
        for refused in [
            pods.clone(),
            pods.clone().with_label("k8s-app", "calico-typha"),
            rs("calico-kube-controllers-5d8f"),
            LookupQuery::list("apps/v1", "ReplicaSet").in_namespace("kube-system"),
            node.clone(),
            node.clone().with_fields(&["/spec/taints"]),
            node.clone().with_fields(&["/spec/unschedulablex"]),
            LookupQuery::list("v1", "Node")
                .with_fields(&["/metadata/name"])
                .distinct(&["/status"]),
        ] {
            assert!(list.check(&refused).is_err(), "{refused:?}");
        }
    }

    /// `oneOf` reads the members it names; `except` reads another query,
    /// which needs a grant of its own.
    #[test]
    fn one_of_and_except_read_what_they_name() {
        let yaml = "[{apiVersion: v1, kind: Namespace, fields: []},
                     {apiVersion: n/v1, kind: Policy, fields: [/spec/types]}]";
        let list = AllowList::new("p", serde_yaml_ng::from_str(yaml).unwrap());
        let names = LookupQuery::list("v1", "Namespace").distinct(&["/metadata/name"]);
        let policies = LookupQuery::list("n/v1", "Policy").distinct(&["/metadata/namespace"]);
        let typed = policies.clone().where_one_of("/spec/types", [Value::Null]);
        for allowed in [
            names.clone().where_one_of("/metadata/annotations/a", []),
            names.clone().except(typed.clone()),
            typed.clone().except(names.clone().except(policies.clone())),
        ] {
            assert!(list.check(&allowed).is_ok(), "{allowed:?}");
        }
        let refused = |q: &LookupQuery| list.check(q).unwrap_err().to_string();
        assert_eq!(
            refused(&names.clone().where_one_of("/spec/finalizers", [])),
            "policy p may not read v1 Namespace"
        );
        assert_eq!(
            refused(
                &names
                    .clone()
                    .except(policies.where_one_of("/spec/other", []))
            ),
            "policy p may not read n/v1 Policy"
        );
        assert_eq!(
            refused(
                &names
                    .clone()
                    .except(LookupQuery::list("v1", "Pod").distinct(&["/metadata/name"]))
            ),
            "policy p may not read v1 Pod"
        );
        let deep = (0..MAX_NESTED_EXCEPT).fold(names.clone(), |q, _| names.clone().except(q));
        assert!(list.check(&deep).is_ok());
        assert_eq!(
            refused(&names.clone().except(deep)),
            "a lookup may nest at most 4 `except` queries"
        );
    }

    #[test]
    fn grants_that_would_grant_nothing_or_name_no_pointer_are_refused() {
        let problem = |yaml: &str| serde_yaml_ng::from_str::<Grant>(yaml).unwrap().problem();
        assert_eq!(
            problem("{apiVersion: v1, kind: Pod, namespaces: [a], names: [b], fields: [/spec]}"),
            None
        );
        for (yaml, says) in [
            (
                "{apiVersion: v1, kind: Pod, namespaces: []}",
                "`namespaces: []` grants nothing",
            ),
            (
                "{apiVersion: v1, kind: Pod, names: []}",
                "`names: []` grants nothing",
            ),
            (
                "{apiVersion: v1, kind: Pod, fields: [spec.x]}",
                "field \"spec.x\" is not a JSON Pointer",
            ),
        ] {
            let message = problem(yaml).unwrap_or_else(|| panic!("{yaml} accepted"));
            assert!(message.contains(says), "{message}");
        }
        assert!(
            serde_yaml_ng::from_str::<Grant>("{apiVersion: v1, kind: Pod, label: {a: b}}").is_err()
        );
    }

    #[test]
    fn resource_types_are_the_union_of_all_lists() {
        let a = AllowList::new(
            "a",
            vec![grant("v1", "Pod", Some(&["x"])), grant("v1", "Node", None)],
        );
        let b = AllowList::new("b", vec![grant("v1", "Pod", None)]);
        let types: Vec<_> = resource_types([&a, &b])
            .into_iter()
            .map(|t| format!("{} {}", t.api_version, t.kind))
            .collect();
        assert_eq!(types, ["v1 Node", "v1 Pod"]);
    }
}
