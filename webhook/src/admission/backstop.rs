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

use tokio::sync::{mpsc, watch};
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

/// The end of the shutdown grace period (minus the time to write the
/// answers), once shutdown has begun: a review still queued or evaluated
/// then gets its failure verdicts at once, so that every accepted review
/// is answered before the process exits.
#[derive(Debug, Clone)]
pub struct Cutoff(Arc<watch::Sender<Option<tokio::time::Instant>>>);

impl Default for Cutoff {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Cutoff {
    /// Shutdown has begun: answer everything by `at`.
    pub fn set(&self, at: tokio::time::Instant) {
        self.0.send_replace(Some(at));
    }

    /// Resolves at the cutoff (never, unless shutdown begins).
    async fn reached(&self) {
        let mut set = self.0.subscribe();
        // (The sender lives as long as `self`: never an error.)
        let at = set.wait_for(Option::is_some).await.ok().and_then(|at| *at);
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// One outcome per selected policy, no later than the job's deadline (or
/// the shutdown cutoff).
pub(super) async fn run(mut job: Job, queue: &Queue, cutoff: &Cutoff) -> Vec<Outcome> {
    let started = Instant::now();
    let cut = cutoff.reached();
    tokio::pin!(cut);
    let admitted = tokio::select! {
        admitted = queue.admit(&job.set, &job.selected, job.deadline) => admitted,
        _ = cut.as_mut() => {
            let error = EvalError::ShuttingDown;
            return job
                .selected
                .iter()
                .map(|&index| job.set.unfinished(index, &error, started.elapsed()))
                .collect();
        }
    };
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
        let received = tokio::select! {
            received = tokio::time::timeout_at(deadline, rx.recv()) => received,
            _ = cut.as_mut() => {
                missing = EvalError::ShuttingDown;
                break;
            }
        };
        match received {
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
        below_the_runtime();
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

/// The nice value of evaluating threads.
#[cfg(target_os = "linux")]
const EVALUATION_NICE: libc::c_int = 5;

/// Lowers the calling (blocking-pool) thread's scheduling priority, once:
/// guests that spin on every core must not delay the async runtime, which
/// answers reviews at their deadlines, accepts connections and serves
/// `/healthz` (under 100 spinners answers came 0.8 s after `?timeout=`).
/// Guests are still bounded by their own CPU budgets; this only decides
/// who gets a core first.
fn below_the_runtime() {
    #[cfg(target_os = "linux")]
    {
        thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if !LOWERED.get() {
            LOWERED.set(true);
            // SAFETY: plain syscalls on the calling thread; on Linux the
            // nice value is per thread (the "process" is the thread id).
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS as _, tid, EVALUATION_NICE);
            }
        }
    }
}
