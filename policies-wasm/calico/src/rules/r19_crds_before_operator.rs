//! R19 crds-before-operator: an operator that ships Calico v3.32 needs the
//! CRDs that release adds (`clusternetworkpolicies.policy.networking.k8s.io`,
//! `release-notes/index.mdx` of v3.32). `operations/upgrading/kubernetes-upgrade.mdx`
//! (v3.32) applies them before the operator:
//!
//! > kubectl apply --server-side --force-conflicts -f v1_crd_projectcalico_org.yaml
//! > kubectl apply --server-side --force-conflicts -f tigera-operator.yaml
//!
//! and says the operator applies them itself only when it manages CRDs
//! ("With `manageCRDs: true` … the operator applies the CRDs itself when
//! the new pod starts"). So the rule denies only when the new operator
//! will not (`-manage-crds` false or absent: the operator's default is
//! false) and otherwise warns that new configuration waits for the new
//! operator. A failed lookup of the CRD denies (fail closed).

use serde::Deserialize;
use tollgate_sdk::version::Version;
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, Request, Settings, Verdict};

use crate::identify::Identity;
use crate::lookup;
use crate::operator::OperatorIdentity;
use crate::text::{WARNING_MAX, clip};
use crate::upgrade::{Via, upgrade_with};

/// The file of CRDs the v3.32 docs apply (`kubernetes-upgrade.mdx`).
pub const CRDS_FILE: &str = "v1_crd_projectcalico_org.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CrdsSettings {
    pub identity: Identity,
    pub operator: OperatorIdentity,
    /// The first Calico release that needs `crd`.
    pub release: Version,
    /// The CRD that release adds.
    pub crd: String,
}

impl Default for CrdsSettings {
    fn default() -> Self {
        Self {
            identity: Identity::default(),
            operator: OperatorIdentity::default(),
            release: Version::new(3, 32, 0),
            crd: "clusternetworkpolicies.policy.networking.k8s.io".into(),
        }
    }
}

impl Settings for CrdsSettings {
    fn validate(&self) -> Result<(), String> {
        if self.crd.is_empty() {
            return Err("crd must not be empty".into());
        }
        self.identity.validate()?;
        self.operator.validate()
    }
}

pub fn crds_before_operator(req: &Request<'_>, s: &CrdsSettings, cluster: &dyn Cluster) -> Verdict {
    let operator = &s.operator;
    let Some(upgrade) = upgrade_with(req, &s.identity, operator) else {
        return Verdict::allow();
    };
    if upgrade.via != Via::Operator || upgrade.to.core() < s.release {
        return Verdict::allow();
    }
    // Only whether it exists: a CRD's schema is hundreds of kilobytes.
    let query = LookupQuery::get(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        &s.crd,
    )
    .with_fields(&["/metadata/name"]);
    let present = cluster
        .lookup(&query)
        .and_then(|found| Ok(!found.parse()?.is_empty()));
    match present {
        Err(e) => return lookup::failed("apiextensions.k8s.io/v1 CustomResourceDefinition", &e),
        Ok(true) => return Verdict::allow(),
        Ok(false) => {}
    }
    let to = &upgrade.to;
    let apply = "kubectl apply --server-side --force-conflicts -f";
    let manages = req
        .raw_object()
        .is_some_and(|raw| operator.manages_crds(raw));
    if manages {
        return Verdict::warn(clip(
            format!(
                "CRD {} is missing; {to}'s operator creates it on start. To configure it first: \
                 {apply} {CRDS_FILE}",
                s.crd
            ),
            WARNING_MAX,
        ));
    }
    Verdict::deny(format!(
        "CRD {} is missing and operator {}/{} runs without -manage-crds=true, so Calico {to} would \
         start without it. Apply the {to} CRDs first: {apply} \
         https://raw.githubusercontent.com/projectcalico/calico/{to}/manifests/{CRDS_FILE}",
        s.crd, operator.namespace, operator.deployment
    ))
}
