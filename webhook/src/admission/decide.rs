//! What a policy's verdict means for a review, and how the verdicts of all
//! the policies a review entered combine into one answer.
//!
//! Pure functions: the admission service feeds them evaluation results.

use tollgate_host::{EvalError, FailureCause, FailurePolicy, Mode, Policy};
use tollgate_sdk::{PatchOp, Verdict};

/// Kubernetes truncates longer warnings; Tollgate cuts them itself so the
/// policy id prefix always survives.
pub const MAX_WARNING_CHARS: usize = 256;

/// The HTTP-like code of a policy denial.
pub const DENIED: u16 = 403;

/// The effect of one policy on one review.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
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

impl Judgement {
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

/// A policy's judgement plus the advice (`warnings`) its verdict carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub judgement: Judgement,
    pub advice: Vec<String>,
}

/// The parts of a policy's configuration that decide what its verdict means.
#[derive(Debug, Clone, Copy)]
pub struct PolicyView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub mutate: bool,
    pub failure_policy: FailurePolicy,
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

/// Interprets an evaluation result by the policy's mode and failure policy.
/// `may_patch` holds on `/mutate` for operations other than DELETE.
///
/// Patches are applied only in enforce mode: warn and audit promise to let
/// the object through unchanged, so there a repairable violation is reported
/// like any other.
pub fn judge(
    policy: PolicyView<'_>,
    may_patch: bool,
    result: Result<Verdict, EvalError>,
) -> Outcome {
    let verdict = match result {
        Ok(verdict) => verdict,
        Err(error) => {
            return Outcome {
                judgement: failure(policy, error.cause(), &error.to_string()),
                advice: Vec::new(),
            };
        }
    };
    let id = policy.id;
    let advice = match policy.mode {
        Mode::Audit => Vec::new(),
        Mode::Enforce | Mode::Warn => verdict.warnings.iter().map(|w| warning(id, w)).collect(),
    };
    let judgement = if verdict.allowed {
        Judgement::Allow
    } else {
        let message = verdict
            .message
            .as_deref()
            .unwrap_or("the request violates this policy");
        match (policy.mode, verdict.patch) {
            (Mode::Enforce, Some(ops)) if may_patch && policy.mutate => Judgement::Patch(ops),
            (Mode::Enforce, _) => Judgement::Deny(format!("{id}: {message}")),
            (Mode::Warn, _) => Judgement::Warn(warning(id, message)),
            (Mode::Audit, _) => Judgement::Audit(format!("{id}: {message}")),
        }
    };
    Outcome { judgement, advice }
}

