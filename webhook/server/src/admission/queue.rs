//! Admission control, so that one policy's failure never affects another:
//!
//! - **Global bound.** At most as many evaluations hold an instance as the
//!   sandbox's pool has slots, so overload queues here (and a review whose
//!   deadline passes while queued gets its failure verdicts on time) instead
//!   of failing instantiation on the blocking pool. One permit per review in
//!   evaluation: a review's policies run one after another on one blocking
//!   thread, so it holds at most one instance at a time.
//! - **Per-policy share.** Each policy may be in at most `concurrency`
//!   evaluations at once (default a quarter of the pool). Its slots are
//!   taken *before* the global permit, so reviews waiting for a saturated
//!   policy (one that spins) hold nothing the other policies need; a review
//!   that gets no slot before its deadline gets that policy's failure
//!   verdict with cause `overload`.
//! - **Breaker.** A policy stopped at its deadline `failures` times in a row
//!   is not run for its cool-down (cause `breaker`, immediately); then one
//!   review probes it, which closes or re-opens the breaker.
//!
//! Gates are kept by policy id across reloads (a reload that changes a
//! policy's `concurrency` or `breaker` starts it a fresh gate).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tollgate_host::{BreakerConfig, EvalError, Outcome, Policy, PolicySet};

use crate::metrics::{BreakerState, Metrics, RequestRejected};

/// The queue in front of the blocking pool.
pub struct Queue {
    permits: Arc<Semaphore>,
    slots: u32,
    /// Reviews waiting for a global slot, and the most that may.
    waiting: AtomicU32,
    max_waiting: u32,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    metrics: Arc<Metrics>,
}

/// What [`Queue::admit`] decided for one review.
pub struct Admitted {
    /// The policies to evaluate (a subset of the selected, in order).
    pub run: Vec<usize>,
    /// The policies refused before evaluation, and why.
    pub refused: Vec<(usize, EvalError)>,
    /// Held by the evaluation until it ends; `None` when nothing runs.
    pub ticket: Option<Ticket>,
}

/// The permits of one evaluation (global and per policy) and the gates its
/// outcomes are reported to.
pub struct Ticket {
    _global: OwnedSemaphorePermit,
    slots: Vec<(usize, Slot)>,
}

impl Ticket {
    /// Reports an outcome to its policy's breaker (called on the evaluating
    /// thread for every outcome, also after the review was answered, so the
    /// policy that was running at the deadline is counted).
    pub fn settle(&self, outcome: &Outcome) {
        if let Some((_, slot)) = self.slots.iter().find(|(i, _)| *i == outcome.policy) {
            slot.gate.record(outcome.overran);
        }
    }
}

impl Queue {
    /// A queue admitting `slots` evaluations at once.
    pub fn new(slots: u32, metrics: Arc<Metrics>) -> Self {
        metrics.evaluation_slots(slots);
        Self {
            permits: Arc::new(Semaphore::new(slots as usize)),
            slots,
            waiting: AtomicU32::new(0),
            max_waiting: u32::MAX,
            gates: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// At most `reviews` wait for a slot; more are refused at once
    /// (`--max-queued-reviews`).
    pub fn with_max_waiting(mut self, reviews: u32) -> Self {
        self.max_waiting = reviews;
        self
    }

    /// Admits the `selected` policies of one review, waiting until
    /// `deadline` at most: each policy's breaker, then its share, then one
    /// global slot. The permits are held until the evaluation ends (not
    /// when the review is answered), since the instance is in use until then.
    pub async fn admit(
        &self,
        set: &PolicySet,
        selected: &[usize],
        deadline: tokio::time::Instant,
    ) -> Admitted {
        let mut admitted = Admitted {
            run: Vec::with_capacity(selected.len()),
            refused: Vec::new(),
            ticket: None,
        };
        let mut slots = Vec::with_capacity(selected.len());
        for &index in selected {
            let gate = self.gate(&set.policies()[index]);
            if let Err(message) = gate.enter(Instant::now()) {
                admitted.refused.push((index, EvalError::Breaker(message)));
                continue;
            }
            match gate.clone().acquire(deadline).await {
                Some(slot) => {
                    admitted.run.push(index);
                    slots.push((index, slot));
                }
                None => {
                    gate.abandon();
                    admitted
                        .refused
                        .push((index, EvalError::Overloaded(gate.limit)));
                }
            }
        }
        if admitted.run.is_empty() {
            return admitted;
        }
        match self.global(deadline).await {
            Ok(global) => {
                admitted.ticket = Some(Ticket {
                    _global: global,
                    slots,
                })
            }
            Err(error) => {
                for (index, slot) in slots {
                    slot.gate.abandon();
                    admitted.refused.push((index, error.clone()));
                }
                admitted.run.clear();
            }
        }
        admitted
    }

    /// Waits for a global slot until `deadline`: `NotStarted` if the
    /// deadline came first, `QueueFull` without waiting when the queue is.
    async fn global(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, EvalError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            self.metrics.queue_waited(Duration::ZERO, true);
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.metrics.request_rejected(RequestRejected::QueueFull);
            return Err(EvalError::QueueFull(self.max_waiting));
        }
        let started = Instant::now();
        let waiting = Waiting::new(&self.metrics, &self.waiting);
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .ok()
            // The semaphore is never closed.
            .and_then(Result::ok);
        drop(waiting);
        self.metrics
            .queue_waited(started.elapsed(), permit.is_some());
        permit.ok_or(EvalError::NotStarted)
    }

    /// The gate of `policy`, made on first use (or when its limits changed).
    fn gate(&self, policy: &Policy) -> Arc<Gate> {
        // A configured share may exceed the pool: the global bound still holds.
        let limit = policy.concurrency.unwrap_or((self.slots / 4).max(1));
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        match gates.get(&policy.id) {
            Some(gate) if gate.limit == limit && gate.config == policy.breaker => gate.clone(),
            _ => {
                let gate = Arc::new(Gate::new(&policy.id, limit, policy.breaker, &self.metrics));
                gates.insert(policy.id.clone(), gate.clone());
                gate
            }
        }
    }
}

/// One policy's share of the pool and its breaker.
struct Gate {
    id: String,
    limit: u32,
    permits: Arc<Semaphore>,
    config: BreakerConfig,
    breaker: Mutex<Breaker>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone, Copy)]
