//! A manifest replayed as `kubectl apply -f` applies it (SPEC §5): object
//! after object, each judged against the cluster with the earlier ones
//! stored — as the `oldObject` of a later UPDATE (an object given twice is
//! an UPDATE the second time), in what the policies' lookups read
//! ([`OverlayContext`]), and as the CRD that serves later custom resources
//! ([`Crds`]). What is stored is what the API server would store: the
//! object after the mutating policies' patch; nothing when it was denied
//! (kubectl reports the error and goes on with the next object).
//!
//! A warning that a later object of the same input resolves (the version
//! skew between a `calico.yaml`'s DaemonSet and its Deployment) is
//! transient: kubectl prints it on the way, but the cluster ends up fine.
//! Each object that was warned is judged again, by the same review,
//! against the cluster with every object of the input applied; a warning
//! its policy no longer gives there was transient. Denials never are: the
//! object was not stored.

use std::sync::Arc;

use serde_json::Value;
use tollgate_context::{ClusterContext, OverlayContext};
use tollgate_host::PolicySet;

use crate::chain::{Chain, ChainError, Finding, Judged, findings};
use crate::crd::Crds;
use crate::manifest::Manifest;
use crate::review;
use crate::store::Objects;

/// One object of the input, judged in its turn.
#[derive(Debug)]
pub struct Replayed<'m> {
    pub manifest: &'m Manifest,
    /// The AdmissionReview it was judged by.
    pub review: Value,
    pub judged: Judged,
    pub findings: Vec<Finding>,
    /// Per finding: whether a later object of the input resolves it.
    pub transient: Vec<bool>,
}

impl Replayed<'_> {
    /// `CREATE` or `UPDATE`.
    pub fn operation(&self) -> &str {
        self.review["request"]["operation"]
            .as_str()
            .unwrap_or_default()
    }

    /// The findings that count toward the result: all but the transient.
    pub fn counted(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .zip(&self.transient)
            .filter_map(|(f, t)| (!t).then_some(f))
    }
}

/// A review the chain could not judge, and the object it was made of.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {source}")]
pub struct ReplayError {
    pub origin: String,
    pub source: ChainError,
}

/// Replays `manifests` over the cluster of `stored` objects and `context`,
/// each review judged by `policies` within `timeout` per endpoint.
pub fn replay<'m>(
    policies: &PolicySet,
    timeout: std::time::Duration,
    context: &Arc<dyn ClusterContext>,
    stored: &Objects,
    manifests: &'m [Manifest],
) -> Result<Vec<Replayed<'m>>, ReplayError> {
    let mut cluster = Cluster {
        objects: stored.clone(),
        crds: Crds::new(stored.iter()),
        overlay: Arc::new(OverlayContext::new(context.clone())),
    };
    let judge = |overlay: &Arc<OverlayContext>, manifest: &Manifest, review: &Value| {
        let context: Arc<dyn ClusterContext> = overlay.clone();
        let chain = Chain {
            policies,
            context: &context,
            timeout,
        };
        chain.judge(review).map_err(|source| ReplayError {
            origin: manifest.origin.to_string(),
            source,
        })
    };
    let mut out = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        // Found where the API server will store it (a CR of a namespaced
        // CRD without a namespace is in `default`).
        let arriving = review::arriving(&manifest.object, &cluster.crds);
        let existing = cluster.objects.get(&arriving);
        let review = review::apply_with(&arriving, existing, &cluster.crds);
        let judged = judge(&cluster.overlay, manifest, &review)?;
        if judged.allowed() {
            let object = judged
                .patched
                .clone()
                .unwrap_or_else(|| review["request"]["object"].clone());
            cluster.store(object);
        }
        let findings = findings(policies, &judged);
        out.push(Replayed {
            manifest,
            transient: vec![false; findings.len()],
            review,
            judged,
            findings,
        });
    }
    for replayed in out.iter_mut().filter(|r| r.findings.iter().any(warning)) {
        let again = judge(&cluster.overlay, replayed.manifest, &replayed.review)?;
        let remaining = findings(policies, &again);
        replayed.transient = transient(&replayed.findings, &remaining);
    }
    Ok(out)
}

/// The cluster as the replay has left it so far.
struct Cluster {
    objects: Objects,
    crds: Crds,
    overlay: Arc<OverlayContext>,
}

impl Cluster {
    fn store(&mut self, object: Value) {
        self.crds.insert(&object);
        self.objects.insert(object.clone());
        self.overlay.apply(object);
    }
}

/// A warning, the only finding a later object can resolve.
fn warning(finding: &Finding) -> bool {
    finding.verdict == "warn"
}

/// Which of `first` (the findings in the object's turn) are transient,
/// given `last` (those of the same review against the final cluster): a
/// warning whose policy gives no warning at that stage any more. Matched by
/// policy and stage, not message, since a skew's message names what it
/// found and may change while the problem stays.
pub fn transient(first: &[Finding], last: &[Finding]) -> Vec<bool> {
    first
        .iter()
        .map(|f| {
            warning(f)
                && !last
                    .iter()
                    .any(|l| warning(l) && l.policy == f.policy && l.endpoint == f.endpoint)
        })
        .collect()
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
