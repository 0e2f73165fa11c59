//! `networking.k8s.io/v1` (and `extensions/v1beta1`) NetworkPolicies.

use serde::Deserialize;

use super::meta::{IntOrString, LabelSelector, ObjectMeta, Str, null_as_default, present};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy<'a> {
    #[serde(borrow, default)]
    pub api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: NetworkPolicySpec<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec<'a> {
    /// `None` when the key is absent, `Some(None)` when it is an explicit
    /// `null` (a manifest's bare `podSelector:`); both select every pod, as
    /// `{}` does.
    #[serde(borrow, default, deserialize_with = "present")]
    pub pod_selector: Option<Option<LabelSelector<'a>>>,
    /// As written; see [`NetworkPolicySpec::affects_ingress`] for the
    /// default.
    #[serde(borrow, default)]
    pub policy_types: Option<Vec<Str<'a>>>,
    /// `None` when absent (no ingress allowed, if the policy affects
    /// ingress).
    #[serde(borrow, default)]
    pub ingress: Option<Vec<IngressRule<'a>>>,
    #[serde(borrow, default)]
    pub egress: Option<Vec<EgressRule<'a>>>,
}

impl NetworkPolicySpec<'_> {
    /// Whether the policy selects every pod of its namespace.
    pub fn selects_all_pods(&self) -> bool {
        match &self.pod_selector {
            None | Some(None) => true,
            Some(Some(selector)) => selector.is_empty(),
        }
    }

    /// Whether the policy isolates ingress: `policyTypes` names `Ingress`,
    /// or is absent (the API server's default always includes Ingress).
    pub fn affects_ingress(&self) -> bool {
        self.policy_types
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == "Ingress"))
    }

    /// Whether the policy isolates egress: `policyTypes` names `Egress`, or
    /// is absent and the policy has egress rules (the API server's default).
    pub fn affects_egress(&self) -> bool {
        match &self.policy_types {
            Some(types) => types.iter().any(|t| t == "Egress"),
            None => self.egress.as_ref().is_some_and(|e| !e.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IngressRule<'a> {
    /// Empty: from everywhere.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub from: Vec<NetworkPolicyPeer<'a>>,
    /// Empty: every port.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub ports: Vec<NetworkPolicyPort<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EgressRule<'a> {
    /// Empty: to everywhere.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub to: Vec<NetworkPolicyPeer<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub ports: Vec<NetworkPolicyPort<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyPeer<'a> {
    #[serde(borrow, default)]
    pub pod_selector: Option<LabelSelector<'a>>,
    #[serde(borrow, default)]
    pub namespace_selector: Option<LabelSelector<'a>>,
    #[serde(borrow, default)]
    pub ip_block: Option<IpBlock<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpBlock<'a> {
    #[serde(borrow, default)]
    pub cidr: Str<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub except: Vec<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyPort<'a> {
    /// `TCP` when absent.
    #[serde(borrow, default)]
    pub protocol: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub port: Option<IntOrString<'a>>,
    #[serde(default)]
    pub end_port: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &'static str) -> NetworkPolicySpec<'static> {
        serde_json::from_str::<NetworkPolicy<'_>>(json)
            .unwrap()
            .spec
    }

    #[test]
    fn selectors_and_policy_type_defaults() {
        let deny = spec(r#"{"spec": {"podSelector": null}}"#);
        assert!(deny.selects_all_pods() && deny.affects_ingress() && !deny.affects_egress());
        assert_eq!(deny.pod_selector.as_ref().map(Option::is_none), Some(true));
        assert!(spec(r#"{"spec": {}}"#).pod_selector.is_none());

        let egress = spec(
            r#"{"spec": {"podSelector": {"matchLabels": {"app": "web"}},
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                            "ports": [{"port": 53, "protocol": "UDP"}, {"port": "dns", "endPort": null}]}]}}"#,
        );
        assert!(!egress.selects_all_pods());
        assert!(egress.affects_ingress() && egress.affects_egress());
        let rule = &egress.egress.as_ref().unwrap()[0];
        assert_eq!(
            rule.to[0].ip_block.as_ref().unwrap().except,
            ["10.1.0.0/16"]
        );
        assert!(rule.ports[0].port.as_ref().unwrap().is_int(53));
        assert_eq!(rule.ports[1].port, Some(IntOrString::Str("dns".into())));

        let only_egress = spec(r#"{"spec": {"podSelector": {}, "policyTypes": ["Egress"]}}"#);
        assert!(!only_egress.affects_ingress() && only_egress.affects_egress());

        let ingress = spec(
            r#"{"spec": {"podSelector": {}, "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}}]}]}}"#,
        );
        let from = &ingress.ingress.as_ref().unwrap()[0].from[0];
        assert!(
            from.namespace_selector.is_some() && from.pod_selector.as_ref().unwrap().is_empty()
        );
    }
}
