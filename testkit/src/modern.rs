//! Today's Calico (v3.28–v3.32, SPEC §5): the files Calico published for
//! nine releases (`testdata/modern/`, provenance in its `SOURCES.md`) and
//! the clusters they leave behind, built from those files rather than
//! written by hand.
//!
//! - A manifest install is a `calico-*.yaml` of one release, every object
//!   as the cluster stores it ([`manifest_install`]).
//! - An operator install is `tigera-operator.yaml` and the `Installation`
//!   of `custom-resources.yaml` of one release, plus what the operator
//!   creates from them in `calico-system`: calico-node, calico-kube-controllers
//!   and calico-typha, owned by `Installation default` ([`operator_install`]).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::corpus::{read_docs, testdata_dir, try_find};
use crate::objects::stored;

/// The releases of `testdata/modern/`, oldest first.
pub const RELEASES: &[&str] = &[
    "v3.28.0", "v3.29.0", "v3.30.0", "v3.30.6", "v3.30.7", "v3.31.0", "v3.31.7", "v3.32.0",
    "v3.32.1",
];

/// Where the operator creates Calico's workloads.
pub const OPERATOR_NAMESPACE: &str = "calico-system";

/// `testdata/modern/<tag>/<file>`.
pub fn modern_path(tag: &str, file: &str) -> PathBuf {
    testdata_dir().join("modern").join(tag).join(file)
}

/// Whether release `tag` published `file` (not every release has every
/// variant: v3.32.0 has no `calico-bpf.yaml`).
pub fn published(tag: &str, file: &str) -> bool {
    modern_path(tag, file).is_file()
}

/// The documents of `testdata/modern/<tag>/<file>`, as published.
pub fn modern(tag: &str, file: &str) -> Vec<Value> {
    read_docs(&modern_path(tag, file))
}

/// The `kind` named `name` in `testdata/modern/<tag>/<file>`, as published.
pub fn modern_doc(tag: &str, file: &str, kind: &str, name: &str) -> Value {
    try_find(&modern(tag, file), kind, name)
        .unwrap_or_else(|| panic!("{tag}/{file} has no {kind} {name}"))
}

/// A manifest install of `tag` from `file` (`calico.yaml`, `calico-vxlan.yaml`,
/// …): every object of the file as the cluster stores it.
pub fn manifest_install(tag: &str, file: &str) -> Vec<Value> {
    modern(tag, file).iter().map(stored).collect()
}

/// An operator install of `tag`: the operator's own objects (with the CRDs
/// of `operator-crds.yaml` where the release publishes them apart),
/// `Installation default` (and the rest of `custom-resources.yaml`), and the
/// workloads the operator creates in `calico-system`, owned by the
/// Installation.
pub fn operator_install(tag: &str) -> Vec<Value> {
    operator_install_from(tag, "custom-resources.yaml")
}

