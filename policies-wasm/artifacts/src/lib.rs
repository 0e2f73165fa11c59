//! The compiled guest modules, embedded as bytes (see `build.rs`).

/// The built-in Calico upgrade pack (`builtin:calico`).
pub const CALICO: &[u8] = include_bytes!(env!("TOLLGATE_CALICO_WASM"));

/// The example policy `policies-wasm/examples/pod-privileged`, written with
/// the SDK as a new author would.
pub const POD_PRIVILEGED: &[u8] = include_bytes!(env!("TOLLGATE_POD_PRIVILEGED_WASM"));

/// Hostile and probing guests used by the host's tests (see
/// `policies-wasm/test-guests`).
pub const TEST_GUESTS: &[u8] = include_bytes!(env!("TOLLGATE_TEST_GUESTS_WASM"));
