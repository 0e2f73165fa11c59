//! Evaluating the selected policies of one review.
//!
//! An evaluation may run until its CPU deadline, so the policies run on a
//! blocking thread, in configuration order (a mutating policy sees the
//! repairs of the ones before it). Each result is sent back as soon as it
//! exists; if the review deadline passes first, the policies that have not
//! finished get their failure verdicts and the review is answered on time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tollgate_context::ClusterContext;
use tollgate_host::{FailureCause, GuestInput, PolicySet};

use super::decide::{Judgement, Outcome, failure, judge};
use super::patch::Composer;
use super::review::raw_request;

/// The work for one review.
pub(super) struct Job {
    pub set: Arc<PolicySet>,
    /// Indices into `set.policies()`, in configuration order.
    pub selected: Vec<usize>,
    pub body: Bytes,
    /// `/mutate` and not a DELETE.
    pub may_patch: bool,
    pub deadline: tokio::time::Instant,
    pub context: Arc<dyn ClusterContext>,
}

/// One policy's result.
pub(super) struct Finished {
    pub index: usize,
    pub elapsed: Duration,
    pub outcome: Outcome,
}

/// Evaluates `job`, returning one result per selected policy, in order, no
/// later than the job's deadline.
pub(super) async fn run(job: Job) -> Vec<Finished> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (set, selected, deadline) = (job.set.clone(), job.selected.clone(), job.deadline);
    let started = Instant::now();
    tokio::task::spawn_blocking(move || job.evaluate_all(&tx));
    let mut done = Vec::with_capacity(selected.len());
    let mut aborted = false;
    while done.len() < selected.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(finished)) => done.push(finished),
            Ok(None) => {
                aborted = true;
                break;
            }
            Err(_elapsed) => break,
        }
    }
    // Results arrive in order, so the unfinished policies are the tail.
    let (cause, detail) = if aborted {
        (FailureCause::Trap, "evaluation aborted")
    } else {
        (
            FailureCause::Deadline,
            "no verdict before the review deadline",
        )
    };
    for &index in &selected[done.len()..] {
        let policy = &set.policies()[index];
        done.push(Finished {
            index,
            elapsed: started.elapsed(),
            outcome: Outcome {
                judgement: failure(policy.into(), cause, detail),
                advice: Vec::new(),
            },
        });
    }
    done
}

impl Job {
    fn evaluate_all(self, tx: &mpsc::UnboundedSender<Finished>) {
        let policies = self.set.policies();
        let request = match raw_request(&self.body) {
            Ok(request) => request,
            // Unreachable for a body the review parser accepted; still an
            // answer rather than a panic.
            Err(error) => {
                for &index in &self.selected {
                    let outcome = Outcome {
                        judgement: failure(
                            (&policies[index]).into(),
                            FailureCause::Output,
                            &error.to_string(),
                        ),
                        advice: Vec::new(),
                    };
                    let elapsed = Duration::ZERO;
                    let _ = tx.send(Finished {
                        index,
                        elapsed,
                        outcome,
                    });
                }
                return;
            }
        };
        let deadline = self.deadline.into_std();
        let last = self.selected.len() - 1;
        let mut composer = Composer::default();
        let mut input = GuestInput::new(request);
        for (position, &index) in self.selected.iter().enumerate() {
            let policy = &policies[index];
            let started = Instant::now();
            let policy_deadline = deadline.min(started + policy.timeout);
            let result = policy.evaluate(
                input.bytes(policy.bulky_fields),
                policy_deadline,
                &*self.context,
            );
            let mut outcome = judge(policy.into(), self.may_patch, result);
            if let Judgement::Patch(ops) = &outcome.judgement {
                match composer.apply(&input, ops) {
                    // Later policies see the repaired object.
                    Ok(object) if position < last => input = input.with_object(object),
                    Ok(_) => {}
                    Err(error) => {
                        let detail = error.to_string();
                        outcome.judgement = failure(policy.into(), FailureCause::Output, &detail);
                    }
                }
            }
            let finished = Finished {
                index,
                elapsed: started.elapsed(),
                outcome,
            };
            if tx.send(finished).is_err() {
                // The review was answered at its deadline; stop working on it.
                return;
            }
        }
    }
}
