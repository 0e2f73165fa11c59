//! The objects a cluster holds, in memory, found by group, kind, namespace
//! and name whatever version they were saved in: the `oldObject` source of
//! [`crate::review::apply`] and what `audit` walks. Loaded from a snapshot
//! directory (the same reader as manifests: `kubectl get -o yaml` output),
//! or filled from a live cluster's lists.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::manifest::{self, ManifestError, Source};
use crate::served::{gvk, namespaced, served};

/// `(group, kind, namespace, name)`.
type Key = (String, String, Option<String>, String);

#[derive(Debug, Default, Clone)]
pub struct Objects {
    objects: BTreeMap<Key, Value>,
}

impl Objects {
    pub fn new(objects: impl IntoIterator<Item = Value>) -> Self {
        let mut store = Self::default();
        for object in objects {
            store.insert(object);
        }
        store
    }

    /// Every object in the files under `dir`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let read = manifest::read(&[Source::Path(dir.to_owned())])?;
        Ok(Self::new(read.into_iter().map(|m| m.object)))
    }

    /// Adds or replaces an object.
    pub fn insert(&mut self, object: Value) {
        if let Some(key) = key(&object) {
            self.objects.insert(key, object);
        }
    }

    /// The stored object `object` names, if any.
    pub fn get(&self, object: &Value) -> Option<&Value> {
        self.objects.get(&key(object)?)
    }

    /// Every object, ordered by group, kind, namespace and name.
    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.objects.values()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// The key of the object as served, so a removed group (`extensions`)
/// finds the object under its served one (`apps`).
fn key(object: &Value) -> Option<Key> {
    let object = &served(object);
    let (group, _, kind) = gvk(object);
    let meta = &object["metadata"];
    let name = meta["name"].as_str()?;
    let namespace = meta["namespace"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| namespaced(group, kind).then(|| "default".to_owned()));
    Some((
        group.to_owned(),
        kind.to_owned(),
        namespace,
        name.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_are_found_whatever_version_they_were_saved_in() {
        let store = Objects::new([
            json!({"apiVersion": "extensions/v1beta1", "kind": "DaemonSet",
            "metadata": {"name": "calico-node", "namespace": "kube-system"}}),
        ]);
        let probe = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "calico-node", "namespace": "kube-system"}});
        assert!(store.get(&probe).is_some());
        let elsewhere = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "calico-node"}});
        assert!(store.get(&elsewhere).is_none());
        assert_eq!(store.len(), 1);
    }
}