/// The failure verdict of `policy`: `"<id>: policy failed (<cause>): <detail>"`.
pub fn failure(policy: PolicyView<'_>, cause: FailureCause, detail: &str) -> Judgement {
    let message = format!(
        "{}: policy failed ({}): {detail}",
        policy.id,
        cause.as_str()
    );
    match policy.failure_policy {
        FailurePolicy::Fail => Judgement::Failure {
            cause,
            message,
            deny: true,
        },
        FailurePolicy::Ignore => Judgement::Failure {
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

/// The combined answer to a review.
#[derive(Debug, Default)]
pub struct Decision {
    denials: Vec<String>,
    pub warnings: Vec<String>,
    patch: Vec<PatchOp>,
}

impl Decision {
    /// Adds one policy's outcome; call in configuration order so patches
    /// compose in that order.
    pub fn add(&mut self, outcome: Outcome) {
        self.warnings.extend(outcome.advice);
        match outcome.judgement {
            Judgement::Allow | Judgement::Audit(_) => {}
            Judgement::Deny(message) => self.denials.push(message),
            Judgement::Warn(message) => self.warnings.push(message),
            Judgement::Patch(ops) => self.patch.extend(ops),
            Judgement::Failure { message, deny, .. } => {
                if deny {
                    self.denials.push(message);
                } else {
                    self.warnings.push(message);
                }
            }
        }
    }

    /// The denial message: every denying policy's message, in order.
    pub fn denial(&self) -> Option<String> {
        (!self.denials.is_empty()).then(|| self.denials.join("; "))
    }

    /// The patch to send: none when denied or when nothing was repaired.
    pub fn patch(&self) -> Option<&[PatchOp]> {
        (self.denials.is_empty() && !self.patch.is_empty()).then_some(self.patch.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(mode: Mode) -> PolicyView<'static> {
        PolicyView {
            id: "p1",
            mode,
            mutate: true,
            failure_policy: FailurePolicy::Fail,
        }
    }

    fn repairable() -> Verdict {
        Verdict::repair(
            "replicas > 1",
            vec![PatchOp::replace("/spec/replicas", json!(1))],
        )
        .with_warning("advice")
    }

    #[test]
    fn modes_decide_what_a_violation_does() {
        let deny = Verdict::deny("bad");
        let j = |mode, may_patch, v: &Verdict| judge(policy(mode), may_patch, Ok(v.clone()));
        assert_eq!(
            j(Mode::Enforce, false, &deny).judgement,
            Judgement::Deny("p1: bad".into())
        );
        assert_eq!(
            j(Mode::Warn, false, &deny).judgement,
            Judgement::Warn("p1: bad".into())
        );
        assert_eq!(
            j(Mode::Audit, false, &deny).judgement,
            Judgement::Audit("p1: bad".into())
        );
        assert_eq!(
            j(Mode::Enforce, false, &Verdict::allow()).judgement,
            Judgement::Allow
        );
        // Repairable: patched only on /mutate (not DELETE) in enforce mode.
        let patched = j(Mode::Enforce, true, &repairable());
        assert!(matches!(patched.judgement, Judgement::Patch(ref ops) if ops.len() == 1));
        assert_eq!(patched.advice, vec!["p1: advice".to_owned()]);
        let validated = j(Mode::Enforce, false, &repairable()).judgement;
        assert_eq!(validated, Judgement::Deny("p1: replicas > 1".into()));
        let warned = j(Mode::Warn, true, &repairable()).judgement;
        assert_eq!(warned, Judgement::Warn("p1: replicas > 1".into()));
        // Audit is silent towards the user.
        assert!(j(Mode::Audit, true, &repairable()).advice.is_empty());
    }

    #[test]
    fn a_policy_that_cannot_mutate_never_patches() {
        let view = PolicyView {
            mutate: false,
            ..policy(Mode::Enforce)
        };
        let outcome = judge(view, true, Ok(repairable()));
        assert_eq!(
            outcome.judgement,
            Judgement::Deny("p1: replicas > 1".into())
        );
    }

    #[test]
    fn failures_follow_the_failure_policy() {
        let error = || Err(EvalError::Trap("unreachable".into()));
        let closed = judge(policy(Mode::Audit), false, error()).judgement;
        assert_eq!(
            closed,
            Judgement::Failure {
                cause: FailureCause::Trap,
                message: "p1: policy failed (trap): trapped: unreachable".into(),
                deny: true,
            }
        );
        let open = PolicyView {
            failure_policy: FailurePolicy::Ignore,
            ..policy(Mode::Enforce)
        };
        let mut decision = Decision::default();
        decision.add(judge(open, false, error()));
        assert_eq!(decision.denial(), None);
        assert_eq!(
            decision.warnings,
            vec!["p1: policy failed (trap): trapped: unreachable"]
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

    #[test]
    fn denials_join_and_suppress_the_patch() {
        let mut decision = Decision::default();
        decision.add(judge(policy(Mode::Enforce), true, Ok(repairable())));
        assert_eq!(decision.patch().map(<[_]>::len), Some(1));
        decision.add(judge(
            PolicyView {
                id: "p2",
                ..policy(Mode::Enforce)
            },
            true,
            Ok(Verdict::deny("no")),
        ));
        decision.add(judge(
            PolicyView {
                id: "p3",
                ..policy(Mode::Enforce)
            },
            true,
            Ok(Verdict::deny("never")),
        ));
        assert_eq!(decision.denial().as_deref(), Some("p2: no; p3: never"));
        assert_eq!(decision.patch(), None);
    }
}
