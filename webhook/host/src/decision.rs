//! The combined answer to a review ([`Decision`]): the outcomes of all the
//! policies it entered, in configuration order, joined into what the
//! webhook sends.

use tollgate_sdk::PatchOp;

use crate::outcome::{Effect, Outcome};

/// The combined answer to a review: what the webhook sends, and every
/// policy's outcome (for logs, metrics and the offline commands).
#[derive(Debug, Default)]
pub struct Decision {
    /// Every denying policy's message, in configuration order, joined.
    pub denial: Option<String>,
    /// Advice, warn-mode violations and ignored failures, in order.
    pub warnings: Vec<String>,
    /// The repairs, composed in configuration order (empty when denied).
    pub patch: Vec<PatchOp>,
    /// One outcome per policy the review entered, in configuration order.
    pub outcomes: Vec<Outcome>,
}

impl Decision {
    /// Combines the outcomes of the policies a review entered (in any
    /// order; they are put in configuration order, the order patches
    /// compose in).
    pub fn new(mut outcomes: Vec<Outcome>) -> Self {
        outcomes.sort_by_key(|o| o.policy);
        let mut denials: Vec<&str> = Vec::new();
        let mut warnings = Vec::new();
        let mut patch = Vec::new();
        for outcome in &outcomes {
            warnings.extend(outcome.advice.iter().cloned());
            match &outcome.effect {
                Effect::Allow | Effect::Audit(_) => {}
                Effect::Deny(message) => denials.push(message),
                Effect::Warn(message) => warnings.push(message.clone()),
                Effect::Patch(ops) => patch.extend(ops.iter().cloned()),
                Effect::Failure { message, deny, .. } => {
                    if *deny {
                        denials.push(message);
                    } else {
                        warnings.push(message.clone());
                    }
                }
            }
        }
        let denial = (!denials.is_empty()).then(|| denials.join("; "));
        if denial.is_some() {
            patch.clear();
        }
        Self {
            denial,
            warnings,
            patch,
            outcomes,
        }
    }

    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// The patch to send: none when denied or when nothing was repaired.
    pub fn patch(&self) -> Option<&[PatchOp]> {
        (!self.patch.is_empty()).then_some(self.patch.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use tollgate_sdk::Verdict;

    use super::*;
    use crate::config::{FailurePolicy, Mode};
    use crate::evaluation::{EvalError, FailureCause};
    use crate::outcome::tests::{outcome, policy, repairable};
    use crate::outcome::{PolicyView, interpret};

    #[test]
    fn failures_follow_the_failure_policy() {
        let error = || Err(EvalError::Trap("unreachable".into()));
        let closed = interpret(policy(Mode::Audit), false, error()).0;
        assert_eq!(
            closed,
            Effect::Failure {
                cause: FailureCause::Trap,
                message: "p1: policy failed (trap): trapped: unreachable".into(),
                deny: true,
            }
        );
        let open = PolicyView {
            failure_policy: FailurePolicy::Ignore,
            ..policy(Mode::Enforce)
        };
        let decision = Decision::new(vec![outcome(0, open, false, error())]);
        assert!(decision.allowed());
        assert_eq!(
            decision.warnings,
            vec!["p1: policy failed (trap): trapped: unreachable"]
        );
    }

    #[test]
    fn denials_join_in_configuration_order_and_suppress_the_patch() {
        let repair = outcome(0, policy(Mode::Enforce), true, Ok(repairable()));
        let alone = Decision::new(vec![repair.clone()]);
        assert_eq!(alone.patch().map(<[_]>::len), Some(1));
        assert!(alone.allowed());
        let named = |id| PolicyView {
            id,
            ..policy(Mode::Enforce)
        };
        // Outcomes arrive in any order (bundles of different modules).
        let decision = Decision::new(vec![
            outcome(2, named("p3"), true, Ok(Verdict::deny("never"))),
            repair,
            outcome(1, named("p2"), true, Ok(Verdict::deny("no"))),
        ]);
        assert_eq!(decision.denial.as_deref(), Some("p2: no; p3: never"));
        assert_eq!(decision.patch(), None);
        let order: Vec<usize> = decision.outcomes.iter().map(|o| o.policy).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(decision.warnings, ["p1: advice"]);
    }
}
