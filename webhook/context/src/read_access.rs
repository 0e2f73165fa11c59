//! The read access Tollgate needs, generated from the policies' grants.
//!
//! The watch backend lists and watches what the [`WatchPlan`] says (one
//! request per granted namespace and name), so the rules grant `get`,
//! `list` and `watch` on exactly that. Rules are grouped by API group;
//! several versions of one group share a rule (RBAC does not distinguish
//! versions).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::PolicyRule;

use tollgate_sdk::api::{api_group, plural};

use crate::{ResourceType, WatchPlan};

/// Verbs the watch caches use.
pub const VERBS: [&str; 3] = ["get", "list", "watch"];

/// The read rules the watch backend needs to follow a [`WatchPlan`],
/// least privilege: cluster-wide only what is watched across all
/// namespaces (or in a namespace that may not exist yet), one set per
/// namespace for what is watched in one of [`ALWAYS_PRESENT`], and
/// `resourceNames` where every watch of a type in that scope names its
/// object (the API server authorises a list or watch against
/// `resourceNames` when it selects `metadata.name`, as those watches do).
/// Label selectors cannot narrow RBAC: a type watched by labels is granted
/// whole in its scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextRules {
    /// For a ClusterRole: types watched across all namespaces, and
    /// cluster-scoped types.
    pub cluster: Vec<PolicyRule>,
    /// For a Role in each namespace watched on its own.
    pub namespaced: BTreeMap<String, Vec<PolicyRule>>,
}

/// The namespaces every cluster has from its start: the only ones a Role
/// can be installed in before anything else.
pub const ALWAYS_PRESENT: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// [`ContextRules`] of `plan`, with plurals from [`tollgate_sdk::api::plural`].
pub fn context_rules(plan: &WatchPlan) -> ContextRules {
    context_rules_with(plan, |ty| plural(&ty.kind))
}

