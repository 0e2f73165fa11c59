//! The cluster of scenario (c): 3,000 Namespaces and 10,000 NetworkPolicies
//! written as a `--cluster-snapshot` directory, the way `kubectl get -o
//! json` saves them (a `List` per kind; each object with the uid,
//! resourceVersion, managedFields and last-applied annotation that
//! `kubectl apply` leaves).
//!
//! The cluster is *prepared* for v1 NetworkPolicy semantics, the state an
//! operator upgrades from: every namespace that holds policies has the
//! `DefaultDeny` annotation and the guide's `default-deny` policy, so R9
//! must read and check every Namespace and every NetworkPolicy and then
//! allow the upgrade.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use tollgate_sdk::api::LAST_APPLIED;

pub const NAMESPACES: usize = 3_000;
pub const POLICIES: usize = 10_000;
/// Every third namespace has no policies and no DefaultDeny annotation.
const PLAIN_EVERY: usize = 3;
/// Policies of each DefaultDeny namespace besides `default-deny`.
const APP_POLICIES: [&str; 4] = [
    "allow-dns",
    "allow-from-ingress",
    "allow-monitoring",
    "allow-same-namespace",
];

const ISOLATION: &str = "net.beta.kubernetes.io/network-policy";

/// Writes `namespaces.json` and `networkpolicies.json` under `dir`.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let namespaces: Vec<Value> = (0..NAMESPACES).map(namespace).collect();
    let policies: Vec<Value> = (0..NAMESPACES)
        .filter(|i| is_default_deny(*i))
        .flat_map(|i| {
            let ns = namespace_name(i);
            std::iter::once(default_deny(&ns)).chain(
                APP_POLICIES
                    .iter()
                    .map(move |p| app_policy(&namespace_name(i), p)),
            )
        })
        .enumerate()
        .map(|(n, mut p)| {
            p["metadata"]["uid"] = json!(format!("5f0c1b9e-0001-4000-8000-{n:012}"));
            p
        })
        .collect();
    write_list(&dir.join("namespaces.json"), namespaces)?;
    write_list(&dir.join("networkpolicies.json"), policies)
}

fn write_list(path: &Path, items: Vec<Value>) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
    serde_json::to_writer(&mut out, &list)?;
    out.flush()?;
    Ok(())
}

fn namespace_name(i: usize) -> String {
    format!("team-{i:04}")
}

fn is_default_deny(i: usize) -> bool {
    !i.is_multiple_of(PLAIN_EVERY)
}

/// An object as `kubectl apply` of `manifest` leaves it in the cluster.
fn applied(manifest: Value, n: usize, spec_fields: Value) -> Value {
    let mut obj = manifest.clone();
    let meta = &mut obj["metadata"];
    meta["annotations"][LAST_APPLIED] = json!(format!("{manifest}\n"));
    meta["creationTimestamp"] = json!("2024-05-01T10:00:00Z");
    meta["resourceVersion"] = json!(format!("{}", 100_000 + n));
    meta["managedFields"] = json!([{
        "apiVersion": manifest["apiVersion"], "fieldsType": "FieldsV1",
        "manager": "kubectl-client-side-apply", "operation": "Update", "time": "2024-05-01T10:00:00Z",
        "fieldsV1": {
            "f:metadata": {"f:annotations": {".": {}, format!("f:{LAST_APPLIED}"): {}}, "f:labels": {".": {}, "f:team": {}}},
            "f:spec": spec_fields,
        },
    }]);
    obj
}

fn namespace(i: usize) -> Value {
    let name = namespace_name(i);
    let mut manifest = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"team": format!("t{}", i % 50)}, "annotations": {}},
    });
    if is_default_deny(i) {
        manifest["metadata"]["annotations"][ISOLATION] =
            json!(r#"{"ingress":{"isolation":"DefaultDeny"}}"#);
    }
    let mut ns = applied(manifest, i, json!({}));
    ns["metadata"]["uid"] = json!(format!("5f0c1b9e-0000-4000-8000-{i:012}"));
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    ns["spec"] = json!({"finalizers": ["kubernetes"]});
    ns["status"] = json!({"phase": "Active"});
    ns
}

fn policy(ns: &str, name: &str, spec: Value) -> Value {
    let team = ns.trim_start_matches("team-");
    let manifest = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": {"team": format!("t{team}")}, "annotations": {}},
        "spec": spec,
    });
    let fields = json!({"f:podSelector": {}, "f:policyTypes": {}, "f:ingress": {}});
    let mut p = applied(manifest, 0, fields);
    p["metadata"]["generation"] = json!(1);
    p
}

/// The guide's default-deny policy, as the API server stores it.
fn default_deny(ns: &str) -> Value {
    policy(
        ns,
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

fn app_policy(ns: &str, name: &str) -> Value {
    let from = match name {
        "allow-dns" => {
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}])
        }
        "allow-from-ingress" => {
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}])
        }
        "allow-monitoring" => {
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}])
        }
        _ => json!([{"podSelector": {}}]),
    };
    policy(
        ns,
        name,
        json!({
            "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": ns}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": from, "ports": [{"protocol": "TCP", "port": 8080}]}],
        }),
    )
}

#[cfg(test)]
#[path = "snapshot_r9_tests.rs"]
mod r9_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn items(path: &Path) -> Vec<Value> {
        let list: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        list["items"].as_array().unwrap().clone()
    }

    #[test]
    fn the_cluster_is_large_and_prepared() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path()).unwrap();
        let namespaces = items(&dir.path().join("namespaces.json"));
        let policies = items(&dir.path().join("networkpolicies.json"));
        assert_eq!((namespaces.len(), policies.len()), (NAMESPACES, POLICIES));

        let dd: std::collections::BTreeSet<&str> = namespaces
            .iter()
            .filter(|n| n["metadata"]["annotations"][ISOLATION].is_string())
            .map(|n| n["metadata"]["name"].as_str().unwrap())
            .collect();
        // Prepared: policies only in DefaultDeny namespaces, and each of
        // those holds the guide's default-deny policy.
        for p in &policies {
            assert!(dd.contains(p["metadata"]["namespace"].as_str().unwrap()));
        }
        let guarded: std::collections::BTreeSet<&str> = policies
            .iter()
            .filter(|p| {
                p["metadata"]["name"] == "default-deny"
                    && p["spec"] == json!({"podSelector": {}, "policyTypes": ["Ingress"]})
            })
            .map(|p| p["metadata"]["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(guarded, dd);
        let uids: std::collections::BTreeSet<&str> = policies
            .iter()
            .map(|p| p["metadata"]["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids.len(), POLICIES);
        for obj in [&namespaces[1], &policies[7]] {
            assert!(obj["metadata"]["managedFields"].is_array());
            let applied: Value = serde_json::from_str(
                obj["metadata"]["annotations"][LAST_APPLIED]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(applied["metadata"]["name"], obj["metadata"]["name"]);
        }
    }
}
