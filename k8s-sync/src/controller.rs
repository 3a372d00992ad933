//! The embeddable entry point: [`run`] with [`SyncDeps`] and [`SyncConfig`].
//!
//! ```text
//!  shutdown ─┐                      ┌── leadership (Lease) ──┐ only while leading
//!            ▼                      ▼                        ▼
//!  AKVS watcher (namespace, labels) ──▶ Controller ──▶ reconcile ──▶ SSA Secret/ConfigMap,
//!  Secret watcher  (managed label) ──┘  (owns)          │             status, Events
//!  ConfigMap watcher (managed label) ┘                  └──▶ ReadPlane ──▶ Key Vault
//! ```
//!
//! * AKVS are watched in one namespace or all, filtered by `label_selector` (`OBJECT_LABELS`).
//! * Secrets and ConfigMaps are watched only when they carry [`crate::render::MANAGED_LABEL`],
//!   into compact indexes the reconciler reads ([`OutputIndex`]: digests instead of values,
//!   only the managedFields facts ownership needs): memory grows with outputs, not with the
//!   cluster. An AKVS's managedFields and kubectl's last-applied annotation are dropped before
//!   it enters the controller's cache. Events are published with bounded memory
//!   ([`crate::events`]).
//! * Each AKVS is requeued every `azure_resync_period` plus jitter; its Key Vault read goes
//!   through an akv-client [`ReadPlane`] whose TTL is the resync period, so a Key Vault object
//!   is read at most once per period however many AKVS use it.
//! * The read plane's per-vault budget (default 2,000 reads per 10 s, half Key Vault's limit)
//!   is shared fairly: a first sync waits for a token ahead of every refresh, and a refresh
//!   that finds the budget spent is not sent but deferred ([`OverBudget::Defer`]) — the AKVS
//!   keeps its outputs and status and is requeued at the slot the budget names. A refresh
//!   therefore never holds a worker slot that an unsynced AKVS needs, and when more objects
//!   are polled than the budget allows, the interval stretches instead of the queue growing.
//! * With leader election, only the leader runs the controller. On shutdown the controller
//!   stops (in-flight reconciles finish) before the Lease is released.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use akv_client::KeyVaultProvider;
use akv_client::cache::{OverBudget, ReadConfig, ReadPlane};
use akv_client::format::FormatOptions;
use akv_client::metrics::ClientMetrics;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::reflector;
use kube::runtime::{Controller, WatchStreamExt as _, controller, watcher};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use crate::context::Context;
use crate::crd::v2beta1::AzureKeyVaultSecret;
use crate::error::{Error, Result};
use crate::events::EventPublisher;
use crate::index::OutputIndex;
use crate::leader::{LeaderElectionConfig, LeaderElector};
use crate::metrics::SyncMetrics;
use crate::reconcile::{error_policy, reconcile};
use crate::render::{MANAGED_LABEL, MANAGED_VALUE, SKIPPED_ANNOTATIONS};

/// Default Key Vault poll interval (upstream `--azure-resync-period`).
pub const DEFAULT_AZURE_RESYNC_PERIOD: Duration = Duration::from_secs(30);
/// Default number of AKVS reconciled at once.
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// Default field manager prefix; each AKVS writes as `<prefix>/<name>`.
pub const DEFAULT_FIELD_MANAGER_PREFIX: &str = "akv2k8s";
/// Default jitter: up to 10 % of the resync period is added to each refresh.
pub const DEFAULT_RESYNC_JITTER: f64 = 0.1;
/// Default first backoff after a failed reconcile.
pub const DEFAULT_ERROR_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Default backoff cap.
pub const DEFAULT_ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Upstream's Event source component.
pub const DEFAULT_EVENT_REPORTER: &str = "azurekeyvaultcontroller";

