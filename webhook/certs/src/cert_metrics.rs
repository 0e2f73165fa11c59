//! The serving certificate's metrics: reloads by result and the served
//! certificate's expiry. The server registers them with its own, so one
//! `/metrics` page holds both.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// Cheap to clone: every clone records into the same series.
#[derive(Debug, Clone, Default)]
pub struct CertMetrics {
    reloads: Family<ReloadLabels, Counter>,
    expiry: Gauge,
}

impl CertMetrics {
    /// Registers the series in `registry` (the server's `tollgate_` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads by result (ok, error)",
            self.reloads.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the certificate being served expires (Unix time): alert well before it",
            self.expiry.clone(),
        );
        // Both results exist from the start, so `rate()` alerts see a zero.
        for result in ["ok", "error"] {
            drop(self.reloads.get_or_create(&ReloadLabels { result }));
        }
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// The certificate now served expires at `not_after`.
    pub fn serving(&self, not_after: SystemTime) {
        let seconds = not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.expiry.set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }
}
