//! The Calico upgrade policy pack: the "Upgrading Calico for Kubernetes"
//! guide as admission rules R1–R14 (SPEC §3), and today's releases
//! (v3.28–v3.32, manifest and operator installs) as R15–R23 (SPEC §5).
//!
//! Rule logic is plain Rust in [`rules`], tested natively; the only Wasm
//! line is the [`tollgate_sdk::export_rules!`] below. The pack's default
//! configuration is `policies.yaml` next to this crate.

#![forbid(unsafe_code)]

pub mod controllers;
pub mod dataplane;
pub mod identify;
pub mod lookup;
pub mod netpol;
pub mod operator;
pub mod patch;
pub mod pods;
pub mod rules;
pub mod text;
pub mod unprepared;
pub mod upgrade;
pub mod versions;
mod writes;

use rules::*;

tollgate_sdk::export_rules! {
    "controller-recreate" (mutating) => r01_controller_recreate::controller_recreate,
    "controller-single-replica" (mutating) => r02_controller_single_replica::controller_single_replica,
    "controller-one-active" => r03_controller_one_active::controller_one_active,
    "controller-replicaset-first" => r04_controller_replicaset_first::controller_replicaset_first,
    "node-one-at-a-time" (mutating) => r05_node_one_at_a_time::node_one_at_a_time,
    "node-pod-cordoned" => r06_node_pod_cordoned::node_pod_cordoned,
    "node-uncordon-ready" => r07_node_uncordon_ready::node_uncordon_ready,
    "kdd-v2.5-migration" => r08_kdd_v25_migration::kdd_v25_migration,
    "v1-networkpolicy-semantics" => r09_v1_networkpolicy_semantics::v1_networkpolicy_semantics,
    "v3-needs-v2.6.5" => r10_v3_needs_v265::v3_needs_v265,
    "pinned-images" => r11_pinned_images::pinned_images,
    "version-skew" => r12_version_skew::version_skew,
    "config-restart" => r13_config_restart::config_restart,
    "default-deny-shape" (mutating) => r14_default_deny_shape::default_deny_shape,
    "operator-migration-freeze" => r15_operator_migration_freeze::operator_migration_freeze,
    "operator-migration-same-release" => r16_operator_migration_same_release::operator_migration_same_release,
    "anp-before-v3.32" => r17_anp_before_v332::anp_before_v332,
    "v3.30.7-before-v3.31" => r18_v3307_before_v331::v3307_before_v331,
    "crds-before-operator" => r19_crds_before_operator::crds_before_operator,
    "imageset-for-release" => r20_imageset_for_release::imageset_for_release,
    "operator-owned" (mutating) => r21_operator_owned::operator_owned,
    "typha-replicas" => r22_typha_replicas::typha_replicas,
    "ebpf-needs-iptables-kube-proxy" => r23_ebpf_needs_iptables_kube_proxy::ebpf_needs_iptables_kube_proxy,
}
