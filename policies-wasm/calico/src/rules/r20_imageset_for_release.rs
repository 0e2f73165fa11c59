//! R20 imageset-for-release: a cluster that pins Calico's images with an
//! ImageSet needs one for the release the new operator ships.
//! `operations/image-options/imageset.mdx` (v3.29–v3.32):
//!
//! > Before upgrading to a new release or downgrading, you must create a new
//! > ImageSet with updated image references and names for the new release.
//! > This must be done prior to upgrading the cluster …
//!
//! The operator looks for `calico-<release>` (`imageset.go` of
//! tigera/operator; the page: "Set the name for your ImageSet to
//! `calico-<version>`"). The sentence covers downgrades too, so any change
//! of the operator's release is checked; an operator tag outside the table
//! ships an unknown release and is let through. A failed lookup denies.

use tollgate_sdk::{Cluster, Request, Verdict};

use super::updated;
use crate::lookup;
use crate::operator::{OPERATOR_API, OperatorSettings};
use crate::text::list;

/// The prefix of the operator's Calico ImageSets.
pub const PREFIX: &str = "calico-";

pub fn imageset_for_release(
    req: &Request<'_>,
    s: &OperatorSettings,
    cluster: &dyn Cluster,
) -> Verdict {
    let Some((old, new)) = updated(req) else {
        return Verdict::allow();
    };
    if !s.operator.is_deployment(new) {
        return Verdict::allow();
    }
    let Some(to) = s.operator.release_of(new) else {
        return Verdict::allow();
    };
    if s.operator.release_of(old).as_ref() == Some(&to) {
        return Verdict::allow();
    }
    let names = match cluster
        .list(OPERATOR_API, "ImageSet", None)
        .and_then(|found| {
            Ok(found
                .parse()?
                .iter()
                .map(|o| o.name().to_owned())
                .collect::<Vec<_>>())
        }) {
        Ok(names) => names,
        Err(e) => return lookup::failed("operator.tigera.io/v1 ImageSet", &e),
    };
    let wanted = format!("{PREFIX}{to}");
    let calico: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    if calico.is_empty() || calico.contains(&wanted) {
        return Verdict::allow();
    }
    Verdict::deny(format!(
        "no ImageSet {wanted}: the cluster pins Calico's images with ImageSet {} and the operator \
         of Calico {to} will not run without one for its release. Create ImageSet {wanted} before \
         changing the operator (\"you must create a new ImageSet … prior to upgrading\")",
        list(&calico, 3)
    ))
}