enum Breaker {
    /// Running; `overruns` consecutive deadline failures so far.
    Closed { overruns: u32 },
    /// Failing fast until `until` (`wall` says when, for the message).
    Open { until: Instant, wall: SystemTime },
    /// One probe admitted at `since`; others fail fast until it settles
    /// (or a cool-down passes without it settling: another probe goes).
    HalfOpen { since: Instant },
}

/// One of a policy's concurrency slots, held for one evaluation.
struct Slot {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Gate>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.metrics.policy_in_flight(&self.gate.id, -1);
    }
}

impl Gate {
    fn new(id: &str, limit: u32, config: BreakerConfig, metrics: &Arc<Metrics>) -> Self {
        metrics.policy_slots(id, limit);
        metrics.breaker(id, BreakerState::Closed);
        Self {
            id: id.to_owned(),
            limit,
            permits: Arc::new(Semaphore::new(limit as usize)),
            config,
            breaker: Mutex::new(Breaker::Closed { overruns: 0 }),
            metrics: metrics.clone(),
        }
    }

    /// Waits for one of this policy's slots until `deadline`.
    async fn acquire(self: Arc<Self>, deadline: tokio::time::Instant) -> Option<Slot> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
                .await
                .ok()
                // The semaphore is never closed.
                .and_then(Result::ok)?,
        };
        self.metrics.policy_in_flight(&self.id, 1);
        Some(Slot {
            _permit: permit,
            gate: self,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a review may run this policy now; the failure message if not.
    fn enter(&self, now: Instant) -> Result<(), String> {
        if !self.config.enabled {
            return Ok(());
        }
        let mut state = self.lock();
        match *state {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until, wall } if now < until => Err(format!(
                "circuit breaker open after {} consecutive deadline failures; not run until {}",
                self.config.failures,
                httpdate::fmt_http_date(wall)
            )),
            Breaker::HalfOpen { since } if now < since + self.config.cool_down => Err(format!(
                "circuit breaker half-open after {} consecutive deadline failures; another review is probing the policy",
                self.config.failures
            )),
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => {
                *state = Breaker::HalfOpen { since: now };
                self.metrics.breaker(&self.id, BreakerState::HalfOpen);
                tracing::info!(policy = %self.id, "circuit breaker half-open: one review probes the policy");
                Ok(())
            }
        }
    }

    /// An admitted review did not run the policy after all: a probe goes
    /// back to waiting for the next review.
    fn abandon(&self) {
        let mut state = self.lock();
        if let Breaker::HalfOpen { .. } = *state {
            *state = Breaker::Open {
                until: Instant::now(),
                wall: SystemTime::now(),
            };
        }
    }

    /// The outcome of one evaluation: `overran` if the guest was stopped at
    /// its CPU budget or the review's deadline.
    fn record(&self, overran: bool) {
        if !self.config.enabled {
            return;
        }
        let mut state = self.lock();
        match (*state, overran) {
            (Breaker::Closed { overruns }, true) if overruns + 1 >= self.config.failures => {
                *state = self.open();
            }
            (Breaker::Closed { overruns }, true) => {
                *state = Breaker::Closed {
                    overruns: overruns + 1,
                };
            }
            (Breaker::Closed { .. }, false) => *state = Breaker::Closed { overruns: 0 },
            (Breaker::HalfOpen { .. }, true) => *state = self.open(),
            (Breaker::HalfOpen { .. }, false) => {
                *state = Breaker::Closed { overruns: 0 };
                self.metrics.breaker(&self.id, BreakerState::Closed);
                tracing::info!(policy = %self.id, "circuit breaker closed: the probe finished within its budget");
            }
            // Evaluations admitted before it opened are still finishing.
            (Breaker::Open { .. }, _) => {}
        }
    }

    fn open(&self) -> Breaker {
        let cool_down = self.config.cool_down;
        let wall = SystemTime::now() + cool_down;
        self.metrics.breaker(&self.id, BreakerState::Open);
        tracing::warn!(
            policy = %self.id,
            failures = self.config.failures,
            cool_down_ms = cool_down.as_millis() as u64,
            until = %httpdate::fmt_http_date(wall),
            "circuit breaker opened: the policy kept hitting its deadline; its reviews get its failure verdict until the cool-down ends"
        );
        Breaker::Open {
            until: Instant::now() + cool_down,
            wall,
        }
    }
}

/// Counts a review in the queue depth while it waits, including when its
/// future is dropped (the client went away).
/// (The caller has counted it in `count` already.)
struct Waiting<'m>(&'m Metrics, &'m AtomicU32);

impl<'m> Waiting<'m> {
    fn new(metrics: &'m Metrics, count: &'m AtomicU32) -> Self {
        metrics.queue_depth(1);
        Self(metrics, count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queue_depth(-1);
        self.1.fetch_sub(1, Ordering::AcqRel);
    }
}
