//! The immutable set of loaded policies that serves reviews
//! ([`PolicySet`]). Its methods by stage: loading and selection here;
//! judging one review in `judgement.rs` ([`PolicySet::start`],
//! [`PolicySet::judge`], with the [`Judgement`] they begin); running the
//! guests in `evaluate.rs` ([`PolicySet::evaluate`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tollgate_context::{Grant, ResourceType};

use crate::config::Config;
use crate::matcher::Endpoint;
use crate::policy::{Builtins, LoadError, ModuleSource, Policy, builtin, module_source};
use crate::review::Review;
use crate::sandbox::{CompiledModule, Sandbox};

mod evaluate;
mod judgement;

pub use evaluate::{HandedOff, Run};
pub use judgement::Judgement;

/// An immutable, loaded configuration. Reloads build a new set and swap it in
/// whole, so a review is always evaluated by one consistent set.
pub struct PolicySet {
    policies: Vec<Policy>,
    module_paths: Vec<PathBuf>,
}

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

    /// The policies `review` enters on `endpoint`: indices into
    /// [`Self::policies`], in configuration order.
    pub fn select(&self, endpoint: Endpoint, review: &Review<'_>) -> Vec<usize> {
        let meta = review.meta();
        (0..self.policies().len())
            .filter(|&i| self.policies()[i].selects(endpoint, &meta))
            .collect()
    }
}
