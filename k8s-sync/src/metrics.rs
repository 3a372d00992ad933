//! Controller metrics.
//!
//! Upstream akv2k8s's counters keep their exact names and labels, because dashboards depend on
//! them: `akv2k8s_syncs_total{operation,object}` and `akv2k8s_syncs_failed_total{operation,object}`
//! (`operation` ∈ add, update, delete, sync; `object` ∈ AzureKeyVaultSecret, AzureKeyVault).
//! New metrics follow `akv2k8s_sync_<what>`:
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `akv2k8s_sync_reconcile_duration_seconds` | histogram | `result` (`ok` or [`crate::Error::kind`]) |
//! | `akv2k8s_sync_queue_depth` | gauge | — (reconciles admitted and not finished) |
//! | `akv2k8s_sync_writes_total` | counter | `kind` (`Secret`, `ConfigMap`, `status`, `event`, `finalizer`) |
//!
//! Names are complete, so register on the **root** registry (or one without a prefix):
//! `SyncMetrics::register(&mut registry)`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type OperationObject = [(&'static str, &'static str); 2];
type One = [(&'static str, &'static str); 1];

/// `object` label of upstream's counters: the AKVS itself (spec changes).
pub const OBJECT_AKVS: &str = "AzureKeyVaultSecret";
/// `object` label of upstream's counters: the Key Vault poll.
pub const OBJECT_VAULT: &str = "AzureKeyVault";

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Metrics of the controller. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct SyncMetrics {
    syncs: Family<OperationObject, Counter>,
    syncs_failed: Family<OperationObject, Counter>,
    duration: Family<One, Histogram, fn() -> Histogram>,
    queue_depth: Gauge,
    writes: Family<One, Counter>,
}

impl Default for SyncMetrics {
    /// Unregistered metrics (for tests and embedders that do not export them).
    fn default() -> Self {
        Self {
            syncs: Family::default(),
            syncs_failed: Family::default(),
            duration: Family::new_with_constructor(new_histogram),
            queue_depth: Gauge::default(),
            writes: Family::default(),
        }
    }
}

impl SyncMetrics {
    /// Registers every metric in `reg` under its full name.
    pub fn register(reg: &mut Registry) -> Self {
        let m = Self::default();
        reg.register(
            "akv2k8s_syncs",
            "AzureKeyVaultSecret syncs by operation (add, update, delete) and object (AzureKeyVaultSecret, AzureKeyVault)",
            m.syncs.clone(),
        );
        reg.register(
            "akv2k8s_syncs_failed",
            "Failed AzureKeyVaultSecret syncs by operation and object",
            m.syncs_failed.clone(),
        );
        reg.register(
            "akv2k8s_sync_reconcile_duration_seconds",
            "Duration of one reconcile, by result (ok or error kind)",
            m.duration.clone(),
        );
        reg.register(
            "akv2k8s_sync_queue_depth",
            "AzureKeyVaultSecret reconciles admitted and not yet finished",
            m.queue_depth.clone(),
        );
        reg.register(
            "akv2k8s_sync_writes",
            "Writes to the API server, by kind (Secret, ConfigMap, status, event, finalizer)",
            m.writes.clone(),
        );
        m
    }

    /// One sync of `operation` on `object` (upstream's `akv2k8s_syncs_total`).
    pub fn sync(&self, operation: &'static str, object: &'static str) {
        self.syncs
            .get_or_create(&[("operation", operation), ("object", object)])
            .inc();
    }

    /// One failed sync (upstream's `akv2k8s_syncs_failed_total`).
    pub fn sync_failed(&self, operation: &'static str, object: &'static str) {
        self.syncs_failed
            .get_or_create(&[("operation", operation), ("object", object)])
            .inc();
    }

    /// A finished reconcile.
    pub fn reconciled(&self, result: &'static str, seconds: f64) {
        self.duration
            .get_or_create(&[("result", result)])
            .observe(seconds);
    }

    /// One write of `kind`.
    pub fn write(&self, kind: &'static str) {
        self.writes.get_or_create(&[("kind", kind)]).inc();
    }

    /// Marks a reconcile as running until the guard drops.
    pub fn in_queue(&self) -> QueueGuard {
        self.queue_depth.inc();
        QueueGuard(self.queue_depth.clone())
    }

    /// Syncs counted so far for `operation`/`object` (for tests).
    pub fn syncs(&self, operation: &'static str, object: &'static str) -> u64 {
        self.syncs
            .get_or_create(&[("operation", operation), ("object", object)])
            .get()
    }

    /// Failed syncs counted so far for `operation`/`object` (for tests).
    pub fn syncs_failed(&self, operation: &'static str, object: &'static str) -> u64 {
        self.syncs_failed
            .get_or_create(&[("operation", operation), ("object", object)])
            .get()
    }
}

/// Decrements the queue depth when dropped.
#[derive(Debug)]
pub struct QueueGuard(Gauge);

impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn upstream_metric_names_are_kept() {
        let mut reg = Registry::default();
        let m = SyncMetrics::register(&mut reg);
        m.sync("add", OBJECT_AKVS);
        m.sync_failed("sync", OBJECT_VAULT);
        m.reconciled("ok", 0.01);
        let mut out = String::new();
        encode(&mut out, &reg).expect("encode");
        assert!(
            out.contains("akv2k8s_syncs_total{operation=\"add\",object=\"AzureKeyVaultSecret\"} 1")
        );
        assert!(
            out.contains(
                "akv2k8s_syncs_failed_total{operation=\"sync\",object=\"AzureKeyVault\"} 1"
            )
        );
        assert!(out.contains("akv2k8s_sync_reconcile_duration_seconds_count{result=\"ok\"} 1"));
        assert!(out.contains("akv2k8s_sync_queue_depth 0"));
    }
}
