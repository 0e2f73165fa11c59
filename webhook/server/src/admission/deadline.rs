//! Where a review's guests run, on the clock.
//!
//! Most evaluations finish well inside one epoch tick, so a review is first
//! evaluated right where its request is, on the async worker: no thread hop,
//! no wake-up. A guest that runs a whole tick there (or whose policy is
//! known to run long) is handed off: the review is evaluated again on a
//! blocking thread, which streams each policy's outcome back as soon as it
//! is final. If the review's deadline passes first, the policies without an
//! outcome get their failure outcomes (built by the host) and the review is
//! answered on time; the evaluation stops at its next outcome.

use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tollgate_context::ClusterContext;
use tollgate_host::{Decision, Endpoint, EvalError, Judgement, Outcome, PolicySet, Run};

use super::body::ReviewBody;
use super::queue::{Queue, Ticket};

/// What a review handed off to a blocking thread needs there.
pub(super) struct Job {
    pub set: Arc<PolicySet>,
    pub body: ReviewBody,
    pub endpoint: Endpoint,
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

/// The decision on `judgement`'s review, no later than the job's deadline
/// (or the shutdown cutoff).
pub(super) async fn judge(
    mut judgement: Judgement<'_>,
    job: Job,
    queue: &Queue,
    cutoff: &Cutoff,
) -> Decision {
    let cut = cutoff.reached();
    tokio::pin!(cut);
    let admitted = tokio::select! {
        admitted = queue.admit(judgement.set(), judgement.selected(), job.deadline) => admitted,
        _ = cut.as_mut() => return judgement.decide(&EvalError::ShuttingDown),
    };
    for (index, error) in &admitted.refused {
        judgement.refuse(*index, error);
    }
    // Every policy has an outcome once evaluation completes: none is missing.
    let Some(ticket) = admitted.ticket else {
        return judgement.decide(&EvalError::Unfinished);
    };
    let here = judgement.evaluate_here(
        job.body.review(),
        &admitted.run,
        job.deadline.into_std(),
        &job.context,
        &mut |outcome| ticket.settle(outcome),
    );
    if here.is_ok() {
        return judgement.decide(&EvalError::Unfinished);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (run, deadline) = (admitted.run.clone(), job.deadline);
    tokio::task::spawn_blocking(move || job.evaluate(&run, &tx, &ticket));
    let mut missing = EvalError::Unfinished;
    for _ in 0..admitted.run.len() {
        let received = tokio::select! {
            received = tokio::time::timeout_at(deadline, rx.recv()) => received,
            _ = cut.as_mut() => {
                missing = EvalError::ShuttingDown;
                break;
            }
        };
        match received {
            Ok(Some(outcome)) => judgement.record(outcome),
            Ok(None) => {
                missing = EvalError::Aborted;
                break;
            }
            Err(_elapsed) => break,
        }
    }
    judgement.decide(&missing)
}

impl Job {
    /// Runs on the blocking thread, holding `ticket` until the last guest
    /// has returned; every outcome is reported to its policy's breaker.
    fn evaluate(self, policies: &[usize], tx: &mpsc::UnboundedSender<Outcome>, ticket: &Ticket) {
        below_the_runtime();
        let run = Run {
            deadline: self.deadline.into_std(),
            context: &self.context,
            hand_off: false,
        };
        // Without hand-off, evaluation is never handed off.
        let _ = self.set.evaluate(
            self.body.review(),
            self.endpoint,
            policies,
            run,
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
const EVALUATION_NICE: i32 = 5;

/// Lowers the calling (blocking-pool) thread's scheduling priority, once:
/// guests that spin on every core must not delay the async runtime, which
/// answers reviews at their deadlines, accepts connections and serves
/// `/healthz` (under 100 spinners answers came 0.8 s after `?timeout=`).
/// Guests are still bounded by their own CPU budgets; this only decides
/// who gets a core first. On Linux the nice value is per thread (the
/// "process" it names is the thread id).
fn below_the_runtime() {
    #[cfg(target_os = "linux")]
    {
        thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if !LOWERED.get() {
            LOWERED.set(true);
            let thread = rustix::thread::gettid();
            if let Err(error) = rustix::process::setpriority_process(Some(thread), EVALUATION_NICE)
            {
                tracing::debug!(%error, "could not lower an evaluation thread's priority");
            }
        }
    }
}