/// Controller configuration. Build with `SyncConfig { field: …, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// Watch AKVS in this namespace only; `None` watches all namespaces (default).
    pub namespace: Option<String>,
    /// Equality label selector for AKVS (`OBJECT_LABELS`, `k=v,k2=v2`); `None` (default) for all.
    pub label_selector: Option<String>,
    /// Key Vault poll interval per AKVS (default [`DEFAULT_AZURE_RESYNC_PERIOD`]); sub-second
    /// values are allowed.
    pub azure_resync_period: Duration,
    /// AKVS reconciled at once (default [`DEFAULT_CONCURRENCY`]; 0 = unbounded).
    pub concurrency: u16,
    /// Field manager prefix (default [`DEFAULT_FIELD_MANAGER_PREFIX`]).
    pub field_manager_prefix: String,
    /// Run only while holding this Lease (default `None`: always run).
    pub leader_election: Option<LeaderElectionConfig>,
    /// Key Vault DNS suffix; empty (default) is the public cloud's `vault.azure.net`.
    pub vault_dns_suffix: String,
    /// Wrap `SyncDeps::key_vault` in an akv-client read plane with this configuration (its
    /// `ttl` is replaced by `azure_resync_period`, and refreshes are deferred instead of
    /// waiting when the per-vault budget is spent: [`OverBudget::Defer`]). Default `Some(ReadConfig::default())`;
    /// `None` when the provider already is a read plane.
    pub key_vault_read: Option<ReadConfig>,
    /// Metrics of that read plane (Key Vault requests, throttles, cache lookups, budget),
    /// registered by the host, e.g.
    /// `ClientMetrics::register(root.sub_registry_with_prefix("akv2k8s_client"))`. Default
    /// `None`: not exported. Ignored when `key_vault_read` is `None`.
    pub client_metrics: Option<ClientMetrics>,
    /// Fraction of the resync period added at random to each refresh (default
    /// [`DEFAULT_RESYNC_JITTER`]).
    pub resync_jitter: f64,
    /// First retry delay after a failure (default [`DEFAULT_ERROR_BACKOFF_BASE`]), doubling.
    pub error_backoff_base: Duration,
    /// Longest retry delay (default [`DEFAULT_ERROR_BACKOFF_MAX`]).
    pub error_backoff_max: Duration,
    /// Formatting options for outputs (default: upstream's).
    pub format: FormatOptions,
    /// `reportingController` of Events (default [`DEFAULT_EVENT_REPORTER`]).
    pub event_reporter: String,
    /// `reportingInstance` of Events (default `None`: the controller name); the pod name is a
    /// good value.
    pub event_instance: Option<String>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            label_selector: None,
            azure_resync_period: DEFAULT_AZURE_RESYNC_PERIOD,
            concurrency: DEFAULT_CONCURRENCY,
            field_manager_prefix: DEFAULT_FIELD_MANAGER_PREFIX.to_owned(),
            leader_election: None,
            vault_dns_suffix: String::new(),
            key_vault_read: Some(ReadConfig::default()),
            client_metrics: None,
            resync_jitter: DEFAULT_RESYNC_JITTER,
            error_backoff_base: DEFAULT_ERROR_BACKOFF_BASE,
            error_backoff_max: DEFAULT_ERROR_BACKOFF_MAX,
            format: FormatOptions::default(),
            event_reporter: DEFAULT_EVENT_REPORTER.to_owned(),
            event_instance: None,
        }
    }
}

impl SyncConfig {
    /// Checks the values that would make the controller misbehave.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.azure_resync_period.is_zero() {
            return invalid("SyncConfig::azure_resync_period", "must be positive");
        }
        if self.field_manager_prefix.is_empty() || self.field_manager_prefix.len() > 64 {
            return invalid("SyncConfig::field_manager_prefix", "1 to 64 characters");
        }
        if self.error_backoff_base.is_zero() || self.error_backoff_max < self.error_backoff_base {
            return invalid(
                "SyncConfig::error_backoff_base",
                "positive and not above error_backoff_max",
            );
        }
        if !(0.0..=1.0).contains(&self.resync_jitter) {
            return invalid("SyncConfig::resync_jitter", "between 0.0 and 1.0");
        }
        if let Some(le) = &self.leader_election {
            le.validate()?;
        }
        Ok(())
    }
}

