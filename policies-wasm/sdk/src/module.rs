//! A module's rule table and its evaluation, natively exactly as in Wasm:
//! the exports of [`export_rules!`](crate::export_rules) only move bytes in
//! and out of these functions.

use crate::bundle::ParsedRequest;
use crate::cluster::{Cluster, NoCluster};
use crate::request::{RequestError, ViewError};
use crate::settings::Settings;
use crate::verdict::Verdict;
use crate::wire::{Description, RuleCall, RuleInfo, SettingsCheck, Verdicts};

/// One rule with its settings and view types erased, written by
/// [`export_rules!`](crate::export_rules): given the request, it reads the
/// settings, takes the rule's view from the request and calls the rule;
/// given no request, it only reads and checks the settings.
pub type Invoke = for<'r, 'a> fn(
    Option<&'r ParsedRequest<'a>>,
    &[u8],
    &dyn Cluster,
) -> Result<Option<Verdict>, RuleError>;

/// One exported rule.
#[derive(Clone, Copy)]
pub struct RuleEntry {
    pub name: &'static str,
    /// Whether the rule may answer with a patch.
    pub mutating: bool,
    invoke: Invoke,
}

impl std::fmt::Debug for RuleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEntry")
            .field("name", &self.name)
            .field("mutating", &self.mutating)
            .finish_non_exhaustive()
    }
}

/// Why one rule of a bundle could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("settings: {0}")]
    Settings(String),
    #[error(transparent)]
    View(ViewError),
    /// The request itself is unreadable: reported as the call's error, not
    /// the rule's.
    #[error("cannot read the admission request: {0}")]
    Request(serde_json::Error),
}

impl From<RequestError> for RuleError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Envelope(e) => Self::Request(e),
            RequestError::View(v) => Self::View(v),
        }
    }
}

/// Why an evaluation failed. In Wasm any of these traps, and the host
/// re-runs each rule of the bundle alone.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("cannot read the rules to evaluate: {0}")]
    Rules(serde_json::Error),
    #[error("this module has no rule {0:?}")]
    UnknownRule(String),
    #[error("rule {rule}: {error}")]
    Rule {
        rule: &'static str,
        error: RuleError,
    },
}

impl RuleEntry {
    #[doc(hidden)]
    pub const fn new(name: &'static str, mutating: bool, invoke: Invoke) -> Self {
        Self {
            name,
            mutating,
            invoke,
        }
    }

    /// Checks settings as the host does at load time (empty means `{}`).
    pub fn check_settings(&self, settings_json: &[u8]) -> SettingsCheck {
        match (self.invoke)(None, settings_json, &NoCluster) {
            Ok(_) => SettingsCheck {
                valid: true,
                message: None,
            },
            Err(e) => SettingsCheck {
                valid: false,
                message: Some(e.to_string()),
            },
        }
    }

    /// Evaluates the rule alone on a JSON admission request: a bundle of one.
    pub fn evaluate(
        &self,
        request_json: &[u8],
        settings_json: &[u8],
        cluster: &dyn Cluster,
    ) -> Result<Verdict, EvalError> {
        self.evaluate_parsed(&ParsedRequest::new(request_json), settings_json, cluster)
    }

    /// Evaluates the rule on a request parsed for the whole bundle.
    pub fn evaluate_parsed(
        &self,
        request: &ParsedRequest<'_>,
        settings_json: &[u8],
        cluster: &dyn Cluster,
    ) -> Result<Verdict, EvalError> {
        let rule = self.name;
        match (self.invoke)(Some(request), settings_json, cluster) {
            Ok(Some(verdict)) => Ok(verdict),
            Ok(None) => unreachable!("a rule given a request answers a verdict"),
            Err(RuleError::Request(e)) => Err(EvalError::Request(RequestError::Envelope(e))),
            Err(error) => Err(EvalError::Rule { rule, error }),
        }
    }
}

