//! Pods and pod specs: the view for rules about what a container may do
//! (privileged, host namespaces, capabilities, host paths), shared by the
//! pod templates of [`Workload`](super::Workload) and of [`Object`](super::Object).

use serde::Deserialize;

use super::meta::{ObjectMeta, Str, null_as_default};
use crate::image::ImageRef;

/// A `v1 Pod`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod<'a> {
    #[serde(borrow, default)]
    pub api_version: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: PodSpec<'a>,
}

/// `spec.template` of a workload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate<'a> {
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    pub spec: PodSpec<'a>,
}

/// A pod spec, the fields security and placement rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub containers: Vec<Container<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub init_containers: Vec<Container<'a>>,
    /// Added to a running Pod through the `ephemeralcontainers`
    /// subresource (`kubectl debug`).
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub ephemeral_containers: Vec<Container<'a>>,
    #[serde(default)]
    pub host_network: bool,
    #[serde(default, rename = "hostPID")]
    pub host_pid: bool,
    #[serde(default, rename = "hostIPC")]
    pub host_ipc: bool,
    #[serde(default)]
    pub security_context: Option<PodSecurityContext>,
    #[serde(borrow, default)]
    pub service_account_name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub node_name: Option<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub volumes: Vec<Volume<'a>>,
}

/// The three lists of containers a pod spec holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerField {
    InitContainers,
    Containers,
    EphemeralContainers,
}

impl ContainerField {
    /// The JSON field name (`initContainers`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitContainers => "initContainers",
            Self::Containers => "containers",
            Self::EphemeralContainers => "ephemeralContainers",
        }
    }
}

impl std::fmt::Display for ContainerField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container and where it sits in its pod spec.
#[derive(Debug, Clone, Copy)]
pub struct ContainerAt<'s, 'a> {
    pub field: ContainerField,
    pub index: usize,
    pub container: &'s Container<'a>,
}

impl ContainerAt<'_, '_> {
    /// The JSON pointer of the container under `spec` (the pointer of the
    /// pod spec: `/spec` for a Pod, `/spec/template/spec` for a workload),
    /// for patches: `/spec/initContainers/0`.
    pub fn pointer(&self, spec: &str) -> String {
        format!("{spec}/{}/{}", self.field, self.index)
    }
}

impl<'a> PodSpec<'a> {
    /// Every container: init containers, containers, ephemeral containers.
    pub fn all_containers(&self) -> impl Iterator<Item = ContainerAt<'_, 'a>> {
        [
            (ContainerField::InitContainers, &self.init_containers),
            (ContainerField::Containers, &self.containers),
            (
                ContainerField::EphemeralContainers,
                &self.ephemeral_containers,
            ),
        ]
        .into_iter()
        .flat_map(|(field, list)| {
            list.iter()
                .enumerate()
                .map(move |(index, container)| ContainerAt {
                    field,
                    index,
                    container,
                })
        })
    }

    /// The host paths the pod mounts.
    pub fn host_paths(&self) -> impl Iterator<Item = &str> {
        self.volumes
            .iter()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.as_ref()))
    }
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
    #[serde(borrow, default)]
    pub security_context: Option<SecurityContext<'a>>,
}

impl<'a> Container<'a> {
    pub fn image_ref(&self) -> Option<ImageRef<'_>> {
        self.image.as_deref().map(ImageRef::parse)
    }

    pub fn env_var(&self, name: &str) -> Option<&EnvVar<'a>> {
        self.env.iter().find(|e| e.name == name)
    }

    /// The inline value of an env var (`None` when absent or set from a ref).
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env_var(name)?.value.as_deref()
    }

    /// `securityContext.privileged: true`.
    pub fn is_privileged(&self) -> bool {
        self.security_context
            .as_ref()
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    }
}

/// A container's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext<'a> {
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(borrow, default)]
    pub capabilities: Option<Capabilities<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Capabilities<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub add: Vec<Str<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub drop: Vec<Str<'a>>,
}

/// The pod-level `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub run_as_group: Option<i64>,
}

/// A volume; only `hostPath` is read, other sources are skipped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub host_path: Option<HostPathVolume<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostPathVolume<'a> {
    #[serde(borrow, default)]
    pub path: Str<'a>,
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

impl EnvVar<'_> {
    /// Set inline to a non-empty value or from a ConfigMap or Secret key.
    pub fn is_set(&self) -> bool {
        self.value.as_deref().is_some_and(|v| !v.is_empty())
            || self
                .value_from
                .as_ref()
                .is_some_and(|f| f.config_map_key_ref.is_some() || f.secret_key_ref.is_some())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_list_with_its_pointer() {
        let pod: Pod<'_> = serde_json::from_str(
            r#"{"kind": "Pod", "spec": {
                "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
                "containers": [{"name": "a"}, {"name": "b", "securityContext": {"privileged": false,
                    "capabilities": {"add": ["NET_ADMIN"], "drop": null}}}],
                "ephemeralContainers": [{"name": "debug", "targetContainerName": "a",
                    "securityContext": {"privileged": true}}],
                "hostNetwork": true, "hostPID": true,
                "securityContext": {"runAsNonRoot": true},
                "volumes": [{"name": "run", "hostPath": {"path": "/var/run/calico", "type": ""}},
                            {"name": "token", "projected": {"sources": []}}]}}"#,
        )
        .unwrap();
        let all: Vec<_> = pod
            .spec
            .all_containers()
            .map(|c| (c.pointer("/spec"), c.container.is_privileged()))
            .collect();
        assert_eq!(
            all,
            [
                ("/spec/initContainers/0".to_owned(), true),
                ("/spec/containers/0".to_owned(), false),
                ("/spec/containers/1".to_owned(), false),
                ("/spec/ephemeralContainers/0".to_owned(), true),
            ]
        );
        let caps = pod.spec.containers[1].security_context.as_ref().unwrap();
        assert_eq!(caps.capabilities.as_ref().unwrap().add, ["NET_ADMIN"]);
        assert!(pod.spec.host_network && pod.spec.host_pid && !pod.spec.host_ipc);
        assert_eq!(
            pod.spec.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
        assert_eq!(
            pod.spec.host_paths().collect::<Vec<_>>(),
            ["/var/run/calico"]
        );
    }

    #[test]
    fn null_lists_and_an_empty_spec_read_as_empty() {
        let pod: Pod<'_> = serde_json::from_str(
            r#"{"spec": {"containers": null, "initContainers": null, "volumes": null}}"#,
        )
        .unwrap();
        assert_eq!(pod.spec.all_containers().count(), 0);
        let pod: Pod<'_> = serde_json::from_str("{}").unwrap();
        assert!(!pod.spec.host_network);
    }
}
