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
pub fn resource_types<'a>(lists: impl IntoIterator<Item = &'a AllowList>) -> BTreeSet<ResourceType> {
    lists
        .into_iter()
        .flat_map(AllowList::resource_types)
        .collect()
}
