//! What the watch caches hold, derived from the loaded policies' grants.
//!
//! Per resource type: the list+watch requests that cover every grant naming
//! it (one per granted namespace and name, with the grant's labels as a
//! selector) and the parts of each object any of them reads. A cluster of
//! 20,000 Pods then costs the handful of calico-node Pods the rules read,
//! and the ClusterRole becomes Roles in the namespaces read ([`crate::read_access`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::allow::is_under;
use crate::{AllowList, Grant, LookupQuery, ResourceType};

/// One list+watch: a namespace (or all), one object name (or all), and the
/// labels every object carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selection {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Selection {
    /// Everything of a type.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether every object `other` selects is also selected by `self`.
    fn covers(&self, other: &Selection) -> bool {
        let wider =
            |mine: &Option<String>, theirs: &Option<String>| mine.is_none() || mine == theirs;
        wider(&self.namespace, &other.namespace)
            && wider(&self.name, &other.name)
            && self
                .labels
                .iter()
                .all(|(k, v)| other.labels.get(k) == Some(v))
    }

    /// The label selector of the list and watch requests (`k=v,…`).
    pub fn label_selector(&self) -> Option<String> {
        (!self.labels.is_empty()).then(|| {
            let terms: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            terms.join(",")
        })
    }

    /// The field selector (`metadata.name=…`): RBAC authorises a list or
    /// watch against `resourceNames` only with it.
    pub fn field_selector(&self) -> Option<String> {
        self.name.as_ref().map(|n| format!("metadata.name={n}"))
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.namespace.as_deref().unwrap_or("all namespaces"))?;
        if let Some(name) = &self.name {
            write!(f, ", name {name}")?;
        }
        if let Some(labels) = self.label_selector() {
            write!(f, ", labels {labels}")?;
        }
        Ok(())
    }
}

/// What is watched and kept of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePlan {
    /// The list+watch requests; none is covered by another.
    pub selections: Vec<Selection>,
    /// The parts of each object kept besides its metadata (JSON Pointers);
    /// `None` keeps whole objects, an empty set metadata only.
    pub fields: Option<BTreeSet<String>>,
}

impl TypePlan {
    /// Every object of the type, whole.
    pub fn whole() -> Self {
        Self {
            selections: vec![Selection::all()],
            fields: None,
        }
    }

    /// Whether only metadata is read (a metadata-only watch serves it).
    pub fn metadata_only(&self) -> bool {
        self.fields.as_ref().is_some_and(BTreeSet::is_empty)
    }

    /// What of `object` the cache keeps: its metadata and the planned
    /// fields (the projection lookups use, so answers agree with the SDK).
    pub fn keep(&self, object: Value) -> Value {
        let Some(fields) = &self.fields else {
            return object;
        };
        let mut pointers = vec!["/metadata".to_owned()];
        pointers.extend(fields.iter().cloned());
        LookupQuery {
            fields: pointers,
            ..LookupQuery::default()
        }
        .project(&object)
    }

    fn add(&mut self, grant: &Grant) {
        let names: Vec<Option<String>> = match &grant.names {
            Some(names) => names.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        let namespaces: Vec<Option<String>> = match &grant.namespaces {
            Some(namespaces) => namespaces.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for namespace in &namespaces {
            for name in &names {
                self.selections.push(Selection {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    labels: grant.labels.clone(),
                });
            }
        }
        self.fields = match (self.fields.take(), &grant.fields) {
            (Some(mut kept), Some(more)) => {
                kept.extend(more.iter().filter(|p| !is_under(p, "/metadata")).cloned());
                Some(kept)
            }
            _ => None,
        };
    }

    /// Drops the selections another one covers (and duplicates).
    fn prune(&mut self) {
        self.selections.sort();
        self.selections.dedup();
        let all = std::mem::take(&mut self.selections);
        for (i, selection) in all.iter().enumerate() {
            let covered = all
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.covers(selection) && !selection.covers(other));
            if !covered {
                self.selections.push(selection.clone());
            }
        }
    }
}

/// Per type, what the caches watch and keep.
pub type WatchPlan = BTreeMap<ResourceType, TypePlan>;

/// The plan that serves every grant of `lists`.
pub fn watch_plan<'a>(lists: impl IntoIterator<Item = &'a AllowList>) -> WatchPlan {
    let mut plan = WatchPlan::new();
    for grant in lists.into_iter().flat_map(|l| &l.grants) {
        plan.entry(grant.resource_type())
            .or_insert_with(|| TypePlan {
                selections: Vec::new(),
                fields: Some(BTreeSet::new()),
            })
            .add(grant);
    }
    for type_plan in plan.values_mut() {
        type_plan.prune();
    }
    plan
}

