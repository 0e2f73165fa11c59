//! Typed, borrowed views of the Kubernetes objects Calico rules read.
//!
//! One superset [`Object`] covers Deployments, ReplicaSets, DaemonSets, the
//! `Scale` subresource, Pods, Nodes, Namespaces, ConfigMaps, NetworkPolicies
//! and Jobs in every apiVersion of their era: rules read fields, not types,
//! and fields a kind does not have are simply `None`. Unknown fields are
//! skipped by the parser without being materialised.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

pub type Str<'a> = Cow<'a, str>;
pub type StrMap<'a> = BTreeMap<Str<'a>, Str<'a>>;

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub uid: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub labels: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub annotations: StrMap<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerReference<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference<'a> {
    #[serde(borrow, default)]
    pub api_version: Str<'a>,
    #[serde(borrow, default)]
    pub kind: Str<'a>,
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(default)]
    pub controller: Option<bool>,
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

/// Kubernetes `IntOrString` (`1` or `"25%"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString<'a> {
    Int(i64),
    Str(#[serde(borrow)] Str<'a>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate<'a> {
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: PodSpec<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub containers: Vec<Container<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub init_containers: Vec<Container<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub image: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub env: Vec<EnvVar<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub value: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub value_from: Option<EnvVarSource<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource<'a> {
    #[serde(borrow, default)]
    pub config_map_key_ref: Option<KeyRef<'a>>,
    #[serde(borrow, default)]
    pub secret_key_ref: Option<KeyRef<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyRef<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub key: Str<'a>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub match_labels: StrMap<'a>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_expressions: Vec<serde::de::IgnoredAny>,
}

impl LabelSelector<'_> {
    /// `{}`: selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
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

/// `null` reads as the type's default (`labels: null` is an empty map).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent key (`None`,
/// via `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
