//! The test-case file (`*.test.yaml`) as written, with the line of every
//! case so a report or an error points at it.
//!
//! ```yaml
//! # Defaults for every case of the file (each optional):
//! policies: ../policies.yaml        # a configuration file, or inline `- id: …` entries;
//!                                   # default: the built-in pack's configuration
//! snapshot: snapshots/prepared      # a cluster snapshot directory (as --cluster-snapshot)
//! endpoint: validate                # validate | mutate | both
//! cases:
//!   - name: the captured scale to 3 replicas is repaired
//!     request: ../reviews/scale.json  # a file, or inline: an AdmissionRequest or a whole AdmissionReview
//!     endpoint: mutate
//!     expect:
//!       allowed: true
//!       verdict: patch                # allow | deny | warn | audit | patch | failure
//!       message: "3 replicas"         # a substring of the verdict's message
//!       warnings: ["pre-pull"]        # substrings, each of a different warning; [] means none
//!       patch: [{op: replace, path: /spec/replicas, value: 1}]
//!       patched: {spec: {replicas: 1}} # what the patched object holds (a partial object)
//!       outcomes: {controller-single-replica: patch, controller-recreate: unselected}
//! ```
//!
//! Paths are relative to the file. A case may override `policies`,
//! `snapshot` and `endpoint`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// A whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub policies: Option<Value>,
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub endpoint: Option<Endpoints>,
    pub cases: Vec<Spanned<Case>>,
}

/// One case: an input, what to judge it with, and what must come out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// An AdmissionRequest or AdmissionReview, inline or a file (a string).
    pub request: Value,
    #[serde(default)]
    pub policies: Option<Value>,
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub endpoint: Option<Endpoints>,
    pub expect: Expect,
}

/// Which endpoints a case is judged on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoints {
    #[default]
    Validate,
    Mutate,
    /// Both, with the same expectations.
    Both,
}

/// What must come out. Every field given is checked; at least one must be.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub allowed: Option<bool>,
    #[serde(default)]
    pub verdict: Option<CaseVerdict>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// The JSON patch sent, exactly.
    #[serde(default)]
    pub patch: Option<Value>,
    /// A partial object: every field it names must hold that value in the
    /// object after the patch (`null`: the field is absent).
    #[serde(default)]
    pub patched: Option<Value>,
    /// Per policy id, what that policy did.
    #[serde(default)]
    pub outcomes: Option<BTreeMap<String, Effect>>,
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        self.allowed.is_none()
            && self.verdict.is_none()
            && self.message.is_none()
            && self.warnings.is_none()
            && self.patch.is_none()
            && self.patched.is_none()
            && self.outcomes.is_none()
    }
}

/// What a review got, strongest first: a failed policy, a denial, a repair,
/// warnings, a violation only recorded (audit), nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseVerdict {
    Failure,
    Deny,
    Patch,
    Warn,
    Audit,
    Allow,
}

impl CaseVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Deny => "deny",
            Self::Patch => "patch",
            Self::Warn => "warn",
            Self::Audit => "audit",
            Self::Allow => "allow",
        }
    }
}

/// What one policy did: a [`CaseVerdict`] of its own, or not entering the
/// review at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Failure,
    Deny,
    Patch,
    Warn,
    Audit,
    Allow,
    /// Its `match:` (or, on `/mutate`, `mutate: false`) kept it out.
    Unselected,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Deny => "deny",
            Self::Patch => "patch",
            Self::Warn => "warn",
            Self::Audit => "audit",
            Self::Allow => "allow",
            Self::Unselected => "unselected",
        }
    }
}

/// A file parsed, or why it cannot be: the message and its 1-based line
/// and column when known.
pub fn parse(text: &str) -> Result<CaseFile, (String, Option<(u64, u64)>)> {
    serde_saphyr::from_str::<CaseFile>(text).map_err(|error| {
        let at = error
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| (l.line(), l.column()));
        let mut message = error.without_snippet().to_string();
        // The location is reported as `FILE:LINE:COLUMN`, not twice.
        if let Some((line, column)) = at {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        (message, at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_carry_their_line() {
        let file = parse(
            "endpoint: both\ncases:\n  - name: a\n    request: r.json\n    expect: {allowed: true}\n  \
             - name: b\n    request: {uid: x}\n    expect:\n      verdict: deny\n      outcomes: {p: unselected}\n",
        )
        .unwrap();
        assert_eq!(file.endpoint, Some(Endpoints::Both));
        let lines: Vec<u64> = file.cases.iter().map(|c| c.referenced.line()).collect();
        assert_eq!(lines, [3, 6]);
        let b = &file.cases[1].value;
        assert_eq!(b.request["uid"], "x");
        assert_eq!(b.expect.verdict, Some(CaseVerdict::Deny));
        assert_eq!(b.expect.outcomes.as_ref().unwrap()["p"], Effect::Unselected);
    }

    #[test]
    fn errors_name_the_line() {
        let (message, at) =
            parse("cases:\n  - name: a\n    request: r.json\n    expect: {allowd: true}\n")
                .unwrap_err();
        assert!(message.contains("allowd"), "{message}");
        assert_eq!(at.map(|(line, _)| line), Some(4), "{message}");
        let (message, _) = parse("cases:\n  - name: a\n    expect: {allowed: true}\n").unwrap_err();
        assert!(message.contains("request"), "{message}");
        let (message, at) = parse("cases: [\n").unwrap_err();
        assert!(at.is_some(), "{message}");
    }
}
