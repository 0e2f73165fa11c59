//! The policy configuration file (`--policies FILE`, YAML).
//!
//! ```yaml
//! - id: controller-recreate
//!   module: builtin:calico          # or a path to a .wasm file, relative to this file
//!   rule: controller-recreate        # the module's rule; defaults to the id
//!   mode: enforce                    # enforce | warn | audit
//!   mutate: true                     # repair on /mutate where the rule can (enforce, warn)
//!   failurePolicy: fail              # fail | ignore
//!   cpuBudget: 250ms                 # CPU time of one evaluation (was `timeout`)
//!   settings: {}
//!   match:
//!     kinds: [{group: apps, kind: Deployment}]
//!     operations: [CREATE, UPDATE]
//!     namespaces: [kube-system]
//!     names: [calico-policy-controller]
//!     labelSelector: {matchLabels: {k8s-app: calico-policy}}
//!     images: [calico/kube-controllers]  # a container image repository
//!     changed: [spec.unschedulable]      # a field an UPDATE changes
//!     anyOf:                             # alternatives: one must hold
//!       - names: [calico-kube-controllers]
//!       - kinds: [{subresource: scale}]
//!   context:
//!     - {apiVersion: apps/v1, kind: ReplicaSet, namespaces: [kube-system]}
//!   bulkyFields: false
//! ```
//!
//! Each list item is parsed on its own so an error names the policy it is in
//! (and the path of the field, e.g. `match.operations[1]`), then the whole
//! list is checked: ids unique and non-empty, CPU budgets in (0, 30s]. A
//! `match:` is checked where it is compiled, once, when the policy set loads
//! ([`crate::Matcher::compile`]).

use std::collections::HashSet;
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
    /// What loaded but should be rewritten (deprecated field names), one
    /// line per policy naming the file and policy. [`Config::from_yaml`]
    /// also logs each; kept as data so callers and tests can show them.
    pub warnings: Vec<String>,
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
    /// `cpuBudget`: the CPU time one evaluation may use (`250ms`, `2s`;
    /// default 1s). Named for what it is: the review's `?timeout=` is wall
    /// time. `timeout` is its deprecated name, still read (with a warning)
    /// so existing files keep loading.
    #[serde(
        rename = "cpuBudget",
        alias = "timeout",
        default = "default_cpu_budget",
        with = "crate::duration::text"
    )]
    pub cpu_budget: Duration,
    #[serde(default)]
    pub settings: serde_json::Value,
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    #[serde(default)]
    pub context: Vec<Grant>,
    /// Hand `managedFields` and the last-applied annotation to the guest.
    #[serde(default)]
    pub bulky_fields: bool,
    /// The most evaluations of this policy at once; by default a quarter of
    /// the instance pool, so that a policy that spins saturates only its own
    /// share and the other policies keep theirs.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// When to stop running a policy that keeps hitting its deadline.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

