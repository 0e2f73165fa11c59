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
    /// The namespace Calico runs in, where rules look up its workloads
    /// (a manifest install: `kube-system`).
    pub namespace: String,
    /// Where the Tigera operator runs Calico's workloads (`calico-system`):
    /// rules look there too, because today's default install is the
    /// operator's (SPEC §5). Empty: only `namespace`.
    pub operator_namespace: String,
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
            operator_namespace: "calico-system".into(),
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
        self.node_daemon_set_in(cluster, &self.namespace)
    }

    /// The calico-node DaemonSet of `namespace`.
    pub fn node_daemon_set_in(
        &self,
        cluster: &dyn Cluster,
        namespace: &str,
    ) -> Result<Objects, LookupError> {
        cluster.get(
            "apps/v1",
            "DaemonSet",
            Some(namespace),
            &self.node_daemon_set,
        )
    }

    /// The namespaces Calico's workloads run in: the manifest's, then the
    /// operator's.
    pub fn namespaces(&self) -> Vec<&str> {
        let mut out = vec![self.namespace.as_str()];
        if !self.operator_namespace.is_empty() && self.operator_namespace != self.namespace {
            out.push(self.operator_namespace.as_str());
        }
        out
    }

    /// Whether `namespace` is one Calico's workloads run in.
    pub fn is_calico_namespace(&self, namespace: Option<&str>) -> bool {
        namespace.is_some_and(|ns| self.namespaces().contains(&ns))
    }

    /// The namespace whose workloads belong with `obj`: its own when it is
    /// one of Calico's, else the manifest's.
    pub fn namespace_of<'s>(&'s self, obj: &'s Object<'_>) -> &'s str {
        obj.namespace()
            .filter(|ns| self.is_calico_namespace(Some(ns)))
            .unwrap_or(&self.namespace)
    }

    /// The Calico release the cluster runs: that of the first calico-node
    /// DaemonSet found (the manifest's namespace first, then the
    /// operator's); `None` when there is none or its tag is not a version.
    pub fn running_release(&self, cluster: &dyn Cluster) -> Result<Option<Version>, LookupError> {
        for ns in self.namespaces() {
            let found = self.node_daemon_set_in(cluster, ns)?;
            if let Some(release) = found.parse()?.first().and_then(|ds| self.node_release(ds)) {
                return Ok(Some(release));
            }
        }
        Ok(None)
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

    /// NODE_DS: the configured DaemonSet (in the manifest's or the
    /// operator's namespace), or any DaemonSet running the calico/node image.
    pub fn is_node_ds(&self, obj: &Object<'_>) -> bool {
        obj.kind_str() == "DaemonSet"
            && ((self.is_calico_namespace(obj.namespace()) && obj.name() == self.node_daemon_set)
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

    /// The calico-node container: the first (non-init) container running
    /// the calico/node image, else the one conventionally named. Today's
    /// manifests run calico/node as an init container too (`mount-bpffs`),
    /// which carries none of calico-node's env.
    pub fn node_container<'o, 'a>(&self, obj: &'o Object<'a>) -> Option<&'o Container<'a>> {
        let main = obj
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .map(|t| t.spec.containers.as_slice())
            .unwrap_or_default();
        main.iter()
            .find(|c| c.image_ref().is_some_and(|i| i.is(&self.node_image)))
            .or_else(|| obj.containers().find(|c| c.name == "calico-node"))
            .or_else(|| obj.container_with_image(&self.node_image))
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

/// Whether the Tigera operator owns `obj`: an `operator.tigera.io`
/// Installation is among its owners. The operator renders such workloads
/// from the Installation and reverts other edits, so the manifest-era rules
/// (R1–R3, R5) leave them alone; R21 warns a human who edits one, and
/// repairs the Installation's `nodeUpdateStrategy`.
pub fn is_operator_owned(obj: &Object<'_>) -> bool {
    obj.metadata
        .owner_references
        .iter()
        .any(|o| o.kind == "Installation" && o.api_version.starts_with("operator.tigera.io/"))
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
    fn the_operator_namespace_counts_as_calicos() {
        let id = Identity::default();
        assert_eq!(id.namespaces(), ["kube-system", "calico-system"]);
        let theirs = ds("calico-node", "calico-system", "busybox", json!([]));
        assert!(id.is_node_ds(&theirs));
        assert_eq!(id.namespace_of(&theirs), "calico-system");
        let elsewhere = ds("x", "other", "quay.io/calico/node:v3.32.1", json!([]));
        assert_eq!(id.namespace_of(&elsewhere), "kube-system");
        let manifest_only = Identity {
            operator_namespace: String::new(),
            ..Identity::default()
        };
        assert_eq!(manifest_only.namespaces(), ["kube-system"]);
        assert!(!manifest_only.is_node_ds(&theirs));
        // Today's calico-node runs calico/node as an init container too.
        let modern = parse(
            json!({"kind": "DaemonSet", "metadata": {"name": "calico-node"},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "mount-bpffs", "image": "docker.io/calico/node:v3.32.1"}],
                "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.32.1",
                                "env": [{"name": "DATASTORE_TYPE", "value": "kubernetes"}]}]}}}}),
        );
        assert_eq!(
            id.node_container(&modern).map(|c| &*c.name),
            Some("calico-node")
        );
        assert_eq!(id.datastore(&modern), Datastore::Kdd);
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
