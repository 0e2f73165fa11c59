//! The compiled guest modules the binary embeds, as bytes (see `build.rs`).
//! The hostile test guests are in `tollgate-test-artifacts`, which only
//! tests depend on.

#![forbid(unsafe_code)]

/// The built-in Calico upgrade pack (`builtin:calico`).
pub const CALICO: &[u8] = include_bytes!(env!("TOLLGATE_CALICO_WASM"));
