//! The Tigera operator (SPEC §5, definitions): its user (OPERATOR), its
//! Deployment, `Installation default`, which Calico release an operator
//! image ships, and whether a manifest install is being migrated to it
//! (MIGRATING, the operator's own test in `pkg/controller/migration`).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;
use tollgate_sdk::image::ImageRef;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Object, Request, Settings};

use crate::identify::Identity;

/// Generated from `testdata/modern/SOURCES.md` by `tests/operator_releases.rs`.
#[path = "operator_releases.rs"]
mod operator_releases;
use operator_releases::OPERATOR_RELEASES;

/// The operator's API group and version.
pub const OPERATOR_API: &str = "operator.tigera.io/v1";

/// The manifest install's Deployments the operator migrates, in
/// [`Identity::namespace`] (besides the calico-node DaemonSet).
pub const MIGRATED_DEPLOYMENTS: [&str; 2] = ["calico-kube-controllers", "calico-typha"];

/// Settings of the rules about operator installs: how Calico's manifest
/// workloads and the operator are named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct OperatorSettings {
    pub identity: Identity,
    pub operator: OperatorIdentity,
}

impl Settings for OperatorSettings {
    fn validate(&self) -> Result<(), String> {
        self.identity.validate()?;
        self.operator.validate()
    }
}

/// How the operator and what it owns are named. The defaults are those of
/// the published `tigera-operator.yaml` and `custom-resources.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct OperatorIdentity {
    /// OPERATOR: the user whose writes are the operator doing its job.
    pub user: String,
    /// The operator Deployment's namespace and name.
    pub namespace: String,
    pub deployment: String,
    /// The operator's image repository.
    pub image: String,
    /// The Installation the operator reconciles.
    pub installation: String,
    /// Where the operator runs Calico's workloads.
    pub workload_namespace: String,
}

impl Default for OperatorIdentity {
    fn default() -> Self {
        Self {
            user: "system:serviceaccount:tigera-operator:tigera-operator".into(),
            namespace: "tigera-operator".into(),
            deployment: "tigera-operator".into(),
            image: "tigera/operator".into(),
            installation: "default".into(),
            workload_namespace: "calico-system".into(),
        }
    }
}

impl OperatorIdentity {
    /// Load-time checks.
    pub fn validate(&self) -> Result<(), String> {
        let named = [
            ("user", &self.user),
            ("namespace", &self.namespace),
            ("deployment", &self.deployment),
            ("image", &self.image),
            ("installation", &self.installation),
            ("workloadNamespace", &self.workload_namespace),
        ];
        match named.iter().find(|(_, v)| v.is_empty()) {
            Some((field, _)) => Err(format!("operator.{field} must not be empty")),
            None => Ok(()),
        }
    }

    /// Whether OPERATOR made the request.
    pub fn made(&self, req: &Request<'_>) -> bool {
        req.user_info.username == self.user
    }

    /// Whether `obj` is the operator's Deployment.
    pub fn is_deployment(&self, obj: &Object<'_>) -> bool {
        obj.kind_str() == "Deployment"
            && obj.namespace() == Some(self.namespace.as_str())
            && obj.name() == self.deployment
    }

    /// Whether `obj` is the Installation the operator reconciles.
    pub fn is_installation(&self, obj: &Object<'_>) -> bool {
        obj.kind_str() == "Installation"
            && obj.api_version_str() == OPERATOR_API
            && obj.name() == self.installation
    }

    /// The operator image of a Deployment.
    pub fn image_of<'o>(&self, obj: &'o Object<'_>) -> Option<ImageRef<'o>> {
        obj.container_with_image(&self.image)?.image_ref()
    }

    /// The Calico release the operator Deployment `obj` ships; `None` when
    /// it has no operator image or its tag is not in the table.
    pub fn release_of(&self, obj: &Object<'_>) -> Option<Version> {
        calico_release(&self.image_of(obj)?.version().ok()?)
    }

    /// Whether the operator Deployment `raw` installs the CRDs itself: its
    /// operator container's last `-manage-crds` flag (Go `flag` syntax) is
    /// true. Without the flag it does not: the operator's default is false
    /// (`main.go` of tigera/operator); the published manifests pass
    /// `-manage-crds=true`.
    pub fn manages_crds(&self, raw: &RawValue) -> bool {
        let Ok(obj) = serde_json::from_str::<Value>(raw.get()) else {
            return false;
        };
        let containers = obj.pointer("/spec/template/spec/containers");
        let operator = containers.and_then(Value::as_array).and_then(|list| {
            list.iter().find(|c| {
                c["image"]
                    .as_str()
                    .is_some_and(|i| ImageRef::parse(i).is(&self.image))
            })
        });
        let words = operator.into_iter().flat_map(|c| {
            let listed = |key: &str| c[key].as_array().cloned().unwrap_or_default();
            listed("command").into_iter().chain(listed("args"))
        });
        let mut manages = false;
        for word in words {
            let flag = word.as_str().unwrap_or_default();
            let name = flag.trim_start_matches('-');
            if name.len() == flag.len() || flag.len() - name.len() > 2 {
                continue;
            }
            match name.split_once('=') {
                None if name == "manage-crds" => manages = true,
                Some(("manage-crds", value)) => {
                    manages = matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
                }
                _ => {}
            }
        }
        manages
    }

