//! Loaded policies and the immutable set that serves reviews.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_context::{AllowList, ClusterContext};
use tollgate_sdk::Verdict;

use crate::config::{Config, FailurePolicy, Mode};
use crate::matcher::{Endpoint, RequestMeta};
use crate::sandbox::{CompiledModule, EvalError, Sandbox};

/// Why a configuration could not be loaded. The previous set keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("policy {policy}: module {module}: {message}")]
    Module {
        policy: String,
        module: String,
        message: String,
    },
    #[error("policy {policy}: settings: {message}")]
    Settings { policy: String, message: String },
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// A policy ready to evaluate.
pub struct Policy {
    pub id: String,
    pub mode: Mode,
    pub mutate: bool,
    pub failure_policy: FailurePolicy,
    pub timeout: Duration,
    pub bulky_fields: bool,
    pub allow: AllowList,
    rule: String,
    settings: Vec<u8>,
    module: Arc<CompiledModule>,
    // host helper: compiled matcher
}

impl Policy {
    /// Whether this policy enters `request` on `endpoint`.
    pub fn selects(&self, endpoint: Endpoint, request: &RequestMeta<'_>) -> bool {
        let _ = (endpoint, request);
        todo!("host helper")
    }

    /// Evaluates the policy; `deadline` is the earlier of the policy timeout
    /// and the review's own deadline (the caller computes it).
    pub fn evaluate(
        &self,
        request: &[u8],
        deadline: Instant,
        context: &dyn ClusterContext,
    ) -> Result<Verdict, EvalError> {
        self.module
            .evaluate(&self.rule, request, &self.settings, deadline, &self.allow, context)
    }
}

/// An immutable, loaded configuration. Reloads build a new set and swap it in
/// whole, so a review is always evaluated by one consistent set.
pub struct PolicySet {
    policies: Vec<Policy>,
}

/// Where `builtin:NAME` modules come from (the binary embeds them).
pub type Builtins<'a> = &'a [(&'a str, &'a [u8])];

impl PolicySet {
    /// Compiles (or fetches from cache) every module, validates every
    /// policy's settings with its module, and builds the matchers.
    /// `base_dir` resolves relative module paths.
    pub fn load(
        config: &Config,
        sandbox: &Sandbox,
        builtins: Builtins<'_>,
        base_dir: &Path,
    ) -> Result<Self, LoadError> {
        let _ = (config, sandbox, builtins, base_dir);
        todo!("host helper")
    }

    /// All policies, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policies that enter `request` on `endpoint`, in configuration order.
    pub fn select<'s, 'r>(
        &'s self,
        endpoint: Endpoint,
        request: &'r RequestMeta<'r>,
    ) -> impl Iterator<Item = &'s Policy> + use<'s, 'r> {
        self.policies.iter().filter(move |p| p.selects(endpoint, request))
    }
}
