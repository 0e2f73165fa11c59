//! The hostile and probing test guests (`policies-wasm/test-guests`) and the
//! example policies (`policies-wasm/examples`), compiled for wasm32 by
//! `build.rs` and embedded as bytes. Only tests and benchmarks depend on this
//! crate, so the `tollgate` binary never contains them.

#![forbid(unsafe_code)]

/// The test guests speaking ABI v1 (one rule per call and instance).
pub const TEST_GUESTS: &[u8] = include_bytes!(env!("TOLLGATE_TEST_GUESTS_WASM"));

/// The same rules speaking ABI v2 (a bundle of rules per call and instance).
pub const TEST_GUESTS_V2: &[u8] = include_bytes!(env!("TOLLGATE_TEST_GUESTS_V2_WASM"));

/// The example policy `policies-wasm/examples/pod-privileged`, written with
/// the SDK as a new author would.
pub const POD_PRIVILEGED: &[u8] = include_bytes!(env!("TOLLGATE_POD_PRIVILEGED_WASM"));
