//! The built-in policy pack: the modules the binary embeds and their
//! default configuration (what `tollgate` serves with no `--policies`).

/// The modules the binary embeds, for `module: builtin:NAME`.
pub const BUILTINS: &[(&str, &[u8])] = &[("calico", tollgate_guests::CALICO)];

/// The built-in pack's default configuration, kept next to its rules.
pub const DEFAULT_POLICIES: &str = include_str!("../../policies-wasm/calico/policies.yaml");
