//! What the rules are about: the calico-node DaemonSet (NODE_DS), the policy
//! controller (CTRL) and the datastore (SPEC §3, definitions).

use serde::Deserialize;
use tollgate_sdk::image::ImageRef;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, Container, LookupError, Object, Objects};

use crate::versions::node_release;

/// How a cluster's Calico objects are named. Every rule that looks for them
/// takes this as its `identity` setting; the defaults are the names the
/// published manifests use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Identity {
    /// The namespace Calico runs in, where rules look up its workloads.
    pub namespace: String,
    /// The calico-node DaemonSet's name.
    pub node_daemon_set: String,
    pub node_image: String,
    pub cni_image: String,
    /// Names that make a Deployment or ReplicaSet a controller.
    pub controller_names: Vec<String>,
    /// The pre-v2.6 controller image.
    pub policy_controller_image: String,
    /// The v2.6+ controller image.
    pub kube_controllers_image: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            namespace: "kube-system".into(),
            node_daemon_set: "calico-node".into(),
            node_image: "calico/node".into(),
            cni_image: "calico/cni".into(),
            controller_names: vec![
                "calico-policy-controller".into(),
                "calico-kube-controllers".into(),
            ],
            policy_controller_image: "calico/kube-policy-controller".into(),
            kube_controllers_image: "calico/kube-controllers".into(),
        }
    }
}

impl Identity {
    /// Reads the calico-node DaemonSet (as `apps/v1`) from the cluster: what
    /// the node pods should run, and which Calico the cluster runs.
    pub fn node_daemon_set(&self, cluster: &dyn Cluster) -> Result<Objects, LookupError> {
        cluster.get(
            "apps/v1",
            "DaemonSet",
            Some(&self.namespace),
            &self.node_daemon_set,
        )
    }

    /// Load-time checks shared by every rule's settings.
    pub fn validate(&self) -> Result<(), String> {
        let named = [
            ("namespace", &self.namespace),
            ("nodeDaemonSet", &self.node_daemon_set),
            ("nodeImage", &self.node_image),
            ("cniImage", &self.cni_image),
            ("policyControllerImage", &self.policy_controller_image),
            ("kubeControllersImage", &self.kube_controllers_image),
        ];
        if let Some((field, _)) = named.iter().find(|(_, v)| v.is_empty()) {
            return Err(format!("identity.{field} must not be empty"));
        }
        if self.controller_names.iter().any(String::is_empty) {
            return Err("identity.controllerNames must not contain an empty name".into());
        }
        Ok(())
    }

    /// NODE_DS: the configured DaemonSet, or any DaemonSet running the
    /// calico/node image.
    pub fn is_node_ds(&self, obj: &Object<'_>) -> bool {
        obj.kind_str() == "DaemonSet"
            && ((obj.namespace() == Some(self.namespace.as_str())
                && obj.name() == self.node_daemon_set)
                || obj.container_with_image(&self.node_image).is_some())
    }

    /// CTRL: a Deployment or ReplicaSet with a controller name or image.
    pub fn is_ctrl(&self, obj: &Object<'_>) -> bool {
        matches!(obj.kind_str(), "Deployment" | "ReplicaSet")
            && (self.is_ctrl_name(obj.name()) || self.controller_container(obj).is_some())
    }

    pub fn is_ctrl_name(&self, name: &str) -> bool {
        self.controller_names.iter().any(|n| n == name)
    }

    /// The container running a controller image.
    pub fn controller_container<'o, 'a>(&self, obj: &'o Object<'a>) -> Option<&'o Container<'a>> {
        obj.container_with_image(&self.policy_controller_image)
            .or_else(|| obj.container_with_image(&self.kube_controllers_image))
    }

    /// The calico-node container (by image, else by the conventional name).
    pub fn node_container<'o, 'a>(&self, obj: &'o Object<'a>) -> Option<&'o Container<'a>> {
        obj.container_with_image(&self.node_image)
            .or_else(|| obj.containers().find(|c| c.name == "calico-node"))
    }

    /// The Calico release a NODE_DS runs, from its calico/node tag; `None`
    /// when there is no calico/node image or its tag is not a version.
    pub fn node_release(&self, obj: &Object<'_>) -> Option<Version> {
        let image = obj.container_with_image(&self.node_image)?.image_ref()?;
        image.version().ok().map(|v| node_release(&v))
    }

    /// The calico/node image of a NODE_DS.
    pub fn node_image_of<'o>(&self, obj: &'o Object<'_>) -> Option<ImageRef<'o>> {
        obj.container_with_image(&self.node_image)?.image_ref()
    }

    pub fn datastore(&self, obj: &Object<'_>) -> Datastore {
        self.node_container(obj)
            .map_or(Datastore::Unknown, datastore_of)
    }
}

/// Where Calico keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datastore {
    /// `DATASTORE_TYPE=kubernetes`.
    Kdd,
    /// `ETCD_ENDPOINTS` set and `DATASTORE_TYPE` absent (or naming etcd).
    Etcd,
    /// Neither: the rules then apply whichever check is safer.
    Unknown,
}

