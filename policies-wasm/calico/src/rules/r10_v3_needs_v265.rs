//! R10 v3-needs-v2.6.5: Calico v3 can only be reached from v2.6.5 or a later
//! v2.6.x, a transitional release (v3.1 guide: "do not skip this step!").
//! On etcd the v2→v3 data migration (`calico-upgrade`) is also required,
//! which the Kubernetes API cannot show: that is a warning.

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, Request, Settings, Verdict};

use super::updated;
use crate::identify::{Datastore, Identity, datastore_of_update};
use crate::versions::crosses;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct V3Settings {
    pub identity: Identity,
    /// The release every v3 upgrade must start from (or later).
    pub minimum: Version,
    /// The first release of the new line.
    pub target: Version,
}

impl Default for V3Settings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            minimum: Version::new(2, 6, 5),
            target: Version::new(3, 0, 0),
        }
    }
}

impl Settings for V3Settings {
    fn validate(&self) -> Result<(), String> {
        if self.minimum >= self.target {
            return Err(format!(
                "minimum {} must be below target {}",
                self.minimum, self.target
            ));
        }
        self.identity.validate()
    }
}

/// The warning for etcd clusters crossing into v3 (fits 210 characters).
pub const ETCD_WARNING: &str = "etcd datastore: migrate Calico's data from the etcd v2 to the v3 API with calico-upgrade before this upgrade; Tollgate cannot verify that from the Kubernetes API";

pub fn v3_needs_v265(req: &Request<'_>, s: &V3Settings, _: &dyn Cluster) -> Verdict {
    let Some((old, new)) = updated(req) else {
        return Verdict::allow();
    };
    let id = &s.identity;
    if !id.is_node_ds(new) {
        return Verdict::allow();
    }
    let Some(to) = id.node_release(new) else {
        return Verdict::allow();
    };
    let from = id.node_release(old);
    if !crosses(from.as_ref(), &to, &s.target) {
        return Verdict::allow();
    }
    let skips = from.as_ref().is_none_or(|f| f.core() < s.minimum.core());
    let mut verdict = if skips {
        let from = from.map_or_else(
            || "an unversioned calico/node, so the required release cannot be confirmed".to_owned(),
            |f| format!("Calico {f}"),
        );
        Verdict::deny(format!(
            "DaemonSet {} would go from {from} straight to {to}: Calico v3 must be reached from {min} or a later v2.{minor}.x, \
             a transitional release (v3.1 guide: \"do not skip this step!\"). Upgrade to the Calico {min} manifests \
             (quay.io/calico/node:{min}) first, then to {to}.",
            new.qualified_name(),
            min = s.minimum,
            minor = s.minimum.minor,
        ))
    } else {
        Verdict::allow()
    };
    if datastore_of_update(id, Some(old), new) == Datastore::Etcd {
        verdict = verdict.with_warning(ETCD_WARNING);
    }
    verdict
}
