//! The policy configuration file (`--policies FILE`, YAML).
//!
//! ```yaml
//! - id: controller-recreate
//!   module: builtin:calico          # or a path to a .wasm file, relative to this file
//!   rule: controller-recreate        # the module's rule; defaults to the id
//!   mode: enforce                    # enforce | warn | audit
//!   mutate: true                     # repair on /mutate where the rule can
//!   failurePolicy: fail              # fail | ignore
//!   timeout: 250ms
//!   settings: {}
//!   match:
//!     kinds: [{group: apps, kind: Deployment}]
//!     operations: [CREATE, UPDATE]
//!     namespaces: [kube-system]
//!     names: [calico-policy-controller]
//!     labelSelector: {matchLabels: {k8s-app: calico-policy}}
//!   context:
//!     - {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system]}
//!   bulkyFields: false
//! ```
// TODO(host helper): types below are the agreed shape; fill in parsing,
// defaults and validation with errors naming the policy and the field.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tollgate_context::Grant;
use tollgate_sdk::Operation;

/// A whole configuration: the policies in evaluation order (several mutating
/// policies compose in this order).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub policies: Vec<PolicyConfig>,
}

/// One policy as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    pub id: String,
    /// `builtin:NAME` or a path (relative to the configuration file).
    pub module: String,
    /// The module's rule; defaults to `id`.
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub mutate: bool,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// `250ms`, `2s`; default 1s.
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
    #[serde(default)]
    pub settings: serde_json::Value,
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    #[serde(default)]
    pub context: Vec<Grant>,
    /// Hand `managedFields` and the last-applied annotation to the guest.
    #[serde(default)]
    pub bulky_fields: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Violations deny.
    #[default]
    Enforce,
    /// Violations are allowed with a warning.
    Warn,
    /// Violations are allowed and only recorded in logs and metrics.
    Audit,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// A failed evaluation denies (fail closed).
    #[default]
    Fail,
    /// A failed evaluation allows, with a warning.
    Ignore,
}

/// Which requests a policy enters. Every present criterion must hold; an
/// absent one holds for every request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default)]
    pub kinds: Vec<KindMatch>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub label_selector: Option<LabelSelectorConfig>,
}

/// `group`/`version`/`kind`, each `*` or absent for any.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindMatch {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorConfig {
    #[serde(default)]
    pub match_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A configuration that cannot be used, naming the policy and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("policy {policy}: {field}: {message}")]
    Invalid {
        policy: String,
        field: &'static str,
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let _ = path;
        todo!("host helper")
    }

    /// Parses a configuration from YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let _ = (text, origin);
        todo!("host helper")
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let _ = String::deserialize(d)?;
        todo!("host helper: parse 250ms / 2s / 1.5s")
    }
}
