//! The ClusterRole Tollgate needs, generated from the policies' allow-lists.
//!
//! The watch backend lists and watches every allowed resource type across all
//! namespaces (one cache per type, shared by all policies), so the role grants
//! `get`, `list` and `watch` cluster-wide on exactly those resources — also
//! for grants restricted to some namespaces: the restriction is enforced on
//! each lookup, not by RBAC. Rules are grouped by API group; several versions
//! of one group share a rule (RBAC does not distinguish versions).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::ResourceType;

/// Verbs the watch caches use.
pub const VERBS: [&str; 3] = ["get", "list", "watch"];

/// Resource names (plurals) the server uses for kinds that are not the
/// regular English plural of the lowercased kind, and for the kinds the Calico
/// pack reads (so they never depend on the fallback).
const PLURALS: &[(&str, &str)] = &[
    ("AdminNetworkPolicy", "adminnetworkpolicies"),
    ("BGPConfiguration", "bgpconfigurations"),
    ("BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies"),
    ("BGPPeer", "bgppeers"),
    ("ClusterInformation", "clusterinformations"),
    ("ConfigMap", "configmaps"),
    ("CustomResourceDefinition", "customresourcedefinitions"),
    ("DaemonSet", "daemonsets"),
    ("Deployment", "deployments"),
    ("Endpoints", "endpoints"),
    ("FelixConfiguration", "felixconfigurations"),
    ("GlobalBGPConfig", "globalbgpconfigs"),
    ("GlobalBgpConfig", "globalbgpconfigs"),
    ("GlobalBgpPeer", "globalbgppeers"),
    ("GlobalConfig", "globalconfigs"),
    ("GlobalFelixConfig", "globalfelixconfigs"),
    ("GlobalNetworkPolicy", "globalnetworkpolicies"),
    ("GlobalNetworkSet", "globalnetworksets"),
    ("HostEndpoint", "hostendpoints"),
    ("ImageSet", "imagesets"),
    ("Installation", "installations"),
    ("IPPool", "ippools"),
    ("IpPool", "ippools"),
    ("Job", "jobs"),
    ("Namespace", "namespaces"),
    ("NetworkPolicy", "networkpolicies"),
    ("Node", "nodes"),
    ("Pod", "pods"),
    ("ReplicaSet", "replicasets"),
    ("Service", "services"),
    ("ServiceAccount", "serviceaccounts"),
    ("StatefulSet", "statefulsets"),
    ("ThirdPartyResource", "thirdpartyresources"),
];

/// The resource name of `kind`: from the built-in table, else the lowercased
/// kind made plural the way Kubernetes' own fallback does it (`…s`, `…x`,
/// `…z`, `…ch`, `…sh` take `es`; consonant + `y` becomes `ies`; anything
/// else takes `s`). A CRD may declare any plural; use
/// [`cluster_role_with`] with a discovery-backed resolver for those.
pub fn plural(kind: &str) -> String {
    if let Some((_, p)) = PLURALS.iter().find(|(k, _)| *k == kind) {
        return (*p).to_owned();
    }
    let lower = kind.to_ascii_lowercase();
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        && !stem.is_empty()
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// The API group of an apiVersion (`""` for the core `v1`).
pub fn api_group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// The ClusterRole that lets the watch backend read `types`, with plurals
/// from [`plural`].
pub fn cluster_role<'a>(
    name: &str,
    types: impl IntoIterator<Item = &'a ResourceType>,
) -> ClusterRole {
    cluster_role_with(name, types, |ty| plural(&ty.kind))
}

/// [`cluster_role`] with a caller-supplied plural resolver.
pub fn cluster_role_with<'a>(
    name: &str,
    types: impl IntoIterator<Item = &'a ResourceType>,
    plural: impl Fn(&ResourceType) -> String,
) -> ClusterRole {
    let mut by_group: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for ty in types {
        by_group
            .entry(api_group(&ty.api_version))
            .or_default()
            .insert(plural(ty));
    }
    let rules = by_group
        .into_iter()
        .map(|(group, resources)| PolicyRule {
            api_groups: Some(vec![group.to_owned()]),
            resources: Some(resources.into_iter().collect()),
            verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "tollgate".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

/// [`cluster_role`] as a YAML document for `kubectl apply -f -`.
pub fn cluster_role_yaml<'a>(
    name: &str,
    types: impl IntoIterator<Item = &'a ResourceType>,
) -> String {
    serde_yaml_ng::to_string(&cluster_role(name, types)).expect("a ClusterRole always serialises")
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

    #[test]
    fn plurals_from_table_and_fallback() {
        for (kind, want) in [
            ("NetworkPolicy", "networkpolicies"),
            ("Endpoints", "endpoints"),
            ("GlobalBGPConfig", "globalbgpconfigs"),
            ("IpPool", "ippools"),
            ("Secret", "secrets"),
            ("Ingress", "ingresses"),
            ("Box", "boxes"),
            ("Patch", "patches"),
            ("Mesh", "meshes"),
            ("Policy", "policies"),
            ("Gateway", "gateways"),
            ("Y", "ys"),
            ("PriorityClass", "priorityclasses"),
        ] {
            assert_eq!(plural(kind), want, "{kind}");
        }
        assert_eq!(PLURALS.iter().filter(|(k, p)| plural(k) != *p).count(), 0);
    }

    #[test]
    fn groups_merge_versions_and_dedupe() {
        let types = [
            ty("v1", "Namespace"),
            ty("networking.k8s.io/v1", "NetworkPolicy"),
            ty("apps/v1", "ReplicaSet"),
            ty("apps/v1", "Deployment"),
            ty("extensions/v1beta1", "ReplicaSet"),
            ty("apps/v1beta2", "ReplicaSet"),
            ty("v1", "Pod"),
            ty("projectcalico.org/v1", "GlobalConfig"),
            ty("crd.projectcalico.org/v1", "GlobalFelixConfig"),
            ty("batch/v1", "Job"),
        ];
        let role = serde_json::to_value(cluster_role("tollgate", &types)).unwrap();
        let verbs = json!(["get", "list", "watch"]);
        assert_eq!(
            role,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "tollgate", "labels": {"app.kubernetes.io/managed-by": "tollgate"}},
                "rules": [
                    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": verbs},
                    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": verbs},
                    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": verbs},
                    {"apiGroups": ["crd.projectcalico.org"], "resources": ["globalfelixconfigs"], "verbs": verbs},
                    {"apiGroups": ["extensions"], "resources": ["replicasets"], "verbs": verbs},
                    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": verbs},
                    {"apiGroups": ["projectcalico.org"], "resources": ["globalconfigs"], "verbs": verbs},
                ],
            })
        );
    }

    #[test]
    fn no_types_no_rules_and_yaml_round_trips() {
        let role = cluster_role("empty", []);
        assert_eq!(role.rules, Some(vec![]));
        let yaml = cluster_role_yaml("r", &[ty("v1", "Node")]);
        let back: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(back["kind"], "ClusterRole");
        assert_eq!(back["rules"][0]["resources"], json!(["nodes"]));
    }

    #[test]
    fn custom_resolver_is_used() {
        let role = cluster_role_with("r", &[ty("example.com/v1", "Thing")], |t| {
            format!("custom-{}", t.kind)
        });
        assert_eq!(
            role.rules.unwrap()[0].resources,
            Some(vec!["custom-Thing".to_owned()])
        );
    }
}
