//! The built-in policy pack: the guest modules the binary embeds, compiled
//! for wasm32 by `build.rs`, and the pack's default configuration (what
//! `tollgate` serves with no `--policies`). The hostile test guests are in
//! `tollgate-test-artifacts`, which only tests depend on.

#![forbid(unsafe_code)]

/// The built-in Calico upgrade pack (`builtin:calico`).
pub const CALICO: &[u8] = include_bytes!(env!("TOLLGATE_CALICO_WASM"));

/// The modules the binary embeds, for `module: builtin:NAME`.
pub const BUILTINS: &[(&str, &[u8])] = &[("calico", CALICO)];

/// The built-in pack's default configuration, kept next to its rules.
pub const DEFAULT_POLICIES: &str = include_str!("../../calico/policies.yaml");
