//! The admission service shared by `/validate` and `/mutate`: parse once,
//! select, queue, judge (in the host), record, encode.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tollgate_context::ClusterContext;
use tollgate_host::{Decision, Effect, Endpoint, Outcome, Parsed, PolicySet, Review, ReviewError};

use super::body::ReviewBody;
use super::deadline::{self, Cutoff, Job};
use super::queue::Queue;
use super::response;
use crate::metrics::{Metrics, mode_label};

/// Judges reviews with the policy set currently serving.
pub struct Admission {
    policies: Arc<ArcSwap<PolicySet>>,
    context: Arc<dyn ClusterContext>,
    metrics: Arc<Metrics>,
    queue: Queue,
    cutoff: Cutoff,
}

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum Reply {
    /// An AdmissionReview (HTTP 200, JSON).
    Review(Vec<u8>),
    /// Not an AdmissionReview at all: HTTP 400 with a one-line reason.
    BadRequest(String),
}

impl Admission {
    /// `slots` is how many evaluations may hold an instance at once (the
    /// sandbox's [`tollgate_host::SandboxLimits::instances`]).
    pub fn new(
        policies: Arc<ArcSwap<PolicySet>>,
        context: Arc<dyn ClusterContext>,
        metrics: Arc<Metrics>,
        slots: u32,
    ) -> Self {
        Self {
            queue: Queue::new(slots, metrics.clone()),
            policies,
            context,
            metrics,
            cutoff: Cutoff::default(),
        }
    }

    /// Answers reviews still in progress at `cutoff` (shutdown) at once.
    pub fn with_cutoff(mut self, cutoff: Cutoff) -> Self {
        self.cutoff = cutoff;
        self
    }

    /// At most `reviews` wait for an evaluation slot; more get their
    /// failure verdicts at once.
    pub fn with_max_queued(mut self, reviews: u32) -> Self {
        self.queue = self.queue.with_max_waiting(reviews);
        self
    }

    /// Whether reviews can be judged with full information: the cluster
    /// context has synced. (Policies are compiled before the server starts.)
    pub fn is_ready(&self) -> bool {
        self.context.is_ready()
    }

    /// The caches too stale to serve, and why (their lookups fail).
    pub fn stale_context(&self) -> Vec<String> {
        self.context.stale()
    }

    /// Answers the review in `body` no later than `deadline`.
    pub async fn review(
        &self,
        endpoint: Endpoint,
        deadline: tokio::time::Instant,
        body: Bytes,
    ) -> Reply {
        let started = Instant::now();
        let body = match ReviewBody::try_new(body, |b| Review::parse(b)) {
            Ok(body) => body,
            Err(error) => return self.not_a_review(endpoint, &error),
        };
        let review = match body.borrow_dependent() {
            Parsed::Review(review) => review,
            Parsed::InvalidRequest {
                api_version,
                uid,
                error,
            } => {
                self.metrics.invalid(endpoint);
                let message = format!("tollgate: invalid admission request: {error}");
                tracing::warn!(%uid, endpoint = endpoint.as_str(), %error, "denied a malformed admission request");
                return Reply::Review(response::invalid(api_version, uid, &message));
            }
        };
        let set = self.policies.load_full();
        let judgement = set.start(endpoint, review);
        if judgement.is_empty() {
            self.metrics.answered(endpoint, false, started.elapsed());
            tracing::debug!(uid = %review.uid, endpoint = endpoint.as_str(), "no policy matched");
            let decision = Decision::default();
            return Reply::Review(response::decision(
                review.api_version,
                &review.uid,
                &decision,
            ));
        }
        let (api_version, uid) = (review.api_version, review.uid.to_string());
        let job = Job {
            set: set.clone(),
            body,
            endpoint,
            deadline,
            context: self.context.clone(),
        };
        let decision = deadline::judge(judgement, job, &self.queue, &self.cutoff).await;
        for outcome in &decision.outcomes {
            self.record(endpoint, &uid, &set, outcome);
        }
        self.metrics.answered(endpoint, true, started.elapsed());
        tracing::debug!(%uid, endpoint = endpoint.as_str(), allowed = decision.allowed(), "answered review");
        Reply::Review(response::decision(api_version, &uid, &decision))
    }

    fn not_a_review(&self, endpoint: Endpoint, error: &ReviewError) -> Reply {
        self.metrics.invalid(endpoint);
        tracing::warn!(endpoint = endpoint.as_str(), %error, "refused a request that is not an AdmissionReview");
        Reply::BadRequest(one_line(&error.to_string()))
    }

    /// Logs and counts one policy's outcome: the one instrumentation path.
    fn record(&self, endpoint: Endpoint, uid: &str, set: &PolicySet, outcome: &Outcome) {
        let policy = &set.policies()[outcome.policy];
        let verdict = outcome.effect.label();
        self.metrics.evaluated(
            endpoint,
            &policy.id,
            policy.mode,
            verdict,
            outcome.failure(),
            outcome.elapsed,
        );
        let elapsed_us = outcome.elapsed.as_micros() as u64;
        let (endpoint, mode) = (endpoint.as_str(), mode_label(policy.mode));
        let reason = outcome.reason();
        let patch_ops = match &outcome.effect {
            Effect::Patch(ops) => Some(ops.len()),
            _ => None,
        };
        let policy = policy.id.as_str();
        // One event shape for every verdict; allows are routine, so debug.
        macro_rules! evaluated {
            ($level:ident) => {
                tracing::$level!(
                    uid,
                    policy,
                    verdict,
                    mode,
                    endpoint,
                    elapsed_us,
                    reason,
                    patch_ops,
                    "policy evaluated"
                )
            };
        }
        if matches!(outcome.effect, Effect::Allow) {
            evaluated!(debug);
        } else {
            evaluated!(info);
        }
    }
}

/// Control characters (a newline in a quoted value) would break the
/// one-line reason.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
