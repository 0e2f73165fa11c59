//! The admission chain the API server runs on one review, over the host's
//! judgement API (the same [`PolicySet::judge`] `serve` answers with): the
//! `/mutate` policies first; when they deny, the request stops there; their
//! patch is applied; then the `/validate` policies judge the patched object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_context::ClusterContext;
use tollgate_host::{Decision, Effect, Endpoint, Parsed, PolicySet, Review};

/// What judges reviews: a policy set, the cluster its lookups read, and the
/// budget of one review per endpoint (the webhook's timeout).
pub struct Chain<'a> {
    pub policies: &'a PolicySet,
    pub context: &'a Arc<dyn ClusterContext>,
    pub timeout: Duration,
}

/// One review through the chain.
#[derive(Debug)]
pub struct Judged {
    pub mutate: Decision,
    /// `None` when `/mutate` denied (the API server never validates then).
    pub validate: Option<Decision>,
    /// The object after the mutating policies' patch, when there was one.
    pub patched: Option<Value>,
}

impl Judged {
    /// Whether the API server would admit the request.
    pub fn allowed(&self) -> bool {
        self.mutate.allowed() && self.validate.as_ref().is_some_and(Decision::allowed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("not an AdmissionReview the host accepts: {0}")]
    Review(String),
    #[error("the mutating policies' patch does not apply: {0}")]
    Patch(String),
}

impl Chain<'_> {
    /// Judges `review` (an AdmissionReview) as the API server's admission
    /// chain would.
    pub fn judge(&self, review: &Value) -> Result<Judged, ChainError> {
        let mutate = self.endpoint(review, Endpoint::Mutate)?;
        if !mutate.allowed() {
            return Ok(Judged {
                mutate,
                validate: None,
                patched: None,
            });
        }
        let mut patched = None;
        let validated = match mutate.patch() {
            None => self.endpoint(review, Endpoint::Validate)?,
            Some(ops) => {
                let mut object = review["request"]["object"].clone();
                let ops: json_patch::Patch = serde_json::to_value(ops)
                    .and_then(serde_json::from_value)
                    .map_err(|e| ChainError::Patch(e.to_string()))?;
                // On a copy: patch_unsafe, since json_patch::patch can panic undoing a failure.
                json_patch::patch_unsafe(&mut object, &ops)
                    .map_err(|e| ChainError::Patch(e.to_string()))?;
                let mut next = review.clone();
                next["request"]["object"] = object.clone();
                patched = Some(object);
                self.endpoint(&next, Endpoint::Validate)?
            }
        };
        Ok(Judged {
            mutate,
            validate: Some(validated),
            patched,
        })
    }

    fn endpoint(&self, review: &Value, endpoint: Endpoint) -> Result<Decision, ChainError> {
        let body = review.to_string();
        let review = match Review::parse(body.as_bytes()) {
            Ok(Parsed::Review(review)) => review,
            Ok(Parsed::InvalidRequest { error, .. }) => {
                return Err(ChainError::Review(error.to_string()));
            }
            Err(error) => return Err(ChainError::Review(error.to_string())),
        };
        let deadline = Instant::now() + self.timeout;
        Ok(self
            .policies
            .judge(&review, endpoint, deadline, self.context))
    }
}

/// One policy's result on one endpoint that was not a plain allow: what
/// `check`, `audit` and `test` print.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub policy: String,
    pub endpoint: &'static str,
    /// `deny`, `patch`, `warn`, `audit`, `failure` (failed closed) or
    /// `failure-ignored` (failed open).
    pub verdict: &'static str,
    pub message: String,
    /// The JSON patch of a repair.
    pub patch: Option<Value>,
}

/// Every finding of `judged`, mutate then validate, in configuration order.
pub fn findings(policies: &PolicySet, judged: &Judged) -> Vec<Finding> {
    let mut out = Vec::new();
    let stages = [
        (Endpoint::Mutate, Some(&judged.mutate)),
        (Endpoint::Validate, judged.validate.as_ref()),
    ];
    for (endpoint, decision) in stages {
        let Some(decision) = decision else { continue };
        for outcome in &decision.outcomes {
            let policy = policies.policies()[outcome.policy].id.clone();
            let finding = |verdict, message: &str, patch| Finding {
                policy: policy.clone(),
                endpoint: endpoint.as_str(),
                verdict,
                message: message.to_owned(),
                patch,
            };
            match &outcome.effect {
                Effect::Allow => {}
                Effect::Deny(m) => out.push(finding("deny", m, None)),
                Effect::Warn(m) => out.push(finding("warn", m, None)),
                Effect::Audit(m) => out.push(finding("audit", m, None)),
                Effect::Patch(ops) => {
                    let patch = serde_json::to_value(ops).unwrap_or_else(|_| json!([]));
                    out.push(finding("patch", "repaired", Some(patch)));
                }
                Effect::Failure { message, deny, .. } => {
                    let verdict = if *deny { "failure" } else { "failure-ignored" };
                    out.push(finding(verdict, message, None));
                }
            }
            for advice in &outcome.advice {
                out.push(finding("warn", advice, None));
            }
        }
    }
    out
}
