//! The superset view: one [`Object`] that covers Deployments, ReplicaSets, DaemonSets, the
//! `Scale` subresource, Pods, Nodes, Namespaces, ConfigMaps, NetworkPolicies
//! and Jobs in every apiVersion of their era: rules read fields, not types,
//! and fields a kind does not have are simply `None`. Unknown fields are
//! skipped by the parser without being materialised. The Calico pack reads
//! it; a new rule is usually better served by the narrower view of its kind.

use serde::Deserialize;

use super::meta::{IntOrString, LabelSelector, ObjectMeta, Str, StrMap, null_as_default, present};
use super::pod::{Container, PodTemplate};

/// The superset view (the default `T` of [`Request`](crate::Request)).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<'a> {
    #[serde(borrow, default)]
    pub api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: Option<Spec<'a>>,
    #[serde(borrow, default)]
    pub status: Option<Status<'a>>,
    /// ConfigMap data.
    #[serde(borrow, default)]
    pub data: Option<StrMap<'a>>,
}

/// The union of the `spec` fields the rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec<'a> {
    /// Deployment, ReplicaSet, Scale.
    #[serde(default)]
    pub replicas: Option<i64>,
    /// Deployment.
    #[serde(borrow, default)]
    pub strategy: Option<Strategy<'a>>,
    /// DaemonSet.
    #[serde(borrow, default)]
    pub update_strategy: Option<Strategy<'a>>,
    /// Deployment, ReplicaSet, DaemonSet, Job.
    #[serde(borrow, default)]
    pub template: Option<PodTemplate<'a>>,
    /// Pod.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub containers: Vec<Container<'a>>,
    /// Pod.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub init_containers: Vec<Container<'a>>,
    /// Pod.
    #[serde(borrow, default)]
    pub node_name: Option<Str<'a>>,
    /// Node.
    #[serde(default)]
    pub unschedulable: Option<bool>,
    /// NetworkPolicy: `None` when the key is absent, `Some(None)` when it is
    /// explicitly `null` (the guide's `podSelector:`).
    #[serde(borrow, default, deserialize_with = "present")]
    pub pod_selector: Option<Option<LabelSelector<'a>>>,
    /// NetworkPolicy.
    #[serde(borrow, default)]
    pub policy_types: Option<Vec<Str<'a>>>,
    /// NetworkPolicy: only the number of rules matters to the rules.
    #[serde(default)]
    pub ingress: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy<'a> {
    /// `Recreate` / `RollingUpdate` (Deployment), `RollingUpdate` / `OnDelete`
    /// (DaemonSet); `None` when not given.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub rolling_update: Option<RollingUpdate<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdate<'a> {
    #[serde(borrow, default)]
    pub max_unavailable: Option<IntOrString<'a>>,
    #[serde(borrow, default)]
    pub max_surge: Option<IntOrString<'a>>,
}

/// The union of the `status` fields the rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status<'a> {
    /// Deployment, ReplicaSet, Scale.
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub ready_replicas: Option<i64>,
    /// Job.
    #[serde(default)]
    pub succeeded: Option<i64>,
    /// Pod, Node, Job.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub conditions: Vec<Condition<'a>>,
    /// Node: images present on the node.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub images: Vec<NodeImage<'a>>,
    /// Pod.
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub container_statuses: Vec<ContainerStatus<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Condition<'a> {
    #[serde(borrow, default, rename = "type")]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub status: Str<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeImage<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub names: Vec<Str<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub image: Option<Str<'a>>,
    #[serde(default)]
    pub ready: bool,
}
