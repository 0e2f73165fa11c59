//! R17 anp-before-v3.32: Calico v3.32 drops AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy. From the 3.32 release notes
//! (`testdata/modern/docs/version-3.32/release-notes/index.mdx`):
//!
//! > Removing AdminNetworkPolicy and BaselineAdminNetworkPolicy API support in
//! > favor of ClusterNetworkPolicy. These resources must be removed or
//! > replaced by ClusterNetworkPolicy before upgrade, since Calico v3.32 and
//! > newer won't enforce them. Static tiers named adminnetworkpolicy and
//! > baselineadminnetworkpolicy are removed.
//!
//! > The Tier allow-tigera has been renamed to calico-system. […] if you have
//! > created custom Network Policies within this Tier, you must manually
//! > update your resources to reference the new Tier name.
//!
//! So an upgrade to v3.32 or later ([`crate::upgrade`]) is denied while any
//! ANP or BANP exists, or a Calico (Global)NetworkPolicy sits in one of the
//! removed tiers; and creating an ANP/BANP once the cluster runs v3.32 is
//! denied (it would not be enforced). Policies in `allow-tigera` get a
//! warning on the upgrade, and only those the operator does not own (an
//! ownerReference to an `operator.tigera.io` object): the operator moves
//! its own, and the note's "must" is about policies users created there.
//!
//! The running release (for a new ANP) is calico-node's in `kube-system`,
//! else in `calico-system`: during an operator upgrade to v3.32 that is the
//! old release until the operator rolls calico-node, which is when the ANP
//! would stop being enforced.
//!
//! Lookups decide a deny, so a failed read fails closed.

use serde::Deserialize;
use serde_json::Value;
use tollgate_sdk::version::Version;
use tollgate_sdk::{Cluster, LookupError, Operation, Request, Verdict};

use super::IdentitySettings;
use crate::dataplane::CALICO_API_VERSIONS;
use crate::lookup;
use crate::text::{WARNING_MAX, clip, list};
use crate::upgrade::upgrade_of;
use crate::versions::crosses;

const ANP_API: &str = "policy.networking.k8s.io/v1alpha1";
const ANP_KINDS: [&str; 2] = ["AdminNetworkPolicy", "BaselineAdminNetworkPolicy"];
const REMOVED_TIERS: [&str; 2] = ["adminnetworkpolicy", "baselineadminnetworkpolicy"];
const RENAMED_TIER: &str = "allow-tigera";
const CALICO_POLICY_KINDS: [&str; 2] = ["NetworkPolicy", "GlobalNetworkPolicy"];

fn boundary() -> Version {
    Version::new(3, 32, 0)
}

pub fn anp_before_v332(req: &Request<'_>, s: &IdentitySettings, cluster: &dyn Cluster) -> Verdict {
    check(req, s, cluster).unwrap_or_else(|e| {
        lookup::failed("the AdminNetworkPolicies and tiered Calico policies", &e)
    })
}

fn check(
    req: &Request<'_>,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    if let Some(kind) = created_anp(req) {
        return created_on_v332(req, kind, s, cluster);
    }
    let Some(up) = upgrade_of(req, &s.identity) else {
        return Ok(Verdict::allow());
    };
    if !crosses(up.from.as_ref(), &up.to, &boundary()) {
        return Ok(Verdict::allow());
    }
    let mut blocking = Vec::new();
    for kind in ANP_KINDS {
        for obj in cluster.list(ANP_API, kind, None)?.parse()? {
            blocking.push(format!("{kind} {}", obj.name()));
        }
    }
    let mut renamed = Vec::new();
    for policy in calico_policies(cluster)? {
        if REMOVED_TIERS.contains(&policy.tier.as_str()) {
            blocking.push(policy.describe());
        } else if policy.tier == RENAMED_TIER && !policy.operator_owned {
            renamed.push(policy.describe());
        }
    }
    blocking.dedup();
    renamed.dedup();
    let mut verdict = if blocking.is_empty() {
        Verdict::allow()
    } else {
        Verdict::deny(format!(
            "Upgrading Calico to {} with {}: AdminNetworkPolicy and BaselineAdminNetworkPolicy \"must be removed or replaced by ClusterNetworkPolicy before upgrade, \
             since Calico v3.32 and newer won't enforce them\" (3.32 release notes). Replace them, delete them (kubectl delete adminnetworkpolicy NAME), then upgrade.",
            up.to,
            list(&blocking, 5)
        ))
    };
    if !renamed.is_empty() {
        verdict = verdict.with_warning(clip(
            format!(
                "Calico v3.32 renames tier allow-tigera to calico-system: update your own policies in it ({}).",
                list(&renamed, 3)
            ),
            WARNING_MAX,
        ));
    }
    Ok(verdict)
}

/// The kind of an ANP/BANP being created.
fn created_anp(req: &Request<'_>) -> Option<&'static str> {
    if req.operation != Operation::Create {
        return None;
    }
    let obj = req.object.as_ref()?;
    let group = tollgate_sdk::api::api_group(obj.api_version_str());
    if group != "policy.networking.k8s.io" {
        return None;
    }
    ANP_KINDS.into_iter().find(|k| *k == obj.kind_str())
}

fn created_on_v332(
    req: &Request<'_>,
    kind: &str,
    s: &IdentitySettings,
    cluster: &dyn Cluster,
) -> Result<Verdict, LookupError> {
    let Some(running) = s.identity.running_release(cluster)? else {
        return Ok(Verdict::allow());
    };
    if running.core() < boundary() {
        return Ok(Verdict::allow());
    }
    let name = req.object.as_ref().map(|o| o.name()).unwrap_or_default();
    Ok(Verdict::deny(format!(
        "{kind} {name} would not be enforced: the cluster runs Calico {running}, which dropped AdminNetworkPolicy and BaselineAdminNetworkPolicy \
         (3.32 release notes). Write a ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) instead."
    )))
}

/// A Calico (Global)NetworkPolicy and its tier (absent means `default`).
struct Tiered {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    tier: String,
    operator_owned: bool,
}

impl Tiered {
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{} (tier {})", self.kind, self.name, self.tier),
            None => format!("{} {} (tier {})", self.kind, self.name, self.tier),
        }
    }
}

#[derive(Deserialize)]
struct PolicyView {
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    spec: Value,
}

/// Every Calico (Global)NetworkPolicy, in both API versions (the API server
/// serves the v3 view of the same objects: duplicates are dropped).
fn calico_policies(cluster: &dyn Cluster) -> Result<Vec<Tiered>, LookupError> {
    let mut out: Vec<Tiered> = Vec::new();
    for api in CALICO_API_VERSIONS {
        for kind in CALICO_POLICY_KINDS {
            for p in cluster.list(api, kind, None)?.parse_as::<PolicyView>()? {
                let policy = Tiered {
                    kind,
                    namespace: p.metadata["namespace"].as_str().map(str::to_owned),
                    name: p.metadata["name"].as_str().unwrap_or_default().to_owned(),
                    tier: p.spec["tier"].as_str().unwrap_or("default").to_owned(),
                    operator_owned: p.metadata["ownerReferences"].as_array().is_some_and(
                        |owners| {
                            owners.iter().any(|o| {
                                o["apiVersion"]
                                    .as_str()
                                    .is_some_and(|a| a.starts_with("operator.tigera.io/"))
                            })
                        },
                    ),
                };
                let seen = out.iter().any(|o| {
                    o.kind == policy.kind
                        && o.namespace == policy.namespace
                        && o.name == policy.name
                });
                if !seen {
                    out.push(policy);
                }
            }
        }
    }
    Ok(out)
}
