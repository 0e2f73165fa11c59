//! What a policy may read: its `context:` allow-list.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{LookupError, LookupQuery};

/// An apiVersion/kind pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    pub api_version: String,
    pub kind: String,
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
}

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
    pub fn check(&self, query: &LookupQuery) -> Result<(), LookupError> {
        let covered = self.grants.iter().any(|g| {
            g.api_version == query.api_version
                && g.kind == query.kind
                && match (&g.namespaces, &query.namespace) {
                    (None, _) => true,
                    (Some(allowed), Some(ns)) => allowed.iter().any(|a| a == ns),
                    // A list across all namespaces needs an all-namespace grant.
                    (Some(_), None) => false,
                }
        });
        if covered {
            Ok(())
        } else {
            Err(LookupError::NotAllowed {
                policy: self.policy.clone(),
                api_version: query.api_version.clone(),
                kind: query.kind.clone(),
                namespace: query.namespace.clone(),
            })
        }
    }

    /// The resource types this list grants.
    pub fn resource_types(&self) -> impl Iterator<Item = ResourceType> + '_ {
        self.grants.iter().map(|g| ResourceType {
            api_version: g.api_version.clone(),
            kind: g.kind.clone(),
        })
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
    use super::*;

    fn grant(api_version: &str, kind: &str, namespaces: Option<&[&str]>) -> Grant {
        Grant {
            api_version: api_version.into(),
            kind: kind.into(),
            namespaces: namespaces.map(|n| n.iter().map(|s| (*s).to_owned()).collect()),
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