/// [`context_rules`] with a caller-supplied plural resolver (a CRD may
/// declare any plural).
pub fn context_rules_with(
    plan: &WatchPlan,
    plural: impl Fn(&ResourceType) -> String,
) -> ContextRules {
    // scope -> (group, names) -> resources; `None` names: any object.
    type Scope = BTreeMap<(String, Option<BTreeSet<String>>), BTreeSet<String>>;
    let mut scopes: BTreeMap<Option<String>, Scope> = BTreeMap::new();
    for (ty, type_plan) in plan {
        let mut names: BTreeMap<Option<String>, Option<BTreeSet<String>>> = BTreeMap::new();
        for selection in &type_plan.selections {
            // A Role needs its namespace to exist when it is applied;
            // others (calico-system, tigera-operator) appear with the
            // operator, after Tollgate, so they are read by the ClusterRole.
            let scope = selection
                .namespace
                .clone()
                .filter(|ns| ALWAYS_PRESENT.contains(&ns.as_str()));
            let entry = names.entry(scope).or_insert_with(|| Some(BTreeSet::new()));
            match (entry.as_mut(), &selection.name) {
                (Some(set), Some(name)) => {
                    set.insert(name.clone());
                }
                _ => *entry = None,
            }
        }
        // A type read whole across the cluster needs no Role besides.
        if names.get(&None) == Some(&None) {
            names.retain(|scope, _| scope.is_none());
        }
        for (namespace, names) in names {
            scopes
                .entry(namespace)
                .or_default()
                .entry((api_group(&ty.api_version).to_owned(), names))
                .or_default()
                .insert(plural(ty));
        }
    }
    let rules = |scope: Scope| -> Vec<PolicyRule> {
        scope
            .into_iter()
            .map(|((group, names), resources)| PolicyRule {
                api_groups: Some(vec![group]),
                resources: Some(resources.into_iter().collect()),
                resource_names: names.map(|n| n.into_iter().collect()),
                verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
                ..PolicyRule::default()
            })
            .collect()
    };
    let mut out = ContextRules::default();
    for (namespace, scope) in scopes {
        match namespace {
            None => out.cluster = rules(scope),
            Some(namespace) => {
                out.namespaced.insert(namespace, rules(scope));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn ty(api_version: &str, kind: &str) -> ResourceType {
        ResourceType {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    fn rules(plan_yaml: &str) -> Value {
        let grants: Vec<crate::Grant> = serde_yaml_ng::from_str(plan_yaml).unwrap();
        let plan = crate::watch_plan([&crate::AllowList::new("p", grants)]);
        let rules = context_rules(&plan);
        json!({"cluster": rules.cluster, "namespaced": rules.namespaced})
    }

    #[test]
    fn groups_merge_versions_and_dedupe() {
        let rules = rules(
            "[{apiVersion: v1, kind: Namespace}, {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy},
              {apiVersion: apps/v1, kind: ReplicaSet}, {apiVersion: apps/v1, kind: Deployment},
              {apiVersion: extensions/v1beta1, kind: ReplicaSet}, {apiVersion: apps/v1beta2, kind: ReplicaSet},
              {apiVersion: v1, kind: Pod}, {apiVersion: projectcalico.org/v1, kind: GlobalConfig},
              {apiVersion: crd.projectcalico.org/v1, kind: GlobalFelixConfig}, {apiVersion: batch/v1, kind: Job}]",
        );
        let verbs = json!(["get", "list", "watch"]);
        assert_eq!(
            rules,
            json!({
                "cluster": [
                    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": verbs},
                    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": verbs},
                    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": verbs},
                    {"apiGroups": ["crd.projectcalico.org"], "resources": ["globalfelixconfigs"], "verbs": verbs},
                    {"apiGroups": ["extensions"], "resources": ["replicasets"], "verbs": verbs},
                    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": verbs},
                    {"apiGroups": ["projectcalico.org"], "resources": ["globalconfigs"], "verbs": verbs},
                ],
                "namespaced": {},
            })
        );
    }

    #[test]
    fn namespaced_and_named_grants_become_roles_with_resource_names() {
        let rules = rules(
            "[{apiVersion: v1, kind: Pod, namespaces: [kube-system], labels: {k8s-app: calico-node}},
              {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system], names: [calico-policy-controller]},
              {apiVersion: apps/v1, kind: DaemonSet, namespaces: [kube-system, calico-system], names: [calico-node]},
              {apiVersion: apps/v1, kind: Deployment, namespaces: [tigera-operator], names: [tigera-operator]},
              {apiVersion: batch/v1, kind: Job, namespaces: [default, kube-system], names: [j]},
              {apiVersion: v1, kind: ConfigMap, namespaces: [kube-system, calico-system]},
              {apiVersion: v1, kind: ConfigMap},
              {apiVersion: v1, kind: Node, fields: []}]",
        );
        let verbs = json!(["get", "list", "watch"]);
        let names = |n: &[&str]| json!(n);
        assert_eq!(
            rules,
            json!({
                // calico-system and tigera-operator may not exist yet.
                "cluster": [
                    {"apiGroups": [""], "resources": ["configmaps", "nodes"], "verbs": verbs},
                    {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": names(&["calico-node"]), "verbs": verbs},
                    {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": names(&["tigera-operator"]), "verbs": verbs},
                ],
                "namespaced": {
                    "default": [
                        {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": names(&["j"]), "verbs": verbs},
                    ],
                    "kube-system": [
                        {"apiGroups": [""], "resources": ["pods"], "verbs": verbs},
                        {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": names(&["calico-node"]), "verbs": verbs},
                        {"apiGroups": ["apps"], "resources": ["replicasets"], "resourceNames": names(&["calico-policy-controller"]), "verbs": verbs},
                        {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": names(&["j"]), "verbs": verbs},
                    ],
                },
            })
        );
    }

    #[test]
    fn no_grants_no_rules_and_custom_plurals() {
        assert_eq!(context_rules(&WatchPlan::new()), ContextRules::default());
        let plan = crate::plan::whole_types([ty("example.com/v1", "Thing")]);
        let rules = context_rules_with(&plan, |t| format!("custom-{}", t.kind));
        assert_eq!(
            rules.cluster[0].resources,
            Some(vec!["custom-Thing".to_owned()])
        );
    }
}
