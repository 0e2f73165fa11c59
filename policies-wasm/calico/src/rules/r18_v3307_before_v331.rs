//! R18 v3.30.7-before-v3.31: an upgrade from Calico v3.30.0–v3.30.6 to
//! v3.31 or later on the eBPF data plane with VXLAN. From the 3.30.7
//! release notes (`testdata/modern/docs/version-3.30/release-notes/index.mdx`):
//!
//! > ebpf: Fixed issue where VXLAN traffic was dropped on nodes still running
//! > Calico 3.30 during a rolling upgrade to 3.31. […] Upgrading to this 3.30
//! > patch release before upgrading to 3.31 resolves the issue.
//!
//! The note is an eBPF fix for VXLAN traffic, so eBPF with VXLAN is denied.
//! An eBPF cluster without a VXLAN pool only gets a warning (SPEC §5: the
//! note does not say whether other encapsulations are affected). eBPF and
//! VXLAN are as [`crate::dataplane`] reads them; the calico-node DaemonSet
//! of a manifest upgrade stands for its env (`FELIX_BPFENABLED`,
//! `CALICO_IPV4POOL_VXLAN` while no pool exists yet).
//!
//! An upgrade whose old release is unknown (an operator tag outside the
//! table) gets no verdict: the rule never guesses a release. Lookups decide
//! a deny, so a failed read fails closed.

use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Request, Verdict};

use super::IdentitySettings;
use crate::dataplane;
use crate::lookup;
use crate::text::{WARNING_MAX, clip};
use crate::upgrade::{Via, upgrade_of};

/// The first release with the fix, and the release line it is needed for.
const FIXED: (u64, u64, u64) = (3, 30, 7);
const BROKEN_FROM: (u64, u64, u64) = (3, 30, 0);
const TARGET: (u64, u64, u64) = (3, 31, 0);

pub fn v3307_before_v331(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| {
        lookup::failed(
            "the data plane (Installation, FelixConfiguration, IPPools)",
            &e,
        )
    })
}

fn check(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some(up) = upgrade_of(req, &s.identity) else {
        return Ok(Verdict::allow());
    };
    let Some(from) = up.from.as_ref().filter(|f| needs_fix(f, &up.to)) else {
        return Ok(Verdict::allow());
    };
    let workloads: Vec<_> = match up.via {
        Via::Manifest => req.old_object.iter().chain(req.object.iter()).collect(),
        Via::Operator => Vec::new(),
    };
    let plane = dataplane::read(cluster, &s.identity, &workloads)?;
    let Some(ebpf) = plane.ebpf else {
        return Ok(Verdict::allow());
    };
    let fixed = Version::new(FIXED.0, FIXED.1, FIXED.2);
    let step = match up.via {
        Via::Manifest => format!(
            "kubectl apply --server-side --force-conflicts -f https://raw.githubusercontent.com/projectcalico/calico/{fixed}/manifests/calico-bpf.yaml \
             (or the {fixed} variant of the manifest you installed)"
        ),
        Via::Operator => format!(
            "kubectl apply --server-side --force-conflicts -f https://raw.githubusercontent.com/projectcalico/calico/{fixed}/manifests/tigera-operator.yaml"
        ),
    };
    Ok(match plane.vxlan {
        Some(vxlan) => Verdict::deny(format!(
            "Upgrading Calico {from} to {} on eBPF ({ebpf}) with VXLAN ({vxlan}) drops VXLAN traffic on nodes still on 3.30 during the rollout \
             (3.30.7 release notes). Upgrade to {fixed} first: {step}",
            up.to
        )),
        None => Verdict::warn(clip(
            format!(
                "Calico {from} to {} on eBPF: 3.30.7 fixes VXLAN traffic drops during a rolling upgrade to 3.31; no VXLAN pool found, but upgrading to {fixed} first is safer.",
                up.to
            ),
            WARNING_MAX,
        )),
    })
}

/// `from` is v3.30.0–v3.30.6 and `to` is v3.31.0 or later (pre-releases
/// count as their release).
fn needs_fix(from: &Version, to: &Version) -> bool {
    let v = |(a, b, c): (u64, u64, u64)| Version::new(a, b, c);
    let from = from.core();
    from >= v(BROKEN_FROM) && from < v(FIXED) && to.core() >= v(TARGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("a version")
    }

    #[test]
    fn only_v3_30_0_to_v3_30_6_into_v3_31_needs_the_fix() {
        assert!(needs_fix(&v("v3.30.6"), &v("v3.31.0")));
        assert!(needs_fix(&v("v3.30.0"), &v("v3.32.1")));
        assert!(needs_fix(&v("v3.30.6"), &v("v3.31.0-rc1")));
        assert!(!needs_fix(&v("v3.30.7"), &v("v3.31.0")));
        assert!(!needs_fix(&v("v3.29.0"), &v("v3.31.0")));
        assert!(!needs_fix(&v("v3.30.0"), &v("v3.30.6")));
    }
}