/// A per-policy circuit breaker: after `failures` consecutive deadline
/// failures the policy is not run for `coolDown` (its reviews get its
/// failure verdict at once), then one review probes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    #[serde(default = "default_cool_down", with = "crate::duration::text")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    /// On: 5 consecutive deadline failures open it for 30 s.
    fn default() -> Self {
        Self {
            enabled: true,
            failures: default_breaker_failures(),
            cool_down: default_cool_down(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_cool_down() -> Duration {
    Duration::from_secs(30)
}

/// The longest breaker cool-down.
pub const MAX_COOL_DOWN: Duration = Duration::from_secs(3600);

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
///
/// `tollgate manifests` turns the same criteria into the webhook rules and
/// `matchConditions` (CEL) the API server evaluates, so that a request no
/// policy wants never leaves the API server; the host checks them again for
/// requests that arrive anyway (an older API server, a hand-written
/// configuration).
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
    /// Container image repositories (`calico/node`): the object (the old
    /// object of a DELETE) has a container or init container, in its pod
    /// template or its own pod spec, whose image repository ends in one of
    /// them on a path-segment boundary, whatever the registry, tag or digest
    /// (SPEC §3). A `scale` request carries no image and never holds.
    #[serde(default)]
    pub images: Vec<String>,
    /// Field paths (`spec.unschedulable`, dot-separated keys; a key that
    /// holds dots or slashes in brackets, as label keys do:
    /// `metadata.labels[example.com/key]`): the value at one of them
    /// differs between the old and the new object (a missing object or
    /// field counts as absent), e.g. a cordon or uncordon.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Alternatives, each a match of its own: at least one must hold. The
    /// way to say "named so, or running this image, or a scale request".
    #[serde(default)]
    pub any_of: Vec<MatchConfig>,
}

/// `group`/`version`/`kind`, each `*` or absent for any; `subresource`
/// names a subresource of that kind (`{group: apps, kind: Deployment,
/// subresource: scale}`, Kyverno's `Deployment/scale`).
///
/// Without `subresource` the pattern matches the kind of the object the
/// request carries; the webhook rules generated from it name the main
/// resource only. With `subresource` it matches requests on that
/// subresource (`*` for any): their object has a kind of its own (a scale
/// request carries an `autoscaling/v1` Scale that does not name its owner),
/// so the host checks the subresource and the generated webhook rule names
/// the owner's resource (`deployments/scale`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindMatch {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
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

/// The longest `cpuBudget` a policy may have: far beyond any sane admission
/// deadline (the API server caps webhooks at 30s).
pub const MAX_CPU_BUDGET: Duration = Duration::from_secs(30);

impl Config {
    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parses a configuration from YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: origin.to_owned(),
            message,
        };
        let document: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let items = match document {
            // No document at all (empty, whitespace or comments only, or a
            // bare `null`) is what a truncated rewrite looks like: loading it
            // as "no policies" would fail open. An empty set is written `[]`.
            serde_yaml_ng::Value::Null => {
                return Err(parse_error(
                    "the file is empty (no policies document); write `[]` for an intentionally empty set"
                        .to_owned(),
                ));
            }
            serde_yaml_ng::Value::Sequence(items) => items,
            _ => {
                return Err(parse_error(
                    "expected a list of policies (`- id: ...` items)".to_owned(),
                ));
            }
        };
        let mut policies = Vec::with_capacity(items.len());
        let mut warnings = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let name = item_name(&item, index);
            if let Some(message) = deprecated_names(&item, &name).map_err(parse_error)? {
                tracing::warn!("{origin}: {message}");
                warnings.push(format!("{origin}: {message}"));
            }
            let policy = serde_path_to_error::deserialize::<_, PolicyConfig>(item)
                .map_err(|e| parse_error(format!("{name}: {}: {}", e.path(), e.inner())))?;
            policies.push(policy);
        }
        let config = Self { policies, warnings };
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot: unique non-empty ids, a module
    /// and timeouts in range.
    /// [`crate::PolicySet::load`] calls it too, for hand-built configurations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (index, policy) in self.policies.iter().enumerate() {
            let invalid = |field: &'static str, message: String| ConfigError::Invalid {
                policy: if policy.id.is_empty() {
                    format!("#{}", index + 1)
                } else {
                    policy.id.clone()
                },
                field,
                message,
            };
            if policy.id.trim().is_empty() {
                return Err(invalid("id", "must not be empty".to_owned()));
            }
            if !seen.insert(policy.id.as_str()) {
                return Err(invalid("id", "is used by an earlier policy".to_owned()));
            }
            if policy.module.trim().is_empty() {
                return Err(invalid("module", "must not be empty".to_owned()));
            }
            if policy.rule.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(invalid(
                    "rule",
                    "must not be empty (omit it to use the id)".to_owned(),
                ));
            }
            if policy.cpu_budget.is_zero() || policy.cpu_budget > MAX_CPU_BUDGET {
                return Err(invalid(
                    "cpuBudget",
                    format!("{:?} is outside (0, {MAX_CPU_BUDGET:?}]", policy.cpu_budget),
                ));
            }
            if policy.concurrency == Some(0) {
                return Err(invalid(
                    "concurrency",
                    "must be at least 1 (omit it for a quarter of the instance pool)".to_owned(),
                ));
            }
            if let Some(message) = policy.context.iter().find_map(|g| g.problem()) {
                return Err(invalid("context", message));
            }
            let breaker = &policy.breaker;
            if breaker.failures == 0 {
                return Err(invalid(
                    "breaker.failures",
                    "must be at least 1 (write enabled: false to disable the breaker)".to_owned(),
                ));
            }
            if breaker.cool_down.is_zero() || breaker.cool_down > MAX_COOL_DOWN {
                return Err(invalid(
                    "breaker.coolDown",
                    format!("{:?} is outside (0, {MAX_COOL_DOWN:?}]", breaker.cool_down),
                ));
            }
        }
        Ok(())
    }
}

impl PolicyConfig {
    /// The module rule this policy runs.
    pub fn rule_name(&self) -> &str {
        self.rule.as_deref().unwrap_or(&self.id)
    }

    /// The settings document handed to the guest: `{}` when none is configured.
    pub fn settings_json(&self) -> Vec<u8> {
        match &self.settings {
            serde_json::Value::Null => b"{}".to_vec(),
            // Serialising a `Value` cannot fail (its keys are strings).
            settings => serde_json::to_vec(settings).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

/// How an error names a list item: by its id when it has a readable one.
fn item_name(item: &serde_yaml_ng::Value, index: usize) -> String {
    match item.get("id").and_then(serde_yaml_ng::Value::as_str) {
        Some(id) if !id.is_empty() => format!("policy {id}"),
        _ => format!("policy #{}", index + 1),
    }
}

/// The deprecation warning for a policy that writes `timeout`, or an error
/// when it writes both names (which one was meant is unclear).
fn deprecated_names(item: &serde_yaml_ng::Value, name: &str) -> Result<Option<String>, String> {
    match (item.get("timeout"), item.get("cpuBudget")) {
        (Some(_), Some(_)) => Err(format!(
            "{name}: both `cpuBudget` and `timeout` are given; write only `cpuBudget` \
             (`timeout` is its deprecated name)"
        )),
        (Some(_), None) => Ok(Some(format!(
            "{name}: `timeout` is deprecated, write `cpuBudget` (CPU time per evaluation)"
        ))),
        _ => Ok(None),
    }
}

fn default_cpu_budget() -> Duration {
    Duration::from_secs(1)
}

#[cfg(test)]
mod tests;