/// [`operator_install`] with another custom-resources file
/// (`custom-resources-bpf.yaml`).
pub fn operator_install_from(tag: &str, custom_resources: &str) -> Vec<Value> {
    let crds = if published(tag, "operator-crds.yaml") {
        modern(tag, "operator-crds.yaml")
    } else {
        Vec::new()
    };
    let mut objects: Vec<Value> = crds
        .iter()
        .chain(&modern(tag, "tigera-operator.yaml"))
        .chain(&modern(tag, custom_resources))
        .map(stored)
        .collect();
    let installation = objects
        .iter()
        .find(|o| o["kind"] == "Installation" && o["metadata"]["name"] == "default")
        .cloned()
        .unwrap_or_else(|| panic!("{tag}/{custom_resources} has no Installation default"));
    let owner = json!({
        "apiVersion": "operator.tigera.io/v1",
        "kind": "Installation",
        "name": "default",
        "uid": installation["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    });
    let manifest = modern(tag, "calico.yaml");
    let typha = modern(tag, "calico-typha.yaml");
    let workloads = [
        try_find(&manifest, "DaemonSet", "calico-node"),
        try_find(&manifest, "Deployment", "calico-kube-controllers"),
        try_find(&typha, "Deployment", "calico-typha"),
    ];
    for workload in workloads.into_iter().flatten() {
        objects.push(operator_owned(workload, &owner, tag));
    }
    objects
}

/// A `calico.yaml` workload as the operator runs it: in `calico-system`,
/// owned by the Installation, its Calico images from the operator's default
/// registry (`quay.io/calico/<name>:<tag>`).
fn operator_owned(mut workload: Value, owner: &Value, tag: &str) -> Value {
    workload["metadata"]["namespace"] = json!(OPERATOR_NAMESPACE);
    workload["metadata"]["ownerReferences"] = json!([owner]);
    let spec = &mut workload["spec"]["template"]["spec"];
    for list in ["containers", "initContainers"] {
        for container in spec[list].as_array_mut().into_iter().flatten() {
            let image = container["image"].as_str().unwrap_or_default();
            if let Some(name) = calico_image_name(image) {
                container["image"] = json!(format!("quay.io/calico/{name}:{tag}"));
            }
        }
    }
    stored(&workload)
}

/// `node` for `docker.io/calico/node:v3.28.0`; `None` for other images.
fn calico_image_name(image: &str) -> Option<&str> {
    let repository = image.split(['@', ':']).next()?;
    let (path, name) = repository.rsplit_once('/')?;
    path.ends_with("calico").then_some(name)
}

/// Writes `objects` as one snapshot file (`cluster.json`, a `v1 List` as
/// `kubectl get -o json` prints it) in `dir`, for `--cluster-snapshot DIR`.
/// JSON rather than YAML: the operator's CRDs are megabytes, and a snapshot
/// reader takes both.
pub fn write_snapshot(dir: &Path, objects: &[Value]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let path = dir.join("cluster.json");
    let text = serde_json::to_string(&list).expect("a snapshot serialises");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// An `AdminNetworkPolicy` (`kind` also `BaselineAdminNetworkPolicy`, whose
/// only allowed name is `default`) as the API of
/// `policy.networking.k8s.io/v1alpha1` stores it: Calico v3.29–v3.31
/// enforce them, v3.32 dropped them. Calico publishes none; the shape is
/// the upstream API's example (deny from other namespaces).
pub fn admin_network_policy(kind: &str, name: &str) -> Value {
    let mut spec = json!({
        "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "sensitive"}}},
        "ingress": [{"name": "deny-others", "action": "Deny",
                     "from": [{"namespaces": {"matchLabels": {}}}]}],
    });
    // Only ANPs are ordered; a BANP is a singleton below every policy.
    if kind == "AdminNetworkPolicy" {
        spec["priority"] = json!(10);
    }
    stored(&json!({
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
}

/// A Calico `GlobalNetworkPolicy` (`namespace` None) or `NetworkPolicy` in
/// `tier`, as `crd.projectcalico.org/v1` stores it.
pub fn tiered_policy(tier: &str, namespace: Option<&str>, name: &str) -> Value {
    let kind = if namespace.is_some() {
        "NetworkPolicy"
    } else {
        "GlobalNetworkPolicy"
    };
    let mut policy = json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"tier": tier, "order": 100, "selector": "all()", "types": ["Ingress"]},
    });
    if let Some(ns) = namespace {
        policy["metadata"]["namespace"] = json!(ns);
    }
    // Not `stored`: it would read the kind as a Kubernetes NetworkPolicy.
    policy["metadata"]["uid"] = json!(format!("uid-{name}"));
    policy
}

/// The objects of `objects` a cluster snapshot of the pack's cases needs:
/// everything but CustomResourceDefinitions, which no rule of theirs reads
/// and which would make a snapshot megabytes long.
pub fn without_crds(objects: Vec<Value>) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .collect()
}

/// The IPPool calico-node of `tag`/`file` creates on its first start, from
/// its env (`CALICO_IPV4POOL_CIDR`, default 192.168.0.0/16;
/// `CALICO_IPV4POOL_IPIP`, `CALICO_IPV4POOL_VXLAN`), as the cluster stores
/// it: `calico-vxlan.yaml` gives a CrossSubnet VXLAN pool.
pub fn default_ip_pool(tag: &str, file: &str) -> Value {
    let node = modern_doc(tag, file, "DaemonSet", "calico-node");
    let containers = node["spec"]["template"]["spec"]["containers"].as_array();
    let env: Vec<&Value> = containers
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "calico-node")
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .collect();
    let var = |name: &str, default: &str| -> String {
        env.iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or(default)
            .to_owned()
    };
    stored(&json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {
            "cidr": var("CALICO_IPV4POOL_CIDR", "192.168.0.0/16"),
            "ipipMode": var("CALICO_IPV4POOL_IPIP", "Never"),
            "vxlanMode": var("CALICO_IPV4POOL_VXLAN", "Never"),
            "natOutgoing": true,
            "nodeSelector": "all()",
        },
    }))
}

