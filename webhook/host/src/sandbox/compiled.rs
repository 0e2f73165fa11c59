//! A checked, pre-linked module and the calls the host makes into it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tollgate_context::{AllowList, ClusterContext, EmptyContext};
use tollgate_sdk::Verdict;
use tollgate_sdk::wire::{Description, RuleInfo, SettingsCheck};
use wasmtime::{InstancePre, Linker, Module};

use super::EvalError;
use super::abi::{self, ABI_VERSION, Exports, ModuleError};
use super::engine::Shared;
use super::instance::{EvalState, Session};

/// How long a load-time call (version, describe, settings check) may run.
pub const LOAD_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A compiled module, shared by every policy that names the same bytes.
pub struct CompiledModule {
    shared: Arc<Shared>,
    pre: InstancePre<EvalState>,
    exports: Exports,
    digest: [u8; 32],
    description: Description,
}

impl CompiledModule {
    /// Checks the module against ABI v1 (imports, version, exports) and
    /// reads its rule list.
    pub(super) fn new(
        shared: &Arc<Shared>,
        linker: &Linker<EvalState>,
        module: Module,
        digest: [u8; 32],
    ) -> Result<Self, ModuleError> {
        abi::check_imports(&module)?;
        let version = abi::version_export(&module)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| ModuleError::Instantiate(format!("{e:#}")))?;
        let no_policy = AllowList::default();
        let deadline = Instant::now() + LOAD_CALL_TIMEOUT;
        let mut session = Session::start(shared, &pre, deadline, &no_policy, &EmptyContext)
            .map_err(|error| ModuleError::Call {
                call: "instantiation",
                error,
            })?;
        let found = session
            .call_i32(&version)
            .map_err(|error| ModuleError::Call {
                call: abi::VERSION,
                error,
            })?;
        if found != ABI_VERSION {
            return Err(ModuleError::AbiVersion {
                found,
                expected: ABI_VERSION,
            });
        }
        let exports = abi::exports(&module)?;
        session.bind(&exports).map_err(|error| ModuleError::Call {
            call: abi::DESCRIBE,
            error,
        })?;
        let description: Description =
            document(abi::DESCRIBE, session.call_packed(&exports.describe, ()))?;
        if description.abi != ABI_VERSION {
            return Err(ModuleError::AbiVersion {
                found: description.abi,
                expected: ABI_VERSION,
            });
        }
        drop(session);
        Ok(Self {
            shared: shared.clone(),
            pre,
            exports,
            digest,
            description,
        })
    }

    /// The module's sha256.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The rules the module exports (from `tollgate_describe`).
    pub fn rules(&self) -> &[RuleInfo] {
        &self.description.rules
    }

    pub fn rule(&self, name: &str) -> Option<&RuleInfo> {
        self.description.rules.iter().find(|r| r.name == name)
    }

    /// Asks the module whether `settings` are valid for `rule`.
    pub fn validate_settings(
        &self,
        rule: &str,
        settings: &[u8],
    ) -> Result<SettingsCheck, ModuleError> {
        let no_policy = AllowList::default();
        let deadline = Instant::now() + LOAD_CALL_TIMEOUT;
        let call = abi::VALIDATE_SETTINGS;
        let result = (|| {
            let mut session = self.session(deadline, &no_policy, &EmptyContext)?;
            let [(rp, rl), (sp, sl)] = session.write([rule.as_bytes(), settings])?;
            let bytes = session.call_packed(&self.exports.validate_settings, (rp, rl, sp, sl))?;
            Ok(serde_json::from_slice::<SettingsCheck>(bytes))
        })();
        match result {
            Ok(parsed) => parsed.map_err(|e| ModuleError::Document {
                call,
                message: e.to_string(),
            }),
            Err(error) => Err(ModuleError::Call { call, error }),
        }
    }

    /// Runs one rule on one request in a fresh instance.
    pub fn evaluate(
        &self,
        rule: &str,
        request: &[u8],
        settings: &[u8],
        deadline: Instant,
        allow: &AllowList,
        context: &dyn ClusterContext,
    ) -> Result<Verdict, EvalError> {
        let mut session = self.session(deadline, allow, context)?;
        let [(rp, rl), (qp, ql), (sp, sl)] = session.write([rule.as_bytes(), request, settings])?;
        let bytes = session.call_packed(&self.exports.evaluate, (rp, rl, qp, ql, sp, sl))?;
        let verdict: Verdict = serde_json::from_slice(bytes)
            .map_err(|e| EvalError::Output(format!("not a verdict: {e}")))?;
        if verdict.allowed && verdict.patch.is_some() {
            return Err(EvalError::Output(
                "a patch is only valid with allowed: false".to_owned(),
            ));
        }
        Ok(verdict)
    }

    fn session<'a>(
        &self,
        deadline: Instant,
        allow: &'a AllowList,
        context: &'a dyn ClusterContext,
    ) -> Result<Session<'a>, EvalError> {
        let mut session = Session::start(&self.shared, &self.pre, deadline, allow, context)?;
        session.bind(&self.exports)?;
        Ok(session)
    }
}

/// Parses a load-time call's document.
fn document<T: DeserializeOwned>(
    call: &'static str,
    bytes: Result<&[u8], EvalError>,
) -> Result<T, ModuleError> {
    let bytes = bytes.map_err(|error| ModuleError::Call { call, error })?;
    serde_json::from_slice(bytes).map_err(|e| ModuleError::Document {
        call,
        message: e.to_string(),
    })
}
