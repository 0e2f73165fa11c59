//! The rotation protocol: from what the Secret holds, what the webhook
//! configurations carry and the time, the one next write to the Secret.
//!
//! Every replica runs the same plan on a fresh read and writes with the
//! read `resourceVersion`; a conflict means someone else moved first, so the
//! loser reads again and plans again. Steps never undo each other, so the
//! replicas converge on one Secret.
//!
//! A CA rotation never leaves a moment where the API server's bundle does
//! not verify the served certificate:
//! 1. [`Step::StageCa`]: a new CA joins the bundle next to the old one and
//!    becomes the signer; the old serving certificate keeps serving.
//! 2. Replicas write the two-CA bundle into the webhook configurations.
//! 3. [`Step::IssueLeaf`] ("switch to the new CA"): once the configurations
//!    have carried the new CA for `wait`, a serving certificate from it.
//! 4. [`Step::DropOldCas`]: `wait` after that certificate was issued (every
//!    replica follows the Secret's watch within seconds), the old CA leaves
//!    the bundle.
//!
//! A serving certificate renewed under the same CA needs no bundle change.

use std::time::{Duration, SystemTime};

use super::issue::{Authority, Lifetime};
use super::material::{Leaf, Material, Rotate, Signer};

/// What the plan is given besides the Secret.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The names the serving certificate must carry.
    pub names: Vec<String>,
    pub ca_validity: Duration,
    pub leaf_validity: Duration,
    /// How long a new bundle must have been in the webhook configurations
    /// before the serving certificate switches CA, and how long a switched
    /// certificate must have been in the Secret before the old CA goes.
    pub wait: Duration,
}

/// The next write to the Secret, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new CA and serving certificate: there is nothing worth keeping.
    Fresh { why: &'static str },
    /// Add a new CA to the bundle and sign with it from now on; the current
    /// serving certificate stays.
    StageCa { why: &'static str },
    /// A new serving certificate from the signer.
    IssueLeaf {
        names: Vec<String>,
        why: &'static str,
    },
    /// Leave only the signer in the bundle.
    DropOldCas,
    /// Nothing to write until `at` (or until something changes).
    Idle {
        at: Option<SystemTime>,
        waiting_for: Option<&'static str>,
    },
}

/// `covered_since`: since when (as this replica saw it) every existing
/// webhook configuration carries the signer CA in every webhook; `None`
/// when one does not.
pub fn plan(
    material: Option<&Material>,
    policy: &Policy,
    now: SystemTime,
    covered_since: Option<SystemTime>,
) -> Step {
    let Some(material) = material else {
        return Step::Fresh { why: "no Secret" };
    };
    let signer = material.signer.as_ref().filter(|s| s.cert.valid_at(now));
    let leaf = material
        .leaf
        .as_ref()
        .filter(|l| l.cert.valid_at(now) && material.trusts(&l.cert));
    let (signer, leaf) = match (signer, leaf) {
        (None, None) => {
            return Step::Fresh {
                why: "neither a usable CA nor a usable serving certificate",
            };
        }
        (None, Some(_)) => {
            return Step::StageCa {
                why: "no usable CA key",
            };
        }
        (Some(_), None) => {
            return Step::IssueLeaf {
                names: wanted(policy, None),
                why: "the serving certificate is missing, expired or not from the bundle",
            };
        }
        (Some(signer), Some(leaf)) => (signer, leaf),
    };
    if !leaf.cert.signed_by(&signer.cert) {
        return match covered_since {
            Some(since) if now >= since + policy.wait => Step::IssueLeaf {
                names: wanted(policy, Some(leaf)),
                why: "switch to the new CA",
            },
            Some(since) => Step::Idle {
                at: Some(since + policy.wait),
                waiting_for: Some("the new CA to settle in the webhook configurations"),
            },
            None => Step::Idle {
                at: None,
                waiting_for: Some("the webhook configurations to carry the new CA"),
            },
        };
    }
    if material.rotate == Some(Rotate::Ca) {
        return Step::StageCa {
            why: "rotation requested",
        };
    }
    if now >= signer.cert.renew_at() {
        return Step::StageCa {
            why: "the CA is due for renewal",
        };
    }
    if material.rotate == Some(Rotate::Cert) {
        return Step::IssueLeaf {
            names: policy.names.clone(),
            why: "rotation requested",
        };
    }
    if !leaf.cert.covers(policy.names.iter()) {
        return Step::IssueLeaf {
            names: wanted(policy, Some(leaf)),
            why: "names missing from the serving certificate",
        };
    }
    if now >= leaf.cert.renew_at() {
        return Step::IssueLeaf {
            names: wanted(policy, Some(leaf)),
            why: "the serving certificate is due for renewal",
        };
    }
    let mut next = signer.cert.renew_at().min(leaf.cert.renew_at());
    if material.bundle.iter().any(|ca| ca != &signer.cert) {
        // Certificate times are whole seconds: round the issue time up.
        let drop_at = leaf.cert.issued() + policy.wait + Duration::from_secs(1);
        if now >= drop_at {
            return Step::DropOldCas;
        }
        next = next.min(drop_at);
    }
    Step::Idle {
        at: Some(next),
        waiting_for: None,
    }
}

/// The configured names, then any others the current certificate carries:
/// replicas configured with different extra names converge on their union
/// instead of taking turns.
fn wanted(policy: &Policy, leaf: Option<&Leaf>) -> Vec<String> {
    let mut names = policy.names.clone();
    for name in leaf.iter().flat_map(|l| &l.cert.names) {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.clone());
        }
    }
    names
}

