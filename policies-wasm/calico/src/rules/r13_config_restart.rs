//! R13 config-restart: a change to the calico-config ConfigMap only takes
//! effect once the controller and every calico-node pod restart. Advice:
//! configured in warn mode.

use serde::Deserialize;
use tollgate_sdk::{Cluster, Request, Settings, Verdict};

use super::updated;
use crate::text::{WARNING_MAX, clip};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ConfigRestartSettings {
    pub namespace: String,
    pub name: String,
}

impl Default for ConfigRestartSettings {
    fn default() -> Self {
        Self {
            namespace: "kube-system".into(),
            name: "calico-config".into(),
        }
    }
}

impl Settings for ConfigRestartSettings {
    fn validate(&self) -> Result<(), String> {
        if self.namespace.is_empty() || self.name.is_empty() {
            return Err("namespace and name must not be empty".into());
        }
        Ok(())
    }
}

pub fn config_restart(req: &Request<'_>, s: &ConfigRestartSettings, _: &dyn Cluster) -> Verdict {
    let Some((old, new)) = updated(req) else {
        return Verdict::allow();
    };
    if new.kind_str() != "ConfigMap"
        || new.name() != s.name
        || new.namespace() != Some(s.namespace.as_str())
    {
        return Verdict::allow();
    }
    let empty = Default::default();
    let (before, after) = (
        old.data.as_ref().unwrap_or(&empty),
        new.data.as_ref().unwrap_or(&empty),
    );
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.to_string())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| k.to_string()),
    );
    if changed.is_empty() {
        return Verdict::allow();
    }
    Verdict::deny(clip(
        format!(
            "{}/{} changed ({}): restart the Calico controller and every calico-node pod (one node at a time) before it takes effect",
            s.namespace,
            s.name,
            crate::text::list(&changed, 3)
        ),
        WARNING_MAX,
    ))
}
