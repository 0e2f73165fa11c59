//! Cluster context for Tollgate policies.
//!
//! Context-aware policies read other cluster objects through the `lookup`
//! host call. This crate decides what a policy may read ([`AllowList`]) and
//! serves the reads: from watch-backed in-memory caches in a cluster
//! ([`watch`]), from a directory of saved objects offline ([`snapshot`]), or
//! from nothing at all ([`EmptyContext`]). Reads never make an API round trip
//! on the request path.
//!
//! The `cluster` feature (default) brings the watch backend, its metrics and
//! [`read_access`]; without it only the offline parts build.

#![forbid(unsafe_code)]

pub mod allow;
mod answers;
#[cfg(feature = "cluster")]
pub mod cache_metrics;
mod except;
mod lean;
pub mod overlay;
pub mod plan;
#[cfg(feature = "cluster")]
pub mod read_access;
pub mod snapshot;
// Offline, nothing updates a store in place: those methods serve the watch
// caches only.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
mod store;
#[cfg(feature = "cluster")]
pub mod watch;

pub use allow::{AllowList, Grant, ResourceType, resource_types};
#[cfg(feature = "cluster")]
pub use cache_metrics::ContextMetrics;
pub use overlay::OverlayContext;
pub use plan::{Selection, TypePlan, WatchPlan, watch_plan};
pub use snapshot::{SnapshotContext, SnapshotError};
pub use store::ObjectError;
pub use tollgate_sdk::wire::LookupQuery;
#[cfg(feature = "cluster")]
pub use watch::{WatchContext, WatchOptions};

/// A lookup's answer: a JSON array, shared between the reviews that ask the
/// same query while the objects stay the same.
pub type Answer = std::sync::Arc<[u8]>;

/// Why a lookup was not served.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The query is outside the policy's `context` allow-list.
    #[error("policy {policy} may not read {api_version} {kind}{}", namespace.as_deref().map(|n| format!(" in namespace {n}")).unwrap_or_default())]
    NotAllowed {
        policy: String,
        api_version: String,
        kind: String,
        namespace: Option<String>,
    },
    /// The query nests more `except` queries than a lookup may: each is a
    /// read of its own, and the host's work on one lookup stays bounded.
    #[error("a lookup may nest at most {max} `except` queries")]
    TooNested { max: usize },
    /// The backend cannot answer (for instance a cache that has not synced).
    #[error("cluster context unavailable: {0}")]
    Unavailable(String),
}

/// A source of cluster objects.
///
/// Implementations answer from memory: they are called on the request path,
/// inside a policy's CPU deadline.
pub trait ClusterContext: Send + Sync {
    /// The objects `query` selects, as a JSON array (`[]` when the type is
    /// unknown or not served by this cluster: an absent API group is "no
    /// objects", not an error).
    fn lookup(&self, query: &LookupQuery) -> Result<Answer, LookupError>;

    /// Whether every cache has synced at least once (for `/readyz`).
    fn is_ready(&self) -> bool {
        true
    }

    /// The caches whose view is older than the staleness bound allows, and
    /// why (for `/readyz`): lookups of those types fail meanwhile.
    fn stale(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A cluster with no objects: used when neither a kubeconfig nor a snapshot
/// is given.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyContext;

impl EmptyContext {
    /// The empty cluster as evaluations take it (shared, `'static`): for
    /// reviews that look nothing up, and for tests.
    pub fn shared() -> std::sync::Arc<dyn ClusterContext> {
        std::sync::Arc::new(EmptyContext)
    }
}

impl ClusterContext for EmptyContext {
    fn lookup(&self, _: &LookupQuery) -> Result<Answer, LookupError> {
        Ok(Answer::from(&b"[]"[..]))
    }
}
