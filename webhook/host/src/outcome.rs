//! What a policy's verdict means for a review ([`Outcome`]); the outcomes
//! of all the policies a review entered combine into one
//! [`crate::Decision`].
//!
//! Pure functions of verdicts and configuration: [`crate::policy_set`]
//! feeds them.

use std::time::Duration;

use tollgate_sdk::{PatchOp, Verdict};

use crate::config::{FailurePolicy, Mode};
use crate::evaluation::{EvalError, FailureCause};

/// Kubernetes truncates longer warnings; Tollgate cuts them itself so the
/// policy id prefix always survives.
pub const MAX_WARNING_CHARS: usize = 256;

/// One policy's result on one review: its verdict read by its mode and
/// failure policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The policy's index in its [`crate::PolicySet`].
    pub policy: usize,
    /// How long producing the verdict took (the members of a bundle share
    /// their bundle's time).
    pub elapsed: Duration,
    pub effect: Effect,
    /// The advice (`warnings`) the verdict carried, prefixed with the id.
    pub advice: Vec<String>,
    /// The guest was stopped at a bound while running (its CPU budget, or
    /// the review's deadline): what a circuit breaker counts. A policy that
    /// never started, or was refused a slot, did not overrun.
    pub overran: bool,
}

/// What one policy does to one review.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// No violation.
    Allow,
    /// Enforced violation: the review is denied with this message.
    Deny(String),
    /// Violation in warn mode: allowed with this warning.
    Warn(String),
    /// Violation in audit mode: allowed, recorded in logs and metrics only.
    Audit(String),
    /// Repairable violation on `/mutate`: allowed once these operations apply.
    Patch(Vec<PatchOp>),
    /// The evaluation produced no verdict.
    Failure {
        cause: FailureCause,
        message: String,
        /// `failurePolicy: fail` denies; `ignore` warns.
        deny: bool,
    },
}

impl Effect {
    /// The `verdict` metric and log label. Audit violations count as `deny`
    /// (what enforcing would have done); the `mode` label tells them apart.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny(_) | Self::Audit(_) => "deny",
            Self::Warn(_) => "warn",
            Self::Patch(_) => "patch",
            Self::Failure { .. } => "failure",
        }
    }
}

impl Outcome {
    /// Why the policy produced no verdict, if it did not.
    pub fn failure(&self) -> Option<FailureCause> {
        match self.effect {
            Effect::Failure { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// The message a log line carries: the denial, warning or failure.
    pub fn reason(&self) -> Option<&str> {
        match &self.effect {
            Effect::Allow | Effect::Patch(_) => None,
            Effect::Deny(message)
            | Effect::Warn(message)
            | Effect::Audit(message)
            | Effect::Failure { message, .. } => Some(message),
        }
    }
}

/// The parts of a policy's configuration that decide what its verdict means.
#[derive(Debug, Clone, Copy)]
pub struct PolicyView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub mutate: bool,
    pub failure_policy: FailurePolicy,
}

/// Reads an evaluation result by the policy's mode and failure policy:
/// the effect and the advice. `may_patch` holds on `/mutate` for operations
/// other than DELETE.
///
/// A repairable violation is patched on `/mutate` by a mutating policy in
/// enforce or warn mode; the two differ on `/validate`, where enforce denies
/// and warn only warns (repair where the API server asks, advise where it
/// does not: SPEC §5's R21). Audit promises to let the object through
/// unchanged, so there a repairable violation is recorded like any other.
pub fn interpret(
    policy: PolicyView<'_>,
    may_patch: bool,
    result: Result<Verdict, EvalError>,
) -> (Effect, Vec<String>) {
    let verdict = match result {
        Ok(verdict) => verdict,
        Err(error) => return (failure(policy, &error), Vec::new()),
    };
    let id = policy.id;
    let advice = match policy.mode {
        Mode::Audit => Vec::new(),
        Mode::Enforce | Mode::Warn => verdict.warnings.iter().map(|w| warning(id, w)).collect(),
    };
    let effect = if verdict.allowed {
        Effect::Allow
    } else {
        let message = verdict
            .message
            .as_deref()
            .unwrap_or("the request violates this policy");
        match (policy.mode, verdict.patch) {
            (Mode::Enforce | Mode::Warn, Some(ops)) if may_patch && policy.mutate => {
                Effect::Patch(ops)
            }
            (Mode::Enforce, _) => Effect::Deny(format!("{id}: {message}")),
            (Mode::Warn, _) => Effect::Warn(warning(id, message)),
            (Mode::Audit, _) => Effect::Audit(format!("{id}: {message}")),
        }
    };
    (effect, advice)
}

/// The failure verdict of `policy`: `"<id>: policy failed (<cause>): <error>"`.
pub fn failure(policy: PolicyView<'_>, error: &EvalError) -> Effect {
    let cause = error.cause();
    let message = format!("{}: policy failed ({}): {error}", policy.id, cause.as_str());
    match policy.failure_policy {
        FailurePolicy::Fail => Effect::Failure {
            cause,
            message,
            deny: true,
        },
        FailurePolicy::Ignore => Effect::Failure {
            cause,
            message: truncate(message),
            deny: false,
        },
    }
}

/// `"<id>: <text>"` on one line, at most [`MAX_WARNING_CHARS`] characters.
pub fn warning(policy_id: &str, text: &str) -> String {
    truncate(format!("{policy_id}: {text}"))
}

/// One line of at most [`MAX_WARNING_CHARS`]; a cut text ends in `…` so the
/// reader knows there was more (the full text is in the logs).
fn truncate(text: String) -> String {
    let one_line = |c: char| if c.is_control() { ' ' } else { c };
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.chars().map(one_line).collect();
    }
    let mut cut: String = text
        .chars()
        .map(one_line)
        .take(MAX_WARNING_CHARS - 1)
        .collect();
    cut.push('…');
    cut
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn policy(mode: Mode) -> PolicyView<'static> {
        PolicyView {
            id: "p1",
            mode,
            mutate: true,
            failure_policy: FailurePolicy::Fail,
        }
    }

