//! A loaded policy ([`Policy`]): its module bound, its settings checked,
//! its `match:` compiled, and where its module comes from. The set of them
//! that serves reviews is [`crate::PolicySet`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_context::{AllowList, ClusterContext};
use tollgate_sdk::Verdict;

use crate::config::{BreakerConfig, Config, ConfigError, FailurePolicy, Mode, PolicyConfig};
use crate::evaluation::EvalError;
use crate::matcher::{Endpoint, Matcher};
use crate::outcome::PolicyView;
use crate::review::RequestMeta;
use crate::sandbox::{Budget, CompiledModule, EngineError, Lane, Lookups, RuleCall};

/// The prefix naming a module embedded in the binary.
pub const BUILTIN_PREFIX: &str = "builtin:";

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
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A policy ready to evaluate.
pub struct Policy {
    pub id: String,
    pub mode: Mode,
    pub mutate: bool,
    pub failure_policy: FailurePolicy,
    pub cpu_budget: Duration,
    pub bulky_fields: bool,
    /// The most evaluations of this policy at once (`None`: the server's
    /// default share of the pool).
    pub concurrency: Option<u32>,
    pub breaker: BreakerConfig,
    pub allow: Arc<AllowList>,
    /// The run-queue lane of its evaluations (its id, hashed once).
    lane: Lane,
    rule: String,
    settings: Vec<u8>,
    module: Arc<CompiledModule>,
    matcher: Matcher,
}

impl Policy {
    /// Whether this policy enters `request` on `endpoint`.
    pub fn selects(&self, endpoint: Endpoint, request: &RequestMeta<'_>) -> bool {
        (endpoint == Endpoint::Validate || self.mutate) && self.matcher.matches(request)
    }

    /// The run-queue lane its evaluations (and a bundle it leads) take
    /// turns in.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The module rule this policy runs.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The settings handed to the guest (serialised once, at load).
    pub fn settings_json(&self) -> &[u8] {
        &self.settings
    }

    /// The module's sha256, hex.
    pub fn module_digest(&self) -> String {
        hex::encode(self.module.digest())
    }

    /// The compiled module this policy runs (shared by every policy naming
    /// the same bytes).
    pub fn module(&self) -> &Arc<CompiledModule> {
        &self.module
    }

    /// This policy's entry in a bundle.
    pub fn call(&self) -> RuleCall<'_> {
        RuleCall {
            rule: &self.rule,
            settings: &self.settings,
        }
    }

    /// Evaluates this policy alone, in a fresh instance of its own, with
    /// its `cpuBudget` of CPU time and no wall time past `deadline` (the
    /// review's). `request` is the guest input
    /// ([`crate::GuestInput::bytes`]).
    pub fn evaluate(
        &self,
        request: &[u8],
        deadline: Instant,
        context: &Arc<dyn ClusterContext>,
    ) -> Result<Verdict, EvalError> {
        self.evaluate_within(request, self.budget(deadline), context)
    }

    /// One evaluation's budget: the policy's `cpuBudget` of CPU time, no wall
    /// time past `deadline`, turns taken in the policy's lane.
    pub fn budget(&self, deadline: Instant) -> Budget {
        Budget {
            cpu: self.cpu_budget,
            deadline,
            lane: Some(self.lane),
            hand_off: false,
        }
    }

    /// [`Self::evaluate`] under `budget`.
    pub fn evaluate_within(
        &self,
        request: &[u8],
        budget: Budget,
        context: &Arc<dyn ClusterContext>,
    ) -> Result<Verdict, EvalError> {
        let lookups = Lookups {
            allow: vec![self.allow.clone()],
            context: context.clone(),
        };
        let verdicts = self
            .module
            .evaluate(&[self.call()], request, budget, lookups)?;
        verdicts
            .into_iter()
            .next()
            .ok_or_else(|| EvalError::Output("returned no verdict".to_owned()))
    }
}

