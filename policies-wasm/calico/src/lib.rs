//! The Calico upgrade policy pack: the "Upgrading Calico for Kubernetes"
//! guide as admission rules R1–R14 (SPEC §3).
//!
//! Rule logic is plain Rust in [`rules`], tested natively; the only Wasm
//! line is the [`tollgate_sdk::export_rules!`] below. The pack's default
//! configuration is `policies.yaml` next to this crate.

pub mod controllers;
pub mod identify;
pub mod lookup;
pub mod netpol;
pub mod patch;
pub mod pods;
pub mod rules;
pub mod text;
pub mod versions;

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
}