impl Datastore {
    pub fn label(self) -> &'static str {
        match self {
            Self::Kdd => "Kubernetes datastore",
            Self::Etcd => "etcd datastore",
            Self::Unknown => "unknown datastore",
        }
    }
}

fn datastore_of(container: &Container<'_>) -> Datastore {
    let etcd = container
        .env_var("ETCD_ENDPOINTS")
        .is_some_and(|e| e.is_set());
    match container
        .env_var("DATASTORE_TYPE")
        .map(|e| e.value.as_deref())
    {
        Some(Some("kubernetes")) => Datastore::Kdd,
        Some(Some("etcdv2" | "etcdv3")) if etcd => Datastore::Etcd,
        None if etcd => Datastore::Etcd,
        _ => Datastore::Unknown,
    }
}

/// The datastore of an UPDATE: the new object's, else the old one's.
pub fn datastore_of_update(id: &Identity, old: Option<&Object<'_>>, new: &Object<'_>) -> Datastore {
    match id.datastore(new) {
        Datastore::Unknown => old.map_or(Datastore::Unknown, |o| id.datastore(o)),
        known => known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Object<'static> {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn ds(name: &str, ns: &str, image: &str, env: serde_json::Value) -> Object<'static> {
        parse(
            json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": {"containers": [{"name": "calico-node", "image": image, "env": env}]}}}}),
        )
    }

    #[test]
    fn node_daemonset_by_name_or_image() {
        let id = Identity::default();
        assert!(id.is_node_ds(&ds("calico-node", "kube-system", "busybox", json!([]))));
        assert!(id.is_node_ds(&ds(
            "canal",
            "kube-system",
            "quay.io/calico/node:v2.6.5",
            json!([])
        )));
        assert!(id.is_node_ds(&ds("x", "other", "localhost:5000/calico/node", json!([]))));
        assert!(!id.is_node_ds(&ds(
            "calico-etcd",
            "kube-system",
            "quay.io/coreos/etcd:v3.1.10",
            json!([])
        )));
        assert!(!id.is_node_ds(&ds("calico-node", "default", "busybox", json!([]))));
    }

    #[test]
    fn controllers_by_name_or_image() {
        let id = Identity::default();
        let d = |name: &str, image: &str| {
            parse(json!({"kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}))
        };
        assert!(id.is_ctrl(&d("calico-policy-controller", "nginx")));
        assert!(id.is_ctrl(&d("calico-kube-controllers", "nginx")));
        assert!(id.is_ctrl(&d("mine", "calico/kube-policy-controller:v0.4.0")));
        assert!(id.is_ctrl(&d("mine", "quay.io/calico/kube-controllers:v3.1.3")));
        assert!(!id.is_ctrl(&d("calico-typha", "quay.io/calico/typha:v0.6.2")));
        let rs =
            parse(json!({"kind": "ReplicaSet", "metadata": {"name": "calico-policy-controller"}}));
        assert!(id.is_ctrl(&rs));
        let ds =
            parse(json!({"kind": "DaemonSet", "metadata": {"name": "calico-policy-controller"}}));
        assert!(!id.is_ctrl(&ds));
    }

    #[test]
    fn datastores() {
        let id = Identity::default();
        let kdd = ds(
            "calico-node",
            "kube-system",
            "calico/node:v1.0.2",
            json!([{"name": "DATASTORE_TYPE", "value": "kubernetes"}]),
        );
        assert_eq!(id.datastore(&kdd), Datastore::Kdd);
        let etcd_ref = ds(
            "calico-node",
            "kube-system",
            "quay.io/calico/node:v2.4.1",
            json!([{"name": "ETCD_ENDPOINTS",
            "valueFrom": {"configMapKeyRef": {"name": "calico-config", "key": "etcd_endpoints"}}}]),
        );
        assert_eq!(id.datastore(&etcd_ref), Datastore::Etcd);
        let etcd_inline = ds(
            "calico-node",
            "kube-system",
            "calico/node:v2.4.1",
            json!([{"name": "ETCD_ENDPOINTS", "value": "http://10.96.232.136:6666"}]),
        );
        assert_eq!(id.datastore(&etcd_inline), Datastore::Etcd);
        let neither = ds(
            "calico-node",
            "kube-system",
            "calico/node:v2.4.1",
            json!([]),
        );
        assert_eq!(id.datastore(&neither), Datastore::Unknown);
        assert_eq!(
            datastore_of_update(&id, Some(&kdd), &neither),
            Datastore::Kdd
        );
        assert_eq!(datastore_of_update(&id, None, &neither), Datastore::Unknown);
        assert_eq!(id.node_release(&kdd), Some(Version::new(2, 0, 2)));
        let liquid = ds(
            "calico-node",
            "kube-system",
            r#"quay.io/calico/node:{% include version %}"#,
            json!([]),
        );
        assert_eq!(id.node_release(&liquid), None);
    }

    #[test]
    fn identity_settings_are_checked() {
        assert!(Identity::default().validate().is_ok());
        let bad = Identity {
            node_image: String::new(),
            ..Identity::default()
        };
        assert!(bad.validate().unwrap_err().contains("nodeImage"));
        let bad = Identity {
            controller_names: vec![String::new()],
            ..Identity::default()
        };
        assert!(bad.validate().is_err());
    }
}
