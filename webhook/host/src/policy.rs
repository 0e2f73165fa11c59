//! Loaded policies and the immutable set that serves reviews.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_context::{AllowList, ClusterContext, Grant, ResourceType};
use tollgate_sdk::Verdict;

use crate::config::{BreakerConfig, Config, ConfigError, FailurePolicy, Mode, PolicyConfig};
use crate::evaluation::EvalError;
use crate::matcher::{Endpoint, Matcher, RequestMeta};
use crate::outcome::PolicyView;
use crate::sandbox::{Budget, CompiledModule, EngineError, Lane, RuleCall, Sandbox};

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
    pub allow: AllowList,
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
    /// its `timeout` of CPU time and no wall time past `deadline` (the
    /// review's). `request` is the guest input
    /// ([`crate::GuestInput::bytes`]).
    pub fn evaluate(
        &self,
        request: &[u8],
        deadline: Instant,
        context: &dyn ClusterContext,
    ) -> Result<Verdict, EvalError> {
        self.evaluate_within(request, self.budget(deadline), context)
    }

    /// One evaluation's budget: the policy's `timeout` of CPU time, no wall
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
        context: &dyn ClusterContext,
    ) -> Result<Verdict, EvalError> {
        let verdicts =
            self.module
                .evaluate(&[self.call()], request, budget, &[&self.allow], context)?;
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

/// An immutable, loaded configuration. Reloads build a new set and swap it in
/// whole, so a review is always evaluated by one consistent set.
pub struct PolicySet {
    policies: Vec<Policy>,
    module_paths: Vec<PathBuf>,
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
        config.validate()?;
        // Each distinct module source is read and loaded once per set.
        let mut loaded: HashMap<&str, Arc<CompiledModule>> = HashMap::new();
        let mut module_paths = Vec::new();
        let mut policies = Vec::with_capacity(config.policies.len());
        for pc in &config.policies {
            let module_error = |message: String| LoadError::Module {
                policy: pc.id.clone(),
                module: pc.module.clone(),
                message,
            };
            let module = match loaded.get(pc.module.as_str()) {
                Some(module) => module.clone(),
                None => {
                    let wasm = match module_source(&pc.module, base_dir) {
                        ModuleSource::Builtin(name) => std::borrow::Cow::Borrowed(
                            builtin(builtins, name).map_err(&module_error)?,
                        ),
                        ModuleSource::File(path) => {
                            let bytes = std::fs::read(&path).map_err(|e| {
                                module_error(format!("cannot read {}: {e}", path.display()))
                            })?;
                            module_paths.push(path);
                            std::borrow::Cow::Owned(bytes)
                        }
                    };
                    let module = sandbox
                        .load_module(&wasm)
                        .map_err(|e| module_error(e.to_string()))?;
                    loaded.insert(&pc.module, module.clone());
                    module
                }
            };
            policies.push(Policy::load(pc, module, &module_error)?);
        }
        Ok(Self {
            policies,
            module_paths,
        })
    }

    /// All policies, in configuration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy with this id.
    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The module files this set was loaded from (not built-ins): what a
    /// hot reload watches besides the configuration file.
    pub fn module_paths(&self) -> &[PathBuf] {
        &self.module_paths
    }

    /// Every policy's `context:` grants (the union of the allow-lists), for
    /// the watch caches and the RBAC they need.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.policies.iter().flat_map(|p| p.allow.grants.iter())
    }

    /// The distinct resource types some policy may read.
    pub fn resource_types(&self) -> BTreeSet<ResourceType> {
        self.policies
            .iter()
            .flat_map(|p| p.allow.resource_types())
            .collect()
    }
}

impl Policy {
    /// Binds one configured policy to its loaded module: the rule must
    /// exist (and be mutating if `mutate: true`) and accept the settings.
    fn load(
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
            allow: AllowList::new(pc.id.clone(), pc.context.clone()),
            lane: Lane::of(&pc.id),
            rule: rule.to_owned(),
            settings,
            module,
            matcher,
        })
    }
}

enum ModuleSource<'a> {
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

fn module_source<'a>(module: &'a str, base_dir: &Path) -> ModuleSource<'a> {
    match module.strip_prefix(BUILTIN_PREFIX) {
        Some(name) => ModuleSource::Builtin(name),
        None => ModuleSource::File(base_dir.join(module)),
    }
}

fn builtin<'b>(builtins: Builtins<'b>, name: &str) -> Result<&'b [u8], String> {
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
