//! A checked, pre-linked module and the calls the host makes into it.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tollgate_sdk::Verdict;
use tollgate_sdk::wire::{Description, RuleInfo, SettingsCheck};
use wasmtime::{InstancePre, Linker, Module};

use super::Budget;
use super::abi::{self, Exports, ModuleError};
use super::engine::Shared;
use super::instance::{EvalState, Lookups, Session};
use crate::evaluation::{AbiVersion, EvalError, decode_verdicts};

/// How long a load-time call (version, describe, settings check) may run.
pub const LOAD_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// One entry of a v2 bundle: a rule and the settings of the policy running it.
#[derive(Debug, Clone, Copy)]
pub struct RuleCall<'a> {
    pub rule: &'a str,
    /// The policy's validated settings document (`{}` when none).
    pub settings: &'a [u8],
}

/// A compiled module, shared by every policy that names the same bytes.
pub struct CompiledModule {
    shared: Arc<Shared>,
    pre: InstancePre<EvalState>,
    exports: Exports,
    abi: AbiVersion,
    digest: [u8; 32],
    description: Description,
}

impl CompiledModule {
    /// Checks the module against its ABI version (read first, so a module of
    /// another version is refused for its version, not for whatever else
    /// differs), then the imports and exports, and reads its rule list.
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
        let budget = Budget::within(LOAD_CALL_TIMEOUT);
        let mut session =
            Session::start(shared, &pre, budget, false, Lookups::none()).map_err(|error| {
                ModuleError::Call {
                    call: "instantiation",
                    error,
                }
            })?;
        let found = session
            .call_i32(&version)
            .map_err(|error| ModuleError::Call {
                call: abi::VERSION,
                error,
            })?;
        let abi = AbiVersion::from_number(found).ok_or(ModuleError::AbiVersion { found })?;
        let exports = abi::exports(&module, abi)?;
        session.bind(&exports).map_err(|error| ModuleError::Call {
            call: abi::DESCRIBE,
            error,
        })?;
        let description: Description =
            document(abi::DESCRIBE, session.call_packed(&exports.describe, ()))?;
        if description.abi != found {
            return Err(ModuleError::AbiMismatch {
                version: found,
                described: description.abi,
            });
        }
        drop(session);
        Ok(Self {
            shared: shared.clone(),
            pre,
            exports,
            abi,
            digest,
            description,
        })
    }

    /// The module's sha256.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The ABI version the module speaks.
    pub fn abi(&self) -> AbiVersion {
        self.abi
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
        let budget = Budget::within(LOAD_CALL_TIMEOUT);
        let call = abi::VALIDATE_SETTINGS;
        let result = (|| {
            let mut session = self.session(budget, Lookups::none())?;
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

    /// Runs `calls` on one request in ONE fresh instance and returns one
    /// verdict per call, in order. A v1 module takes exactly one call; a v2
    /// module any number (a bundle). Any failure fails the whole call: the
    /// caller decides whether to retry the rules one by one.
    ///
    /// `lookups.allow` are the allow-lists of the policies in `calls`, in
    /// order (a v2 lookup names its member, and is checked against that one).
    pub fn evaluate(
        &self,
        calls: &[RuleCall<'_>],
        request: &[u8],
        budget: Budget,
        lookups: Lookups,
    ) -> Result<Vec<Verdict>, EvalError> {
        let mut session = self.session(budget, lookups)?;
        match (self.abi, calls) {
            (AbiVersion::V1, [call]) => {
                let [(rp, rl), (qp, ql), (sp, sl)] =
                    session.write([call.rule.as_bytes(), request, call.settings])?;
                let bytes =
                    session.call_packed(&self.exports.evaluate, (rp, rl, qp, ql, sp, sl))?;
                decode_verdicts(AbiVersion::V1, bytes, 1)
            }
            (AbiVersion::V1, _) => {
                // The judge never bundles a v1 module; refuse rather than guess.
                Err(EvalError::Output(format!(
                    "an ABI v1 module evaluates one rule per call, not {}",
                    calls.len()
                )))
            }
            (AbiVersion::V2, _) => {
                let rules = rules_document(calls);
                let [(qp, ql), (rp, rl)] = session.write([request, &rules])?;
                let bytes = session.call_packed(&self.exports.evaluate, (qp, ql, rp, rl))?;
                decode_verdicts(AbiVersion::V2, bytes, calls.len())
            }
        }
    }

    fn session(&self, budget: Budget, lookups: Lookups) -> Result<Session, EvalError> {
        let mut session = Session::start(
            &self.shared,
            &self.pre,
            budget,
            self.abi == AbiVersion::V2,
            lookups,
        )?;
        session.bind(&self.exports)?;
        Ok(session)
    }
}

/// `[{"rule": "<name>", "settings": <json>}, ...]`: the settings were
/// validated (and serialised) at load, so they are spliced in as they are.
fn rules_document(calls: &[RuleCall<'_>]) -> Vec<u8> {
    let size: usize = calls
        .iter()
        .map(|c| c.rule.len() + c.settings.len() + 24)
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'[');
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"rule":"#);
        // Serialising a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, call.rule);
        out.extend_from_slice(br#","settings":"#);
        out.extend_from_slice(call.settings);
        out.push(b'}');
    }
    out.push(b']');
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_document_splices_settings_and_escapes_names() {
        let calls = [
            RuleCall {
                rule: "a",
                settings: b"{}",
            },
            RuleCall {
                rule: "b\"c",
                settings: br#"{"x":[1]}"#,
            },
        ];
        let doc: serde_json::Value = serde_json::from_slice(&rules_document(&calls)).unwrap();
        assert_eq!(
            doc,
            serde_json::json!([{"rule": "a", "settings": {}}, {"rule": "b\"c", "settings": {"x": [1]}}])
        );
    }
}