/// `FelixConfiguration default` after the eBPF guide's
/// `kubectl patch felixconfiguration default --patch='{"spec": {"bpfEnabled": true}}'`
/// (`bpf` false: before it).
pub fn felix_default(bpf: bool) -> Value {
    stored(&json!({
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "FelixConfiguration",
        "metadata": {"name": "default"},
        "spec": {"bpfEnabled": bpf, "logSeverityScreen": "Info", "reportingInterval": "0s"},
    }))
}

/// The ConfigMap `kube-system/kube-proxy` kubeadm writes (trimmed to the
/// fields of its `config.conf` that matter here), with kube-proxy `mode`
/// (`""` is kubeadm's default, iptables). Calico publishes no such file:
/// this is kubeadm's shape, not a Calico manifest.
pub fn kubeadm_kube_proxy(mode: &str) -> Value {
    let config = format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nbindAddress: 0.0.0.0\nclusterCIDR: 192.168.0.0/16\n\
         ipvs:\n  scheduler: \"\"\n  strictARP: false\nkind: KubeProxyConfiguration\nmode: \"{mode}\"\n"
    );
    stored(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": config, "kubeconfig.conf": "apiVersion: v1\nkind: Config\n"},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_release_is_carried() {
        for tag in RELEASES {
            assert!(published(tag, "calico.yaml"), "{tag}");
            assert!(published(tag, "tigera-operator.yaml"), "{tag}");
        }
        assert!(!published("v3.32.0", "calico-bpf.yaml"));
    }

    #[test]
    fn an_operator_install_runs_calico_in_calico_system_owned_by_the_installation() {
        let objects = operator_install("v3.31.7");
        let node = objects
            .iter()
            .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["namespace"] == "calico-system")
            .expect("calico-node in calico-system");
        assert_eq!(
            node["metadata"]["ownerReferences"][0]["kind"],
            "Installation"
        );
        let images: Vec<&str> = node["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["image"].as_str())
            .collect();
        assert!(
            images.contains(&"quay.io/calico/node:v3.31.7"),
            "{images:?}"
        );
        assert!(
            objects
                .iter()
                .any(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "tigera-operator")
        );
        assert!(
            !objects
                .iter()
                .any(|o| o["metadata"]["namespace"] == "kube-system" && o["kind"] == "DaemonSet")
        );
    }

    #[test]
    fn calico_images_are_recognised_by_their_path() {
        assert_eq!(
            calico_image_name("docker.io/calico/node:v3.28.0"),
            Some("node")
        );
        assert_eq!(calico_image_name("quay.io/calico/cni:v3.32.1"), Some("cni"));
        assert_eq!(calico_image_name("quay.io/tigera/operator:v1.42.3"), None);
        assert_eq!(calico_image_name("busybox"), None);
    }
}
