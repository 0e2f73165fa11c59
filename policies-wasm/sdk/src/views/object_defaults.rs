//! Field accessors over [`Object`] that apply Kubernetes defaults.
//!
//! Rules read fields, not types: the same accessor works on a Deployment in
//! `extensions/v1beta1`, `apps/v1beta1`, `apps/v1beta2` or `apps/v1`, on the
//! object as the API server sends it (defaults applied) and on a manifest as
//! written (fields absent). Where an absent field has a default that depends
//! on the kind or apiVersion, the accessor applies it.

use super::meta::{IntOrString, OwnerReference};
use super::object::{Object, RollingUpdate};
use super::pod::Container;

/// Deployment strategy type when `spec.strategy.type` is absent.
pub const DEFAULT_DEPLOYMENT_STRATEGY: &str = "RollingUpdate";

impl<'a> Object<'a> {
    pub fn kind_str(&self) -> &str {
        self.kind.as_deref().unwrap_or("")
    }

    pub fn api_version_str(&self) -> &str {
        self.api_version.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn qualified_name(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name().to_owned(),
        }
    }

    /// Containers and init containers, of the pod template (workloads) or of
    /// the pod itself.
    pub fn containers(&self) -> impl Iterator<Item = &Container<'a>> {
        let spec = self.spec.as_ref();
        let template = spec.and_then(|s| s.template.as_ref()).map(|t| &t.spec);
        let own = spec.map(|s| (&s.containers, &s.init_containers));
        let from_template = template
            .into_iter()
            .flat_map(|p| p.init_containers.iter().chain(p.containers.iter()));
        let from_pod = own.into_iter().flat_map(|(c, i)| i.iter().chain(c.iter()));
        from_template.chain(from_pod)
    }

    /// The first container whose image repository ends in `image_name`
    /// (`calico/node`).
    pub fn container_with_image(&self, image_name: &str) -> Option<&Container<'a>> {
        self.containers()
            .find(|c| c.image_ref().is_some_and(|i| i.is(image_name)))
    }

    /// `spec.replicas` with its default: absent is 1 for Deployments,
    /// ReplicaSets, StatefulSets and ReplicationControllers, and 0 for a
    /// `Scale` (the API server omits `replicas: 0` there). `None` for kinds
    /// without replicas.
    pub fn replicas(&self) -> Option<i64> {
        let given = self.spec.as_ref().and_then(|s| s.replicas);
        match self.kind_str() {
            "Scale" => Some(given.unwrap_or(0)),
            "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController" => {
                Some(given.unwrap_or(1))
            }
            _ => given,
        }
    }

    /// `status.replicas`, 0 when absent.
    pub fn status_replicas(&self) -> i64 {
        self.status.as_ref().and_then(|s| s.replicas).unwrap_or(0)
    }

    /// A Deployment's `spec.strategy.type`, `RollingUpdate` when absent.
    pub fn deployment_strategy(&self) -> &str {
        self.spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.kind.as_deref())
            .unwrap_or(DEFAULT_DEPLOYMENT_STRATEGY)
    }

    /// A DaemonSet's `spec.updateStrategy.type` with the default of its
    /// apiVersion: `OnDelete` in `extensions/v1beta1`, `RollingUpdate` in
    /// `apps/*`.
    pub fn daemonset_update_strategy(&self) -> &str {
        let given = self
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|s| s.kind.as_deref());
        given.unwrap_or(if self.api_version_str() == "extensions/v1beta1" {
            "OnDelete"
        } else {
            "RollingUpdate"
        })
    }

    /// A DaemonSet's `rollingUpdate.maxUnavailable` as given (`None` means
    /// the default, 1).
    pub fn daemonset_max_unavailable(&self) -> Option<&IntOrString<'a>> {
        self.daemonset_rolling_update()
            .and_then(|r| r.max_unavailable.as_ref())
    }

    /// A DaemonSet's `rollingUpdate.maxSurge` as given (`None` means 0).
    pub fn daemonset_max_surge(&self) -> Option<&IntOrString<'a>> {
        self.daemonset_rolling_update()
            .and_then(|r| r.max_surge.as_ref())
    }

    fn daemonset_rolling_update(&self) -> Option<&RollingUpdate<'a>> {
        self.spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
    }

    /// The owner reference of the given kind (`Deployment`, `DaemonSet`).
    pub fn owner_of_kind(&self, kind: &str) -> Option<&OwnerReference<'a>> {
        self.metadata
            .owner_references
            .iter()
            .find(|o| o.kind == kind)
    }

    /// The status of a condition (`Ready`, `Complete`), if reported.
    pub fn condition(&self, kind: &str) -> Option<&str> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.status.as_ref())
    }

    /// A Pod or Node whose `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready") == Some("True")
    }

    /// A Node marked unschedulable (cordoned).
    pub fn is_unschedulable(&self) -> bool {
        self.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    /// A Pod's `spec.nodeName`.
    pub fn node_name(&self) -> Option<&str> {
        self.spec.as_ref()?.node_name.as_deref()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata.label(key)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotation(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &serde_json::Value) -> Object<'static> {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn deployment(api_version: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": api_version, "kind": "Deployment",
               "metadata": {"name": "calico-kube-controllers", "namespace": "kube-system"},
               "spec": spec})
    }

    #[test]
    fn containers_of_templates_and_pods_include_init_containers() {
        let ds = parse(&json!({"kind": "DaemonSet", "spec": {"template": {"spec": {
            "initContainers": [{"name": "upgrade-ipam", "image": "calico/cni:v3.1.3"}],
            "containers": [{"name": "calico-node", "image": "quay.io/calico/node:v3.1.3"},
                           {"name": "install-cni", "image": "quay.io/calico/cni:v3.1.3"}]}}}}));
        let names: Vec<_> = ds.containers().map(|c| c.name.as_ref()).collect();
        assert_eq!(names, ["upgrade-ipam", "calico-node", "install-cni"]);
        assert_eq!(
            ds.container_with_image("calico/node").unwrap().name,
            "calico-node"
        );
        assert_eq!(
            ds.container_with_image("calico/cni").unwrap().name,
            "upgrade-ipam"
        );
        assert!(ds.container_with_image("calico/typha").is_none());

        let pod = parse(&json!({"kind": "Pod", "spec": {"containers": [
            {"name": "calico-node", "image": "calico/node:v1.0.2"}]}}));
        assert_eq!(pod.containers().count(), 1);
        assert!(parse(&json!({"kind": "Pod"})).containers().next().is_none());
    }

    #[test]
    fn env_lookup_inline_and_from_config_map() {
        let ds = parse(&json!({"spec": {"template": {"spec": {"containers": [{
            "name": "calico-node", "image": "calico/node:v2.6.5",
            "env": [{"name": "DATASTORE_TYPE", "value": "kubernetes"},
                    {"name": "ETCD_ENDPOINTS", "valueFrom": {"configMapKeyRef": {"name": "calico-config", "key": "etcd_endpoints"}}},
                    {"name": "EMPTY", "value": ""}]}]}}}}));
        let c = ds.container_with_image("calico/node").unwrap();
        assert_eq!(c.env_value("DATASTORE_TYPE"), Some("kubernetes"));
        assert!(c.env_var("ETCD_ENDPOINTS").unwrap().is_set());
        assert_eq!(c.env_value("ETCD_ENDPOINTS"), None);
        assert!(!c.env_var("EMPTY").unwrap().is_set());
        assert!(c.env_var("MISSING").is_none());
    }

    #[test]
    fn replicas_defaults_depend_on_the_kind() {
        for api in [
            "extensions/v1beta1",
            "apps/v1beta1",
            "apps/v1beta2",
            "apps/v1",
        ] {
            let d = parse(&deployment(api, json!({})));
            assert_eq!(d.replicas(), Some(1), "{api}");
            let d = parse(&deployment(api, json!({"replicas": 0})));
            assert_eq!(d.replicas(), Some(0), "{api}");
        }
        let rs = parse(&json!({"kind": "ReplicaSet", "spec": {}}));
        assert_eq!(rs.replicas(), Some(1));
        let scale = parse(&json!({"kind": "Scale", "spec": {}, "status": {"replicas": 2}}));
        assert_eq!(scale.replicas(), Some(0));
        assert_eq!(scale.status_replicas(), 2);
        let scale = parse(&json!({"kind": "Scale", "spec": {"replicas": 3}}));
        assert_eq!(scale.replicas(), Some(3));
        assert_eq!(scale.status_replicas(), 0);
        assert_eq!(
            parse(&json!({"kind": "DaemonSet", "spec": {}})).replicas(),
            None
        );
    }

    #[test]
    fn strategy_defaults() {
        for api in [
            "extensions/v1beta1",
            "apps/v1beta1",
            "apps/v1beta2",
            "apps/v1",
        ] {
            assert_eq!(
                parse(&deployment(api, json!({}))).deployment_strategy(),
                "RollingUpdate"
            );
            let d = parse(&deployment(api, json!({"strategy": {"type": "Recreate"}})));
            assert_eq!(d.deployment_strategy(), "Recreate");
        }
        let ds = |api: &str, spec: serde_json::Value| {
            parse(&json!({"apiVersion": api, "kind": "DaemonSet", "spec": spec}))
        };
        assert_eq!(
            ds("extensions/v1beta1", json!({})).daemonset_update_strategy(),
            "OnDelete"
        );
        assert_eq!(
            ds("apps/v1beta2", json!({})).daemonset_update_strategy(),
            "RollingUpdate"
        );
        assert_eq!(
            ds("apps/v1", json!({})).daemonset_update_strategy(),
            "RollingUpdate"
        );
        let rolling = ds(
            "extensions/v1beta1",
            json!({"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}}}),
        );
        assert_eq!(rolling.daemonset_update_strategy(), "RollingUpdate");
        assert_eq!(
            rolling.daemonset_max_unavailable(),
            Some(&IntOrString::Str("10%".into()))
        );
        assert!(rolling.daemonset_max_surge().unwrap().is_int(0));
        assert!(!IntOrString::Str("1".into()).is_int(1));
        assert_eq!(ds("apps/v1", json!({})).daemonset_max_unavailable(), None);
    }

    #[test]
    fn pods_nodes_owners_conditions() {
        let pod = parse(
            &json!({"kind": "Pod", "metadata": {"name": "calico-node-x", "namespace": "kube-system",
            "labels": {"k8s-app": "calico-node"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "calico-node", "controller": true}]},
            "spec": {"nodeName": "node-01"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        assert_eq!(pod.owner_of_kind("DaemonSet").unwrap().name, "calico-node");
        assert!(pod.owner_of_kind("Deployment").is_none());
        assert_eq!(pod.node_name(), Some("node-01"));
        assert!(!pod.is_ready());
        assert_eq!(pod.label("k8s-app"), Some("calico-node"));
        assert_eq!(pod.qualified_name(), "kube-system/calico-node-x");
        let node = parse(
            &json!({"kind": "Node", "metadata": {"name": "n"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(node.is_unschedulable());
        assert!(node.is_ready());
        assert_eq!(node.qualified_name(), "n");
        assert!(!parse(&json!({"kind": "Node"})).is_unschedulable());
    }
}
