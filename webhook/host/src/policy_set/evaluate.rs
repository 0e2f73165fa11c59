//! Evaluating the policies a review entered ([`PolicySet::evaluate`]): bundles, one rule alone when
//! its bundle fails, and patch composition (the [`crate::Judgement`]
//! collects the outcomes into the decision).
//!
//! The selected policies are grouped by module (and `bulkyFields`, which
//! decides the request bytes the guest gets). A group of an ABI v2 module is
//! one *bundle*: all its rules in one fresh instance, the request parsed
//! once by the guest. If a bundle fails in any way, each of its rules is run
//! again alone, in an instance of its own under its policy's own budget, so
//! one rule's failure never changes another rule's verdict. A v1 module's
//! rules always run alone.
//!
//! On `/mutate` a policy must see the object as the policies before it (in
//! configuration order) repaired it: outcomes are accepted in configuration
//! order up to and including the first repair, its patch is applied, and
//! every policy after it is evaluated again on the repaired object. Without a
//! repair (always on `/validate`) each module costs one instance per review.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_context::ClusterContext;
use tollgate_sdk::Operation;

use super::PolicySet;
use crate::evaluation::{AbiVersion, EvalError};
use crate::input::GuestInput;
use crate::matcher::Endpoint;
use crate::outcome::{Effect, Outcome, failure, interpret};
use crate::patch::Composer;
use crate::policy::Policy;
use crate::review::Review;
use crate::sandbox::{Budget, Lookups, RuleCall};

impl PolicySet {
    /// Evaluates the `selected` policies (from [`Self::select`]) on `review`
    /// and hands each final outcome to `emit` as soon as it is final (in
    /// configuration order within a module; modules one after another).
    /// `emit` breaks to stop early (the review was answered without them).
    /// Every selected policy gets exactly one outcome unless `emit` breaks
    /// or a guest was handed off ([`Run::hand_off`]; the outcomes emitted
    /// before are then to be dropped: the review is evaluated again).
    pub fn evaluate(
        &self,
        review: &Review<'_>,
        endpoint: Endpoint,
        selected: &[usize],
        run: Run<'_>,
        emit: &mut dyn FnMut(Outcome) -> ControlFlow<()>,
    ) -> Result<(), HandedOff> {
        let judge = Judge {
            set: self,
            may_patch: endpoint == Endpoint::Mutate && review.operation() != Operation::Delete,
            run,
        };
        let mut input = GuestInput::of(review);
        let mut composer = Composer::default();
        let mut pending = selected.to_vec();
        while !pending.is_empty() {
            let mut round = Round::new(&pending);
            for group in self.groups(&pending) {
                if round.repaired {
                    break;
                }
                for (position, outcome) in judge.group(&group, &pending, &input)? {
                    round.outcomes[position] = Some(outcome);
                }
                if round.accept(self, review, &mut composer, emit).is_break() {
                    return Ok(());
                }
            }
            let rest = pending.split_off(round.accepted);
            if round.repaired && !rest.is_empty() {
                // Later policies see the object as repaired so far.
                let object = composer.object().expect("a repair leaves an object");
                input = GuestInput::new(review.with_object(object));
            }
            debug_assert!(round.repaired || rest.is_empty());
            pending = if round.repaired { rest } else { Vec::new() };
        }
        Ok(())
    }

    /// `pending` split into groups that share an instance, each a list of
    /// positions into `pending`, groups ordered by their first member.
    fn groups(&self, pending: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (position, &index) in pending.iter().enumerate() {
            let policy = &self.policies()[index];
            let same = |group: &&mut Vec<usize>| {
                let first = &self.policies()[pending[group[0]]];
                std::sync::Arc::ptr_eq(first.module(), policy.module())
                    && first.bulky_fields == policy.bulky_fields
            };
            match groups.iter_mut().find(same) {
                Some(group) => group.push(position),
                None => groups.push(vec![position]),
            }
        }
        groups
    }
}

/// Until when, with what, and on which kind of thread guests run.
#[derive(Clone, Copy)]
pub struct Run<'c> {
    /// The review's deadline: no guest runs past it.
    pub deadline: Instant,
    pub context: &'c Arc<dyn ClusterContext>,
    /// The calling thread must not hold a long guest: see
    /// [`crate::Budget::hand_off`].
    pub hand_off: bool,
}

/// A guest ran a whole tick on a thread that hands long guests off, or its
/// policy is known to run long: evaluate the review again on a thread that
/// may hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandedOff;

/// What every evaluation of one review shares.
struct Judge<'j> {
    set: &'j PolicySet,
    may_patch: bool,
    run: Run<'j>,
}

