//! What the sandbox counts: instances started and modules loaded, by where
//! the compiled code came from. Prometheus counters, so the server exports
//! them as they are and tests read them directly. A leaf: the modules
//! that report an event pick its counter (`module_cache::Origin::count`),
//! so this one depends on none of them.

use prometheus_client::metrics::counter::Counter;

/// The sandbox's counters (cheap atomic increments on the hot path).
#[derive(Debug, Clone, Default)]
pub struct SandboxStats {
    /// Every fresh instance: one per evaluation of a v1 rule, one per
    /// bundle of a v2 module, one per load-time call.
    pub instances: Counter,
    /// Modules compiled from their Wasm bytes.
    pub compiled: Counter,
    /// Modules deserialised from the disk cache.
    pub from_disk_cache: Counter,
    /// Modules already loaded by this sandbox (another policy, an earlier set).
    pub from_memory: Counter,
    /// Times a guest waited for a turn on a CPU (every running slot was
    /// taken, or it gave its slot to another policy's guest at a tick).
    pub cpu_waits: Counter,
    /// Evaluations handed off from the thread that had the request: a
    /// guest ran a whole tick there, or its policy was known to run long
    /// ([`crate::Budget::hand_off`]). Each is evaluated again on an
    /// evaluation thread.
    pub handed_off: Counter,
    /// Cache entries that failed their authentication (never deserialised).
    pub cache_unauthenticated: Counter,
    /// Loads that skipped a cache directory another user can write.
    pub cache_unsafe_directory: Counter,
}
