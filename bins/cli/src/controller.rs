//! The real controller, in-process: [`k8s_sync::run`] with the Key Vault provider
//! `akv2k8s-controller` builds (akv-auth client-secret credential against the Entra fake,
//! akv-client's Azure SDK provider, the production host names resolved to the fakes) and a
//! Kubernetes client from the API server fake's kubeconfig, sending the controller's
//! `User-Agent` so the API server's request log tells its calls apart.

use std::time::Duration;

use akv2k8s_bins_common::Shutdown;
use anyhow::Context as _;
use k8s_sync::{SyncConfig, SyncDeps, SyncMetrics};
use tokio::task::JoinHandle;

use crate::fakes::{Cluster, DEADLINE};

/// The `User-Agent` of the in-process controller's API requests.
pub const USER_AGENT: &str = concat!("akv2k8s-controller/", env!("CARGO_PKG_VERSION"), " (cli)");

/// A running [`k8s_sync::run`].
#[derive(Debug)]
pub struct RunningController {
    shutdown: Shutdown,
    task: JoinHandle<k8s_sync::Result<()>>,
}

impl RunningController {
    /// Starts the controller on `cluster`, refreshing from Key Vault every `resync`.
    ///
    /// # Errors
    ///
    /// The Key Vault provider or the Kubernetes client cannot be built.
    pub async fn start(cluster: &Cluster, resync: Duration) -> anyhow::Result<Self> {
        let (key_vault, vault_dns_suffix) = cluster.azure.key_vaults()?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&cluster.api.kubeconfig_yaml())
            .context("reading the fake's kubeconfig")?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .context("using the fake's kubeconfig")?;
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
        let deps = SyncDeps {
            client,
            key_vault,
            metrics: SyncMetrics::default(),
        };
        let cfg = SyncConfig {
            azure_resync_period: resync,
            vault_dns_suffix,
            event_instance: Some("akv2k8s-cli".into()),
            ..SyncConfig::default()
        };
        let shutdown = Shutdown::new();
        let task = tokio::spawn(k8s_sync::run(deps, cfg, shutdown.signalled()));
        Ok(Self { shutdown, task })
    }

    /// Stops the controller (in-flight reconciles finish) and waits for `run` to return.
    ///
    /// # Errors
    ///
    /// `run` failed, panicked, or did not return within [`DEADLINE`].
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .context("the controller did not stop in time")?
            .context("the controller task panicked")?
            .context("the controller failed")
    }
}