/// What the controller needs from its host.
#[derive(Clone)]
pub struct SyncDeps {
    /// The API client.
    pub client: Client,
    /// Key Vault access (akv-client's `AzureKeyVaults`, or a fake).
    pub key_vault: Arc<dyn KeyVaultProvider>,
    /// Metrics, registered by the host.
    pub metrics: SyncMetrics,
}

impl std::fmt::Debug for SyncDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncDeps")
            .field("key_vault", &self.key_vault)
            .finish_non_exhaustive()
    }
}

/// Runs the controller until `shutdown` resolves.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a bad config, [`Error::CrdNotInstalled`] when the API server
/// does not serve `AzureKeyVaultSecret`, [`Error::ReadPlane`] when the read plane cannot be
/// built, and the Lease release errors of [`LeaderElector::run`].
///
/// # Cancellation
///
/// When `shutdown` resolves, no new reconcile starts, running ones finish, and then (with
/// leader election) the Lease is released.
pub async fn run(
    deps: SyncDeps,
    cfg: SyncConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    cfg.validate()?;
    let SyncDeps {
        client,
        key_vault,
        metrics,
    } = deps;
    check_crd(&client, &cfg).await?;
    let key_vault: Arc<dyn KeyVaultProvider> = match &cfg.key_vault_read {
        Some(read) => Arc::new(
            ReadPlane::new(
                key_vault,
                ReadConfig {
                    ttl: cfg.azure_resync_period,
                    refresh_over_budget: OverBudget::Defer,
                    ..read.clone()
                },
                cfg.client_metrics.clone(),
            )
            .map_err(|source| Error::ReadPlane {
                source: Box::new(source),
            })?,
        ),
        None => key_vault,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let Some(le) = cfg.leader_election.clone() else {
        run_controller(&client, &key_vault, &cfg, &metrics, until(stop_rx, None)).await;
        return Ok(());
    };
    let elector = LeaderElector::new(client.clone(), le)?;
    let mut leading = elector.leadership();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let election = tokio::spawn(elector.run(async move {
        let _ = release_rx.await;
    }));
    let mut stop = stop_rx.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        info!("leading: starting the controller");
        run_controller(
            &client,
            &key_vault,
            &cfg,
            &metrics,
            until(stop_rx.clone(), Some(leading.clone())),
        )
        .await;
        if *stop.borrow() {
            break;
        }
        warn!("lost leadership: controller stopped; campaigning again");
    }
    // Writers have stopped: release the Lease.
    let _ = release_tx.send(());
    match election.await {
        Ok(r) => r,
        Err(e) => {
            warn!(
                error = &e as &dyn std::error::Error,
                "leader election task failed"
            );
            Ok(())
        }
    }
}

/// Checks that the API server serves `AzureKeyVaultSecret` where `cfg` watches (one list
/// call, limit 1); [`run`] does it first. A host can call it before reporting itself ready.
///
/// # Errors
///
/// [`Error::CrdNotInstalled`], naming the file to apply.
pub async fn check_crd(client: &Client, cfg: &SyncConfig) -> Result<()> {
    akvs_api(client, cfg)
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map(drop)
        .map_err(|source| Error::CrdNotInstalled { source })
}

/// A `Send + Sync` future resolving when `stop` turns true or `leading` turns false.
fn until(
    mut stop: watch::Receiver<bool>,
    leading: Option<watch::Receiver<bool>>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        match leading {
            Some(mut leading) => {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = leading.wait_for(|l| !*l) => {}
                }
            }
            None => {
                let _ = stop.wait_for(|s| *s).await;
            }
        }
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

