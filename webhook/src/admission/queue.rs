//! Admission control: at most as many evaluations hold an instance as the
//! sandbox's pool has slots, so overload queues here (and a review whose
//! deadline passes while queued gets its failure verdicts on time) instead
//! of failing instantiation on the blocking pool.
//!
//! One permit per review in evaluation: a review's policies run one after
//! another on one blocking thread, so it holds at most one instance at a
//! time. (Per-policy bounds or a breaker would wrap [`Queue::admit`].)

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// The queue in front of the blocking pool.
pub struct Queue {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// A queue admitting `slots` evaluations at once.
    pub fn new(slots: u32, metrics: Arc<Metrics>) -> Self {
        metrics.evaluation_slots(slots);
        Self {
            permits: Arc::new(Semaphore::new(slots as usize)),
            metrics,
        }
    }

    /// Waits for a slot until `deadline`; `None` if the deadline came first.
    /// The permit is held until the evaluation ends (not when the review is
    /// answered), since the instance is in use until then.
    pub async fn admit(&self, deadline: tokio::time::Instant) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            self.metrics.queue_waited(std::time::Duration::ZERO, true);
            return Some(permit);
        }
        let started = Instant::now();
        let waiting = Waiting::new(&self.metrics);
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .ok()
            // The semaphore is never closed.
            .and_then(Result::ok);
        drop(waiting);
        self.metrics
            .queue_waited(started.elapsed(), permit.is_some());
        permit
    }
}

/// Counts a review in the queue depth while it waits, including when its
/// future is dropped (the client went away).
struct Waiting<'m>(&'m Metrics);

impl<'m> Waiting<'m> {
    fn new(metrics: &'m Metrics) -> Self {
        metrics.queue_depth(1);
        Self(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queue_depth(-1);
    }
}