/// Every rule of a module, in declaration order: what `rules()` of a crate
/// using [`export_rules!`](crate::export_rules) returns.
#[derive(Debug, Clone, Copy)]
pub struct Rules(&'static [RuleEntry]);

impl Rules {
    #[doc(hidden)]
    pub const fn new(entries: &'static [RuleEntry]) -> Self {
        Self(entries)
    }

    pub fn rule(&self, name: &str) -> Option<&'static RuleEntry> {
        self.0.iter().find(|r| r.name == name)
    }

    /// What `tollgate_describe` answers.
    pub fn describe(&self) -> Description {
        Description {
            abi: crate::ABI_VERSION,
            rules: self
                .0
                .iter()
                .map(|r| RuleInfo {
                    name: r.name.to_owned(),
                    mutating: r.mutating,
                })
                .collect(),
        }
    }

    /// What `tollgate_validate_settings` answers.
    pub fn check_settings(&self, rule: &[u8], settings_json: &[u8]) -> SettingsCheck {
        match self.0.iter().find(|r| r.name.as_bytes() == rule) {
            Some(rule) => rule.check_settings(settings_json),
            None => SettingsCheck {
                valid: false,
                message: Some(
                    EvalError::UnknownRule(String::from_utf8_lossy(rule).into()).to_string(),
                ),
            },
        }
    }

    /// What `tollgate_evaluate` answers: `rules_json` is the ABI's list of
    /// `{"rule", "settings"}` entries, and the answer has one verdict per
    /// entry, in order. The request is parsed once for all of them.
    pub fn evaluate(
        &self,
        request_json: &[u8],
        rules_json: &[u8],
        cluster: &dyn Cluster,
    ) -> Result<Verdicts, EvalError> {
        let calls: Vec<RuleCall<'_>> =
            serde_json::from_slice(rules_json).map_err(EvalError::Rules)?;
        let request = ParsedRequest::new(request_json);
        let verdicts = self.evaluate_calls(&request, &calls, cluster)?;
        Ok(Verdicts { verdicts })
    }

    /// Evaluates `calls` in order on one parsed request. Every rule name is
    /// resolved before any rule runs.
    pub fn evaluate_calls(
        &self,
        request: &ParsedRequest<'_>,
        calls: &[RuleCall<'_>],
        cluster: &dyn Cluster,
    ) -> Result<Vec<Verdict>, EvalError> {
        let entries = calls
            .iter()
            .map(|call| {
                self.rule(&call.rule)
                    .ok_or_else(|| EvalError::UnknownRule(call.rule.clone().into_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        entries
            .iter()
            .zip(calls)
            .enumerate()
            .map(|(index, (entry, call))| {
                let cluster = AsMember {
                    cluster,
                    rule: index as u32,
                };
                entry.evaluate_parsed(request, call.settings_json(), &cluster)
            })
            .collect()
    }
}

/// The cluster as one member of a bundle sees it: every lookup says which
/// member asks (`"rule": <index>`), so the host checks exactly that
/// member's allow-list (ABI.md, version 2).
struct AsMember<'c> {
    cluster: &'c dyn Cluster,
    rule: u32,
}

impl Cluster for AsMember<'_> {
    fn lookup(
        &self,
        query: &crate::wire::LookupQuery,
    ) -> Result<crate::Objects, crate::LookupError> {
        let mut query = query.clone();
        query.rule = Some(self.rule);
        self.cluster.lookup(&query)
    }
}

impl std::ops::Deref for Rules {
    type Target = [RuleEntry];

    fn deref(&self) -> &[RuleEntry] {
        self.0
    }
}

impl IntoIterator for Rules {
    type Item = &'static RuleEntry;
    type IntoIter = std::slice::Iter<'static, RuleEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Reads and checks a rule's settings (empty means `{}`).
#[doc(hidden)]
pub fn parse_settings<S: Settings>(json: &[u8]) -> Result<S, RuleError> {
    let json = if json.is_empty() {
        b"{}".as_slice()
    } else {
        json
    };
    let settings: S =
        serde_json::from_slice(json).map_err(|e| RuleError::Settings(e.to_string()))?;
    settings.validate().map_err(RuleError::Settings)?;
    Ok(settings)
}
