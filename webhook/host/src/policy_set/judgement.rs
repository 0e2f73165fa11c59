//! One review's judgement, from selection to [`Decision`]: the API the
//! server and the offline commands (`check`, `audit`, `test`) share.
//!
//! A judgement starts with the policies the review enters
//! ([`PolicySet::start`]), collects one outcome per policy as each becomes
//! final, and ends in the decision ([`Judgement::decide`]), where every
//! policy still without an outcome gets the host's failure outcome for the
//! one reason the caller gives. The offline commands evaluate everything on
//! their own thread ([`PolicySet::judge`]); the server adds only what HTTP
//! needs: the queue (a policy it refuses is [`Judgement::refuse`]d), the
//! clock (at the deadline it decides with what it has), and where guests run
//! ([`Judgement::evaluate_here`] first, an evaluation thread for a review
//! whose guests run long).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use tollgate_context::ClusterContext;

use super::PolicySet;
use super::evaluate::{HandedOff, Run};
use crate::decision::Decision;
use crate::evaluation::EvalError;
use crate::matcher::Endpoint;
use crate::outcome::{Outcome, failure};
use crate::review::Review;

/// A review being judged by one policy set.
pub struct Judgement<'s> {
    set: &'s PolicySet,
    endpoint: Endpoint,
    /// Indices into the set's policies, in configuration order.
    selected: Vec<usize>,
    outcomes: Vec<Outcome>,
    started: Instant,
}

impl PolicySet {
    /// Starts judging `review` on `endpoint`: selects the policies it enters.
    pub fn start(&self, endpoint: Endpoint, review: &Review<'_>) -> Judgement<'_> {
        Judgement {
            set: self,
            endpoint,
            selected: self.select(endpoint, review),
            outcomes: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The whole judgement of one review on this thread, no guest running
    /// past `deadline`: what the offline commands call.
    pub fn judge(
        &self,
        review: &Review<'_>,
        endpoint: Endpoint,
        deadline: Instant,
        context: &Arc<dyn ClusterContext>,
    ) -> Decision {
        let mut judgement = self.start(endpoint, review);
        let selected = judgement.selected.clone();
        let run = Run {
            deadline,
            context,
            hand_off: false,
        };
        // Without hand-off, evaluation is never handed off.
        let _ = self.evaluate(review, endpoint, &selected, run, &mut |outcome| {
            judgement.record(outcome);
            ControlFlow::Continue(())
        });
        judgement.decide(&EvalError::Unfinished)
    }
}

impl<'s> Judgement<'s> {
    /// The set judging.
    pub fn set(&self) -> &'s PolicySet {
        self.set
    }

    /// The selected policies, in configuration order.
    pub fn selected(&self) -> &[usize] {
        &self.selected
    }

    /// No policy entered: the review is allowed as it is.
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty()
    }

    /// Records a policy's final outcome (from [`PolicySet::evaluate`]).
    pub fn record(&mut self, outcome: Outcome) {
        debug_assert!(self.selected.contains(&outcome.policy));
        self.outcomes.push(outcome);
    }

    /// A policy refused before it ran (its breaker, its share, the queue):
    /// its failure outcome now.
    pub fn refuse(&mut self, policy: usize, error: &EvalError) {
        self.outcomes.push(self.failed(policy, error));
    }

    /// Evaluates `policies` (selected, admitted) on this thread, unless a
    /// guest runs long: then nothing is recorded and the caller evaluates
    /// them again on a thread that may hold a long guest
    /// ([`Budget::hand_off`](crate::Budget::hand_off)). `settle` sees each
    /// outcome once the evaluation has completed.
    pub fn evaluate_here(
        &mut self,
        review: &Review<'_>,
        policies: &[usize],
        deadline: Instant,
        context: &Arc<dyn ClusterContext>,
        settle: &mut dyn FnMut(&Outcome),
    ) -> Result<(), HandedOff> {
        let mut done = Vec::with_capacity(policies.len());
        let run = Run {
            deadline,
            context,
            hand_off: true,
        };
        self.set
            .evaluate(review, self.endpoint, policies, run, &mut |outcome| {
                done.push(outcome);
                ControlFlow::Continue(())
            })?;
        done.iter().for_each(&mut *settle);
        self.outcomes.extend(done);
        Ok(())
    }

    /// The decision: the outcomes recorded, and for every selected policy
    /// without one, its failure outcome for `missing` (still running at the
    /// deadline, shutting down, its evaluation aborted).
    pub fn decide(mut self, missing: &EvalError) -> Decision {
        if self.outcomes.len() < self.selected.len() {
            let mut finished = vec![false; self.set.policies().len()];
            self.outcomes.iter().for_each(|o| finished[o.policy] = true);
            let unfinished: Vec<usize> = (self.selected.iter().copied())
                .filter(|&i| !finished[i])
                .collect();
            for policy in unfinished {
                self.outcomes.push(self.failed(policy, missing));
            }
        }
        Decision::new(self.outcomes)
    }

    /// The outcome of a policy that got no verdict for a reason outside its
    /// guest: built here, so that the server only owns the clock.
    fn failed(&self, policy: usize, error: &EvalError) -> Outcome {
        Outcome {
            policy,
            elapsed: self.started.elapsed(),
            effect: failure((&self.set.policies()[policy]).into(), error),
            advice: Vec::new(),
            overran: error.overran(),
        }
    }
}
