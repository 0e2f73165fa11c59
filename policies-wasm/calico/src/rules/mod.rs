//! The rules of SPEC §3 (R1–R14) and §5 (R15–R23), one file per rule. Each is a plain function
//! `fn(&Request, &Settings, &dyn Cluster) -> Verdict`, exported in `lib.rs`.

pub mod r01_controller_recreate;
pub mod r02_controller_single_replica;
pub mod r03_controller_one_active;
pub mod r04_controller_replicaset_first;
pub mod r05_node_one_at_a_time;
pub mod r06_node_pod_cordoned;
pub mod r07_node_uncordon_ready;
pub mod r08_kdd_v25_migration;
pub mod r09_v1_networkpolicy_semantics;
pub mod r10_v3_needs_v265;
pub mod r11_pinned_images;
pub mod r12_version_skew;
pub mod r13_config_restart;
pub mod r14_default_deny_shape;
pub mod r15_operator_migration_freeze;
pub mod r16_operator_migration_same_release;
pub mod r17_anp_before_v332;
pub mod r18_v3307_before_v331;
pub mod r19_crds_before_operator;
pub mod r20_imageset_for_release;
pub mod r21_operator_owned;
pub mod r22_typha_replicas;
pub mod r23_ebpf_needs_iptables_kube_proxy;

use serde::Deserialize;
use tollgate_sdk::Settings;

use crate::identify::Identity;
/// How the rules read a write. Kept in `crate::writes`, not here, because
/// `crate::upgrade` reads it too and the rules read `upgrade`.
pub(crate) use crate::writes::{updated, written};

/// Settings of the rules that only need to recognise Calico's workloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct IdentitySettings {
    pub identity: Identity,
}

impl Settings for IdentitySettings {
    fn validate(&self) -> Result<(), String> {
        self.identity.validate()
    }
}