    pub(crate) fn repairable() -> Verdict {
        Verdict::repair(
            "replicas > 1",
            vec![PatchOp::replace("/spec/replicas", json!(1))],
        )
        .with_warning("advice")
    }

    /// An outcome of `view` for `result`, as policy `index`.
    pub(crate) fn outcome(
        index: usize,
        view: PolicyView<'_>,
        may_patch: bool,
        result: Result<Verdict, EvalError>,
    ) -> Outcome {
        let (effect, advice) = interpret(view, may_patch, result);
        Outcome {
            policy: index,
            elapsed: Duration::ZERO,
            effect,
            advice,
            overran: false,
        }
    }

    #[test]
    fn modes_decide_what_a_violation_does() {
        let deny = Verdict::deny("bad");
        let j = |mode, may_patch, v: &Verdict| interpret(policy(mode), may_patch, Ok(v.clone()));
        assert_eq!(
            j(Mode::Enforce, false, &deny).0,
            Effect::Deny("p1: bad".into())
        );
        assert_eq!(
            j(Mode::Warn, false, &deny).0,
            Effect::Warn("p1: bad".into())
        );
        assert_eq!(
            j(Mode::Audit, false, &deny).0,
            Effect::Audit("p1: bad".into())
        );
        assert_eq!(j(Mode::Enforce, false, &Verdict::allow()).0, Effect::Allow);
        // Repairable: patched only on /mutate (not DELETE).
        let (patched, advice) = j(Mode::Enforce, true, &repairable());
        assert!(matches!(patched, Effect::Patch(ref ops) if ops.len() == 1));
        assert_eq!(advice, vec!["p1: advice".to_owned()]);
        let validated = j(Mode::Enforce, false, &repairable()).0;
        assert_eq!(validated, Effect::Deny("p1: replicas > 1".into()));
        // Warn mode repairs on /mutate too, and only warns on /validate.
        let warned = j(Mode::Warn, true, &repairable()).0;
        assert!(matches!(warned, Effect::Patch(ref ops) if ops.len() == 1));
        let advised = j(Mode::Warn, false, &repairable()).0;
        assert_eq!(advised, Effect::Warn("p1: replicas > 1".into()));
        // Audit is silent towards the user.
        assert!(j(Mode::Audit, true, &repairable()).1.is_empty());
    }

    #[test]
    fn a_policy_that_cannot_mutate_never_patches() {
        let view = PolicyView {
            mutate: false,
            ..policy(Mode::Enforce)
        };
        let (effect, _) = interpret(view, true, Ok(repairable()));
        assert_eq!(effect, Effect::Deny("p1: replicas > 1".into()));
    }

    #[test]
    fn a_deadline_that_passed_before_the_start_says_so() {
        let effect = failure(policy(Mode::Enforce), &EvalError::NotStarted);
        assert_eq!(
            effect,
            Effect::Failure {
                cause: FailureCause::Deadline,
                message:
                    "p1: policy failed (deadline): deadline already passed before the evaluation started"
                        .into(),
                deny: true,
            }
        );
    }

    #[test]
    fn warnings_are_prefixed_single_line_and_cut_on_a_char_boundary() {
        let long = "é\n".repeat(300);
        let w = warning("p1", &long);
        assert_eq!(w.chars().count(), MAX_WARNING_CHARS);
        assert!(w.starts_with("p1: é "));
        assert!(w.ends_with('…'));
        assert!(!w.contains('\n'));
        let fits = "x".repeat(MAX_WARNING_CHARS - 4);
        assert_eq!(warning("p1", &fits), format!("p1: {fits}"));
    }
}
