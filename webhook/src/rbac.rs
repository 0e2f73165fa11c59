//! `tollgate rbac`: the ClusterRole a deployment needs, generated from the
//! policies' `context:` allow-lists so it grants exactly what they may read.

use std::path::PathBuf;

use tollgate_context::{AllowList, ResourceType};
use tollgate_host::Config;

use crate::builtin::DEFAULT_POLICIES;

#[derive(Debug, Clone, clap::Args)]
pub struct RbacArgs {
    /// Policy configuration (default: the built-in pack's).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Name of the ClusterRole.
    #[arg(long, default_value = "tollgate")]
    pub name: String,
}

/// The ClusterRole as YAML.
pub fn render(args: &RbacArgs) -> anyhow::Result<String> {
    let config = match &args.policies {
        Some(path) => Config::from_file(path)?,
        None => Config::from_yaml(DEFAULT_POLICIES, "built-in default configuration")?,
    };
    let types = granted_types(&config);
    Ok(tollgate_context::rbac::cluster_role_yaml(
        &args.name, &types,
    ))
}

/// Every resource type some policy of `config` may read.
fn granted_types(config: &Config) -> std::collections::BTreeSet<ResourceType> {
    let lists: Vec<AllowList> = config
        .policies
        .iter()
        .map(|p| AllowList::new(p.id.clone(), p.context.clone()))
        .collect();
    tollgate_context::resource_types(&lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_pack_role_grants_read_only_access_to_what_rules_read() {
        let yaml = render(&RbacArgs {
            policies: None,
            name: "tollgate".into(),
        })
        .unwrap();
        let role: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(role["kind"], "ClusterRole");
        let rules = role["rules"].as_array().unwrap();
        let find = |group: &str| {
            rules
                .iter()
                .find(|r| r["apiGroups"][0] == group)
                .unwrap_or_else(|| panic!("no rule for group {group:?}: {yaml}"))
        };
        for (group, resource) in [
            ("apps", "replicasets"),
            ("", "namespaces"),
            ("networking.k8s.io", "networkpolicies"),
            ("crd.projectcalico.org", "ippools"),
            ("projectcalico.org", "globalconfigs"),
        ] {
            let rule = find(group);
            assert!(
                rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == resource),
                "{group}/{resource} missing: {yaml}"
            );
        }
        for rule in rules {
            assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]));
        }
    }

    #[test]
    fn a_policy_without_context_needs_no_rules() {
        let config = Config::from_yaml(
            "- id: p\n  module: builtin:calico\n  rule: controller-recreate\n",
            "test",
        )
        .unwrap();
        assert!(granted_types(&config).is_empty());
    }
}
