//! "Upgrade to Calico X" (SPEC §5): an UPDATE of the operator Deployment
//! whose image ships X, or of the kube-system calico-node DaemonSet whose
//! calico/node image is X, where the old object ran a release below X.
//!
//! An old object whose release is unknown (an operator tag outside the
//! table, a calico/node tag that is not a version) may have run anything
//! below X, so it counts as an upgrade with `from: None`: the rules built
//! on this fail safe. A new object whose release is unknown is no upgrade
//! to a known X, so it is none.

use tollgate_sdk::Request;
use tollgate_sdk::version::Version;

use crate::identify::Identity;
use crate::operator::OperatorIdentity;
use crate::writes::updated;

/// How the new release arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An UPDATE of the `tigera-operator` Deployment.
    Operator,
    /// An UPDATE of the kube-system calico-node DaemonSet (`calico.yaml`).
    Manifest,
}

/// One upgrade: the release the old object ran (`None` when unknown,
/// e.g. an operator tag outside the table) and the release the new one runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub from: Option<Version>,
    pub to: Version,
    pub via: Via,
}

/// The upgrade `req` performs, if it is one, with the operator named as the
/// published `tigera-operator.yaml` names it.
pub fn upgrade_of(req: &Request<'_>, identity: &Identity) -> Option<Upgrade> {
    upgrade_with(req, identity, &OperatorIdentity::default())
}

/// [`upgrade_of`] for an operator named by the rule's settings.
pub fn upgrade_with(
    req: &Request<'_>,
    identity: &Identity,
    operator: &OperatorIdentity,
) -> Option<Upgrade> {
    let (old, new) = updated(req)?;
    let (from, to, via) = if operator.is_deployment(new) {
        (
            operator.release_of(old),
            operator.release_of(new)?,
            Via::Operator,
        )
    } else if identity.is_node_ds(new) && new.namespace() == Some(identity.namespace.as_str()) {
        (
            identity.node_release(old),
            identity.node_release(new)?,
            Via::Manifest,
        )
    } else {
        return None;
    };
    from.as_ref()
        .is_none_or(|f| *f < to)
        .then_some(Upgrade { from, to, via })
}
