//! Prometheus metrics of the watch caches.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ResourceType;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    api_version: String,
    kind: String,
}

impl From<&ResourceType> for TypeLabels {
    fn from(ty: &ResourceType) -> Self {
        Self {
            api_version: ty.api_version.clone(),
            kind: ty.kind.clone(),
        }
    }
}

/// The cache metrics, registered once and shared by every cache.
///
/// Cloning is cheap and clones share their values.
#[derive(Debug, Clone)]
pub struct ContextMetrics {
    objects: Family<TypeLabels, Gauge>,
    synced: Family<TypeLabels, Gauge>,
    absent: Family<TypeLabels, Gauge>,
    connected: Family<TypeLabels, Gauge>,
    stale_seconds: Family<TypeLabels, Gauge<f64, AtomicU64>>,
    restarts: Family<TypeLabels, Counter>,
    lookup_seconds: Histogram,
}

impl Default for ContextMetrics {
    /// Metrics nobody scrapes (tests, benchmarks, offline runs).
    fn default() -> Self {
        Self {
            objects: Family::default(),
            synced: Family::default(),
            absent: Family::default(),
            connected: Family::default(),
            stale_seconds: Family::default(),
            restarts: Family::default(),
            // 1 µs .. ~8 ms: lookups answer from memory.
            lookup_seconds: Histogram::new(exponential_buckets(1e-6, 2.0, 14)),
        }
    }
}

impl ContextMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "tollgate_context_cache_objects",
            "Objects held in the cache of a resource type",
            m.objects.clone(),
        );
        registry.register(
            "tollgate_context_cache_synced",
            "1 once the cache of a resource type serves (listed, or its API is absent)",
            m.synced.clone(),
        );
        registry.register(
            "tollgate_context_api_absent",
            "1 while the cluster does not serve the resource type (served as no objects)",
            m.absent.clone(),
        );
        registry.register(
            "tollgate_context_cache_connected",
            "1 while every watch of a resource type follows the API server (0 while one is broken and retrying)",
            m.connected.clone(),
        );
        registry.register(
            "tollgate_context_cache_stale_seconds",
            "Seconds since the oldest broken watch of a resource type last followed the API server (0 while connected; refreshed at each reconnect attempt, at most 2 s apart)",
            m.stale_seconds.clone(),
        );
        registry.register(
            "tollgate_context_watch_restarts",
            "Watch or discovery failures of a resource type, each followed by a retry with backoff",
            m.restarts.clone(),
        );
        registry.register(
            "tollgate_context_lookup_duration_seconds",
            "Time to answer one lookup from the caches",
            m.lookup_seconds.clone(),
        );
        m
    }

    /// The handles of one resource type's cache.
    pub(crate) fn for_type(&self, ty: &ResourceType) -> TypeMetrics {
        let labels = TypeLabels::from(ty);
        TypeMetrics {
            objects: self.objects.get_or_create(&labels).clone(),
            synced: self.synced.get_or_create(&labels).clone(),
            absent: self.absent.get_or_create(&labels).clone(),
            connected: self.connected.get_or_create(&labels).clone(),
            stale_seconds: self.stale_seconds.get_or_create(&labels).clone(),
            restarts: self.restarts.get_or_create(&labels).clone(),
        }
    }

    /// Drops a resource type no policy reads any more from the output.
    pub(crate) fn forget(&self, ty: &ResourceType) {
        let labels = TypeLabels::from(ty);
        self.objects.remove(&labels);
        self.synced.remove(&labels);
        self.absent.remove(&labels);
        self.connected.remove(&labels);
        self.stale_seconds.remove(&labels);
        self.restarts.remove(&labels);
    }

    pub(crate) fn observe_lookup(&self, took: Duration) {
        self.lookup_seconds.observe(took.as_secs_f64());
    }
}

/// One cache's metric handles: atomics, no label lookup per update.
#[derive(Debug, Clone)]
pub(crate) struct TypeMetrics {
    pub objects: Gauge,
    pub synced: Gauge,
    pub absent: Gauge,
    pub connected: Gauge,
    pub stale_seconds: Gauge<f64, AtomicU64>,
    pub restarts: Counter,
}