/// Whole objects of every type in `types` (what a plain list of types
/// asks for).
pub fn whole_types(types: impl IntoIterator<Item = ResourceType>) -> WatchPlan {
    types.into_iter().map(|t| (t, TypePlan::whole())).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan_of(yaml: &str) -> WatchPlan {
        let grants: Vec<Grant> = serde_yaml_ng::from_str(yaml).unwrap();
        watch_plan([&AllowList::new("p", grants)])
    }

    fn selections(plan: &WatchPlan, api_version: &str, kind: &str) -> Vec<String> {
        plan[&ResourceType::new(api_version, kind)]
            .selections
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_granted_namespace_and_name_is_one_watch_and_wider_grants_absorb_narrower() {
        let plan = plan_of(
            "[{apiVersion: v1, kind: Pod, namespaces: [kube-system, calico-system], labels: {k8s-app: calico-node}},
              {apiVersion: v1, kind: Pod, namespaces: [kube-system], labels: {k8s-app: calico-node, tier: x}},
              {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system], names: [a, b]},
              {apiVersion: apps/v1, kind: Deployment, namespaces: [kube-system], names: [a]},
              {apiVersion: apps/v1, kind: Deployment, namespaces: [kube-system]},
              {apiVersion: v1, kind: Node, fields: [/spec/unschedulable]},
              {apiVersion: v1, kind: Node, fields: []},
              {apiVersion: v1, kind: Namespace, fields: [/metadata/annotations]}]",
        );
        assert_eq!(
            selections(&plan, "v1", "Pod"),
            [
                "calico-system, labels k8s-app=calico-node",
                "kube-system, labels k8s-app=calico-node"
            ]
        );
        assert_eq!(
            selections(&plan, "apps/v1", "ReplicaSet"),
            ["kube-system, name a", "kube-system, name b"]
        );
        assert_eq!(selections(&plan, "apps/v1", "Deployment"), ["kube-system"]);
        let node = &plan[&ResourceType::new("v1", "Node")];
        assert_eq!(selections(&plan, "v1", "Node"), ["all namespaces"]);
        assert_eq!(
            node.fields,
            Some(BTreeSet::from(["/spec/unschedulable".to_owned()]))
        );
        let namespace = &plan[&ResourceType::new("v1", "Namespace")];
        assert!(namespace.metadata_only());
        // One grant of whole objects makes the type whole.
        let whole =
            plan_of("[{apiVersion: v1, kind: Node, fields: []}, {apiVersion: v1, kind: Node}]");
        assert_eq!(whole.values().next().unwrap().fields, None);
    }

    #[test]
    fn kept_objects_are_their_metadata_and_the_planned_fields() {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"a": "b"}},
            "spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"},
            "status": {"images": [{"names": ["x"]}]},
        });
        let plan = TypePlan {
            selections: vec![Selection::all()],
            fields: Some(BTreeSet::from(["/spec/unschedulable".to_owned()])),
        };
        assert_eq!(
            plan.keep(node.clone()),
            json!({"metadata": {"name": "n1", "labels": {"a": "b"}}, "spec": {"unschedulable": true}})
        );
        assert_eq!(TypePlan::whole().keep(node.clone()), node);
    }

    #[test]
    fn selectors_are_what_the_api_server_and_rbac_expect() {
        let s = Selection {
            namespace: Some("kube-system".into()),
            name: Some("calico-node".into()),
            labels: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
        };
        assert_eq!(s.label_selector().as_deref(), Some("a=1,b=2"));
        assert_eq!(
            s.field_selector().as_deref(),
            Some("metadata.name=calico-node")
        );
        assert_eq!(Selection::all().label_selector(), None);
        assert_eq!(Selection::all().field_selector(), None);
    }
}
