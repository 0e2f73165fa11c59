//! `tollgate rbac`: the read-only roles a deployment needs, generated from
//! the policies' `context:` grants so they allow exactly what the watch
//! caches read (the same objects `tollgate manifests` installs).

use std::path::PathBuf;

use tollgate_context::{AllowList, WatchPlan};
use tollgate_host::Config;

use crate::manifests::objects::context_rbac;
use crate::manifests::yaml_documents;
use tollgate_guests::DEFAULT_POLICIES;

#[derive(Debug, Clone, clap::Args)]
pub struct RbacArgs {
    /// Policy configuration (default: the built-in pack's).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Name of the roles, their bindings and the service account bound.
    #[arg(long, default_value = "tollgate")]
    pub name: String,
    /// Namespace of the service account bound.
    #[arg(long, default_value = "tollgate")]
    pub namespace: String,
}

/// The roles and bindings as YAML documents.
pub fn render(args: &RbacArgs) -> anyhow::Result<String> {
    let config = match &args.policies {
        Some(path) => Config::from_file(path)?,
        None => Config::from_yaml(DEFAULT_POLICIES, "built-in default configuration")?,
    };
    Ok(yaml_documents(&context_rbac(
        &args.name,
        &args.namespace,
        &plan(&config),
    )))
}

/// What the watch caches follow for `config`'s grants.
fn plan(config: &Config) -> WatchPlan {
    let lists: Vec<AllowList> = config
        .policies
        .iter()
        .map(|p| AllowList::new(p.id.clone(), p.context.clone()))
        .collect();
    tollgate_context::watch_plan(&lists)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn documents(yaml: &str) -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|d| serde_yaml_ng::with::singleton_map_recursive::deserialize(d).unwrap())
            .collect()
    }

    #[test]
    fn built_in_pack_roles_grant_read_only_access_to_what_rules_read() {
        let yaml = render(&RbacArgs {
            policies: None,
            name: "tollgate".into(),
            namespace: "tollgate".into(),
        })
        .unwrap();
        let docs = documents(&yaml);
        let role = |kind: &str, namespace: Option<&str>| {
            docs.iter()
                .find(|d| d["kind"] == kind && d["metadata"]["namespace"].as_str() == namespace)
                .unwrap_or_else(|| panic!("no {kind} in {namespace:?}: {yaml}"))
        };
        let grants = |role: &Value, group: &str, resource: &str| -> Option<Value> {
            role["rules"]
                .as_array()?
                .iter()
                .find(|r| {
                    r["apiGroups"][0] == group
                        && r["resources"]
                            .as_array()
                            .is_some_and(|x| x.iter().any(|x| x == resource))
                })
                .cloned()
        };
        let cluster = role("ClusterRole", None);
        let kube_system = role("Role", Some("kube-system"));
        // Read across the cluster: what rules list everywhere.
        for (group, resource) in [
            ("", "namespaces"),
            ("networking.k8s.io", "networkpolicies"),
            ("crd.projectcalico.org", "ippools"),
        ] {
            assert!(
                grants(cluster, group, resource).is_some(),
                "{group}/{resource}: {yaml}"
            );
        }
        // Calico's Pods and the migration Job only in kube-system.
        assert!(
            grants(cluster, "", "pods").is_none(),
            "pods cluster-wide: {yaml}"
        );
        assert!(
            grants(kube_system, "", "pods").is_some(),
            "pods in kube-system: {yaml}"
        );
        let job = grants(kube_system, "batch", "jobs").expect("jobs in kube-system");
        assert_eq!(
            job["resourceNames"],
            serde_json::json!(["calico-upgrade-v2.5"])
        );
        // Namespaces that may not exist yet are read through the ClusterRole,
        // by name where the grant names its objects.
        let operator = grants(cluster, "apps", "deployments").expect("deployments");
        assert!(operator.get("resourceNames").is_none(), "{yaml}");
        for doc in &docs {
            for rule in doc["rules"].as_array().into_iter().flatten() {
                assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]));
            }
        }
        // Every role is bound to the service account.
        for kind in ["ClusterRoleBinding", "RoleBinding"] {
            let binding = docs.iter().find(|d| d["kind"] == kind).unwrap();
            assert_eq!(binding["subjects"][0]["name"], "tollgate");
            assert_eq!(binding["subjects"][0]["namespace"], "tollgate");
        }
    }

    #[test]
    fn a_policy_without_context_needs_no_rules() {
        let config = Config::from_yaml(
            "- id: p\n  module: builtin:calico\n  rule: controller-recreate\n",
            "test",
        )
        .unwrap();
        assert!(plan(&config).is_empty());
    }
}