    /// Reads the operator Deployment.
    pub fn read_deployment(&self, cluster: &dyn Cluster) -> Result<Option<Deployed>, LookupError> {
        let found = cluster.get(
            "apps/v1",
            "Deployment",
            Some(&self.namespace),
            &self.deployment,
        )?;
        let parsed = found.parse()?;
        let Some(obj) = parsed.first() else {
            return Ok(None);
        };
        Ok(Some(Deployed {
            image: self.image_of(obj).map(|i| i.raw.to_owned()),
            release: self.release_of(obj),
        }))
    }

    /// Whether `Installation default` exists.
    pub fn installation_exists(&self, cluster: &dyn Cluster) -> Result<bool, LookupError> {
        let found = cluster.get(OPERATOR_API, "Installation", None, &self.installation)?;
        Ok(!found.parse_as::<IgnoredAny>()?.is_empty())
    }

    /// MIGRATING: the Installation exists and at least one of the manifest
    /// install's workloads still lives (no deletionTimestamp). Answers the
    /// live ones, as `Kind ns/name`; empty when not migrating.
    pub fn migrating(
        &self,
        id: &Identity,
        cluster: &dyn Cluster,
    ) -> Result<Vec<String>, LookupError> {
        if !self.installation_exists(cluster)? {
            return Ok(Vec::new());
        }
        let ns = id.namespace.as_str();
        let mut targets = vec![("DaemonSet", id.node_daemon_set.as_str())];
        targets.extend(MIGRATED_DEPLOYMENTS.iter().map(|n| ("Deployment", *n)));
        let mut live = Vec::new();
        for (kind, name) in targets {
            let found = cluster.get("apps/v1", kind, Some(ns), name)?;
            if found
                .parse_as::<Lifetime>()?
                .iter()
                .any(|o| o.metadata.deletion_timestamp.is_none())
            {
                live.push(format!("{kind} {ns}/{name}"));
            }
        }
        Ok(live)
    }

    /// Whether `obj` is one of the objects MIGRATING is about.
    pub fn is_migrated(&self, id: &Identity, obj: &Object<'_>) -> bool {
        if obj.namespace() != Some(id.namespace.as_str()) {
            return false;
        }
        match obj.kind_str() {
            "DaemonSet" => obj.name() == id.node_daemon_set,
            "Deployment" => MIGRATED_DEPLOYMENTS.contains(&obj.name()),
            _ => false,
        }
    }

    /// Whether the Installation owns `obj` in the operator's namespace.
    pub fn owns(&self, obj: &Object<'_>) -> bool {
        obj.namespace() == Some(self.workload_namespace.as_str())
            && obj.metadata.owner_references.iter().any(|o| {
                o.kind == "Installation"
                    && o.api_version == OPERATOR_API
                    && o.name == self.installation.as_str()
            })
    }
}

/// The running operator, as far as rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Its operator image as written; `None` when it has none.
    pub image: Option<String>,
    /// The Calico release that image ships; `None` when unknown.
    pub release: Option<Version>,
}

/// Only what tells whether an object is being deleted.
#[derive(Deserialize)]
struct Lifetime {
    #[serde(default)]
    metadata: LifetimeMeta,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LifetimeMeta {
    #[serde(default)]
    deletion_timestamp: Option<IgnoredAny>,
}

/// The Calico release that operator release ships (generated table); `None`
/// for a release the table does not list, pre-releases included: never a
/// guess.
pub fn calico_release(operator: &Version) -> Option<Version> {
    if operator.is_pre_release() {
        return None;
    }
    let key = (operator.major, operator.minor, operator.patch);
    OPERATOR_RELEASES
        .iter()
        .find(|(o, _)| *o == key)
        .map(|(_, (major, minor, patch))| Version::new(*major, *minor, *patch))
}

/// The operator release that ships `calico` (for messages).
pub fn operator_for(calico: &Version) -> Option<Version> {
    let key = (calico.major, calico.minor, calico.patch);
    OPERATOR_RELEASES
        .iter()
        .find(|(_, c)| *c == key)
        .map(|((major, minor, patch), _)| Version::new(*major, *minor, *patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn releases_come_from_the_table() {
        assert_eq!(calico_release(&v("v1.42.3")), Some(v("v3.32.1")));
        assert_eq!(calico_release(&v("v1.40.15")), Some(v("v3.31.7")));
        assert_eq!(calico_release(&v("v1.42.2")), None);
        assert_eq!(calico_release(&v("v1.42.3-rc1")), None);
        assert_eq!(operator_for(&v("v3.30.7")), Some(v("v1.38.13")));
        assert_eq!(operator_for(&v("v3.99.0")), None);
    }

    #[test]
    fn settings_are_checked() {
        assert!(OperatorIdentity::default().validate().is_ok());
        let bad = OperatorIdentity {
            image: String::new(),
            ..OperatorIdentity::default()
        };
        assert!(bad.validate().unwrap_err().contains("operator.image"));
    }
}
