//! Read-plane metrics. The bin registers them under its prefix, e.g.
//! `ClientMetrics::register(root.sub_registry_with_prefix("akv2k8s_client"))`, giving
//! `akv2k8s_client_keyvault_requests_total{kind,result}` and so on. Labels are bounded:
//! object kind, and `result` = `ok` or [`crate::Error::kind`].

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type KindResult = [(&'static str, &'static str); 2];
type Kind = [(&'static str, &'static str); 1];

/// Metrics of the Key Vault read plane. Cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct ClientMetrics {
    requests: Family<KindResult, Counter>,
    throttles: Family<Kind, Counter>,
    cache: Family<KindResult, Counter>,
    budget_used: Counter,
    budget_queued: Gauge,
    budget_deferred: Counter,
}

impl ClientMetrics {
    /// Registers every metric in `reg`.
    pub fn register(reg: &mut Registry) -> Self {
        let m = Self::default();
        reg.register(
            "keyvault_requests",
            "Key Vault requests sent, by object kind and result (ok or error kind)",
            m.requests.clone(),
        );
        reg.register(
            "keyvault_throttles",
            "Key Vault answers with 429 Too Many Requests, by object kind",
            m.throttles.clone(),
        );
        reg.register(
            "cache_lookups",
            "Reads by object kind and result: hit (cached), shared (joined a read in flight), miss (first read), refresh (stale entry)",
            m.cache.clone(),
        );
        reg.register(
            "budget_used",
            "Key Vault requests admitted by the per-vault budget",
            m.budget_used.clone(),
        );
        reg.register(
            "budget_queued",
            "Reads waiting for the per-vault budget",
            m.budget_queued.clone(),
        );
        reg.register(
            "budget_deferred_refreshes",
            "Refreshes deferred because the per-vault budget was spent (the last value stands)",
            m.budget_deferred.clone(),
        );
        m
    }

    pub(crate) fn request(&self, kind: &'static str, result: &'static str) {
        self.requests
            .get_or_create(&[("kind", kind), ("result", result)])
            .inc();
        if result == "throttled" {
            self.throttles.get_or_create(&[("kind", kind)]).inc();
        }
    }

    pub(crate) fn lookup(&self, kind: &'static str, result: &'static str) {
        self.cache
            .get_or_create(&[("kind", kind), ("result", result)])
            .inc();
    }

    pub(crate) fn budget_admitted(&self) {
        self.budget_used.inc();
    }

    pub(crate) fn budget_deferred(&self) {
        self.budget_deferred.inc();
    }

    pub(crate) fn budget_queue(&self, delta: i64) {
        self.budget_queued.inc_by(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_bounded_labels() {
        let mut reg = Registry::default();
        let m = ClientMetrics::register(reg.sub_registry_with_prefix("akv2k8s_client"));
        m.request("secret", "ok");
        m.request("secret", "throttled");
        m.lookup("secret", "hit");
        m.budget_admitted();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encode");
        assert!(
            out.contains(r#"akv2k8s_client_keyvault_requests_total{kind="secret",result="ok"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"akv2k8s_client_keyvault_throttles_total{kind="secret"} 1"#),
            "{out}"
        );
        assert!(out.contains("akv2k8s_client_budget_used_total 1"), "{out}");
    }
}