/// What the Secret holds after `step`. `newest_generation` is the highest
/// bundle generation seen anywhere (Secret or webhook configurations): a
/// changed bundle gets a higher one.
pub fn apply(
    step: &Step,
    material: Option<&Material>,
    policy: &Policy,
    now: SystemTime,
    newest_generation: u64,
) -> Result<Material, rcgen::Error> {
    let mut next = material.cloned().unwrap_or_default();
    next.problems.clear();
    let generation = newest_generation.max(next.generation) + 1;
    let new_ca = || -> Result<(Authority, Signer), rcgen::Error> {
        let name = format!(
            "tollgate-ca@{}",
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        );
        let ca = Authority::generate(&name, Lifetime::starting(now, policy.ca_validity))?;
        let cert = super::inspect::Cert::parse_first(ca.cert_pem().as_bytes())
            .expect("rcgen writes a readable certificate");
        let signer = Signer {
            cert,
            key_pem: ca.key_pem().to_owned(),
        };
        Ok((ca, signer))
    };
    match step {
        Step::Fresh { .. } => {
            let (ca, signer) = new_ca()?;
            next.bundle = vec![signer.cert.clone()];
            next.leaf = Some(leaf(&ca, &policy.names, policy, now)?);
            next.signer = Some(signer);
            next.generation = generation;
            next.rotate = None;
        }
        Step::StageCa { .. } => {
            let (_, signer) = new_ca()?;
            // Expired CAs verify nothing; they go now.
            next.bundle.retain(|ca| ca.valid_at(now));
            next.bundle.push(signer.cert.clone());
            next.signer = Some(signer);
            next.generation = generation;
            if next.rotate == Some(Rotate::Ca) {
                next.rotate = None;
            }
        }
        Step::IssueLeaf { names, .. } => {
            let signer = next.signer.as_ref().expect("planned with a signer");
            let ca = Authority::from_parts(&signer.cert, &signer.key_pem)?;
            next.leaf = Some(leaf(&ca, names, policy, now)?);
            if next.rotate == Some(Rotate::Cert) {
                next.rotate = None;
            }
        }
        Step::DropOldCas => {
            let signer = next.signer.as_ref().expect("planned with a signer");
            next.bundle = vec![signer.cert.clone()];
            next.generation = generation;
        }
        Step::Idle { .. } => {}
    }
    Ok(next)
}

fn leaf(
    ca: &Authority,
    names: &[String],
    policy: &Policy,
    now: SystemTime,
) -> Result<Leaf, rcgen::Error> {
    let issued = ca.issue(names, Lifetime::starting(now, policy.leaf_validity))?;
    let cert = super::inspect::Cert::parse_first(issued.cert_pem.as_bytes())
        .expect("rcgen writes a readable certificate");
    Ok(Leaf {
        cert,
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    })
}

#[cfg(test)]
mod tests;
