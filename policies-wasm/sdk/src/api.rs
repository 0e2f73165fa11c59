//! Kubernetes API vocabulary: the group and version of an `apiVersion`, the
//! resource name (plural) of a kind.
//!
//! One home for every crate: the host's RBAC generation, the pre-flight
//! review builder, the test kit and guests all name resources the same way.
//! It lives in the SDK because every Tollgate crate depends on it; the SDK
//! also compiles to wasm32 for guests, so this is plain Rust without
//! dependencies (host crates that talk to a cluster use kube-core's
//! `GroupVersionKind` / `ApiResource` on top of it).

/// The annotation `kubectl apply` stores the whole previous object in: a
/// copy no rule reads, left out of what guests and caches hold.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Resource names (plurals) the API server uses for kinds that are not the
/// regular English plural of the lowercased kind, and for the kinds the
/// Calico pack reads (so they never depend on the fallback).
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

/// The resource name of `kind`: from [`PLURALS`], else the lowercased kind
/// made plural the way Kubernetes' own fallback does it (`…s`, `…x`, `…z`,
/// `…ch`, `…sh` take `es`; consonant + `y` becomes `ies`; anything else
/// takes `s`). A CRD may declare any plural (`spec.names.plural`); ask it,
/// or discovery, when you have one.
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

/// `(group, version)` of an apiVersion: `apps/v1` → `("apps", "v1")`, the
/// core group's `v1` → `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The API group of an apiVersion (`""` for the core `v1`).
pub fn api_group(api_version: &str) -> &str {
    split_api_version(api_version).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_from_table_and_fallback() {
        for (kind, want) in [
            ("NetworkPolicy", "networkpolicies"),
            ("Endpoints", "endpoints"),
            ("GlobalBGPConfig", "globalbgpconfigs"),
            ("IpPool", "ippools"),
            ("IPPool", "ippools"),
            ("Secret", "secrets"),
            ("Ingress", "ingresses"),
            ("Box", "boxes"),
            ("Patch", "patches"),
            ("Mesh", "meshes"),
            ("Policy", "policies"),
            ("Gateway", "gateways"),
            ("Y", "ys"),
            ("PriorityClass", "priorityclasses"),
            ("StorageClass", "storageclasses"),
            ("Status", "statuses"),
            ("ComponentStatus", "componentstatuses"),
        ] {
            assert_eq!(plural(kind), want, "{kind}");
        }
        assert_eq!(PLURALS.iter().filter(|(k, p)| plural(k) != *p).count(), 0);
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(
            split_api_version("crd.projectcalico.org/v1"),
            ("crd.projectcalico.org", "v1")
        );
        assert_eq!(split_api_version(""), ("", ""));
        assert_eq!(api_group("networking.k8s.io/v1"), "networking.k8s.io");
        assert_eq!(api_group("v1"), "");
    }
}