/// What the reconciler never reads of an AKVS, dropped before it enters the cache:
/// managedFields and kubectl's last-applied copy of the whole manifest.
fn slim_akvs(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    drop_last_applied(meta);
}

fn drop_last_applied(meta: &mut ObjectMeta) {
    if let Some(a) = meta.annotations.as_mut() {
        for k in SKIPPED_ANNOTATIONS {
            a.remove(*k);
        }
    }
}

fn akvs_api(client: &Client, cfg: &SyncConfig) -> Api<AzureKeyVaultSecret> {
    match &cfg.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn run_controller(
    client: &Client,
    key_vault: &Arc<dyn KeyVaultProvider>,
    cfg: &SyncConfig,
    metrics: &SyncMetrics,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (secrets_api, config_maps_api): (Api<Secret>, Api<ConfigMap>) = match &cfg.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let managed = watcher::Config::default().labels(&format!("{MANAGED_LABEL}={MANAGED_VALUE}"));
    let secrets = Arc::new(OutputIndex::new());
    let config_maps = Arc::new(OutputIndex::new());
    let secret_stream = watcher(secrets_api, managed.clone())
        .default_backoff()
        .map_ok({
            let index = secrets.clone();
            move |ev| {
                index.apply(&ev);
                ev
            }
        })
        .touched_objects();
    let config_map_stream = watcher(config_maps_api, managed)
        .default_backoff()
        .map_ok({
            let index = config_maps.clone();
            move |ev| {
                index.apply(&ev);
                ev
            }
        })
        .touched_objects();
    let mut akvs_cfg = watcher::Config::default();
    if let Some(sel) = cfg.label_selector.as_deref().filter(|s| !s.is_empty()) {
        akvs_cfg = akvs_cfg.labels(sel);
    }
    let (akvs_store, akvs_writer) = reflector::store();
    let akvs_stream = watcher(akvs_api(client, cfg), akvs_cfg)
        .default_backoff()
        .modify(|a: &mut AzureKeyVaultSecret| slim_akvs(&mut a.metadata))
        .reflect(akvs_writer)
        .applied_objects();
    let events = EventPublisher::new(
        client.clone(),
        cfg.event_reporter.clone(),
        cfg.event_instance
            .clone()
            .unwrap_or_else(|| cfg.event_reporter.clone()),
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        key_vault.clone(),
        cfg.clone(),
        metrics.clone(),
        events,
        secrets,
        config_maps,
    ));
    Controller::for_stream(akvs_stream, akvs_store)
        .owns_stream(secret_stream)
        .owns_stream(config_map_stream)
        .with_config(controller::Config::default().concurrency(cfg.concurrency))
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(namespace = ?obj.namespace, name = %obj.name, "reconciled"),
                Err(controller::Error::ReconcilerFailed(_, obj)) => {
                    debug!(namespace = ?obj.namespace, name = %obj.name, "reconcile failed");
                }
                Err(e) => debug!(error = &e as &dyn std::error::Error, "controller"),
            }
        })
        .await;
    info!("controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slimmed_akvs_keep_what_the_reconciler_reads() {
        let mut meta: ObjectMeta = serde_json::from_value(json!({
            "name": "a", "namespace": "ns", "uid": "u1", "generation": 3,
            "labels": {"l": "1"}, "finalizers": ["spv.no/akv2k8s-outputs"],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "x": "y"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]
        }))
        .expect("meta");
        slim_akvs(&mut meta);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(meta.generation, Some(3));
        assert_eq!(meta.uid.as_deref(), Some("u1"));
        assert_eq!(
            meta.finalizers.as_deref(),
            Some(&["spv.no/akv2k8s-outputs".to_owned()][..])
        );
        assert_eq!(
            meta.annotations
                .unwrap_or_default()
                .keys()
                .collect::<Vec<_>>(),
            ["x"]
        );
    }
}
