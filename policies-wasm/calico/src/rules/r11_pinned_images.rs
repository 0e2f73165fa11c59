//! R11 pinned-images: Calico images must carry a release tag. `latest`, no
//! tag, or a tag that is not a version (the published v2.0 manifest really
//! contains an unrendered `{% include ... %}`) can be neither checked by the
//! version rules nor rolled back.

use serde::Deserialize;
use tollgate_sdk::{Cluster, Request, Settings, Verdict};

use super::written;
use crate::identify::Identity;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PinnedSettings {
    pub identity: Identity,
    /// Image organisations whose images must be pinned (`calico` for
    /// `quay.io/calico/node`).
    pub image_owners: Vec<String>,
}

impl Default for PinnedSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            image_owners: vec!["calico".into()],
        }
    }
}

impl Settings for PinnedSettings {
    fn validate(&self) -> Result<(), String> {
        if self.image_owners.is_empty() || self.image_owners.iter().any(String::is_empty) {
            return Err("imageOwners must list at least one non-empty organisation".into());
        }
        self.identity.validate()
    }
}

pub fn pinned_images(req: &Request<'_>, s: &PinnedSettings, _: &dyn Cluster) -> Verdict {
    let Some(obj) = written(req) else {
        return Verdict::allow();
    };
    if !s.identity.is_node_ds(obj) && !s.identity.is_ctrl(obj) {
        return Verdict::allow();
    }
    let unpinned: Vec<String> = obj
        .containers()
        .filter_map(|c| {
            let image = c.image_ref()?;
            let owner = image.owner()?;
            if !s.image_owners.iter().any(|o| o == owner) {
                return None;
            }
            let error = image.version().err()?;
            Some(format!("container {} image {} {error}", c.name, image.raw))
        })
        .collect();
    if unpinned.is_empty() {
        return Verdict::allow();
    }
    Verdict::deny(format!(
        "{} {} runs unpinned Calico images: {}. Pin each to a release tag such as quay.io/calico/node:v3.1.3 \
         (tag@digest is fine), as in the published manifests for your Calico release.",
        obj.kind_str(),
        obj.qualified_name(),
        unpinned.join("; ")
    ))
}
