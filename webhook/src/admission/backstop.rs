//! Running the host's evaluation off the async runtime, on the clock.
//!
//! A guest may run until its CPU budget is spent, so the evaluation runs on
//! a blocking thread (once the [`Queue`] admits it) and streams each policy's
//! outcome back as soon as it is final. If the review's deadline passes
//! first, the policies without an outcome get their failure outcomes (built
//! by the host) and the review is answered on time; the evaluation stops at
//! its next outcome.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tollgate_context::ClusterContext;
use tollgate_host::{Endpoint, EvalError, Outcome, PolicySet};

use super::queue::{Queue, Ticket};
use super::service::ReviewBody;

/// The work for one review.
pub(super) struct Job {
    pub set: Arc<PolicySet>,
    pub body: Arc<ReviewBody>,
    pub endpoint: Endpoint,
    /// From `set.select`, in configuration order.
    pub selected: Vec<usize>,
    pub deadline: tokio::time::Instant,
    pub context: Arc<dyn ClusterContext>,
}

/// One outcome per selected policy, no later than the job's deadline.
pub(super) async fn run(mut job: Job, queue: &Queue) -> Vec<Outcome> {
    let started = Instant::now();
    let admitted = queue.admit(&job.set, &job.selected, job.deadline).await;
    let set = job.set.clone();
    let refused = admitted
        .refused
        .iter()
        .map(|(index, error)| set.unfinished(*index, error, started.elapsed()));
    let mut outcomes: Vec<Outcome> = refused.collect();
    let Some(ticket) = admitted.ticket else {
        return outcomes;
    };
    job.selected = admitted.run;
    let (selected, deadline) = (job.selected.clone(), job.deadline);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || job.evaluate(&tx, &ticket));
    let mut done = Vec::with_capacity(selected.len());
    let mut missing = EvalError::Unfinished;
    while done.len() < selected.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(outcome)) => done.push(outcome),
            Ok(None) => {
                missing = EvalError::Aborted;
                break;
            }
            Err(_elapsed) => break,
        }
    }
    outcomes.extend(fill(&set, &selected, done, &missing, started));
    outcomes
}

/// `done` plus a failure outcome (`error`) for each selected policy without one.
fn fill(
    set: &PolicySet,
    selected: &[usize],
    mut done: Vec<Outcome>,
    error: &EvalError,
    started: Instant,
) -> Vec<Outcome> {
    if done.len() < selected.len() {
        let mut finished = vec![false; set.policies().len()];
        done.iter().for_each(|o| finished[o.policy] = true);
        for &index in selected.iter().filter(|&&i| !finished[i]) {
            done.push(set.unfinished(index, error, started.elapsed()));
        }
    }
    done
}

impl Job {
    /// Runs on the blocking thread, holding `ticket` until the last guest
    /// has returned; every outcome is reported to its policy's breaker.
    fn evaluate(self, tx: &mpsc::UnboundedSender<Outcome>, ticket: &Ticket) {
        let review = self.body.review();
        self.set.evaluate(
            review,
            self.endpoint,
            &self.selected,
            self.deadline.into_std(),
            &*self.context,
            &mut |outcome| {
                ticket.settle(&outcome);
                match tx.send(outcome) {
                    Ok(()) => ControlFlow::Continue(()),
                    // The review was answered at its deadline; stop working on it.
                    Err(_) => ControlFlow::Break(()),
                }
            },
        );
    }
}