impl Judge<'_> {
    /// Evaluates one group (positions into `pending`), in one instance when
    /// the module speaks v2, and returns each member's outcome.
    fn group(
        &self,
        group: &[usize],
        pending: &[usize],
        input: &GuestInput<'_>,
    ) -> Result<Vec<(usize, Outcome)>, HandedOff> {
        let policies: Vec<(usize, &Policy)> = group
            .iter()
            .map(|&position| (position, &self.set.policies()[pending[position]]))
            .collect();
        let request = input.bytes(policies[0].1.bulky_fields);
        let bundles = policies[0].1.module().abi() == AbiVersion::V2;
        if bundles
            && policies.len() > 1
            && let Some(outcomes) = self.bundle(&policies, pending, request)?
        {
            return Ok(outcomes);
        }
        policies
            .iter()
            .map(|&(position, policy)| {
                Ok((position, self.alone(pending[position], policy, request)?))
            })
            .collect()
    }

    /// All of `policies` in one instance, under the smallest of their
    /// CPU budgets; `None` if the bundle failed (its rules then run alone).
    fn bundle(
        &self,
        policies: &[(usize, &Policy)],
        pending: &[usize],
        request: &[u8],
    ) -> Result<Option<Vec<(usize, Outcome)>>, HandedOff> {
        let started = Instant::now();
        if started >= self.run.deadline {
            return Ok(None);
        }
        // The bundle shares one CPU clock: the smallest member budget.
        let Some(cpu) = policies.iter().map(|(_, p)| p.cpu_budget).min() else {
            return Ok(None);
        };
        let budget = Budget {
            cpu,
            deadline: self.run.deadline,
            lane: Some(policies[0].1.lane()),
            hand_off: self.run.hand_off,
        };
        let calls: Vec<RuleCall<'_>> = policies.iter().map(|(_, p)| p.call()).collect();
        let lookups = Lookups {
            allow: policies.iter().map(|(_, p)| p.allow.clone()).collect(),
            context: self.run.context.clone(),
        };
        let module = policies[0].1.module();
        match module.evaluate(&calls, request, budget, lookups) {
            Err(EvalError::HandedOff) => Err(HandedOff),
            Ok(verdicts) => {
                let elapsed = started.elapsed();
                Ok(Some(
                    policies
                        .iter()
                        .zip(verdicts)
                        .map(|(&(position, policy), verdict)| {
                            let index = pending[position];
                            (position, self.outcome(index, policy, Ok(verdict), elapsed))
                        })
                        .collect(),
                ))
            }
            Err(error) => {
                let ids: Vec<&str> = policies.iter().map(|(_, p)| p.id.as_str()).collect();
                tracing::info!(
                    policies = %ids.join(", "),
                    cause = error.cause().as_str(),
                    %error,
                    "bundle failed; evaluating each of its rules alone"
                );
                Ok(None)
            }
        }
    }

    /// One policy in an instance of its own, under its own CPU budget.
    fn alone(&self, index: usize, policy: &Policy, request: &[u8]) -> Result<Outcome, HandedOff> {
        let started = Instant::now();
        let result = if started >= self.run.deadline {
            Err(EvalError::NotStarted)
        } else {
            let budget = Budget {
                hand_off: self.run.hand_off,
                ..policy.budget(self.run.deadline)
            };
            policy.evaluate_within(request, budget, self.run.context)
        };
        if matches!(result, Err(EvalError::HandedOff)) {
            return Err(HandedOff);
        }
        Ok(self.outcome(index, policy, result, started.elapsed()))
    }

    fn outcome(
        &self,
        index: usize,
        policy: &Policy,
        result: Result<tollgate_sdk::Verdict, EvalError>,
        elapsed: Duration,
    ) -> Outcome {
        let overran = result.as_ref().is_err_and(EvalError::overran);
        let (effect, advice) = interpret(policy.into(), self.may_patch, result);
        Outcome {
            policy: index,
            elapsed,
            effect,
            advice,
            overran,
        }
    }
}

/// One pass over the pending policies: their outcomes as groups finish, and
/// how far they have been accepted in configuration order.
struct Round {
    outcomes: Vec<Option<Outcome>>,
    accepted: usize,
    /// A repair was applied: the outcomes after it are stale.
    repaired: bool,
}

impl Round {
    fn new(pending: &[usize]) -> Self {
        Self {
            outcomes: pending.iter().map(|_| None).collect(),
            accepted: 0,
            repaired: false,
        }
    }

    /// Accepts the known outcomes in configuration order, up to the first
    /// gap or up to and including the first repair that applies (a repair
    /// that does not apply is its policy's failure, and the object stays as
    /// it was, so acceptance goes on).
    fn accept(
        &mut self,
        set: &PolicySet,
        review: &Review<'_>,
        composer: &mut Composer,
        emit: &mut dyn FnMut(Outcome) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        while let Some(slot) = self.outcomes.get_mut(self.accepted) {
            let Some(mut outcome) = slot.take() else {
                break;
            };
            self.accepted += 1;
            if let Effect::Patch(ops) = &outcome.effect {
                match composer.apply(review, ops) {
                    Ok(_) => self.repaired = true,
                    Err(error) => {
                        let policy = &set.policies()[outcome.policy];
                        outcome.effect =
                            failure(policy.into(), &EvalError::Output(error.to_string()));
                    }
                }
            }
            emit(outcome)?;
            if self.repaired {
                break;
            }
        }
        ControlFlow::Continue(())
    }
}
