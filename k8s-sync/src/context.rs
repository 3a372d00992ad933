//! What every reconcile shares: clients, the Key Vault read plane, the indexes of managed
//! Secrets and ConfigMaps, the Event publisher, metrics, and per-object bookkeeping (the
//! generation last seen, for upstream's `add`/`update` counters; consecutive failures, for
//! backoff; and what this process last wrote to the object — its status and finalizer — so
//! that a reconcile working from a watch cache that has not caught up with our own write does
//! not write the same thing again).
//!
//! The memory of our writes is keyed by the object's uid (a recreated object starts afresh)
//! and trusted over the watch cache: a status changed behind the controller's back is put
//! right at the next change rather than at once.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use akv_client::KeyVaultProvider;
use kube::Client;

use crate::controller::SyncConfig;
use crate::crd::v2beta1::AzureKeyVaultSecretStatus;
use crate::events::EventPublisher;
use crate::index::OutputIndex;
use crate::metrics::SyncMetrics;
use crate::render::{Existing, OutputKind};

/// Shared state of one controller run.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Key Vault behind the read plane (at most one read per object per resync period).
    pub key_vault: Arc<dyn KeyVaultProvider>,
    /// Configuration.
    pub cfg: SyncConfig,
    /// Metrics.
    pub metrics: SyncMetrics,
    /// Event publisher (`events.k8s.io/v1`).
    pub events: EventPublisher,
    /// Managed Secrets (label-selected watch).
    pub secrets: Arc<OutputIndex>,
    /// Managed ConfigMaps (label-selected watch).
    pub config_maps: Arc<OutputIndex>,
    objects: Mutex<HashMap<(String, String), Tracked>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default)]
struct Tracked {
    uid: String,
    generation: Option<i64>,
    failures: u32,
    /// The status this process last wrote.
    status: Option<Box<AzureKeyVaultSecretStatus>>,
    /// This process added the finalizer.
    finalizer: bool,
}

/// Why an object is reconciled, as upstream counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time this process sees it (`add`).
    New,
    /// Its spec changed (`update` on `AzureKeyVaultSecret`).
    SpecChanged,
    /// Periodic refresh or an output changed (`update` on `AzureKeyVault`).
    Poll,
}

