//! The admission service shared by `/validate` and `/mutate`.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use tollgate_context::ClusterContext;
use tollgate_host::{Endpoint, Policy, PolicySet};
use tollgate_sdk::Operation;

use super::decide::{DENIED, Decision, Judgement};
use super::evaluate::{self, Finished, Job};
use super::response::Answer;
use super::review::{Parsed, Review};
use crate::metrics::{Metrics, mode_label};

/// Judges reviews with the policy set currently serving.
pub struct Admission {
    policies: Arc<ArcSwap<PolicySet>>,
    context: Arc<dyn ClusterContext>,
    metrics: Arc<Metrics>,
}

/// What the HTTP layer sends back.
#[derive(Debug)]
pub enum Reply {
    /// An AdmissionReview (HTTP 200, JSON).
    Review(Vec<u8>),
    /// Not an AdmissionReview at all: HTTP 400 with a one-line reason.
    BadRequest(String),
}

/// The code in the answer to a review whose request fields are unusable.
const INVALID_REQUEST: u16 = 400;

impl Admission {
    pub fn new(
        policies: Arc<ArcSwap<PolicySet>>,
        context: Arc<dyn ClusterContext>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            policies,
            context,
            metrics,
        }
    }

    /// Whether reviews can be judged with full information: the cluster
    /// context has synced. (Policies are compiled before the server starts.)
    pub fn is_ready(&self) -> bool {
        self.context.is_ready()
    }

    /// Answers the review in `body` no later than `deadline`.
    pub async fn review(
        &self,
        endpoint: Endpoint,
        deadline: tokio::time::Instant,
        body: Bytes,
    ) -> Reply {
        let started = Instant::now();
        let review = match Review::parse(&body) {
            Ok(Parsed::Review(review)) => review,
            Ok(Parsed::InvalidRequest {
                api_version,
                uid,
                error,
            }) => {
                self.metrics.invalid(endpoint);
                let message = format!("tollgate: invalid admission request: {error}");
                tracing::warn!(%uid, endpoint = endpoint.as_str(), %error, "denied a malformed admission request");
                let answer = Answer {
                    denial: Some((INVALID_REQUEST, &message)),
                    ..Answer::default()
                };
                return Reply::Review(answer.to_json(api_version, &uid));
            }
            Err(error) => {
                self.metrics.invalid(endpoint);
                tracing::warn!(endpoint = endpoint.as_str(), %error, "refused a request that is not an AdmissionReview");
                return Reply::BadRequest(one_line(&error.to_string()));
            }
        };

        let set = self.policies.load();
        let meta = review.meta();
        let selected: Vec<usize> = (0..set.policies().len())
            .filter(|&i| set.policies()[i].selects(endpoint, &meta))
            .collect();
        if selected.is_empty() {
            self.metrics.answered(endpoint, false, started.elapsed());
            tracing::debug!(uid = %review.uid, endpoint = endpoint.as_str(), "no policy matched");
            return Reply::Review(Answer::default().to_json(review.api_version, &review.uid));
        }

        let set = Guard::into_inner(set);
        let job = Job {
            set: set.clone(),
            selected,
            body: body.clone(),
            may_patch: endpoint == Endpoint::Mutate && review.operation() != Operation::Delete,
            deadline,
            context: self.context.clone(),
        };
        let mut decision = Decision::default();
        for finished in evaluate::run(job).await {
            let policy = &set.policies()[finished.index];
            self.record(endpoint, &review.uid, policy, &finished);
            decision.add(finished.outcome);
        }
        let denial = decision.denial();
        let answer = Answer {
            denial: denial.as_deref().map(|message| (DENIED, message)),
            warnings: &decision.warnings,
            patch: decision.patch(),
        };
        self.metrics.answered(endpoint, true, started.elapsed());
        tracing::debug!(uid = %review.uid, endpoint = endpoint.as_str(), allowed = denial.is_none(), "answered review");
        Reply::Review(answer.to_json(review.api_version, &review.uid))
    }

    /// Logs and counts one policy's result: the one instrumentation path.
    fn record(&self, endpoint: Endpoint, uid: &str, policy: &Policy, finished: &Finished) {
        let judgement = &finished.outcome.judgement;
        let verdict = judgement.label();
        let cause = match judgement {
            Judgement::Failure { cause, .. } => Some(*cause),
            _ => None,
        };
        self.metrics.evaluated(
            endpoint,
            &policy.id,
            policy.mode,
            verdict,
            cause,
            finished.elapsed,
        );
        let elapsed_us = finished.elapsed.as_micros() as u64;
        let (endpoint, mode) = (endpoint.as_str(), mode_label(policy.mode));
        let policy = policy.id.as_str();
        let (reason, patch_ops) = match judgement {
            Judgement::Allow => (None, None),
            Judgement::Patch(ops) => (None, Some(ops.len())),
            Judgement::Deny(message)
            | Judgement::Warn(message)
            | Judgement::Audit(message)
            | Judgement::Failure { message, .. } => (Some(message.as_str()), None),
        };
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
        if matches!(judgement, Judgement::Allow) {
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