impl<'a> From<&'a Policy> for PolicyView<'a> {
    fn from(p: &'a Policy) -> Self {
        Self {
            id: &p.id,
            mode: p.mode,
            mutate: p.mutate,
            failure_policy: p.failure_policy,
        }
    }
}

impl Policy {
    /// Binds one configured policy to its loaded module: the rule must
    /// exist (and be mutating if `mutate: true`) and accept the settings.
    pub(crate) fn load(
        pc: &PolicyConfig,
        module: Arc<CompiledModule>,
        module_error: &dyn Fn(String) -> LoadError,
    ) -> Result<Self, LoadError> {
        let rule = pc.rule_name();
        let Some(info) = module.rule(rule) else {
            let known: Vec<&str> = module.rules().iter().map(|r| r.name.as_str()).collect();
            return Err(module_error(format!(
                "has no rule {rule:?} (it exports: {})",
                known.join(", ")
            )));
        };
        if pc.mutate && !info.mutating {
            return Err(module_error(format!(
                "rule {rule:?} cannot repair (not mutating), but the policy sets mutate: true"
            )));
        }
        let settings = pc.settings_json();
        let check = module
            .validate_settings(rule, &settings)
            .map_err(|e| LoadError::Settings {
                policy: pc.id.clone(),
                message: e.to_string(),
            })?;
        if !check.valid {
            return Err(LoadError::Settings {
                policy: pc.id.clone(),
                message: check
                    .message
                    .unwrap_or_else(|| "rejected by the module".to_owned()),
            });
        }
        // The one place a `match:` is compiled (and so checked).
        let matcher = Matcher::compile(&pc.matches).map_err(|e| {
            LoadError::Config(ConfigError::Invalid {
                policy: pc.id.clone(),
                field: e.field,
                message: e.message,
            })
        })?;
        Ok(Self {
            id: pc.id.clone(),
            mode: pc.mode,
            mutate: pc.mutate,
            failure_policy: pc.failure_policy,
            cpu_budget: pc.cpu_budget,
            bulky_fields: pc.bulky_fields,
            concurrency: pc.concurrency,
            breaker: pc.breaker,
            allow: Arc::new(AllowList::new(pc.id.clone(), pc.context.clone())),
            lane: Lane::of(&pc.id),
            rule: rule.to_owned(),
            settings,
            module,
            matcher,
        })
    }
}

/// Where `builtin:NAME` modules come from (the binary embeds them).
pub type Builtins<'a> = &'a [(&'a str, &'a [u8])];

/// Where one policy's module comes from.
pub(crate) enum ModuleSource<'a> {
    Builtin(&'a str),
    File(PathBuf),
}

/// The module files `config` names (not built-ins), resolved against
/// `base_dir`, whether or not they exist: what a reload that failed must
/// watch so that a missing module's appearance triggers the next one.
pub fn module_files(config: &Config, base_dir: &Path) -> Vec<PathBuf> {
    config
        .policies
        .iter()
        .filter_map(|pc| match module_source(&pc.module, base_dir) {
            ModuleSource::File(path) => Some(path),
            ModuleSource::Builtin(_) => None,
        })
        .collect()
}

pub(crate) fn module_source<'a>(module: &'a str, base_dir: &Path) -> ModuleSource<'a> {
    match module.strip_prefix(BUILTIN_PREFIX) {
        Some(name) => ModuleSource::Builtin(name),
        None => ModuleSource::File(base_dir.join(module)),
    }
}

pub(crate) fn builtin<'b>(builtins: Builtins<'b>, name: &str) -> Result<&'b [u8], String> {
    builtins
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
        .ok_or_else(|| {
            let known: Vec<String> = builtins
                .iter()
                .map(|(n, _)| format!("{BUILTIN_PREFIX}{n}"))
                .collect();
            format!("unknown built-in module (known: {})", known.join(", "))
        })
}