impl Context {
    /// A context for one run.
    pub fn new(
        client: Client,
        key_vault: Arc<dyn KeyVaultProvider>,
        cfg: SyncConfig,
        metrics: SyncMetrics,
        events: EventPublisher,
        secrets: Arc<OutputIndex>,
        config_maps: Arc<OutputIndex>,
    ) -> Self {
        Self {
            client,
            key_vault,
            cfg,
            metrics,
            events,
            secrets,
            config_maps,
            objects: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<(String, String), Tracked>) -> T) -> T {
        f(&mut self.objects.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records that `namespace/name` (`uid`) at `generation` is being reconciled.
    pub fn observe(&self, namespace: &str, name: &str, uid: &str, generation: Option<i64>) -> Seen {
        self.with(|m| {
            let key = (namespace.to_owned(), name.to_owned());
            match m.get_mut(&key) {
                Some(t) if t.uid != uid => {
                    // Recreated under the same name: nothing we remember applies.
                    *t = Tracked {
                        uid: uid.to_owned(),
                        generation,
                        ..Tracked::default()
                    };
                    Seen::New
                }
                None => {
                    m.insert(
                        key,
                        Tracked {
                            uid: uid.to_owned(),
                            generation,
                            ..Tracked::default()
                        },
                    );
                    Seen::New
                }
                Some(t) if t.generation != generation => {
                    t.generation = generation;
                    Seen::SpecChanged
                }
                Some(_) => Seen::Poll,
            }
        })
    }

    /// The status this process last wrote to `namespace/name` while its uid was `uid`.
    pub fn written_status(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Option<AzureKeyVaultSecretStatus> {
        self.with(|m| {
            m.get(&(namespace.to_owned(), name.to_owned()))
                .filter(|t| t.uid == uid)
                .and_then(|t| t.status.as_deref().cloned())
        })
    }

    /// The status a reconcile starts from: the one this process last wrote while the watch
    /// cache (`cached`) has not caught up with it, else `cached`. Once the cache holds what was
    /// written, the remembered copy is dropped (memory is spent only on writes in flight).
    pub fn status_base(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        cached: Option<&AzureKeyVaultSecretStatus>,
    ) -> Option<AzureKeyVaultSecretStatus> {
        self.with(|m| {
            let t = m
                .get_mut(&(namespace.to_owned(), name.to_owned()))
                .filter(|t| t.uid == uid);
            match t {
                Some(t) if t.status.is_some() && t.status.as_deref() != cached => {
                    t.status.as_deref().cloned()
                }
                Some(t) => {
                    t.status = None;
                    cached.cloned()
                }
                None => cached.cloned(),
            }
        })
    }

    /// Remembers the status just written to `namespace/name` (`uid`).
    pub fn wrote_status(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        status: &AzureKeyVaultSecretStatus,
    ) {
        self.with(|m| {
            if let Some(t) = m
                .get_mut(&(namespace.to_owned(), name.to_owned()))
                .filter(|t| t.uid == uid)
            {
                t.status = Some(Box::new(status.clone()));
            }
        });
    }

    /// Whether this process added the finalizer to `namespace/name` (`uid`).
    pub fn added_finalizer(&self, namespace: &str, name: &str, uid: &str) -> bool {
        self.with(|m| {
            m.get(&(namespace.to_owned(), name.to_owned()))
                .is_some_and(|t| t.uid == uid && t.finalizer)
        })
    }

    /// Remembers that the finalizer was added to `namespace/name` (`uid`).
    pub fn added_finalizer_now(&self, namespace: &str, name: &str, uid: &str) {
        self.with(|m| {
            if let Some(t) = m
                .get_mut(&(namespace.to_owned(), name.to_owned()))
                .filter(|t| t.uid == uid)
            {
                t.finalizer = true;
            }
        });
    }

    /// Forgets a deleted object.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.with(|m| m.remove(&(namespace.to_owned(), name.to_owned())));
    }

    /// Counts one more consecutive failure and returns the count.
    pub fn failed(&self, namespace: &str, name: &str) -> u32 {
        self.with(|m| {
            let t = m
                .entry((namespace.to_owned(), name.to_owned()))
                .or_default();
            t.failures = t.failures.saturating_add(1);
            t.failures
        })
    }

    /// Resets the failure count after a success.
    pub fn succeeded(&self, namespace: &str, name: &str) {
        self.with(|m| {
            if let Some(t) = m.get_mut(&(namespace.to_owned(), name.to_owned())) {
                t.failures = 0;
            }
        });
    }

    /// The index of managed objects of `kind`.
    pub fn output_index(&self, kind: OutputKind) -> &OutputIndex {
        match kind {
            OutputKind::Secret => &self.secrets,
            OutputKind::ConfigMap => &self.config_maps,
        }
    }

    /// A managed Secret or ConfigMap from its index.
    pub fn cached(&self, kind: OutputKind, namespace: &str, name: &str) -> Option<Arc<Existing>> {
        self.output_index(kind).get(namespace, name)
    }

    /// The next periodic refresh: the resync period plus up to `resync_jitter` of it, never
    /// less, so a value cached by the read plane (TTL = resync period) has expired by then.
    pub fn next_refresh(&self) -> Duration {
        jittered(self.cfg.azure_resync_period, self.cfg.resync_jitter)
    }

    /// Backoff after `failures` consecutive failures: `error_backoff_base` doubling up to
    /// `error_backoff_max`, plus up to 10 % jitter.
    pub fn backoff(&self, failures: u32) -> Duration {
        let base = self.cfg.error_backoff_base;
        let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        jittered(exp.min(self.cfg.error_backoff_max), 0.1)
    }
}

/// `d` plus a random fraction of up to `fraction` of it.
pub fn jittered(d: Duration, fraction: f64) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    let r = RandomState::new().hash_one(std::time::Instant::now());
    let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
    d + d.mul_f64(fraction * unit)
}

/// A Key Vault provider with no vaults (tests).
#[cfg(test)]
#[derive(Debug)]
struct NoVault;

#[cfg(test)]
impl KeyVaultProvider for NoVault {
    fn vault(
        &self,
        url: &akv_client::VaultUrl,
        _identity: &akv_client::IdentityRef,
    ) -> akv_client::Result<Arc<dyn akv_client::KeyVault>> {
        Err(akv_client::Error::InvalidConfig {
            field: "vault",
            reason: format!("no vault {url} in this test"),
        })
    }
}

/// A Context whose client points nowhere and which has no Key Vault: for the bookkeeping and
/// policies only (needs a Tokio runtime).
#[cfg(test)]
pub(crate) fn test_context(cfg: SyncConfig) -> Context {
    let config = kube::Config::new("https://127.0.0.1:9".parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    Context::new(
        client.clone(),
        Arc::new(NoVault),
        cfg,
        SyncMetrics::default(),
        EventPublisher::new(client, "c".into(), "i".into()),
        Arc::new(OutputIndex::new()),
        Arc::new(OutputIndex::new()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_status(message: &str) -> AzureKeyVaultSecretStatus {
        AzureKeyVaultSecretStatus {
            secret_name: Some(message.to_owned()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn written_status_is_used_until_the_cache_catches_up_then_forgotten() {
        let ctx = test_context(SyncConfig::default());
        ctx.observe("ns", "a", "u1", Some(1));
        let written = ctx_status("new");
        ctx.wrote_status("ns", "a", "u1", &written);
        let stale = ctx_status("old");
        assert_eq!(
            ctx.status_base("ns", "a", "u1", Some(&stale)),
            Some(written.clone()),
            "the cache is behind: our write wins"
        );
        assert_eq!(
            ctx.status_base("ns", "a", "u1", None),
            Some(written.clone())
        );
        assert_eq!(
            ctx.status_base("ns", "a", "u1", Some(&written)),
            Some(written.clone()),
            "caught up"
        );
        assert_eq!(ctx.written_status("ns", "a", "u1"), None, "and forgotten");
        // Another uid (recreated object) never sees it.
        ctx.wrote_status("ns", "a", "u1", &written);
        assert_eq!(ctx.status_base("ns", "a", "u2", Some(&stale)), Some(stale));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let d = Duration::from_millis(1000);
        for _ in 0..100 {
            let j = jittered(d, 0.1);
            assert!(j >= d && j <= Duration::from_millis(1100), "{j:?}");
        }
        assert_eq!(jittered(d, 0.0), d);
    }
}
